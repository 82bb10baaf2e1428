/**
 * npm run bench:quality-calibration
 *
 * Prints the distributions DEFAULT_QUALITY_THRESHOLDS were chosen from: every
 * dev photo (central face, short range), the same photos blurred, darkened and
 * blown out, and the pass rate of each threshold.
 */
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { alignFace } from '../../nodes/core/align/warp';
import { assessQuality, DEFAULT_QUALITY_THRESHOLDS, FaceQuality } from '../../nodes/core/align/quality';
import { Detection, FaceDetector } from '../../nodes/core/detect/blazeface';
import type { Point, RgbImage } from '../../nodes/core/media/image';
import { decodeRaw, DEV_DIR, loadPhoto, modelRunner } from '../helpers/real-models';

async function main(): Promise<void> {
  const runModel = modelRunner('short');
  const detector = new FaceDetector(runModel, 'short');
  const central = (faces: Detection[], image: RgbImage): Detection | undefined => {
    const offCentre = (d: Detection): number =>
      Math.hypot(d.box.x + d.box.width / 2 - image.width / 2, d.box.y + d.box.height / 2 - image.height / 2);
    return [...faces].sort((a, b) => offCentre(a) - offCentre(b))[0];
  };
  const files = fs
    .readdirSync(DEV_DIR)
    .filter((d) => d !== '_group' && fs.statSync(path.join(DEV_DIR, d)).isDirectory())
    .sort()
    .flatMap((d) =>
      fs
        .readdirSync(path.join(DEV_DIR, d))
        .sort()
        .map((f) => path.join(DEV_DIR, d, f)),
    );

  type Variant = 'original' | 'blur σ=1' | 'blur σ=2' | 'blur σ=3' | 'dark ×0.15' | 'bright ×3';
  const variants: Record<Variant, (file: string) => Promise<RgbImage>> = {
    original: loadPhoto,
    'blur σ=1': (f) => decodeRaw(sharp(f).blur(1)),
    'blur σ=2': (f) => decodeRaw(sharp(f).blur(2)),
    'blur σ=3': (f) => decodeRaw(sharp(f).blur(3)),
    'dark ×0.15': (f) => decodeRaw(sharp(f).linear(0.15, 0)),
    'bright ×3': (f) => decodeRaw(sharp(f).linear(3, 0)),
  };
  const results: Record<string, FaceQuality[]> = {};
  const originalKeypoints: Point[][] = [];
  const missed: Record<string, number> = {};
  for (const [name, load] of Object.entries(variants)) {
    results[name] = [];
    missed[name] = 0;
    for (const file of files) {
      const image = await load(file);
      const face = central(await detector.detect(image), image);
      if (!face) {
        missed[name]++;
        continue;
      }
      results[name].push(assessQuality(alignFace(image, face.keypoints).crop, face));
      if (name === 'original') originalKeypoints.push(face.keypoints);
    }
  }
  const percentiles = (values: number[]): string => {
    const sorted = [...values].sort((a, b) => a - b);
    const at = (p: number): string =>
      sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(1);
    return `min ${sorted[0].toFixed(1)} p0.5 ${at(0.5)} p1 ${at(1)} p5 ${at(5)} p50 ${at(50)} p95 ${at(95)} p99 ${at(99)} p99.5 ${at(99.5)} max ${sorted[sorted.length - 1].toFixed(1)}`;
  };
  const original = results.original;
  console.log(`    dev photos: ${files.length}, central face found in ${original.length}`);
  console.log(`    inter-ocular px  ${percentiles(original.map((q) => q.faceSize.interOcularPx))}`);
  console.log(`    box px           ${percentiles(original.map((q) => q.faceSize.boxPx))}`);
  console.log(`    sharpness        ${percentiles(original.map((q) => q.sharpness))}`);
  console.log(`    |yaw| deg        ${percentiles(original.map((q) => Math.abs(q.yawDeg)))}`);
  console.log(`    brightness       ${percentiles(original.map((q) => q.brightness.mean))}`);
  console.log(`    clipped %        ${percentiles(original.map((q) => q.brightness.clippedFraction * 100))}`);
  console.log(`    thresholds ${JSON.stringify(DEFAULT_QUALITY_THRESHOLDS)}`);
  // Yaw constants: the ear-tragion asymmetry against the nose offset from the
  // eye midpoint (both along the eye axis); their ratio scales the canonical
  // model's eye constant (1.15) to the ear one.
  let products = 0;
  let squares = 0;
  for (const [rightEye, leftEye, nose, , rightEar, leftEar] of originalKeypoints) {
    const length = Math.hypot(leftEye.x - rightEye.x, leftEye.y - rightEye.y);
    const along = (p: Point): number => (p.x * (leftEye.x - rightEye.x) + p.y * (leftEye.y - rightEye.y)) / length;
    const eyeRatio = (along(nose) - (along(rightEye) + along(leftEye)) / 2) / (length / 2);
    const toRight = along(nose) - along(rightEar);
    const toLeft = along(leftEar) - along(nose);
    products += eyeRatio * ((toRight - toLeft) / (toRight + toLeft));
    squares += eyeRatio * eyeRatio;
  }
  console.log(
    `    ear asymmetry = ${(products / squares).toFixed(3)} × eye offset ratio → ear constant ${((1.15 * products) / squares).toFixed(3)}`,
  );
  for (const [name, qualities] of Object.entries(results)) {
    const byCode = new Map<string, number>();
    for (const q of qualities) for (const r of q.reasons) byCode.set(r.code, (byCode.get(r.code) ?? 0) + 1);
    const passed = qualities.filter((q) => q.ok).length;
    const reasons = [...byCode].map(([code, n]) => `${code} ${n}`).join(', ');
    console.log(
      `    ${name.padEnd(11)} pass ${passed}/${qualities.length} (${((100 * passed) / qualities.length).toFixed(1)}%), ` +
        `no face ${missed[name]}; rejections: ${reasons || 'none'}; sharpness ${percentiles(qualities.map((q) => q.sharpness))}`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
