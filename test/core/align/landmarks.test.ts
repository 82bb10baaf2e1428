/**
 * Face mesh landmarks for enrolment alignment, with the real model that
 * @mediapipe/face_mesh ships, on real dev photos.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'fs';
import * as path from 'path';
import { FaceLandmarker, faceMeshModel, fivePoints, meshRegion } from '../../../nodes/core/align/landmarks';
import { alignFaceFivePoints, applyAffine } from '../../../nodes/core/align/warp';
import type { Detection } from '../../../nodes/core/detect/blazeface';
import { createRgbImage, type RgbImage } from '../../../nodes/core/media/image';
import { FacePipeline, mainFace } from '../../../nodes/core/pipeline';
import { DEV_DIR, loadPhoto } from '../../helpers/real-models';
import { shippedModels } from '../../../native';

const distance = (a: { x: number; y: number }, b: { x: number; y: number }) => Math.hypot(a.x - b.x, a.y - b.y);

describe('align: face mesh landmarks', function () {
  this.timeout(60000);
  let pipeline: FacePipeline;
  let landmarker: FaceLandmarker;
  const photos = ['Tony_Blair', 'Serena_Williams', 'Jackie_Chan', 'Hans_Blix'].map((person) => {
    const dir = path.join(DEV_DIR, person);
    return path.join(dir, fs.readdirSync(dir).sort()[0]);
  });

  before(async () => {
    pipeline = await FacePipeline.open();
    landmarker = await FaceLandmarker.open();
  });
  after(async () => {
    await landmarker.dispose();
    await pipeline.dispose();
  });

  it('finds face_landmark.tflite in the package from its asset list', async () => {
    const model = await faceMeshModel();
    assert.equal(model.subarray(4, 8).toString('latin1'), 'TFL3');
    assert.ok(model.length > 500_000 && model.length < 3_000_000, `${model.length} bytes`);
  });

  it('a missing face mesh model is ERR_MODEL_NOT_FOUND with what to do, not a bare ENOENT', async () => {
    const away = `${shippedModels.faceLandmark}.away`;
    fs.renameSync(shippedModels.faceLandmark, away);
    try {
      await assert.rejects(FaceLandmarker.open(), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ERR_MODEL_NOT_FOUND');
        assert.match(e.message, /face_landmark\.tflite \(ENOENT\): reinstall the package/);
        return true;
      });
    } finally {
      fs.renameSync(away, shippedModels.faceLandmark);
    }
  });

  it("maps the detection box's centre to the model input's centre, eyes level", () => {
    const detection: Detection = {
      box: { x: 100, y: 50, width: 80, height: 100 },
      score: 0.9,
      keypoints: [
        { x: 120, y: 80 },
        { x: 160, y: 100 },
        { x: 140, y: 100 },
        { x: 140, y: 120 },
        { x: 100, y: 90 },
        { x: 180, y: 90 },
      ],
    };
    const region = meshRegion(detection);
    const centre = applyAffine(region, { x: 140, y: 100 });
    assert.ok(Math.abs(centre.x - 96) < 1e-9 && Math.abs(centre.y - 96) < 1e-9);
    const [right, left] = detection.keypoints.slice(0, 2).map((p) => applyAffine(region, p));
    assert.ok(Math.abs(right.y - left.y) < 1e-9, 'eyes level in the model input');
    // 1.5 x the longer side (100 px) fills the 192-pixel input.
    assert.ok(Math.abs(distance(right, left) - (Math.hypot(40, 20) * 192) / 150) < 1e-9);
  });

  it('puts the five points where BlazeFace puts its keypoints, in template order', async () => {
    for (const file of photos) {
      const image = await loadPhoto(file);
      const face = mainFace(await pipeline.detect(image), image)!;
      const { points, presence } = await landmarker.landmarks(image, face);
      assert.equal(points.length, 468);
      assert.ok(presence > 0.9, `${file}: presence ${presence}`);
      const [rightEye, leftEye, nose, mouthRight, mouthLeft] = fivePoints(points);
      const [blazeRight, blazeLeft, blazeNose, blazeMouth] = face.keypoints;
      const eyes = distance(blazeRight, blazeLeft);
      // Two detectors, one face: agreement within a fifth of the eye distance.
      for (const [mesh, blaze, what] of [
        [rightEye, blazeRight, 'right eye'],
        [leftEye, blazeLeft, 'left eye'],
        [nose, blazeNose, 'nose'],
      ] as const) {
        assert.ok(
          distance(mesh, blaze) < 0.2 * eyes,
          `${file}: ${what} ${JSON.stringify(mesh)} vs ${JSON.stringify(blaze)}`,
        );
      }
      assert.ok(
        mouthRight.x < blazeMouth.x && blazeMouth.x < mouthLeft.x,
        `${file}: mouth corners either side of the mouth centre`,
      );
      assert.ok(rightEye.x < leftEye.x);
    }
  });

  it('enrolment crops sit on the five-point template; without a face there it falls back to BlazeFace alignment', async () => {
    const image = await loadPhoto(photos[0]);
    const face = mainFace(await pipeline.detect(image), image)!;
    const enrolment = await pipeline.alignOnMesh(image, face);
    const { points } = await landmarker.landmarks(image, face);
    const expected = alignFaceFivePoints(image, fivePoints(points), 112).crop;
    assert.deepEqual(enrolment.crop.data, expected.data);
    assert.notDeepEqual(enrolment.crop.data, pipeline.align(image, face).crop.data);
    assert.equal(typeof enrolment.quality.ok, 'boolean');

    // A "detection" on a flat grey frame: the mesh model sees no face there.
    const grey: RgbImage = createRgbImage(250, 250);
    grey.data.fill(128);
    const ghost: Detection = { ...face };
    assert.ok((await landmarker.landmarks(grey, ghost)).presence < 0.5);
    assert.deepEqual((await pipeline.alignOnMesh(grey, ghost)).crop.data, pipeline.align(grey, ghost).crop.data);
  });

  it('meshAlignment: false aligns enrolment photos as probes', async () => {
    const plain = await FacePipeline.open({ meshAlignment: false });
    try {
      const image = await loadPhoto(photos[1]);
      const face = mainFace(await plain.detect(image), image)!;
      assert.deepEqual((await plain.alignOnMesh(image, face)).crop.data, plain.align(image, face).crop.data);
    } finally {
      await plain.dispose();
    }
  });
});
