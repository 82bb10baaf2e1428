/**
 * The full-int8 quantiser (native/quantize): on a small model these tests
 * build (every op the quantiser has a rule for), and on MobileFaceNet, both
 * from a fresh calibration on real faces and from the committed record.
 * Every int8 model is run through TFLite's own int8 kernels and compared
 * with its float original.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { CpuRuntime } from '../../native';
import {
  calibrate,
  checkEdgeTpu,
  parseMethod,
  quantizeFromRecord,
  quantizeModel,
  QuantizeError,
  quantizeWithCalibration,
  rangesFrom,
  readModel,
  recordParameters,
  sha256,
} from '../../native/quantize';
import { applyEqualization, chooseScales, findPairs } from '../../native/quantize/equalize';
import { prepareFloatGraph } from '../../native/quantize/graph';
import { chooseRange, HISTOGRAM_BINS, TensorStats } from '../../native/quantize/ranges';
import { Op, TensorType } from '../../native/quantize/schema';
import { writeModel } from '../../native/quantize/tflite-file';
import { mainFaceCrop } from '../../nodes/tools/photos';
import { openDetector } from '../../nodes/core/pipeline';
import type { RgbImage } from '../../nodes/core/media/image';
import { buildMixedFloatModel, seededRandom } from '../helpers/float-graph';
import { FACES_DIR, MODELS } from '../models';

const RECORD = path.resolve(__dirname, '..', '..', '..', 'native', 'models', 'mobilefacenet_int8.calibration.json');

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

function seededInputs(count: number, length: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length }, () => random() * 2 - 1));
}

async function faceCrops(count: number): Promise<RgbImage[]> {
  const { detector, runtime } = await openDetector({ variant: 'short' });
  const people = fs
    .readdirSync(FACES_DIR)
    .filter((d) => !d.startsWith('_'))
    .sort();
  const crops: RgbImage[] = [];
  try {
    for (const person of people) {
      if (crops.length >= count) break;
      const dir = path.join(FACES_DIR, person);
      const crop = await mainFaceCrop(detector, path.join(dir, fs.readdirSync(dir).sort()[0]));
      if (crop) crops.push(crop);
    }
  } finally {
    await runtime.dispose();
  }
  return crops;
}

const normalise = (crop: RgbImage) => Float32Array.from(crop.data, (v) => (v - 127.5) / 128);

describe('quantiser: range methods', () => {
  const stats = (values: number[]) => {
    const s = new TensorStats();
    const data = Float32Array.from(values);
    s.observeRange(data);
    s.observeHistogram(data);
    return s;
  };

  it('minmax keeps every value, percentile clips the stated fraction, mse trades clipping against coarser steps', () => {
    const random = seededRandom(3);
    // A heavy-tailed activation: Laplace(0, 1), 20,000 values.
    const values = Array.from({ length: 20000 }, () => {
      const u = random() - 0.5;
      return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    });
    const s = stats(values);
    assert.equal(s.count, values.length);
    assert.equal(s.histogram!.length, HISTOGRAM_BINS);
    const [minLo, minHi] = chooseRange(s, { name: 'minmax' });
    assert.deepEqual([minLo, minHi], [Math.min(...values), Math.max(...values)].map(Math.fround));
    const [pLo, pHi] = chooseRange(s, { name: 'percentile', p: 1e-3 });
    const clipped = values.filter((v) => v < pLo || v > pHi).length;
    assert.ok(
      clipped > 20 && clipped < 60,
      `${clipped} of 20000 values outside the 1e-3 percentile range (40 expected)`,
    );
    const [mLo, mHi] = chooseRange(s, { name: 'mse' });
    assert.ok(mLo > minLo && mHi < minHi, `mse clips the longest tails: [${mLo}, ${mHi}] inside [${minLo}, ${minHi}]`);
    // The expected squared error it minimises, counted on the values themselves.
    const error = ([lo, hi]: number[]) =>
      values.reduce((e, v) => {
        const step = (hi - lo) / 255;
        const q = Math.min(hi, Math.max(lo, lo + Math.round((v - lo) / step) * step));
        return e + (v - q) ** 2;
      }, 0);
    assert.ok(error([mLo, mHi]) < error([minLo, minHi]));
    // Ranges always hold 0, so that 0 is exact in int8.
    assert.deepEqual(chooseRange(stats([2, 3, 4]), { name: 'minmax' }), [0, 4]);
  });

  it('parses method names and refuses others', () => {
    assert.deepEqual(parseMethod('mse'), { name: 'mse' });
    assert.deepEqual(parseMethod('percentile'), { name: 'percentile', p: 1e-4 });
    assert.deepEqual(parseMethod('percentile:1e-5'), { name: 'percentile', p: 1e-5 });
    assert.throws(() => parseMethod('kl'), /unknown range method/);
    assert.throws(() => parseMethod('percentile:0.7'), /fraction/);
  });
});

describe('quantiser: a small model of every supported op', function () {
  this.timeout(60000);
  const floatModel = buildMixedFloatModel();
  const inputs = seededInputs(64, 8 * 8 * 3, 11);

  it('gives a full-int8 model per the TFLite int8 spec, that TFLite runs close to the float one', async () => {
    const { bytes, report } = await quantizeWithCalibration(floatModel, async function* calibration() {
      for (const x of inputs.slice(0, 48)) yield [x];
    });
    assert.deepEqual(report.operators, {
      CONV_2D: 2,
      DEPTHWISE_CONV_2D: 1,
      PRELU: 1,
      ADD: 1,
      PAD: 1,
      MAX_POOL_2D: 1,
      MUL: 1,
      RESHAPE: 1,
      FULLY_CONNECTED: 1,
    });
    const model = readModel(bytes);
    const [graph] = model.subgraphs;
    const versionOf = (op: number) => model.operatorCodes.find((c) => c.builtin === op)?.version;
    assert.deepEqual(
      [
        Op.CONV_2D,
        Op.DEPTHWISE_CONV_2D,
        Op.FULLY_CONNECTED,
        Op.ADD,
        Op.MUL,
        Op.PRELU,
        Op.RESHAPE,
        Op.PAD,
        Op.MAX_POOL_2D,
      ].map(versionOf),
      [3, 3, 4, 2, 2, 1, 1, 2, 2],
    );
    assert.ok(!model.operatorCodes.some((c) => c.builtin === Op.QUANTIZE || c.builtin === Op.DEQUANTIZE));
    const tensor = (name: string) => graph.tensors.find((t) => t.name === name)!;
    for (const t of graph.tensors) {
      const constant = t.buffer > 0 && model.buffers[t.buffer].length > 0;
      if (!constant) assert.equal(t.type, TensorType.INT8, `${t.name} is int8`);
      if (!constant) assert.equal(t.quantization?.scale.length, 1, `${t.name} per tensor`);
    }
    // Weights: per output channel, symmetric, in [-127, 127].
    for (const [name, axis, channels] of [
      ['conv1/w', 0, 8],
      ['dw1/w', 3, 8],
      ['conv2/w', 0, 8],
    ] as const) {
      const w = tensor(name);
      assert.equal(w.type, TensorType.INT8);
      assert.equal(w.quantization!.quantizedDimension, axis);
      assert.equal(w.quantization!.scale.length, channels);
      assert.ok(w.quantization!.zeroPoint.every((z) => z === 0));
      const data = new Int8Array(
        model.buffers[w.buffer].buffer,
        model.buffers[w.buffer].byteOffset,
        model.buffers[w.buffer].length,
      );
      assert.ok(
        data.every((q) => q >= -127),
        `${name} never uses -128`,
      );
      assert.ok(
        data.some((q) => q === 127 || q === -127),
        `${name} uses its full range`,
      );
    }
    assert.equal(tensor('fc/w').quantization!.scale.length, 1, 'FULLY_CONNECTED weights per tensor');
    // Biases: int32, scale = input scale x weight scale per channel.
    for (const [bias, weights, input] of [
      ['conv1/b', 'conv1/w', 'input'],
      ['dw1/b', 'dw1/w', 'conv1'],
      ['fc/b', 'fc/w', 'flat'],
    ]) {
      const b = tensor(bias);
      assert.equal(b.type, TensorType.INT32);
      const expected = tensor(weights).quantization!.scale.map((s) =>
        Math.fround(s * tensor(input).quantization!.scale[0]),
      );
      assert.deepEqual(
        b.quantization!.scale,
        expected.length === b.quantization!.scale.length ? expected : b.quantization!.scale.map(() => expected[0]),
      );
    }
    // PRELU alpha: int8 per tensor, zero point 0.
    const alpha = tensor('prelu1/alpha');
    assert.deepEqual(
      [alpha.type, alpha.quantization!.scale.length, alpha.quantization!.zeroPoint[0]],
      [TensorType.INT8, 1, 0],
    );
    // Ops that move values keep their input's quantisation.
    for (const [out, input] of [
      ['pad', 'add'],
      ['pool', 'pad'],
      ['flat', 'mul'],
    ]) {
      assert.deepEqual(
        tensor(out).quantization,
        tensor(input).quantization,
        `${out} keeps ${input}'s scale and zero point`,
      );
    }
    assert.equal(checkEdgeTpu(bytes).ok, true, JSON.stringify(checkEdgeTpu(bytes).findings));

    // TFLite's int8 kernels, with XNNPACK (QS8) and without, against the float model on inputs calibration never saw.
    const float = await CpuRuntime.open(floatModel, { threads: 1 });
    const runtimes = [
      await CpuRuntime.open(bytes, { threads: 1 }),
      await CpuRuntime.open(bytes, { threads: 1, xnnpack: false }),
    ];
    try {
      assert.equal(runtimes[0].inputs[0].dtype, 'int8');
      assert.equal(runtimes[0].outputs[0].dtype, 'int8');
      for (const x of inputs.slice(48)) {
        const [reference] = await float.invoke([x]);
        for (const runtime of runtimes) {
          const [out] = await runtime.invoke([x]);
          assert.ok(cosine(out, reference) > 0.99, `cosine ${cosine(out, reference)}`);
        }
      }
    } finally {
      await Promise.all([float.dispose(), ...runtimes.map((r) => r.dispose())]);
    }
  });

  it('is deterministic, and refuses an op it has no rule for, or a tensor without a range', async () => {
    const calibration = await calibrate(floatModel, async function* calibration() {
      for (const x of inputs.slice(0, 8)) yield [x];
    });
    const parameters = { ranges: rangesFrom(calibration, { name: 'mse' }), equalization: calibration.equalization };
    assert.deepEqual(quantizeModel(floatModel, parameters).bytes, quantizeModel(floatModel, parameters).bytes);
    const { conv1: _dropped, ...partial } = parameters.ranges;
    assert.throws(
      () => quantizeModel(floatModel, { ...parameters, ranges: partial }),
      (e: Error) => e instanceof QuantizeError && /conv1/.test(e.message),
    );

    const withAbs = readModel(floatModel);
    withAbs.operatorCodes.push({ builtin: Op.ABS, version: 1 });
    const graph = withAbs.subgraphs[0];
    graph.tensors.push({ name: 'abs', shape: [1, 10], type: TensorType.FLOAT32, buffer: 0 });
    graph.operators.push({
      opcodeIndex: withAbs.operatorCodes.length - 1,
      inputs: [graph.outputs[0]],
      outputs: [graph.tensors.length - 1],
      optionsType: 0,
      options: {},
    });
    graph.outputs = [graph.tensors.length - 1];
    assert.throws(
      () => quantizeModel(writeModel(withAbs), { ranges: { ...parameters.ranges, abs: [0, 1] } }),
      (e: Error) => e instanceof QuantizeError && /ABS/.test(e.message),
    );
  });
});

describe('quantiser: MobileFaceNet', function () {
  this.timeout(300000);
  const floatModel = new Uint8Array(fs.readFileSync(MODELS.mobilefacenet));
  let crops: RgbImage[];

  before(async () => {
    crops = await faceCrops(24);
    assert.ok(crops.length >= 20);
  });

  it('quantises the rewritten graph: 98 ops with PRELU, batch 1, int8 in and out, channel equalisation on convolution pairs and residual streams', async () => {
    const prepared = prepareFloatGraph(floatModel, readModel);
    assert.equal(prepared.model.subgraphs[0].operators.length, 98);
    assert.equal(findPairs(prepared.model).length, 39, '36 convolution pairs and 3 residual streams');
    const { bytes, report, record } = await quantizeWithCalibration(
      floatModel,
      async function* calibration() {
        for (const crop of crops.slice(0, 12)) yield [normalise(crop)];
      },
      { modelFile: 'MobileFaceNet.tflite', source: '12 dev faces' },
    );
    assert.deepEqual(report.operators, { CONV_2D: 35, PRELU: 33, DEPTHWISE_CONV_2D: 17, ADD: 12, RESHAPE: 1 });
    assert.deepEqual(report.input.shape, [1, 112, 112, 3]);
    assert.deepEqual(report.output[0].shape, [1, 192]);
    assert.ok(report.applied.includes('equalised the channels of 39 groups of convolutions'), report.applied.join());
    // The record holds numbers only, and gives back the same bytes.
    const text = JSON.stringify(record);
    assert.ok(text.length < 400000, `record of ${text.length} characters`);
    assert.equal(record.result.sha256, sha256(bytes));
    const rebuilt = quantizeFromRecord(floatModel, JSON.parse(text));
    assert.equal(rebuilt.identical, true);
    assert.deepEqual(rebuilt.bytes, bytes);
    assert.throws(
      () => recordParameters(JSON.parse(text), new Uint8Array(fs.readFileSync(MODELS['blazeface-short']))),
      /another float model/,
    );
  });

  it('channel equalisation changes no float result', async () => {
    const prepared = prepareFloatGraph(floatModel, readModel).model;
    const groups = findPairs(prepared);
    const random = seededRandom(5);
    // Scales from made-up channel ranges spanning 100x: the rewrite must be exact whatever they are.
    const ranges = new Map(
      groups
        .flatMap((g) => g.tensors)
        .map((t) => [
          t,
          Float64Array.from({ length: prepared.subgraphs[0].tensors[t].shape.at(-1)! }, () => 0.01 + random()),
        ]),
    );
    const equalised = structuredClone(prepared);
    assert.equal(applyEqualization(equalised, chooseScales(prepared, groups, ranges)), 39);
    const [a, b] = [
      await CpuRuntime.open(writeModel(prepared), { threads: 1 }),
      await CpuRuntime.open(writeModel(equalised), { threads: 1 }),
    ];
    try {
      for (const crop of crops.slice(0, 4)) {
        const [[x], [y]] = [await a.invoke([normalise(crop)]), await b.invoke([normalise(crop)])];
        assert.ok(cosine(x, y) > 0.999999, `cosine ${cosine(x, y)}`);
        assert.ok(x.every((v, i) => Math.abs(v - y[i]) < 1e-3 * (1 + Math.abs(v))));
      }
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  it("the committed record gives the build's model, byte for byte, and it is as close to the float model as the README says", async () => {
    const record = JSON.parse(fs.readFileSync(RECORD, 'utf8'));
    const { bytes, identical } = quantizeFromRecord(floatModel, record);
    assert.equal(identical, true, 'the quantiser gives the bytes the record was measured on');
    const built = path.resolve(__dirname, '..', '..', 'models', 'mobilefacenet_int8.tflite');
    assert.deepEqual(new Uint8Array(fs.readFileSync(built)), bytes, 'npm run build made it');
    const check = checkEdgeTpu(bytes);
    assert.equal(check.ok, true, JSON.stringify(check.findings));
    assert.equal(check.operators, 98);

    const float = await CpuRuntime.open(floatModel, { threads: 1 });
    await float.resizeInput(0, [1, 112, 112, 3]);
    const int8 = await CpuRuntime.open(bytes, { threads: 1 });
    const cosines: number[] = [];
    try {
      for (const crop of crops) {
        const input = normalise(crop);
        cosines.push(cosine((await int8.invoke([input]))[0], (await float.invoke([input]))[0]));
      }
    } finally {
      await Promise.all([float.dispose(), int8.dispose()]);
    }
    cosines.sort((a, b) => a - b);
    assert.ok(
      cosines[Math.floor(cosines.length / 2)] >= 0.99,
      `median cosine ${cosines[Math.floor(cosines.length / 2)]}`,
    );
    assert.ok(cosines[0] >= 0.97, `lowest cosine ${cosines[0]}`);
  });
});
