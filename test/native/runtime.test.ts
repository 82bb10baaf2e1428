import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import sharp from 'sharp';
import { CpuRuntime, InferenceRuntime, openRuntime, RuntimeError } from '../../native';
import { buildAddModel, buildCustomOpModel, buildDequantizeModel, buildQuantizeModel } from '../helpers/tflite-builder';
import { maxAbsDiff } from '../helpers/arrays';
import { FACES_DIR, MODELS } from '../models';
import { PeerModel } from '../peer';

function seededInput(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return data;
}

/** Largest difference relative to the reference value (absolute below 1). */
function maxRelDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return max;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof RuntimeError, `expected a RuntimeError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

/** A photo scaled to the model input, values in [-1, 1] as BlazeFace expects. */
async function photoTensor(file: string, size: number, normalise: (v: number) => number): Promise<Float32Array> {
  const { data } = await sharp(file)
    .removeAlpha()
    .resize(size, size, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return Float32Array.from(data, normalise);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-runtime-'));
const firstPhoto = (person: string) =>
  path.join(FACES_DIR, person, fs.readdirSync(path.join(FACES_DIR, person)).sort()[0]);

describe('native runtime: real models', function () {
  const expected = {
    mobilefacenet: {
      inputs: [{ name: 'input', shape: [2, 112, 112, 3] }],
      outputs: [{ name: 'embeddings', shape: [2, 192] }],
    },
    'blazeface-short': {
      inputs: [{ name: 'input', shape: [1, 128, 128, 3] }],
      outputs: [
        { name: 'regressors', shape: [1, 896, 16] },
        { name: 'classificators', shape: [1, 896, 1] },
      ],
    },
    'blazeface-full': {
      inputs: [{ name: 'input', shape: [1, 192, 192, 3] }],
      outputs: [
        { name: 'reshaped_regressor_face_4', shape: [1, 2304, 16] },
        { name: 'reshaped_classifier_face_4', shape: [1, 2304, 1] },
      ],
    },
  } as const;

  for (const [name, meta] of Object.entries(expected)) {
    it(`${name}: tensor metadata`, async () => {
      const runtime = await CpuRuntime.open(MODELS[name as keyof typeof MODELS], { threads: 1 });
      try {
        assert.equal(runtime.backend.kind, 'cpu');
        assert.deepEqual(
          runtime.inputs.map((t) => ({ name: t.name, shape: [...t.shape] })),
          meta.inputs,
        );
        // The full-range model's output names differ between MediaPipe releases; the shapes do not.
        assert.deepEqual(
          runtime.outputs.map((t) => [...t.shape]),
          meta.outputs.map((o) => o.shape),
        );
        for (const t of [...runtime.inputs, ...runtime.outputs]) {
          assert.equal(t.dtype, 'float32');
          assert.equal(t.scale, 0);
          assert.equal(t.zeroPoint, 0);
          assert.equal(t.quantized, false);
          assert.equal(
            t.byteLength,
            t.shape.reduce((a, b) => a * b, 4),
          );
        }
      } finally {
        await runtime.dispose();
      }
    });

    it(`${name}: outputs equal an independent binding (tfjs-tflite-node) to 1e-4`, async () => {
      const input = seededInput(
        meta.inputs[0].shape.reduce((a: number, b: number) => a * b, 1),
        7,
      );
      for (const xnnpack of [false, true]) {
        const ours = await CpuRuntime.open(MODELS[name as keyof typeof MODELS], { threads: 2, xnnpack });
        const outputs = await ours.invoke([input]);
        await ours.dispose();
        const reference = new PeerModel(MODELS[name as keyof typeof MODELS], { threads: 1, xnnpack: false }).run([
          input,
        ]);
        assert.equal(outputs.length, reference.length);
        outputs.forEach((out, i) => {
          // Same kernels without XNNPACK: equal to 1e-4 absolute. XNNPACK sums
          // in another order: equal to 1e-4 relative (box regressors are in
          // pixels, up to ~200).
          const diff = xnnpack ? maxRelDiff(out, reference[i]) : maxAbsDiff(out, reference[i]);
          assert.ok(diff <= 1e-4, `output ${i} (xnnpack ${xnnpack}) differs by ${diff}`);
        });
      }
    });
  }

  it('MobileFaceNet on a real face crop matches the peer to 1e-4', async () => {
    const a = await photoTensor(firstPhoto('Andre_Agassi'), 112, (v) => (v - 127.5) / 128);
    const b = await photoTensor(firstPhoto('Serena_Williams'), 112, (v) => (v - 127.5) / 128);
    const batch = new Float32Array(a.length * 2);
    batch.set(a);
    batch.set(b, a.length);
    const runtime = await CpuRuntime.open(MODELS.mobilefacenet);
    const [ours] = await runtime.invoke([batch]);
    await runtime.dispose();
    const [reference] = new PeerModel(MODELS.mobilefacenet, { threads: 1, xnnpack: false }).run([batch]);
    assert.ok(maxRelDiff(ours, reference) <= 1e-4);
    // Two different photos, two different embeddings: the batch is not mixed up.
    assert.ok(maxAbsDiff(ours.subarray(0, 192), ours.subarray(192)) > 0.1);
  });

  it('BlazeFace short-range finds the face in a real photo and none in a blank frame', async () => {
    const runtime = await CpuRuntime.open(MODELS['blazeface-short']);
    const sigmoid = (x: number) => 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, x))));
    const best = async (input: Float32Array) => {
      const [, scores] = await runtime.invoke([input]);
      return Math.max(...Array.from(scores, sigmoid));
    };
    const photo = await photoTensor(firstPhoto('Jennifer_Garner'), 128, (v) => v / 127.5 - 1);
    assert.ok((await best(photo)) > 0.75, 'face score on a real photo');
    assert.ok((await best(new Float32Array(128 * 128 * 3))) < 0.5, 'no face in a grey frame');
    await runtime.dispose();
  });
});

describe('native runtime: concurrency and the event loop', function () {
  it('100 concurrent invokes each get the result of their own input', async () => {
    const file = path.join(tmp, 'add.tflite');
    fs.writeFileSync(file, buildAddModel({ shape: [1, 64] }));
    const runtime = await openRuntime(file, { device: 'cpu' });
    const pairs = Array.from({ length: 100 }, (_, i) => [seededInput(64, i * 2 + 1), seededInput(64, i * 2 + 2)]);
    const results = await Promise.all(pairs.map((p) => runtime.invoke(p)));
    results.forEach(([sum], i) => {
      for (let k = 0; k < 64; k++)
        assert.ok(Math.abs(sum[k] - (pairs[i][0][k] + pairs[i][1][k])) < 1e-6, `invoke ${i}`);
    });
    await runtime.dispose();
  });

  it('concurrent MobileFaceNet invokes match sequential ones, and the event loop stays free', async () => {
    const runtime = await CpuRuntime.open(MODELS.mobilefacenet);
    const inputs = Array.from({ length: 12 }, (_, i) => seededInput(2 * 112 * 112 * 3, 100 + i));
    const sequential: Float32Array[] = [];
    for (const input of inputs) sequential.push((await runtime.invoke([input]))[0]);
    await runtime.invoke([inputs[0]]); // warm
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const concurrent = await Promise.all(inputs.map((input) => runtime.invoke([input])));
    histogram.disable();
    concurrent.forEach(([out], i) => assert.ok(maxAbsDiff(out, sequential[i]) === 0, `invoke ${i}`));
    // Inference runs on the thread pool: the loop is never held for a whole
    // inference. (Bounds leave room for a loaded CI machine; a blocking
    // runtime holds the loop for 12 x ~12 ms.)
    assert.ok(histogram.percentile(99) / 1e6 < 20, `event loop p99 ${histogram.percentile(99) / 1e6} ms`);
    assert.ok(histogram.max / 1e6 < 100, `event loop blocked ${histogram.max / 1e6} ms`);
    await runtime.dispose();
  });

  it('resizeInput changes the batch for the next invokes', async () => {
    const file = path.join(tmp, 'add-resize.tflite');
    fs.writeFileSync(file, buildAddModel({ shape: [1, 4] }));
    const runtime = await CpuRuntime.open(file);
    await runtime.resizeInput(0, [3, 4]);
    await runtime.resizeInput(1, [3, 4]);
    assert.deepEqual([...runtime.inputs[0].shape], [3, 4]);
    assert.deepEqual([...runtime.outputs[0].shape], [3, 4]);
    const [sum] = await runtime.invoke([new Float32Array(12).fill(1), new Float32Array(12).fill(2)]);
    assert.deepEqual([...sum], new Array(12).fill(3));
    await runtime.dispose();
  });
});

describe('native runtime: quantised tensors', function () {
  it('quantises Float32Array input for an int8 tensor, and passes raw Int8Array through', async () => {
    const file = path.join(tmp, 'dequant.tflite');
    fs.writeFileSync(file, buildDequantizeModel({ shape: [1, 5], scale: 0.5, zeroPoint: -3, dtype: 'int8' }));
    const runtime = await CpuRuntime.open(file);
    const [input] = runtime.inputs;
    assert.equal(input.dtype, 'int8');
    assert.equal(input.quantized, true);
    assert.equal(input.scale, 0.5);
    assert.equal(input.zeroPoint, -3);
    const [fromFloat] = await runtime.invoke([Float32Array.of(-2, -0.5, 0, 1.24, 1000)]);
    // q = round(x / 0.5) - 3, clamped to int8; the model dequantises it back.
    assert.deepEqual([...fromFloat], [-2, -0.5, 0, 1, 65]);
    const [fromRaw] = await runtime.invoke([Int8Array.of(-3, -1, 0, 7, 127)]);
    assert.deepEqual([...fromRaw], [0, 1, 1.5, 5, 65]);
    await rejectsWithCode(
      runtime.invoke([Uint8Array.of(1, 2, 3, 4, 5)]),
      'ERR_INPUT_DTYPE',
      /int8; got Uint8Array.*Float32Array/,
    );
    await runtime.dispose();
  });

  it('dequantises a uint8 output in invoke() and keeps it raw in invokeRaw()', async () => {
    const file = path.join(tmp, 'quant.tflite');
    fs.writeFileSync(file, buildQuantizeModel({ shape: [1, 4], scale: 0.25, zeroPoint: 128, dtype: 'uint8' }));
    const runtime = await CpuRuntime.open(file);
    const input = Float32Array.of(-1, 0, 0.3, 2);
    const [raw] = await runtime.invokeRaw([input]);
    assert.ok(raw instanceof Uint8Array);
    assert.deepEqual([...raw], [124, 128, 129, 136]);
    const [floats] = await runtime.invoke([input]);
    assert.deepEqual([...floats], [-1, 0, 0.25, 2]);
    await runtime.dispose();
  });
});

describe('native runtime: errors', function () {
  it('a missing file', async () => {
    await rejectsWithCode(
      openRuntime(path.join(tmp, 'nope.tflite')),
      'ERR_MODEL_NOT_FOUND',
      /not found: .*nope\.tflite/,
    );
  });

  it('a file that is not a TFLite model', async () => {
    const file = path.join(tmp, 'notes.txt');
    fs.writeFileSync(file, 'this is a text file, not a model\n');
    await rejectsWithCode(openRuntime(file), 'ERR_MODEL_INVALID', /not a TFLite model/);
    await rejectsWithCode(openRuntime(Buffer.from('garbage bytes here')), 'ERR_MODEL_INVALID', /not a TFLite model/);
  });

  it('a truncated model', async () => {
    const bytes = fs.readFileSync(MODELS['blazeface-short']);
    await rejectsWithCode(openRuntime(bytes.subarray(0, 40000)), 'ERR_MODEL_INVALID', /not a valid TFLite flatbuffer/);
  });

  it('a model whose ops the CPU cannot run (an Edge TPU custom op)', async () => {
    const file = path.join(tmp, 'custom.tflite');
    fs.writeFileSync(file, buildCustomOpModel({ customCode: 'edgetpu-custom-op' }));
    // With a delegate attached TFLite fails at interpreter creation, without one at allocation.
    for (const xnnpack of [true, false]) {
      await rejectsWithCode(
        openRuntime(file, { device: 'cpu', xnnpack }),
        'ERR_UNSUPPORTED_OPS',
        /edgetpu-custom-op.*Edge TPU-compiled model/s,
      );
    }
  });

  it('wrong input size, dtype and count', async () => {
    const runtime = await CpuRuntime.open(MODELS['blazeface-short']);
    await rejectsWithCode(
      runtime.invoke([new Float32Array(10)]),
      'ERR_INPUT_SIZE',
      /\[1,128,128,3\] = 49152 values, got 10/,
    );
    await rejectsWithCode(runtime.invoke([new Int32Array(49152)]), 'ERR_INPUT_DTYPE', /float32; got Int32Array/);
    await rejectsWithCode(runtime.invoke([]), 'ERR_INPUT_COUNT', /takes 1 input\(s\), got 0/);
    await rejectsWithCode(runtime.resizeInput(3, [1, 2]), 'ERR_INPUT_INDEX', /input 3 does not exist/);
    // Errors do not poison the queue: the next invoke works.
    const [, scores] = await runtime.invoke([new Float32Array(49152)]);
    assert.equal(scores.length, 896);
    await runtime.dispose();
  });

  it('use after dispose, including invokes queued before it', async () => {
    const runtime: InferenceRuntime = await CpuRuntime.open(MODELS['blazeface-short']);
    const input = new Float32Array(49152);
    const first = runtime.invoke([input]);
    const queued = runtime.invoke([input]);
    await runtime.dispose();
    await first.catch(() => undefined); // may have started before dispose
    await rejectsWithCode(queued, 'ERR_DISPOSED', /disposed: open the model again/);
    await rejectsWithCode(runtime.invoke([input]), 'ERR_DISPOSED', /disposed/);
  });

  it('an unknown device string', async () => {
    await rejectsWithCode(
      openRuntime(MODELS.mobilefacenet, { device: 'gpu:0' }),
      'ERR_DEVICE_SPEC',
      /unknown device "gpu:0"/,
    );
  });
});
