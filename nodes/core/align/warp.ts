/**
 * Face alignment to the ArcFace 112×112 template: a least-squares similarity
 * transform from the detector's keypoints, and the warp (quality.ts measures
 * the crop).
 *
 * Coordinates are continuous pixel coordinates: pixel (i, j) covers
 * [i, i+1) × [j, j+1), so its centre is (i + 0.5, j + 0.5). Detections from
 * blazeface.ts use the same convention.
 */
import type { Point, RgbImage } from '../media/image';
import { createRgbImage } from '../media/image';

/** Row-major 2×3 affine matrix [a, b, c, d, e, f]: x' = a·x + b·y + c, y' = d·x + e·y + f. */
export type AffineMatrix = [number, number, number, number, number, number];

export function applyAffine(m: Readonly<AffineMatrix>, p: Point): Point {
  return { x: m[0] * p.x + m[1] * p.y + m[2], y: m[3] * p.x + m[4] * p.y + m[5] };
}

export function invertAffine(m: Readonly<AffineMatrix>): AffineMatrix {
  const det = m[0] * m[4] - m[1] * m[3];
  if (Math.abs(det) < 1e-12) throw new Error('affine matrix is singular');
  const a = m[4] / det;
  const b = -m[1] / det;
  const d = -m[3] / det;
  const e = m[0] / det;
  return [a, b, -(a * m[2] + b * m[5]), d, e, -(d * m[2] + e * m[5])];
}

/**
 * Least-squares similarity (uniform scale, rotation, translation; no
 * reflection) mapping `src` onto `dst`. In 2-D the proper similarity is
 * linear in (s·cosθ, s·sinθ, tx, ty), so the least-squares optimum has a
 * closed form; it equals Umeyama's solution with the reflection correction.
 */
export function similarityTransform(src: readonly Point[], dst: readonly Point[]): AffineMatrix {
  if (src.length !== dst.length || src.length < 2) {
    throw new Error(`need ≥ 2 point pairs of equal count, got ${src.length} and ${dst.length}`);
  }
  const n = src.length;
  let srcMeanX = 0;
  let srcMeanY = 0;
  let dstMeanX = 0;
  let dstMeanY = 0;
  for (let i = 0; i < n; i++) {
    srcMeanX += src[i].x / n;
    srcMeanY += src[i].y / n;
    dstMeanX += dst[i].x / n;
    dstMeanY += dst[i].y / n;
  }
  let srcVariance = 0;
  let dotSum = 0;
  let crossSum = 0;
  for (let i = 0; i < n; i++) {
    const sx = src[i].x - srcMeanX;
    const sy = src[i].y - srcMeanY;
    const dx = dst[i].x - dstMeanX;
    const dy = dst[i].y - dstMeanY;
    srcVariance += sx * sx + sy * sy;
    dotSum += sx * dx + sy * dy;
    crossSum += sx * dy - sy * dx;
  }
  if (srcVariance < 1e-12) throw new Error('source points coincide');
  const scaledCos = dotSum / srcVariance;
  const scaledSin = crossSum / srcVariance;
  return [
    scaledCos,
    -scaledSin,
    dstMeanX - (scaledCos * srcMeanX - scaledSin * srcMeanY),
    scaledSin,
    scaledCos,
    dstMeanY - (scaledSin * srcMeanX + scaledCos * srcMeanY),
  ];
}

/**
 * ArcFace (insightface) 112×112 template, in OpenCV pixel-index coordinates:
 * image-left eye, image-right eye, nose tip, mouth centre (the midpoint of the
 * template's two mouth corners, since BlazeFace gives one mouth point).
 */
export const ARCFACE_TEMPLATE_112: readonly Point[] = Object.freeze([
  { x: 38.2946, y: 51.6963 },
  { x: 73.5318, y: 51.5014 },
  { x: 56.0252, y: 71.7366 },
  { x: (41.5493 + 70.7299) / 2, y: (92.3655 + 92.2041) / 2 },
]);

/**
 * The full five-point ArcFace template (insightface's, pixel-index
 * coordinates): image-left eye, image-right eye, nose tip, image-left and
 * image-right mouth corners. Used with face mesh points (landmarks.ts).
 */
export const ARCFACE_FIVE_POINT_TEMPLATE_112: readonly Point[] = Object.freeze([
  { x: 38.2946, y: 51.6963 },
  { x: 73.5318, y: 51.5014 },
  { x: 56.0252, y: 71.7366 },
  { x: 41.5493, y: 92.3655 },
  { x: 70.7299, y: 92.2041 },
]);

/** Warps the face to the five-point template from five points in its order (eye centres, nose tip, mouth corners). */
export function alignFaceFivePoints(image: RgbImage, points: readonly Point[], size = 112): AlignedFace {
  if (points.length !== 5) throw new Error(`need 5 points, got ${points.length}`);
  const template = ARCFACE_FIVE_POINT_TEMPLATE_112.map((p) => ({
    x: ((p.x + 0.5) * size) / 112,
    y: ((p.y + 0.5) * size) / 112,
  }));
  const matrix = similarityTransform(points, template);
  return { crop: warpAffine(image, matrix, size, size), matrix };
}

/** BlazeFace keypoint indices used for alignment, in template order. */
const ALIGNMENT_KEYPOINTS = [0, 1, 2, 3] as const;

export interface AlignedFace {
  /** size × size crop, template-aligned. */
  crop: RgbImage;
  /** Source (frame) coordinates → crop coordinates. */
  matrix: AffineMatrix;
}

/** The template for a crop of `size`, in this module's continuous coordinates. */
export function templateFor(size: number): Point[] {
  // +0.5: the template is in pixel-index coordinates (centre of pixel i at i).
  return ARCFACE_TEMPLATE_112.map((p) => ({ x: ((p.x + 0.5) * size) / 112, y: ((p.y + 0.5) * size) / 112 }));
}

/**
 * Warps the face to the template with a similarity fitted on eyes, nose and
 * mouth centre (the ear points are too unstable under yaw to help).
 * Border: replicate. A face cut by the frame edge then gets smeared edge
 * pixels rather than a hard black edge, which would otherwise read as a
 * strong Laplacian response (false sharpness) and drag the exposure mean.
 */
export function alignFace(image: RgbImage, keypoints: readonly Point[], size = 112): AlignedFace {
  if (keypoints.length < 4) throw new Error(`need ≥ 4 keypoints, got ${keypoints.length}`);
  const source = ALIGNMENT_KEYPOINTS.map((i) => keypoints[i]);
  const matrix = similarityTransform(source, templateFor(size));
  return { crop: warpAffine(image, matrix, size, size), matrix };
}

/**
 * Bilinear warp with replicated border. `sourceToDest` maps source
 * coordinates to output coordinates; each output pixel centre is mapped back
 * through its inverse and sampled.
 */
export function warpAffine(
  image: RgbImage,
  sourceToDest: Readonly<AffineMatrix>,
  width: number,
  height: number,
): RgbImage {
  const out = createRgbImage(width, height);
  const dst = out.data;
  const inv = invertAffine(sourceToDest);
  const src = image.data;
  const stride = image.width * 3;
  const maxX = image.width - 1;
  const maxY = image.height - 1;
  let q = 0;
  for (let y = 0; y < height; y++) {
    // Source position of the output pixel centre (x + 0.5, y + 0.5), in index
    // space (-0.5), stepped along the row: one add per pixel instead of the
    // full matrix product (faster in V8 than Math.floor/min/max per pixel;
    // the figures are in the README's design notes).
    let sx = inv[0] * 0.5 + inv[1] * (y + 0.5) + inv[2] - 0.5;
    let sy = inv[3] * 0.5 + inv[4] * (y + 0.5) + inv[5] - 0.5;
    for (let x = 0; x < width; x++, sx += inv[0], sy += inv[3], q += 3) {
      const px = sx < 0 ? 0 : sx > maxX ? maxX : sx;
      const py = sy < 0 ? 0 : sy > maxY ? maxY : sy;
      const x0 = px | 0;
      const y0 = py | 0;
      const fx = px - x0;
      const fy = py - y0;
      const w11 = fx * fy;
      const w10 = fy - w11;
      const w01 = fx - w11;
      const w00 = 1 - fx - fy + w11;
      const p00 = y0 * stride + x0 * 3;
      const p01 = p00 + (x0 < maxX ? 3 : 0);
      const p10 = p00 + (y0 < maxY ? stride : 0);
      const p11 = p10 + (p01 - p00);
      // + 0.5 then truncation on store: round to nearest (all terms are >= 0).
      dst[q] = src[p00] * w00 + src[p01] * w01 + src[p10] * w10 + src[p11] * w11 + 0.5;
      dst[q + 1] = src[p00 + 1] * w00 + src[p01 + 1] * w01 + src[p10 + 1] * w10 + src[p11 + 1] * w11 + 0.5;
      dst[q + 2] = src[p00 + 2] * w00 + src[p01 + 2] * w01 + src[p10 + 2] * w10 + src[p11 + 2] * w11 + 0.5;
    }
  }
  return out;
}
