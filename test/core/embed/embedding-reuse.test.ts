import { strict as assert } from 'assert';
import { EmbeddingReuse } from '../../../nodes/core/embed/embedding-reuse';

describe('embedding reuse across frames', () => {
  const box = (x: number) => ({ x, y: 100, width: 100, height: 100 });
  const vec = (v: number) => Float32Array.of(v, 0, 0);

  it('reuses a recent embedding at the same place on the same camera only', () => {
    const reuse = new EmbeddingReuse(200);
    reuse.remember('door', [{ box: box(100), embedding: vec(1) }], 1000, 'm');
    assert.deepEqual(reuse.lookup('door', box(105), 1100, 'm'), vec(1)); // moved 5 px: IoU 0.9
    assert.equal(reuse.lookup('door', box(160), 1100, 'm'), undefined); // moved 60 px: IoU 0.25
    assert.equal(reuse.lookup('yard', box(100), 1100, 'm'), undefined); // another camera
    assert.equal(reuse.lookup('door', box(100), 1200, 'm'), undefined); // too old: embed afresh
  });

  it('keeps two faces apart and forgets the replaced one', () => {
    const reuse = new EmbeddingReuse(500);
    reuse.remember(
      'door',
      [
        { box: box(0), embedding: vec(1) },
        { box: box(400), embedding: vec(2) },
      ],
      0,
      'm',
    );
    assert.deepEqual(reuse.lookup('door', box(400), 100, 'm'), vec(2));
    reuse.remember('door', [{ box: box(2), embedding: vec(3) }], 300, 'm');
    assert.deepEqual(
      reuse.lookup('door', box(0), 350, 'm'),
      vec(3),
      'the fresh embedding replaces the old at that place',
    );
    assert.deepEqual(reuse.lookup('door', box(400), 350, 'm'), vec(2), 'the other face is still remembered');
  });

  it('never hands an embedding of one model to a face embedded by another (an Edge TPU / CPU switch)', () => {
    const reuse = new EmbeddingReuse(500);
    reuse.remember('door', [{ box: box(0), embedding: vec(1) }], 0, 'mobilefacenet_int8-abc-s');
    assert.deepEqual(reuse.lookup('door', box(0), 100, 'mobilefacenet_int8-abc-s'), vec(1));
    assert.equal(reuse.lookup('door', box(0), 100, 'mobilefacenet-def-s'), undefined);
    // Once the other model embeds, the first model's memories are dropped.
    reuse.remember('door', [{ box: box(400), embedding: vec(2) }], 150, 'mobilefacenet-def-s');
    assert.equal(reuse.lookup('door', box(0), 200, 'mobilefacenet_int8-abc-s'), undefined);
    assert.deepEqual(reuse.lookup('door', box(400), 200, 'mobilefacenet-def-s'), vec(2));
  });

  it('maxAgeMs 0 turns reuse off', () => {
    const reuse = new EmbeddingReuse(0);
    reuse.remember('door', [{ box: box(0), embedding: vec(1) }], 0, 'm');
    assert.equal(reuse.lookup('door', box(0), 0, 'm'), undefined);
  });
});
