/** Alignment variants for the exploration harness. */
import type { Point, RgbImage } from '../../../nodes/core/media/image';
import type { Detection } from '../../../nodes/core/detect/blazeface';
import { ARCFACE_TEMPLATE_112, similarityTransform, warpAffine } from '../../../nodes/core/align/warp';

type Variant = (image: RgbImage, det: Detection, file: string) => RgbImage | null | Promise<RgbImage | null>;

function template(scale: number, dy = 0): Point[] {
  return ARCFACE_TEMPLATE_112.map((p) => ({ x: 56 + (p.x + 0.5 - 56) * scale, y: 56 + (p.y + 0.5 - 56) * scale + dy }));
}

function fit(points: number[], scale = 1, dy = 0): Variant {
  return (image, det) => {
    const t = template(scale, dy);
    const m = similarityTransform(
      points.map((i) => det.keypoints[i]),
      points.map((i) => t[i]),
    );
    return warpAffine(image, m, 112, 112);
  };
}

export const VARIANTS: Record<string, Variant> = {
  base: fit([0, 1, 2, 3]),
  s090: fit([0, 1, 2, 3], 0.9),
  s095: fit([0, 1, 2, 3], 0.95),
  s105: fit([0, 1, 2, 3], 1.05),
  s110: fit([0, 1, 2, 3], 1.1),
  eyesNose: fit([0, 1, 2]),
  eyesMouth: fit([0, 1, 3]),
  up2: fit([0, 1, 2, 3], 1, -2),
  down2: fit([0, 1, 2, 3], 1, 2),
};

// ---------------------------------------------------------------------------
// Face mesh landmarks (MediaPipe face_landmark.tflite, from @mediapipe/face_mesh's packed assets)
import { CpuRuntime, InferenceRuntime } from '../../../native';
import { invertAffine, applyAffine, type AffineMatrix } from '../../../nodes/core/align/warp';
import { faceMeshModel } from '../../../nodes/core/align/landmarks';

let mesh: Promise<InferenceRuntime> | null = null;
export function meshRuntime(): Promise<InferenceRuntime> {
  mesh ??= faceMeshModel().then((model) => CpuRuntime.open(model, { threads: 1 }));
  return mesh;
}

export const MESH_SIZE = 192;

/** The MediaPipe face-mesh ROI: box centre, 1.5 x the long side, rotated so the eyes are level. */
export function meshRoi(det: Detection, scale = 1.5): AffineMatrix {
  const [r, l] = det.keypoints;
  const a = Math.atan2(l.y - r.y, l.x - r.x);
  const cx = det.box.x + det.box.width / 2;
  const cy = det.box.y + det.box.height / 2;
  const s = (Math.max(det.box.width, det.box.height) * scale) / MESH_SIZE;
  const c = Math.cos(a) / s;
  const n = Math.sin(a) / s;
  // dest = R(-a)(p - centre)/s + 96
  return [c, n, MESH_SIZE / 2 - (c * cx + n * cy), -n, c, MESH_SIZE / 2 - (-n * cx + c * cy)];
}

export async function meshLandmarks(image: RgbImage, det: Detection): Promise<{ points: Point[]; presence: number }> {
  const m = meshRoi(det);
  const crop = warpAffine(image, m, MESH_SIZE, MESH_SIZE);
  const input = new Float32Array(crop.data.length);
  for (let i = 0; i < input.length; i++) input[i] = crop.data[i] / 255;
  const rt = await meshRuntime();
  const [out, flag] = await rt.invoke([input]);
  const inv = invertAffine(m);
  const points: Point[] = [];
  for (let k = 0; k < 468; k++) points.push(applyAffine(inv, { x: out[3 * k], y: out[3 * k + 1] }));
  return { points, presence: 1 / (1 + Math.exp(-flag[0])) };
}

const RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246];
const LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466];
const mean = (pts: Point[], idx: number[]) => ({
  x: idx.reduce((s, i) => s + pts[i].x, 0) / idx.length,
  y: idx.reduce((s, i) => s + pts[i].y, 0) / idx.length,
});

const FIVE_112: Point[] = [
  { x: 38.2946, y: 51.6963 },
  { x: 73.5318, y: 51.5014 },
  { x: 56.0252, y: 71.7366 },
  { x: 41.5493, y: 92.3655 },
  { x: 70.7299, y: 92.2041 },
].map((p) => ({ x: p.x + 0.5, y: p.y + 0.5 }));

export function fivePoints(pts: Point[], eyes: 'contour' | 'corners' = 'contour'): Point[] {
  const re = eyes === 'contour' ? mean(pts, RIGHT_EYE) : mean(pts, [33, 133]);
  const le = eyes === 'contour' ? mean(pts, LEFT_EYE) : mean(pts, [263, 362]);
  return [re, le, pts[1], pts[61], pts[291]];
}

const meshCache = new Map<string, Point[]>();
async function cachedMesh(image: RgbImage, det: Detection, file: string): Promise<Point[]> {
  let p = meshCache.get(file);
  if (!p) {
    p = (await meshLandmarks(image, det)).points;
    meshCache.set(file, p);
  }
  return p;
}

function meshFit(which: number[], eyes: 'contour' | 'corners' = 'contour', scale = 1): Variant {
  return async (image, det, file) => {
    const five = fivePoints(await cachedMesh(image, det, file), eyes);
    const t = FIVE_112.map((p) => ({ x: 56 + (p.x - 56) * scale, y: 56 + (p.y - 56) * scale }));
    const m = similarityTransform(
      which.map((i) => five[i]),
      which.map((i) => t[i]),
    );
    return warpAffine(image, m, 112, 112);
  };
}

VARIANTS.mesh5 = meshFit([0, 1, 2, 3, 4]);
VARIANTS.mesh5corners = meshFit([0, 1, 2, 3, 4], 'corners');
VARIANTS.mesh4 = meshFit([0, 1, 3, 4]);
VARIANTS.mesh5s095 = meshFit([0, 1, 2, 3, 4], 'contour', 0.95);
