import { strict as assert } from 'node:assert';
import {
  DEFAULT_MARGIN,
  DEFAULT_THRESHOLD,
  ImprintedHead,
  SOFTMAX_SCALE,
  cosinesToRest,
  enrolmentOutliers,
  l2normalize,
} from '../../../nodes/core/identify/imprint';

const f32 = (...values: number[]): Float32Array => Float32Array.from(values);

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-6): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('imprint: l2normalize', () => {
  it('scales to unit length and leaves a zero vector at zero', () => {
    assertClose(l2normalize(f32(3, 4)), [0.6, 0.8]);
    assertClose(l2normalize(f32(0, 0, 0)), [0, 0, 0]);
  });

  it('rejects NaN', () => {
    assert.throws(() => l2normalize(f32(1, NaN)), RangeError);
  });
});

describe('imprint: weights', () => {
  it('is the normalised sum of normalised examples (2-D by hand)', () => {
    const head = new ImprintedHead();
    head.add('a', f32(3, 0)); // → (1, 0)
    head.add('a', f32(0, 5)); // → (0, 1)
    // Sum (1, 1) → (1/√2, 1/√2): the raw (3, 5) direction would be wrong.
    assertClose(head.weight('a')!, [Math.SQRT1_2, Math.SQRT1_2]);
    assert.equal(head.exampleCount('a'), 2);
  });

  it('is the normalised sum in 3-D, and a scaled copy of an example changes nothing', () => {
    const head = new ImprintedHead();
    head.add('a', f32(1, 2, 2)); // → (1, 2, 2)/3
    head.add('a', f32(0, 0, 7)); // → (0, 0, 1)
    const sum = [1 / 3, 2 / 3, 2 / 3 + 1];
    const norm = Math.hypot(...sum);
    assertClose(
      head.weight('a')!,
      sum.map((v) => v / norm),
    );

    const scaled = new ImprintedHead();
    scaled.add('a', f32(10, 20, 20));
    scaled.add('a', f32(0, 0, 0.5));
    assertClose(scaled.weight('a')!, head.weight('a')!);
  });

  it('remove restores the previous weight within 1e-6', () => {
    const head = new ImprintedHead();
    const examples = [f32(0.3, -1.2, 0.5), f32(2, 0.1, -0.4), f32(-0.7, 0.9, 1.3)];
    head.add('a', examples[0]);
    head.add('a', examples[1]);
    const before = head.weight('a')!;
    head.add('a', examples[2]);
    assert.ok(Math.abs(head.weight('a')![0] - before[0]) > 1e-3, 'the third example moved the weight');
    head.remove('a', examples[2]);
    assertClose(head.weight('a')!, before, 1e-6);
    assert.equal(head.exampleCount('a'), 2);
  });

  it('removing the last example removes the person', () => {
    const head = new ImprintedHead();
    head.add('a', f32(1, 0));
    head.remove('a', f32(1, 0));
    assert.deepEqual(head.people(), []);
    // An empty head accepts a new dimension.
    head.add('b', f32(1, 0, 0));
    assert.deepEqual(head.people(), ['b']);
  });

  it('rejects a dimension change and unknown people', () => {
    const head = new ImprintedHead();
    head.add('a', f32(1, 0));
    assert.throws(() => head.add('b', f32(1, 0, 0)), RangeError);
    assert.throws(() => head.remove('nobody', f32(1, 0)));
  });

  it('renames and removes people', () => {
    const head = new ImprintedHead();
    head.add('a', f32(1, 0));
    head.add('b', f32(0, 1));
    assert.throws(() => head.renamePerson('a', 'b'));
    head.renamePerson('a', 'c');
    assert.deepEqual(head.people().sort(), ['b', 'c']);
    assertClose(head.weight('c')!, [1, 0]);
    assert.equal(head.removePerson('b'), true);
    assert.equal(head.removePerson('b'), false);
    assert.deepEqual(head.people(), ['c']);
  });

  it('fromEmbeddings skips people without embeddings', () => {
    const head = ImprintedHead.fromEmbeddings(
      new Map([
        ['a', [f32(1, 0), f32(1, 0.1)]],
        ['b', []],
      ]),
    );
    assert.deepEqual(head.people(), ['a']);
    assert.equal(head.exampleCount('a'), 2);
  });
});

describe('imprint: classify', () => {
  /** Three people on the axes of 3-D space, so cosines are just the probe's normalised coordinates. */
  function axesHead(options = {}): ImprintedHead {
    const head = new ImprintedHead(options);
    head.add('x', f32(1, 0, 0));
    head.add('y', f32(0, 2, 0));
    head.add('z', f32(0, 0, 3));
    return head;
  }

  it('exports the documented defaults', () => {
    assert.equal(DEFAULT_THRESHOLD, 0.53);
    assert.equal(DEFAULT_MARGIN, 0.05);
    assert.ok(SOFTMAX_SCALE >= 16 && SOFTMAX_SCALE <= 30);
  });

  it('scores cosines against each normalised weight, best first', () => {
    const result = axesHead().classify(f32(3, 4, 0)); // normalised (0.6, 0.8, 0)
    assert.deepEqual(
      result.scores.map((s) => s.personId),
      ['y', 'x', 'z'],
    );
    assertClose(
      result.scores.map((s) => s.cosine),
      [0.8, 0.6, 0],
    );
    assert.equal(result.personId, 'y');
    assert.equal(result.unknownReason, null);
    assert.ok(Math.abs(result.cosine - 0.8) < 1e-6);
    assert.ok(Math.abs(result.secondCosine - 0.6) < 1e-6);
  });

  it('confidence is the softmax of scale·cosine', () => {
    const result = axesHead().classify(f32(3, 4, 0));
    const exps = [0.8, 0.6, 0].map((c) => Math.exp(SOFTMAX_SCALE * c));
    const expected = exps[0] / (exps[0] + exps[1] + exps[2]);
    assert.ok(Math.abs(result.confidence - expected) < 1e-6, `${result.confidence} vs ${expected}`);

    const sharper = axesHead({ softmaxScale: 100 }).classify(f32(3, 4, 0));
    assert.ok(sharper.confidence > result.confidence);
  });

  it('returns unknown below the threshold', () => {
    const head = axesHead({ threshold: 0.9, margin: 0 });
    // (1, 0.2, 0.1): cosine to x ≈ 0.976, accepted.
    assert.equal(head.classify(f32(1, 0.2, 0.1)).personId, 'x');
    // (1, 0.8, 0.5): cosine to x = 1/‖(1, 0.8, 0.5)‖ ≈ 0.727, the best but too low.
    const low = head.classify(f32(1, 0.8, 0.5));
    assert.equal(low.personId, null);
    assert.equal(low.unknownReason, 'below-threshold');
    assert.equal(low.bestPersonId, 'x');
    assert.ok(Math.abs(low.cosine - 1 / Math.hypot(1, 0.8, 0.5)) < 1e-6);
  });

  it('returns unknown when the runner-up is within the margin', () => {
    const head = axesHead({ threshold: 0.5, margin: 0.05 });
    // cosines (0.6, 0.8) → lead 0.2: accepted.
    assert.equal(head.classify(f32(3, 4, 0)).personId, 'y');
    // cosines ≈ (0.690, 0.724) → lead 0.034 < 0.05: ambiguous, though above the threshold.
    const close = head.classify(f32(0.69, 0.724, 0));
    assert.equal(close.personId, null);
    assert.equal(close.unknownReason, 'ambiguous');
    assert.equal(close.bestPersonId, 'y');
    assert.ok(close.cosine >= 0.5);
  });

  it('accepts exactly at the threshold and margin boundaries', () => {
    const head = new ImprintedHead({ threshold: 0.6, margin: 0 });
    head.add('x', f32(1, 0));
    assert.equal(head.classify(f32(0.6, 0.8)).personId, 'x');
    assert.equal(head.classify(f32(0.59, 0.8)).personId, null);
  });

  it('with one person, there is no runner-up to be ambiguous with', () => {
    const head = new ImprintedHead();
    head.add('solo', f32(1, 0));
    const result = head.classify(f32(1, 0.1));
    assert.equal(result.personId, 'solo');
    assert.equal(result.secondCosine, -1);
    assert.equal(result.confidence, 1);
  });

  it('an empty head says unknown with no people', () => {
    const result = new ImprintedHead().classify(f32(1, 0));
    assert.equal(result.personId, null);
    assert.equal(result.unknownReason, 'no-people');
    assert.equal(result.confidence, 0);
    assert.deepEqual(result.scores, []);
  });

  it('a zero probe is unknown rather than NaN', () => {
    const result = axesHead().classify(f32(0, 0, 0));
    assert.equal(result.personId, null);
    assert.equal(result.cosine, 0);
  });

  it('picks up add/remove without rebuilding', () => {
    const head = new ImprintedHead({ threshold: 0.9, margin: 0 });
    head.add('x', f32(1, 0));
    assert.equal(head.classify(f32(0, 1)).personId, null);
    head.add('y', f32(0, 1));
    assert.equal(head.classify(f32(0, 1)).personId, 'y');
    head.remove('y', f32(0, 1));
    assert.equal(head.classify(f32(0, 1)).personId, null);
  });
});

describe('imprint: enrolment outliers', () => {
  it('computes the cosine of each photo to the mean of the others', () => {
    // Two photos on x and one on y: for each x photo the rest is (1,1)/√2 → 1/√2; for y the rest is (1,0) → 0.
    assertClose(cosinesToRest([f32(1, 0), f32(2, 0), f32(0, 1)]), [Math.SQRT1_2, Math.SQRT1_2, 0]);
    assert.deepEqual(cosinesToRest([f32(5, 5)]), [1]);
    assert.deepEqual(cosinesToRest([]), []);
  });

  it('flags the photo of someone else among consistent photos', () => {
    const photos = [f32(1, 0.1, 0), f32(0.9, 0, 0.1), f32(1, -0.1, 0.05), f32(0, 0, 1), f32(0.95, 0.05, 0)];
    assert.deepEqual(enrolmentOutliers(photos), [3]);
    assert.deepEqual(enrolmentOutliers(photos.filter((_, i) => i !== 3)), []);
  });

  it('honours the threshold argument', () => {
    const photos = [f32(1, 0), f32(2, 0), f32(0, 1)];
    assert.deepEqual(enrolmentOutliers(photos, 0.8), [0, 1, 2]);
    assert.deepEqual(enrolmentOutliers(photos, 0.5), [2]);
    assert.deepEqual(enrolmentOutliers(photos, -0.1), []);
  });

  it('flags both of two disagreeing photos, since neither has a majority', () => {
    assert.deepEqual(enrolmentOutliers([f32(1, 0), f32(0, 1)]), [0, 1]);
    assert.deepEqual(enrolmentOutliers([f32(1, 0)]), []);
  });

  it('flags a broken (zero) embedding', () => {
    assert.deepEqual(enrolmentOutliers([f32(1, 0), f32(1, 0.1), f32(0, 0)]), [2]);
  });
});
