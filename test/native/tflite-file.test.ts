/**
 * The TFLite flatbuffer reader and writer (native/quantize/tflite-file.ts):
 * real models read and written back load in TFLite and give bit-identical
 * results; what the reader cannot represent is refused, not dropped.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import { ByteBuffer } from 'flatbuffers';
import { CpuRuntime } from '../../native';
import { ModelFormatError, readModel, writeModel } from '../../native/quantize/tflite-file';
import { MODELS, ModelName } from '../models';
import { seededRandom } from '../helpers/float-graph';

function seeded(length: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length }, () => random() * 2 - 1);
}

describe('TFLite model reader and writer', function () {
  this.timeout(60000);

  for (const name of Object.keys(MODELS) as ModelName[]) {
    it(`${name}: read and written back, TFLite gives the same outputs, and reading it again gives the same model`, async () => {
      const original = new Uint8Array(fs.readFileSync(MODELS[name]));
      const parsed = readModel(original);
      const written = writeModel(parsed);
      assert.deepEqual(readModel(written), parsed);
      assert.deepEqual(writeModel(readModel(written)), written, 'the same model always gives the same bytes');
      const [a, b] = [
        await CpuRuntime.open(original, { threads: 1, rewrite: false }),
        await CpuRuntime.open(written, { threads: 1, rewrite: false }),
      ];
      try {
        assert.deepEqual(
          b.inputs.map((t) => [t.name, t.dtype, [...t.shape]]),
          a.inputs.map((t) => [t.name, t.dtype, [...t.shape]]),
        );
        const input = seeded(
          a.inputs[0].shape.reduce((n, d) => n * d, 1),
          3,
        );
        const [x, y] = [await a.invoke([input]), await b.invoke([input])];
        assert.equal(x.length, y.length);
        x.forEach((out, i) => assert.deepEqual(Array.from(y[i]), Array.from(out)));
      } finally {
        await Promise.all([a.dispose(), b.dispose()]);
      }
    });
  }

  it('writes both operator-code fields and 16-byte aligned buffers', () => {
    const written = writeModel(readModel(new Uint8Array(fs.readFileSync(MODELS.mobilefacenet))));
    // Raw flatbuffer access, independent of the reader under test: Model.operator_codes (field 1), Model.buffers (field 4).
    const bb = new ByteBuffer(written);
    const model = bb.readInt32(0);
    const field = (table: number, id: number) => bb.__offset(table, 4 + 2 * id);
    const vector = (table: number, id: number) => {
      const at = table + field(table, id);
      return Array.from({ length: bb.__vector_len(at) }, (_, i) => bb.__indirect(bb.__vector(at) + 4 * i));
    };
    for (const code of vector(model, 1)) {
      assert.ok(field(code, 0) && field(code, 3), 'deprecated_builtin_code and builtin_code are both present');
      assert.equal(bb.readInt8(code + field(code, 0)), bb.readInt32(code + field(code, 3)));
    }
    let withData = 0;
    for (const buffer of vector(model, 4)) {
      if (!field(buffer, 0)) continue;
      withData++;
      assert.equal(bb.__vector(buffer + field(buffer, 0)) % 16, 0);
    }
    assert.ok(withData > 50);
  });

  it('refuses files it cannot represent, with a reason', () => {
    const original = new Uint8Array(fs.readFileSync(MODELS['blazeface-short']));
    assert.throws(
      () => readModel(Buffer.from('not a model at all')),
      (e: Error) => e instanceof ModelFormatError && /TFL3/.test(e.message),
    );
    assert.throws(
      () => readModel(original.subarray(0, 5000)),
      (e: Error) => e instanceof ModelFormatError && /damaged|past the end/.test(e.message),
    );
  });
});
