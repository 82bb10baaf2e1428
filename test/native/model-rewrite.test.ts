import { strict as assert } from 'assert';
import * as fs from 'fs';
import sharp from 'sharp';
import { CpuRuntime, RuntimeError } from '../../native';
import { rewriteForCpu } from '../../native/model-rewrite';
import { maxAbsDiff } from '../helpers/arrays';
import { FACES_DIR, MODELS } from '../models';
import * as path from 'path';

/** Two real faces as MobileFaceNet input, batch 2. */
async function faceBatch(): Promise<Float32Array> {
  const slot = 112 * 112 * 3;
  const batch = new Float32Array(slot * 2);
  const people = ['Andre_Agassi', 'Serena_Williams'];
  for (let i = 0; i < people.length; i++) {
    const dir = path.join(FACES_DIR, people[i]);
    const file = path.join(dir, fs.readdirSync(dir).sort()[0]);
    const { data } = await sharp(file)
      .extract({ left: 70, top: 70, width: 112, height: 112 })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    batch.set(
      Float32Array.from(data, (v) => (v - 127.5) / 128),
      i * slot,
    );
  }
  return batch;
}

describe('native runtime: model rewrites for the CPU', function () {
  this.timeout(30000);

  it("fuses MobileFaceNet's 33 decomposed PReLUs and frees its batch; a second pass finds nothing left", () => {
    const original = fs.readFileSync(MODELS.mobilefacenet);
    const { bytes, applied } = rewriteForCpu(original);
    assert.deepEqual(applied, ['fused 33 PReLU', 'freed the batch of 1 RESHAPE']);
    assert.equal(bytes.length, original.length, 'edited in place: same size');
    assert.notEqual(bytes, original);
    assert.equal(fs.readFileSync(MODELS.mobilefacenet).compare(original), 0, 'the input is never modified');
    assert.deepEqual(rewriteForCpu(bytes).applied, []);
  });

  it('gives the same embeddings as the model as shipped, and runs at batch 1', async () => {
    const input = await faceBatch();
    const plain = await CpuRuntime.open(MODELS.mobilefacenet, { rewrite: false });
    const rewritten = await CpuRuntime.open(MODELS.mobilefacenet);
    try {
      assert.deepEqual(plain.backend.rewrites, []);
      assert.deepEqual(rewritten.backend.rewrites, ['fused 33 PReLU', 'freed the batch of 1 RESHAPE']);
      const [expected] = await plain.invoke([input]);
      const [actual] = await rewritten.invoke([input]);
      // relu(x) + c(x - |x|) and prelu(x, 2c) are the same floats: x - |x| is
      // 2x or 0, and doubling is exact.
      assert.equal(maxAbsDiff(actual, expected), 0);
      assert.ok(maxAbsDiff(actual.subarray(0, 192), actual.subarray(192)) > 0.1, 'two faces, two embeddings');

      await rewritten.resizeInput(0, [1, 112, 112, 3]);
      assert.deepEqual([...rewritten.outputs[0].shape], [1, 192]);
      const [single] = await rewritten.invoke([input.subarray(0, 112 * 112 * 3)]);
      assert.equal(maxAbsDiff(single, expected.subarray(0, 192)), 0);
      // As shipped, the batch is pinned: the resize is refused, and the
      // runtime still works at its own shape (it used to crash in XNNPACK).
      await assert.rejects(
        plain.resizeInput(0, [1, 112, 112, 3]),
        (e: unknown) => e instanceof RuntimeError && e.code === 'ERR_RESIZE',
      );
      assert.deepEqual([...plain.inputs[0].shape], [2, 112, 112, 3]);
      const [again] = await plain.invoke([input]);
      assert.equal(maxAbsDiff(again, expected), 0);
    } finally {
      await plain.dispose();
      await rewritten.dispose();
    }
  });

  it('leaves models without the patterns untouched (BlazeFace), and never throws on bytes it cannot read', () => {
    for (const model of [MODELS['blazeface-short'], MODELS['blazeface-full']]) {
      const bytes = fs.readFileSync(model);
      const result = rewriteForCpu(bytes);
      assert.equal(result.bytes, bytes);
      assert.deepEqual(result.applied, []);
    }
    const original = fs.readFileSync(MODELS.mobilefacenet);
    for (const broken of [original.subarray(0, 4096), Buffer.from('TFL3 is not enough'), Buffer.alloc(64, 0xff)]) {
      const result = rewriteForCpu(broken);
      assert.equal(result.bytes, broken);
      assert.deepEqual(result.applied, []);
    }
  });
});
