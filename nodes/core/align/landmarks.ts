/**
 * Dense face landmarks for alignment at enrolment: MediaPipe's face mesh
 * model (face_landmark.tflite, 468 points, Apache-2.0), as the
 * @mediapipe/face_mesh package ships it inside its packed assets file. Its
 * eye centres, nose tip and two mouth corners fit the full five-point ArcFace
 * template, which BlazeFace's six coarse keypoints (one mouth point) cannot:
 * on ../shared/faces/dev-pairs it separates same and different people
 * clearly better (README, "Accuracy"). It costs a second model run per face
 * (about as much as the embedder), so the pipeline uses it where it pays:
 * for the photos a person is enrolled from, photos, and a face's first
 * frames in a stream (first-frames.ts), not for every frame.
 *
 * The region of interest follows MediaPipe's face mesh graph: the detection
 * box's centre, 1.5 x its longer side, turned so the eyes are level; the
 * model takes that square at 192x192 with pixel values in [0, 1] and returns
 * points in its own pixel coordinates.
 */
import * as fs from 'fs';
import { CpuRuntime, RuntimeError, shippedModels, type InferenceRuntime } from '../../../native';
import type { Detection } from '../detect/blazeface';
import type { Point, RgbImage } from '../media/image';
import { alignFace, alignFaceFivePoints, applyAffine, type AffineMatrix, invertAffine, warpAffine } from './warp';

const MESH_INPUT = 192;
const MESH_POINTS = 468;
/** MediaPipe's ROI: the detection box scaled by 1.5 (face_detection_front_detection_to_roi). */
const ROI_SCALE = 1.5;
/** Below this face-presence score the mesh is not trusted and BlazeFace's keypoints align instead. */
export const MIN_MESH_PRESENCE = 0.5;

/** Mesh indices of each eye's contour (the subject's right eye first: the image-left one in a frontal photo). */
const RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246];
const LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466];
const NOSE_TIP = 1;
const MOUTH_RIGHT = 61;
const MOUTH_LEFT = 291;

/**
 * face_landmark.tflite, as the build copied it out of @mediapipe/face_mesh's
 * packed assets (native/scripts/copy-models.mjs). Read asynchronously: the
 * first enrolment may happen inside Node-RED, whose event loop must not wait
 * on the disk.
 */
export async function faceMeshModel(): Promise<Buffer> {
  try {
    return await fs.promises.readFile(shippedModels.faceLandmark);
  } catch (error) {
    // It ships in the package: missing means a broken install or build, not a setting.
    throw new RuntimeError(
      'ERR_MODEL_NOT_FOUND',
      `model file not found: ${shippedModels.faceLandmark} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}): ` +
        'reinstall the package, or run "npm run build" in a clone',
    );
  }
}

/** Source (frame) coordinates to the model's 192x192 input, per MediaPipe's ROI rule. */
export function meshRegion(detection: Detection): AffineMatrix {
  const [rightEye, leftEye] = detection.keypoints;
  const angle = Math.atan2(leftEye.y - rightEye.y, leftEye.x - rightEye.x);
  const centreX = detection.box.x + detection.box.width / 2;
  const centreY = detection.box.y + detection.box.height / 2;
  const pixel = (Math.max(detection.box.width, detection.box.height) * ROI_SCALE) / MESH_INPUT;
  const c = Math.cos(angle) / pixel;
  const s = Math.sin(angle) / pixel;
  // Rotate by -angle about the box centre, scale to the input, centre in it.
  return [c, s, MESH_INPUT / 2 - (c * centreX + s * centreY), -s, c, MESH_INPUT / 2 - (-s * centreX + c * centreY)];
}

function mean(points: readonly Point[], indices: readonly number[]): Point {
  let x = 0;
  let y = 0;
  for (const i of indices) {
    x += points[i].x;
    y += points[i].y;
  }
  return { x: x / indices.length, y: y / indices.length };
}

/**
 * The five ArcFace points from the mesh, in template order: the subject's
 * right eye centre (mean of its contour), left eye centre, nose tip, right
 * and left mouth corners.
 */
export function fivePoints(mesh: readonly Point[]): Point[] {
  return [mean(mesh, RIGHT_EYE), mean(mesh, LEFT_EYE), mesh[NOSE_TIP], mesh[MOUTH_RIGHT], mesh[MOUTH_LEFT]];
}

export class FaceLandmarker {
  private constructor(private readonly runtime: InferenceRuntime) {}

  static async open(options: { threads?: number } = {}): Promise<FaceLandmarker> {
    return new FaceLandmarker(await CpuRuntime.open(await faceMeshModel(), { threads: options.threads ?? 1 }));
  }

  /** The 468 mesh points in frame coordinates, and the model's face-presence score (0-1). */
  async landmarks(image: RgbImage, detection: Detection): Promise<{ points: Point[]; presence: number }> {
    const region = meshRegion(detection);
    const crop = warpAffine(image, region, MESH_INPUT, MESH_INPUT);
    const input = new Float32Array(crop.data.length);
    for (let i = 0; i < input.length; i++) input[i] = crop.data[i] / 255;
    const [coordinates, presence] = await this.runtime.invoke([input]);
    const back = invertAffine(region);
    const points: Point[] = [];
    for (let k = 0; k < MESH_POINTS; k++)
      points.push(applyAffine(back, { x: coordinates[3 * k], y: coordinates[3 * k + 1] }));
    return { points, presence: 1 / (1 + Math.exp(-presence[0])) };
  }

  /**
   * The face aligned on its five mesh points (`onMesh`), or on BlazeFace's
   * keypoints when the mesh model finds no face in the detection's region.
   */
  async align(image: RgbImage, detection: Detection, size = 112): Promise<{ crop: RgbImage; onMesh: boolean }> {
    const { points, presence } = await this.landmarks(image, detection);
    if (presence < MIN_MESH_PRESENCE) return { crop: alignFace(image, detection.keypoints, size).crop, onMesh: false };
    return { crop: alignFaceFivePoints(image, fivePoints(points), size).crop, onMesh: true };
  }

  dispose(): Promise<void> {
    return this.runtime.dispose();
  }
}
