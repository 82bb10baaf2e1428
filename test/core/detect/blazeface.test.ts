import { strict as assert } from 'node:assert';
import * as path from 'path';
import {
  BLAZEFACE_MODELS,
  BlazeFaceVariant,
  Detection,
  FaceDetector,
  RunModel,
  anchorsFor,
  computeLetterbox,
  decodeDetections,
  detectionToFrame,
  frameToNormalized,
  generateSsdAnchors,
  normalizedToFrame,
  planTiles,
  prepareInput,
  prepareInputNative,
  weightedNonMaxSuppression,
} from '../../../nodes/core/detect/blazeface';
import { alignFace, applyAffine, templateFor } from '../../../nodes/core/align/warp';
import { intersectionOverUnion, type Point, type RgbImage } from '../../../nodes/core/media/image';
import { resampleRgb } from '../../../native';
import { DEV_DIR, loadPhoto, modelRunner } from '../../helpers/real-models';

const close = (actual: number, expected: number, tolerance = 1e-6, what = ''): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what} ${actual} vs ${expected} (±${tolerance})`);

// ---------------------------------------------------------------------------
// ---------------------------------------------------------------------------

describe('blazeface: anchors', () => {
  it('short range: 896 anchors, 2 per stride-8 cell then 6 per stride-16 cell', () => {
    const anchors = anchorsFor('short');
    assert.equal(anchors.length, 896);
    // 16×16 grid × 2 = 512 first, both anchors of a cell share its centre.
    assert.deepEqual(anchors[0], { xCenter: 0.5 / 16, yCenter: 0.5 / 16, width: 1, height: 1 });
    assert.deepEqual(anchors[1], anchors[0]);
    assert.deepEqual(anchors[2], { xCenter: 1.5 / 16, yCenter: 0.5 / 16, width: 1, height: 1 });
    assert.deepEqual(anchors[32], { xCenter: 0.5 / 16, yCenter: 1.5 / 16, width: 1, height: 1 });
    // Then the three stride-16 layers merged into one 8×8 grid, 6 per cell.
    assert.deepEqual(anchors[512], { xCenter: 0.5 / 8, yCenter: 0.5 / 8, width: 1, height: 1 });
    assert.deepEqual(anchors[517], anchors[512]);
    assert.deepEqual(anchors[518], { xCenter: 1.5 / 8, yCenter: 0.5 / 8, width: 1, height: 1 });
    assert.deepEqual(anchors[512 + 6 * (3 * 8 + 5)], { xCenter: 5.5 / 8, yCenter: 3.5 / 8, width: 1, height: 1 });
    assert.deepEqual(anchors[895], { xCenter: 7.5 / 8, yCenter: 7.5 / 8, width: 1, height: 1 });
  });

  it('full range: 2304 anchors, one per cell of a 48×48 grid', () => {
    const anchors = anchorsFor('full');
    assert.equal(anchors.length, 2304);
    assert.deepEqual(anchors[0], { xCenter: 0.5 / 48, yCenter: 0.5 / 48, width: 1, height: 1 });
    assert.deepEqual(anchors[1], { xCenter: 1.5 / 48, yCenter: 0.5 / 48, width: 1, height: 1 });
    assert.deepEqual(anchors[48 * 10 + 7], { xCenter: 7.5 / 48, yCenter: 10.5 / 48, width: 1, height: 1 });
    assert.deepEqual(anchors[2303], { xCenter: 47.5 / 48, yCenter: 47.5 / 48, width: 1, height: 1 });
  });

  it('sizes anchors from the scales when fixedAnchorSize is off', () => {
    const options = { ...BLAZEFACE_MODELS.short.anchorOptions, fixedAnchorSize: false };
    const anchors = generateSsdAnchors(options);
    const scale0 = 0.1484375;
    const scale1 = 0.1484375 + (0.75 - 0.1484375) / 3;
    close(anchors[0].width, scale0, 1e-12, 'layer 0 width');
    close(anchors[1].width, Math.sqrt(scale0 * scale1), 1e-12, 'interpolated width');
    close(anchors[512].width, scale1, 1e-12, 'layer 1 width');
    // Last stride-16 layer interpolates towards scale 1.
    close(anchors[517].width, Math.sqrt(0.75 * 1), 1e-12, 'last interpolated width');
  });
});

describe('blazeface: decodeDetections', () => {
  const spec = BLAZEFACE_MODELS.short;
  const index = 512 + 6 * (3 * 8 + 5); // anchor centre (0.6875, 0.4375)

  function outputs(): { regressors: Float32Array; scores: Float32Array } {
    const regressors = new Float32Array(spec.numBoxes * 16);
    const scores = new Float32Array(spec.numBoxes).fill(-10);
    const base = index * 16;
    // Offsets are in input pixels (128): +12.8 px = +0.1 of the input.
    regressors.set([12.8, -6.4, 25.6, 32], base);
    for (let k = 0; k < 6; k++) regressors.set([-6.4 + 6.4 * k, -12.8 + 3.2 * k], base + 4 + 2 * k);
    scores[index] = 2;
    return { regressors, scores };
  }

  it('turns one hand-built regressor/score pair into the hand-computed box and keypoints', () => {
    const { regressors, scores } = outputs();
    const found = decodeDetections(regressors, scores, anchorsFor('short'), 'short');
    assert.equal(found.length, 1);
    const [d] = found;
    close(d.score, 1 / (1 + Math.exp(-2)), 1e-9, 'score');
    // Centre (0.6875 + 0.1, 0.4375 - 0.05), size 0.2 × 0.25.
    close(d.box.x, 0.6875, 1e-6, 'x');
    close(d.box.y, 0.2625, 1e-6, 'y');
    close(d.box.width, 0.2, 1e-6, 'width');
    close(d.box.height, 0.25, 1e-6, 'height');
    assert.equal(d.keypoints.length, 6);
    for (let k = 0; k < 6; k++) {
      close(d.keypoints[k].x, 0.6875 + (-6.4 + 6.4 * k) / 128, 1e-6, `kp${k}.x`);
      close(d.keypoints[k].y, 0.4375 + (-12.8 + 3.2 * k) / 128, 1e-6, `kp${k}.y`);
    }
  });

  it('applies minScore, clips raw scores at ±100 and drops negative sizes', () => {
    const { regressors, scores } = outputs();
    assert.equal(decodeDetections(regressors, scores, anchorsFor('short'), 'short', { minScore: 0.9 }).length, 0);
    scores[index] = 1e30;
    const [clipped] = decodeDetections(regressors, scores, anchorsFor('short'), 'short');
    assert.ok(Number.isFinite(clipped.score) && clipped.score <= 1);
    // Clipping at a lower threshold shows it is applied before the sigmoid.
    const [lowClip] = decodeDetections(regressors, scores, anchorsFor('short'), 'short', { scoreClippingThreshold: 1 });
    close(lowClip.score, 1 / (1 + Math.exp(-1)), 1e-9, 'clipped score');
    regressors[index * 16 + 2] = -1;
    assert.equal(decodeDetections(regressors, scores, anchorsFor('short'), 'short').length, 0);
  });

  it('rejects outputs of the wrong size', () => {
    assert.throws(() => decodeDetections(new Float32Array(10), new Float32Array(896), anchorsFor('short'), 'short'));
  });
});

describe('blazeface: weighted NMS', () => {
  const detection = (x: number, y: number, size: number, score: number, keypointX: number): Detection => ({
    box: { x, y, width: size, height: size },
    score,
    keypoints: [{ x: keypointX, y: keypointX + 1 }],
  });

  it('merges an overlapping cluster by score-weighted mean and keeps the best score', () => {
    const a = detection(0, 0, 10, 0.9, 3); // IoU(a, b) = 81 / 119 = 0.68
    const b = detection(1, 1, 10, 0.6, 6);
    const c = detection(50, 50, 10, 0.8, 55);
    const kept = weightedNonMaxSuppression([b, c, a], 0.3);
    assert.equal(kept.length, 2);
    const [merged, alone] = kept;
    close(merged.score, 0.9);
    close(merged.box.x, (0 * 0.9 + 1 * 0.6) / 1.5, 1e-12, 'x');
    close(merged.box.y, 0.4, 1e-12, 'y');
    close(merged.box.width, (10 * 0.9 + 11 * 0.6) / 1.5 - 0.4, 1e-12, 'width');
    close(merged.keypoints[0].x, (3 * 0.9 + 6 * 0.6) / 1.5, 1e-12, 'keypoint x');
    close(merged.keypoints[0].y, (4 * 0.9 + 7 * 0.6) / 1.5, 1e-12, 'keypoint y');
    assert.deepEqual(alone, c);
  });

  it('needs IoU strictly above the threshold, like MediaPipe', () => {
    const a = detection(0, 0, 2, 0.9, 0);
    const b: Detection = { box: { x: 1, y: 0, width: 2, height: 2 }, score: 0.8, keypoints: [{ x: 0, y: 0 }] };
    const iou = intersectionOverUnion(a.box, b.box);
    assert.equal(iou, 1 / 3);
    assert.equal(weightedNonMaxSuppression([a, b], 1 / 3).length, 2);
    assert.equal(weightedNonMaxSuppression([a, b], 0.3).length, 1);
  });

  it('honours maxDetections and keeps a zero-area box', () => {
    const kept = weightedNonMaxSuppression([detection(0, 0, 0, 0.9, 0), detection(20, 20, 5, 0.5, 0)], 0.3, 1);
    assert.equal(kept.length, 1);
    assert.equal(kept[0].score, 0.9);
  });
});

describe('blazeface: letterbox', () => {
  it('centres a 300×200 frame in 192×192 and maps points both ways', () => {
    const letterbox = computeLetterbox({ x: 0, y: 0, width: 300, height: 200 }, 192);
    close(letterbox.scale, 0.64);
    close(letterbox.padX, 0);
    close(letterbox.padY, 32);
    const centre = frameToNormalized({ x: 150, y: 100 }, letterbox);
    close(centre.x, 0.5);
    close(centre.y, 0.5);
    const corner = frameToNormalized({ x: 0, y: 0 }, letterbox);
    close(corner.x, 0);
    close(corner.y, 32 / 192);
    for (const p of [
      { x: 12.25, y: 199 },
      { x: 299.9, y: 0.5 },
      { x: -10, y: 250 },
    ]) {
      const back = normalizedToFrame(frameToNormalized(p, letterbox), letterbox);
      close(back.x, p.x, 1e-9);
      close(back.y, p.y, 1e-9);
    }
  });

  it('maps a detection box and keypoints of a tile region to frame pixels', () => {
    const letterbox = computeLetterbox({ x: 100, y: 40, width: 64, height: 128 }, 128);
    // scale 1, content 64 wide centred: padX 32.
    const detection: Detection = {
      box: { x: 0.25, y: 0.5, width: 0.125, height: 0.25 },
      score: 0.7,
      keypoints: [{ x: 0.5, y: 0 }],
    };
    const mapped = detectionToFrame(detection, letterbox);
    assert.deepEqual(mapped.box, { x: 100 + 32 - 32, y: 40 + 64, width: 16, height: 32 });
    assert.deepEqual(mapped.keypoints[0], { x: 100 + 32, y: 40 });
    assert.equal(mapped.score, 0.7);
  });

  function uniformImage(width: number, height: number, value: number): RgbImage {
    return { width, height, data: new Uint8Array(width * height * 3).fill(value) };
  }

  it('area-averages a 1280×720 frame into 192×108 content with black bars', () => {
    const { tensor, letterbox } = prepareInput(uniformImage(1280, 720, 200), 'full');
    close(letterbox.padY, 42);
    const content = 200 / 127.5 - 1;
    for (let y = 0; y < 192; y++) {
      const expected = y < 42 || y >= 150 ? -1 : content;
      for (const x of [0, 95, 191]) close(tensor[(y * 192 + x) * 3 + 1], expected, 1e-5, `row ${y} col ${x}`);
    }
  });

  it('bilinear-upscales a small frame and keeps a left/right split in place', () => {
    const image = uniformImage(64, 32, 0);
    for (let y = 0; y < 32; y++) for (let x = 32; x < 64; x++) image.data[(y * 64 + x) * 3] = 255;
    const { tensor, letterbox } = prepareInput(image, 'short'); // scale 2, padY 32
    close(letterbox.scale, 2);
    const red = (x: number, y: number): number => tensor[(y * 128 + x) * 3];
    close(red(10, 64), -1, 1e-6, 'left half');
    close(red(120, 64), 1, 1e-6, 'right half');
    close((red(63, 64) + red(64, 64)) / 2, 0, 1e-6, 'split is centred');
    close(red(100, 10), -1, 1e-6, 'padding');
  });

  it('the native resampler equals the TypeScript reference: frames, tile regions, shrinking and enlarging', async () => {
    let seed = 7;
    const noise = (width: number, height: number): RgbImage => ({
      width,
      height,
      data: Uint8Array.from({ length: width * height * 3 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24),
    });
    const cases: [RgbImage, BlazeFaceVariant, { x: number; y: number; width: number; height: number }?][] = [
      [noise(1280, 720), 'full'],
      [noise(250, 250), 'short'],
      [noise(64, 32), 'short'],
      [noise(1280, 720), 'short', { x: 280, y: 0, width: 720, height: 720 }],
      [noise(333, 517), 'full', { x: 13, y: 101, width: 200, height: 150 }],
    ];
    for (const [image, variant, region] of cases) {
      const reference = prepareInput(image, variant, region);
      const native = await prepareInputNative(image, variant, region);
      assert.deepEqual(native.letterbox, reference.letterbox);
      let max = 0;
      for (let i = 0; i < reference.tensor.length; i++)
        max = Math.max(max, Math.abs(native.tensor[i] - reference.tensor[i]));
      assert.ok(max < 1e-5, `${image.width}x${image.height} ${variant} ${JSON.stringify(region)}: differs by ${max}`);
    }
  });

  it('the native resampler refuses taps that would read outside the image', () => {
    const image = new Uint8Array(4 * 4 * 3);
    const taps = (indices: number[]) => ({
      first: Int32Array.of(0, indices.length),
      indices: Int32Array.from(indices),
      weights: new Float32Array(indices.length).fill(1),
    });
    const resample = (width: number, x: ReturnType<typeof taps>, y: ReturnType<typeof taps>) =>
      resampleRgb(image, width, { x, y, scale: 1, offset: 0 });
    assert.throws(() => resample(4, taps([4]), taps([0])), /x taps read outside the image/);
    assert.throws(() => resample(4, taps([0]), taps([-1])), /y taps read outside the image/);
    assert.throws(() => resample(5, taps([0]), taps([0])), /whole number of RGB rows/);
    assert.throws(
      () => resample(4, { ...taps([0]), first: Int32Array.of(0, 2) }, taps([0])),
      /do not cover their indices/,
    );
  });

  it('plans overlapping square tiles over a wide frame', () => {
    assert.deepEqual(
      planTiles(1280, 720, 720, 0.25).map((t) => t.x),
      [0, 280, 560],
    );
    const grid = planTiles(1280, 720, 432, 0.25);
    assert.ok(grid.every((t) => t.width === 432 && t.x + 432 <= 1280 && t.y + 432 <= 720));
    assert.deepEqual([...new Set(grid.map((t) => t.y))], [0, 288]);
  });
});

describe('blazeface: FaceDetector with a fake model', () => {
  // A model that fires on one full-range anchor with a 0.2-wide box.
  let lastInputLength = 0;
  const fakeOutputs =
    (swap: boolean): RunModel =>
    async (input) => {
      lastInputLength = input.length;
      const regressors = new Float32Array(2304 * 16);
      const scores = new Float32Array(2304).fill(-20);
      const index = 48 * 24 + 24; // anchor centre (24.5/48, 24.5/48)
      regressors.set([0, 0, 0.2 * 192, 0.2 * 192, -10, -5, 10, -5, 0, 5, 0, 15, -30, 0, 30, 0], index * 16);
      scores[index] = 3;
      scores[index + 1] = 1; // a weaker neighbour, merged by NMS
      regressors.set([0, 0, 0.2 * 192, 0.2 * 192], (index + 1) * 16);
      return swap ? [scores, regressors] : [regressors, scores];
    };

  it('returns the face in frame pixels whatever the output order', async () => {
    for (const swap of [false, true]) {
      const detector = new FaceDetector(fakeOutputs(swap), 'full');
      const faces = await detector.detect({ width: 384, height: 192, data: new Uint8Array(384 * 192 * 3) });
      assert.equal(lastInputLength, 192 * 192 * 3);
      assert.equal(faces.length, 1);
      const [face] = faces;
      // scale 0.5, padY 48: a 38.4-px box is 76.8 frame px.
      close(face.box.width, 76.8, 1e-3, 'width');
      close(face.score, 1 / (1 + Math.exp(-3)), 1e-6, 'score');
      assert.equal(face.keypoints.length, 6);
      assert.ok(face.keypoints[0].x < face.keypoints[1].x);
    }
  });

  it('applies minFaceSize and maxFaces, and reports a wrong model', async () => {
    const frame = { width: 384, height: 192, data: new Uint8Array(384 * 192 * 3) };
    assert.equal((await new FaceDetector(fakeOutputs(false), 'full', { minFaceSize: 80 }).detect(frame)).length, 0);
    assert.equal((await new FaceDetector(fakeOutputs(false), 'full', { maxFaces: 0 }).detect(frame)).length, 0);
    await assert.rejects(new FaceDetector(fakeOutputs(false), 'short').detect(frame), /expected/);
  });
});

// ---------------------------------------------------------------------------

describe('blazeface: end to end on a dev photo', function () {
  const photo = path.join(DEV_DIR, 'Serena_Williams', 'Serena_Williams_0001.jpg');

  for (const variant of ['short', 'full'] as const) {
    it(`${variant} range: one face, eyes where a face has them, aligned onto the template`, async function () {
      const runModel = modelRunner(variant);
      const image = await loadPhoto(photo);
      const faces = await new FaceDetector(runModel, variant).detect(image);
      assert.equal(faces.length, 1);
      const [{ box, keypoints, score }] = faces;
      assert.ok(score > 0.6, `score ${score}`);
      // LFW centres the face: the box holds the image centre.
      assert.ok(box.x < 125 && box.x + box.width > 125 && box.y < 125 && box.y + box.height > 125, JSON.stringify(box));
      const [imageLeftEye, imageRightEye, nose, mouth] = keypoints;
      assert.ok(imageLeftEye.x < imageRightEye.x, 'keypoint 0 is the image-left eye');
      const eyeDistance = imageRightEye.x - imageLeftEye.x;
      assert.ok(eyeDistance > 0.3 * box.width && eyeDistance < 0.6 * box.width, `eye distance ${eyeDistance}`);
      for (const eye of [imageLeftEye, imageRightEye]) {
        assert.ok(eye.y > box.y + 0.15 * box.height && eye.y < box.y + 0.55 * box.height, `eye y ${eye.y}`);
      }
      assert.ok(nose.y > imageLeftEye.y && mouth.y > nose.y, 'eyes above nose above mouth');

      const { crop, matrix } = alignFace(image, keypoints);
      assert.equal(crop.width, 112);
      const template = templateFor(112);
      for (let i = 0; i < 2; i++) {
        const mapped: Point = applyAffine(matrix, keypoints[i]);
        const error = Math.hypot(mapped.x - template[i].x, mapped.y - template[i].y);
        assert.ok(error < 3, `eye ${i} lands ${error.toFixed(2)} px from the template`);
      }
    });
  }
});
