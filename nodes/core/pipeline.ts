/**
 * The recognition engine, stage by stage: detect (BlazeFace on the CPU),
 * align (similarity warp to the ArcFace template) with quality measures,
 * embed (MobileFaceNet, Edge TPU or CPU). Framework-free: the CLI, the
 * Node-RED nodes and the add-on all call this.
 */
import { CpuRuntime, InferenceRuntime, shippedModels } from '../../native';
import { FaceLandmarker } from './align/landmarks';
import { alignFace } from './align/warp';
import { assessQuality, FaceQuality, QualityThresholds } from './align/quality';
import { BlazeFaceVariant, Detection, FaceDetector, FaceDetectorOptions } from './detect/blazeface';
import { EmbedOptions, Embedder, TfliteEmbedder, TfliteEmbedderOptions } from './embed/embedder';
import type { Box, RgbImage } from './media/image';

export interface DetectorConfig extends Partial<FaceDetectorOptions> {
  /** short: faces near the camera (a doorbell, a photo); full: far faces (a yard or street camera). */
  variant?: BlazeFaceVariant;
  threads?: number;
}

export interface PipelineOptions {
  detector?: DetectorConfig;
  embedder?: TfliteEmbedderOptions;
  quality?: Partial<QualityThresholds>;
  /**
   * Align the faces that decide something (enrolment photos, photos,
   * a face's first frames) on face mesh landmarks (default true): see
   * alignOnMesh. false: BlazeFace's keypoints for every face.
   */
  meshAlignment?: boolean;
}

export interface AnalysedFace extends Detection {
  /** The aligned 112x112 crop. */
  crop: RgbImage;
  quality: FaceQuality;
  /** Present when the face passed the quality gate (or the gate was off). */
  embedding?: Float32Array;
}

export interface StageTimings {
  detect: number;
  align: number;
  embed: number;
}

/** The BlazeFace model the package ships for a variant (build/models/). */
export function blazeFaceModel(variant: BlazeFaceVariant): string {
  return variant === 'short' ? shippedModels.blazefaceShort : shippedModels.blazefaceFull;
}

/** A detector over the native runtime. The caller owns `runtime`. */
export async function openDetector(
  config: DetectorConfig = {},
): Promise<{ detector: FaceDetector; runtime: InferenceRuntime }> {
  const variant = config.variant ?? 'short';
  // BlazeFace is float with fp16 weights: a CPU model, never compiled for the Edge TPU.
  // One thread by default: the detector is quick on one, and a second XNNPACK pool
  // spinning beside the embedder's steals the cores the embedder needs.
  const runtime = await CpuRuntime.open(blazeFaceModel(variant), { threads: config.threads ?? 1 });
  // minScore 0.5 for both models (MediaPipe uses 0.6 for full-range): far
  // faces of 70 px score 0.55-0.65, and a false detection costs little here,
  // since it still has to pass the quality gate and match someone.
  const detector = new FaceDetector((input) => runtime.invoke([input]), variant, config);
  return { detector, runtime };
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

export class FacePipeline {
  /** Opened on the first face aligned on the mesh: a pipeline that never needs it never pays for it. */
  private landmarker: Promise<FaceLandmarker> | null = null;

  private constructor(
    readonly detector: FaceDetector,
    private readonly detectorRuntime: InferenceRuntime,
    readonly embedder: Embedder,
    private readonly quality: Partial<QualityThresholds>,
    private readonly meshAlignment: boolean,
  ) {}

  static async open(options: PipelineOptions = {}): Promise<FacePipeline> {
    const { detector, runtime } = await openDetector(options.detector);
    try {
      const embedder = await TfliteEmbedder.open(options.embedder);
      return new FacePipeline(detector, runtime, embedder, options.quality ?? {}, options.meshAlignment ?? true);
    } catch (error) {
      await runtime.dispose();
      throw error;
    }
  }

  /** A pipeline over an embedder someone else owns (a shared device): dispose with disposeDetector(). */
  static async withEmbedder(embedder: Embedder, options: PipelineOptions = {}): Promise<FacePipeline> {
    const { detector, runtime } = await openDetector(options.detector);
    return new FacePipeline(detector, runtime, embedder, options.quality ?? {}, options.meshAlignment ?? true);
  }

  async disposeDetector(): Promise<void> {
    await Promise.all([this.detectorRuntime.dispose(), this.disposeLandmarker()]);
  }

  private async disposeLandmarker(): Promise<void> {
    const landmarker = this.landmarker;
    this.landmarker = null;
    if (landmarker)
      await landmarker.then(
        (l) => l.dispose(),
        () => undefined,
      );
  }

  detect(image: RgbImage): Promise<Detection[]> {
    return this.detector.detect(image);
  }

  align(image: RgbImage, detection: Detection): { crop: RgbImage; quality: FaceQuality } {
    const { crop } = alignFace(image, detection.keypoints, this.embedder.inputSize);
    return { crop, quality: assessQuality(crop, detection, this.quality) };
  }

  /**
   * Aligns on five face mesh points (eye centres, nose tip, mouth corners)
   * to the full ArcFace template, which BlazeFace's keypoints (one mouth
   * point) cannot fit. It costs a second model run per face, so it is for the
   * faces that decide something: enrolment photos, photos, a face's first
   * frames in a stream (README, "Accuracy": with the mirror image as well,
   * dev-pairs 99.1 -> 99.5 %, one-photo TPIR at 1 in 60 strangers 96.0 ->
   * 99.1 %); every later frame keeps align(). The crop's embedding is
   * computed as any other, so the embedder id does not change. Falls back
   * to align() when the mesh model does not find a face in the detection's
   * region.
   */
  async alignOnMesh(image: RgbImage, detection: Detection): Promise<{ crop: RgbImage; quality: FaceQuality }> {
    if (!this.meshAlignment) return this.align(image, detection);
    this.landmarker ??= FaceLandmarker.open();
    const { crop } = await (await this.landmarker).align(image, detection, this.embedder.inputSize);
    return { crop, quality: assessQuality(crop, detection, this.quality) };
  }

  embed(crops: RgbImage[], options?: EmbedOptions): Promise<Float32Array[]> {
    return crops.length === 0 ? Promise.resolve([]) : this.embedder.embed(crops, options);
  }

  /**
   * A face as one careful embedding: aligned on the mesh and embedded with
   * its mirror image, as the gallery's crops are. For photos (identify,
   * eval, eval-pairs).
   */
  async embedCarefully(image: RgbImage, detection: Detection): Promise<Float32Array> {
    const { crop } = await this.alignOnMesh(image, detection);
    return (await this.embed([crop], { mirror: true }))[0];
  }

  /**
   * Detects, aligns and embeds every face. With `qualityGate` (default true)
   * faces that fail a quality threshold are returned with their reasons but
   * not embedded. `careful` (default false): align on the mesh and embed
   * with the mirror image (a photo, where one decision rests on one frame);
   * false: BlazeFace's keypoints and one inference (a stream's frames).
   */
  async analyse(
    image: RgbImage,
    options: { qualityGate?: boolean; maxFaces?: number; careful?: boolean } = {},
  ): Promise<{ faces: AnalysedFace[]; timings: StageTimings }> {
    const t0 = now();
    let detections = await this.detect(image);
    if (options.maxFaces !== undefined) detections = detections.slice(0, options.maxFaces);
    const t1 = now();
    const careful = options.careful ?? false;
    const faces: AnalysedFace[] = [];
    for (const d of detections)
      faces.push({ ...d, ...(careful ? await this.alignOnMesh(image, d) : this.align(image, d)) });
    const t2 = now();
    const gate = options.qualityGate ?? true;
    const toEmbed = faces.filter((f) => !gate || f.quality.ok);
    const embeddings = await this.embed(
      toEmbed.map((f) => f.crop),
      { mirror: careful },
    );
    toEmbed.forEach((f, i) => {
      f.embedding = embeddings[i];
    });
    const t3 = now();
    return { faces, timings: { detect: t1 - t0, align: t2 - t1, embed: t3 - t2 } };
  }

  async dispose(): Promise<void> {
    await Promise.all([this.detectorRuntime.dispose(), this.embedder.dispose(), this.disposeLandmarker()]);
  }
}

/**
 * The face a photo is about: the largest visible area (the box clipped to
 * the frame) weighted by the detector's score. Plain box area lets a
 * half-visible bystander cut by the frame edge win over the subject (3 of the
 * 4 misidentified dev photos before this rule).
 */
export function mainFace<T extends { box: Box; score: number }>(
  faces: T[],
  frame: { width: number; height: number },
): T | undefined {
  const weight = (f: T) => {
    const w = Math.min(f.box.x + f.box.width, frame.width) - Math.max(f.box.x, 0);
    const h = Math.min(f.box.y + f.box.height, frame.height) - Math.max(f.box.y, 0);
    return Math.max(0, w) * Math.max(0, h) * f.score;
  };
  return faces.reduce<T | undefined>((best, f) => (!best || weight(f) > weight(best) ? f : best), undefined);
}
