import { strict as assert } from 'node:assert';
import {
  AffineMatrix,
  alignFace,
  applyAffine,
  invertAffine,
  similarityTransform,
  templateFor,
  warpAffine,
} from '../../../nodes/core/align/warp';
import { FaceQuality, assessQuality, estimateYawDeg } from '../../../nodes/core/align/quality';
import { Detection } from '../../../nodes/core/detect/blazeface';
import type { Point, RgbImage } from '../../../nodes/core/media/image';
// Shared real-model helpers (mocha loads each spec file once, so importing it is safe).

const close = (actual: number, expected: number, tolerance = 1e-6, what = ''): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what} ${actual} vs ${expected} (±${tolerance})`);

function similarity(scale: number, angle: number, tx: number, ty: number): AffineMatrix {
  const c = scale * Math.cos(angle);
  const s = scale * Math.sin(angle);
  return [c, -s, tx, s, c, ty];
}

/** Deterministic pseudo-random numbers in [0, 1) (xorshift). */
function randomSource(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
}

describe('align: similarityTransform', () => {
  const source: Point[] = [
    { x: 10, y: 20 },
    { x: 50, y: 22 },
    { x: 31, y: 45 },
    { x: 28, y: 70 },
    { x: 5, y: 60 },
  ];

  it('recovers a known scale, rotation and translation to 1e-6', () => {
    const truth = similarity(1.7, 0.4, 12, -5);
    const m = similarityTransform(
      source,
      source.map((p) => applyAffine(truth, p)),
    );
    m.forEach((v, i) => close(v, truth[i], 1e-6, `m[${i}]`));
  });

  it('inverts: M⁻¹·M is the identity', () => {
    const m = similarity(0.3, -2.2, 100, 7);
    const round = invertAffine(m);
    for (const p of source) {
      const back = applyAffine(round, applyAffine(m, p));
      close(back.x, p.x, 1e-9);
      close(back.y, p.y, 1e-9);
    }
  });

  it('is the least-squares fit on noisy points (no parameter change lowers the error)', () => {
    const random = randomSource(7);
    const truth = similarity(2.1, 1.1, -3, 40);
    const noisy = source.map((p) => {
      const q = applyAffine(truth, p);
      return { x: q.x + (random() - 0.5) * 4, y: q.y + (random() - 0.5) * 4 };
    });
    const fit = similarityTransform(source, noisy);
    const squaredError = (a: number, b: number, tx: number, ty: number): number =>
      source.reduce((sum, p, i) => {
        const q = applyAffine([a, -b, tx, b, a, ty], p);
        return sum + (q.x - noisy[i].x) ** 2 + (q.y - noisy[i].y) ** 2;
      }, 0);
    const params = [fit[0], fit[3], fit[2], fit[5]];
    const best = squaredError(params[0], params[1], params[2], params[3]);
    assert.ok(best > 0, 'the noise leaves a residual');
    for (let i = 0; i < 4; i++) {
      for (const step of [1e-3, -1e-3]) {
        const moved = [...params];
        moved[i] += step;
        assert.ok(squaredError(moved[0], moved[1], moved[2], moved[3]) > best, `parameter ${i} step ${step}`);
      }
    }
  });

  it('never reflects: a mirrored target still gives a proper rotation', () => {
    const mirrored = source.map((p) => ({ x: -p.x, y: p.y }));
    const m = similarityTransform(source, mirrored);
    assert.ok(m[0] * m[4] - m[1] * m[3] >= 0);
    assert.equal(m[0], m[4]);
    assert.equal(m[1], -m[3]);
  });
});

describe('align: warp and alignFace', () => {
  function dotImage(width: number, height: number, dot: Point): RgbImage {
    const data = new Uint8Array(width * height * 3);
    data.set([255, 128, 64], (dot.y * width + dot.x) * 3);
    return { width, height, data };
  }

  it('a 90° rotation puts a known pixel exactly where expected', () => {
    const image = dotImage(100, 80, { x: 30, y: 20 });
    // (x, y) → (100 − y, x): pixel centre (30.5, 20.5) → (79.5, 30.5), i.e. pixel (79, 30).
    const m: AffineMatrix = [0, -1, 100, 1, 0, 0];
    const out = warpAffine(image, m, 120, 120);
    const at = (x: number, y: number): number[] =>
      Array.from(out.data.subarray((y * 120 + x) * 3, (y * 120 + x) * 3 + 3));
    assert.deepEqual(at(79, 30), [255, 128, 64]);
    assert.deepEqual(at(78, 30), [0, 0, 0]);
    assert.deepEqual(at(79, 31), [0, 0, 0]);
    let lit = 0;
    for (let i = 0; i < out.data.length; i += 3) if (out.data[i] > 0) lit++;
    assert.equal(lit, 1);
  });

  it('replicates the border outside the source', () => {
    const image: RgbImage = { width: 2, height: 1, data: Uint8Array.from([10, 20, 30, 200, 210, 220]) };
    const out = warpAffine(image, [1, 0, 5, 0, 1, 5], 12, 8);
    assert.deepEqual(Array.from(out.data.subarray(0, 3)), [10, 20, 30]);
    assert.deepEqual(Array.from(out.data.subarray((7 * 12 + 11) * 3)), [200, 210, 220]);
  });

  it('maps the four keypoints of a known similarity exactly onto the template', () => {
    const template = templateFor(112);
    const faceToFrame = similarity(2.5, 0.3, 200, 150);
    const keypoints = [...template.map((p) => applyAffine(faceToFrame, p)), { x: 0, y: 0 }, { x: 0, y: 0 }];
    const image: RgbImage = { width: 640, height: 480, data: new Uint8Array(640 * 480 * 3) };
    const { crop, matrix } = alignFace(image, keypoints);
    assert.equal(crop.width, 112);
    assert.equal(crop.height, 112);
    const expected = invertAffine(faceToFrame);
    matrix.forEach((v, i) => close(v, expected[i], 1e-9, `m[${i}]`));
  });

  it('scales the template for other crop sizes', () => {
    close(templateFor(224)[0].x, (38.2946 + 0.5) * 2, 1e-9);
    close(templateFor(112)[3].y, (92.3655 + 92.2041) / 2 + 0.5, 1e-9);
  });
});

// ---------------------------------------------------------------------------

/** Keypoints of a head model yawed by `degrees`, seen from the front, roll `rollDeg`. */
function yawedKeypoints(degrees: number, rollDeg = 0): Point[] {
  // Eyes ±1 at depth 0, nose 1.15 in front (MediaPipe canonical face), ears
  // ±1.5 placed so the nose is 1.35 × 1.5 in front of them (dev-set fit).
  const model = [
    [-1, 0, 0],
    [1, 0, 0],
    [0, 0.8, 1.15],
    [0, 1.6, 0.6],
    [-1.5, 0.5, 1.15 - 1.35 * 1.5],
    [1.5, 0.5, 1.15 - 1.35 * 1.5],
  ];
  const yaw = (degrees * Math.PI) / 180;
  const roll = (rollDeg * Math.PI) / 180;
  return model.map(([x, y, z]) => {
    const px = x * Math.cos(yaw) + z * Math.sin(yaw);
    return {
      x: 300 + 20 * (px * Math.cos(roll) - y * Math.sin(roll)),
      y: 200 + 20 * (px * Math.sin(roll) + y * Math.cos(roll)),
    };
  });
}

/** A 112×112 crop of textured mid-grey noise: plenty of fine detail. */
function texturedCrop(seed = 3): RgbImage {
  const random = randomSource(seed);
  const data = new Uint8Array(112 * 112 * 3);
  for (let y = 0; y < 112; y++) {
    for (let x = 0; x < 112; x++) {
      const v = 128 + 40 * Math.sin(x / 5) * Math.cos(y / 7) + (random() - 0.5) * 50;
      data.fill(Math.round(v), (y * 112 + x) * 3, (y * 112 + x) * 3 + 3);
    }
  }
  return { width: 112, height: 112, data };
}

function boxBlur(image: RgbImage, radius: number): RgbImage {
  const out = new Uint8Array(image.data.length);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let count = 0;
        for (let dy = -radius; dy <= radius; dy++) {
          for (let dx = -radius; dx <= radius; dx++) {
            const sx = Math.min(image.width - 1, Math.max(0, x + dx));
            const sy = Math.min(image.height - 1, Math.max(0, y + dy));
            sum += image.data[(sy * image.width + sx) * 3 + c];
            count++;
          }
        }
        out[(y * image.width + x) * 3 + c] = Math.round(sum / count);
      }
    }
  }
  return { width: image.width, height: image.height, data: out };
}

const frontal: Detection = {
  box: { x: 250, y: 150, width: 100, height: 100 },
  score: 0.9,
  keypoints: yawedKeypoints(0),
};
const codes = (q: FaceQuality): string[] => q.reasons.map((r) => r.code);

describe('align: yaw from keypoints', () => {
  it('is 0 for a frontal face at any roll, and recovers a known yaw', () => {
    close(estimateYawDeg(yawedKeypoints(0)), 0, 1e-9);
    close(estimateYawDeg(yawedKeypoints(0, 25)), 0, 1e-9);
    for (const yaw of [-60, -30, 10, 30, 45]) {
      close(estimateYawDeg(yawedKeypoints(yaw, 15)), yaw, 1e-6, `yaw ${yaw}`);
    }
  });
});

describe('align: assessQuality', () => {
  it('passes a sharp, well exposed, frontal, large crop', () => {
    const q = assessQuality(texturedCrop(), frontal);
    assert.deepEqual(q.reasons, []);
    assert.equal(q.ok, true);
    close(q.faceSize.interOcularPx, 40, 1e-9);
    close(q.faceSize.boxPx, 100, 1e-9);
  });

  it('rejects the same crop blurred', () => {
    const sharpQuality = assessQuality(texturedCrop(), frontal);
    const blurred = assessQuality(boxBlur(texturedCrop(), 3), frontal);
    assert.ok(blurred.sharpness < sharpQuality.sharpness / 10, `${blurred.sharpness} vs ${sharpQuality.sharpness}`);
    assert.deepEqual(codes(blurred), ['blurry']);
    assert.match(blurred.reasons[0].message, /^sharpness \d+(\.\d)? < 40$/);
  });

  it('rejects a near-black and a blown-out frame', () => {
    const dark = texturedCrop();
    dark.data.forEach((v, i) => (dark.data[i] = Math.round(v * 0.08)));
    const darkCodes = codes(assessQuality(dark, frontal));
    assert.ok(darkCodes.includes('too-dark'), darkCodes.join());
    const white: RgbImage = { width: 112, height: 112, data: new Uint8Array(112 * 112 * 3).fill(253) };
    const whiteCodes = codes(assessQuality(white, frontal));
    assert.ok(whiteCodes.includes('too-bright') && whiteCodes.includes('clipped'), whiteCodes.join());
  });

  it('rejects a profile-like keypoint set and a tiny face', () => {
    const profile = assessQuality(texturedCrop(), { ...frontal, keypoints: yawedKeypoints(55) });
    assert.deepEqual(codes(profile), ['profile']);
    // Profile-like by hand: eyes 12 px apart, nose past the far eye, ears on one side.
    const handMade = [
      { x: 40, y: 50 },
      { x: 52, y: 50 },
      { x: 62, y: 65 },
      { x: 55, y: 80 },
      { x: 10, y: 55 },
      { x: 50, y: 55 },
    ];
    const byHand = assessQuality(texturedCrop(), { box: frontal.box, keypoints: handMade });
    assert.ok(codes(byHand).includes('profile'), `yaw ${byHand.yawDeg}`);
    const tiny = assessQuality(texturedCrop(), {
      box: { x: 0, y: 0, width: 30, height: 30 },
      keypoints: frontal.keypoints.map((p) => ({ x: p.x / 4, y: p.y / 4 })),
    });
    assert.deepEqual(codes(tiny), ['too-small']);
  });

  it('takes threshold overrides', () => {
    const q = assessQuality(texturedCrop(), frontal, { minInterOcularPx: 41 });
    assert.deepEqual(codes(q), ['too-small']);
  });
});

// ---------------------------------------------------------------------------
