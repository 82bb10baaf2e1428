// Checks the generated models against an independent TFLite binding
// (tfjs-tflite-node), so builder bugs are not masked by our own runtime.
import { strict as assert } from 'assert';
import { peerRunnerClass } from '../peer';

const TFLiteNodeModelRunner = peerRunnerClass();

import {
  buildAddModel,
  buildCustomOpModel,
  buildDequantizeModel,
  buildQuantizeModel,
  QuantizedModelOptions,
} from './tflite-builder';

type Runner = InstanceType<typeof TFLiteNodeModelRunner>;

// The binding copies from the start of the ArrayBuffer, so hand it one that
// holds exactly the model (a Buffer may be a slice of a larger pool).
function load(model: Buffer): Runner {
  const bytes = model.buffer.slice(model.byteOffset, model.byteOffset + model.byteLength);
  return new TFLiteNodeModelRunner(bytes as ArrayBuffer, { threads: 1 });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relTol = 1e-6): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let i = 0; i < expected.length; i++) {
    const tol = relTol * Math.max(1, Math.abs(expected[i]));
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `element ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}

// TFLite rounds with std::round (half away from zero), not Math.round.
function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

describe('tflite-builder', () => {
  it('writes a TFL3 flatbuffer', () => {
    const model = buildAddModel({ shape: [1, 4] });
    assert.equal(model.toString('latin1', 4, 8), 'TFL3');
    const root = model.readUInt32LE(0);
    assert.ok(root >= 8 && root < model.length, `root offset ${root}`);
  });

  describe('buildDequantizeModel', () => {
    const cases: QuantizedModelOptions[] = [
      { shape: [1, 256], scale: 0.5, zeroPoint: -3, dtype: 'int8' },
      { shape: [2, 8, 16], scale: 0.0078125, zeroPoint: 128, dtype: 'uint8' },
      { shape: [256], scale: 0.1, zeroPoint: 0, dtype: 'uint8' },
    ];
    for (const c of cases) {
      it(`maps every ${c.dtype} q to (q - ${c.zeroPoint}) * ${c.scale}, shape [${c.shape}]`, () => {
        const runner = load(buildDequantizeModel(c));
        const [input] = runner.getInputs();
        const [output] = runner.getOutputs();
        assert.equal(input.name, 'input');
        assert.equal(input.dataType, c.dtype);
        assert.equal(input.shape, c.shape.join(','));
        assert.equal(output.name, 'output');
        assert.equal(output.dataType, 'float32');
        assert.equal(output.shape, c.shape.join(','));

        const values = c.dtype === 'int8' ? range(-128, 127) : range(0, 255);
        input.data().set(values);
        runner.infer();
        const scale = Math.fround(c.scale);
        assertClose(
          output.data(),
          values.map((q) => (q - c.zeroPoint) * scale),
        );
      });
    }
  });

  describe('buildQuantizeModel', () => {
    const cases: QuantizedModelOptions[] = [
      { shape: [1, 401], scale: 0.05, zeroPoint: 7, dtype: 'int8' },
      { shape: [401], scale: 0.25, zeroPoint: 100, dtype: 'uint8' },
    ];
    for (const c of cases) {
      it(`maps x to clamp(round(x / ${c.scale}) + ${c.zeroPoint}) as ${c.dtype}`, () => {
        const runner = load(buildQuantizeModel(c));
        const [input] = runner.getInputs();
        const [output] = runner.getOutputs();
        assert.equal(input.name, 'input');
        assert.equal(input.dataType, 'float32');
        assert.equal(output.name, 'output');
        assert.equal(output.dataType, c.dtype);

        // k + 0.3 keeps x / scale well clear of .5 ties (where float32 vs
        // float64 division could round differently); |k| up to 200 also
        // drives both ends into clamping.
        const xs = range(-200, 200).map((k) => Math.fround((k + 0.3) * c.scale));
        xs[0] = -1e6;
        xs[xs.length - 1] = 1e6;
        input.data().set(xs);
        runner.infer();

        const [lo, hi] = c.dtype === 'int8' ? [-128, 127] : [0, 255];
        const expected = xs.map((x) =>
          Math.min(hi, Math.max(lo, roundHalfAway(x / Math.fround(c.scale)) + c.zeroPoint)),
        );
        assert.deepEqual(Array.from(output.data()), expected);
      });
    }
  });

  describe('buildAddModel', () => {
    it('adds input and input_b element-wise, across repeated inferences', () => {
      const shape = [2, 3, 4];
      const runner = load(buildAddModel({ shape }));
      const inputs = runner.getInputs();
      assert.deepEqual(
        inputs.map((t) => t.name),
        ['input', 'input_b'],
      );
      assert.ok(inputs.every((t) => t.dataType === 'float32' && t.shape === '2,3,4'));
      const [output] = runner.getOutputs();
      assert.equal(output.name, 'output');

      for (const offset of [0, 100.5]) {
        // Quarter steps are exact in float32, so the sums compare exactly.
        const a = range(0, 23).map((i) => i * 0.25 - 3 + offset);
        const b = range(0, 23).map((i) => 1000 - i * 1.5);
        inputs[0].data().set(a);
        inputs[1].data().set(b);
        runner.infer();
        assert.deepEqual(
          Array.from(output.data()),
          a.map((x, i) => x + b[i]),
        );
      }
    });

    it('gives independent results from two interpreters of one model', () => {
      const model = buildAddModel({ shape: [4] });
      const r1 = load(model);
      const r2 = load(model);
      r1.getInputs()[0].data().set([1, 2, 3, 4]);
      r1.getInputs()[1].data().set([10, 20, 30, 40]);
      r2.getInputs()[0].data().set([-1, -2, -3, -4]);
      r2.getInputs()[1].data().set([0.5, 0.5, 0.5, 0.5]);
      r1.infer();
      r2.infer();
      assert.deepEqual(Array.from(r1.getOutputs()[0].data()), [11, 22, 33, 44]);
      assert.deepEqual(Array.from(r2.getOutputs()[0].data()), [-0.5, -1.5, -2.5, -3.5]);
    });
  });

  describe('buildCustomOpModel', () => {
    for (const customCode of ['edgetpu-custom-op', 'some-other-op']) {
      it(`cannot run on the CPU and names the unresolved op (${customCode})`, () => {
        const model = buildCustomOpModel({ customCode });
        assert.throws(
          () => load(model),
          (err: Error) => {
            assert.match(err.message, /unresolved custom op/i);
            assert.ok(err.message.includes(customCode), err.message);
            return true;
          },
        );
      });
    }
  });

  it('rejects quantisation parameters the dtype cannot hold', () => {
    assert.throws(() => buildDequantizeModel({ shape: [1], scale: 1, zeroPoint: 200, dtype: 'int8' }), RangeError);
    assert.throws(() => buildQuantizeModel({ shape: [1], scale: 1, zeroPoint: -1, dtype: 'uint8' }), RangeError);
    assert.throws(() => buildQuantizeModel({ shape: [1], scale: 0, zeroPoint: 0, dtype: 'uint8' }), RangeError);
    assert.throws(() => buildAddModel({ shape: [1, 0] }), RangeError);
  });
});
