/**
 * The recognition engine, stage by stage: detect (BlazeFace on the CPU),
 * align (similarity warp to the ArcFace template) with quality measures,
 * embed (MobileFaceNet, Edge TPU or CPU). Framework-free: the CLI, the
 * Node-RED nodes and the add-on all call this.
 */
import { CpuRuntime, InferenceRuntime, shippedModels } from '../../native';
import { FaceLandmarker, fivePoints, MIN_MESH_PRESENCE } from './align/landmarks';
import { alignFace, alignFaceFivePoints } from './align/warp';
import { assessQuality, FaceQuality, QualityThresholds } from './align/quality';
import { BlazeFaceVariant, Detection, FaceDetector, FaceDetectorOptions } from './detect/blazeface';
import { Embedder, TfliteEmbedder, TfliteEmbedderOptions } from './embed/embedder';
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
   * Align enrolment photos on face mesh landmarks (default true): see
   * alignForEnrolment. false: BlazeFace's keypoints for enrolment too.
   */
  meshAtEnrolment?: boolean;
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
  /** Opened on the first enrolment photo: recognition alone never pays for it. */
  private landmarker: Promise<FaceLandmarker> | null = null;

  private constructor(
    readonly detector: FaceDetector,
    private readonly detectorRuntime: InferenceRuntime,
    readonly embedder: Embedder,
    private readonly quality: Partial<QualityThresholds>,
    private readonly meshAtEnrolment: boolean,
  ) {}

  static async open(options: PipelineOptions = {}): Promise<FacePipeline> {
    const { detector, runtime } = await openDetector(options.detector);
    try {
      const embedder = await TfliteEmbedder.open(options.embedder);
      return new FacePipeline(detector, runtime, embedder, options.quality ?? {}, options.meshAtEnrolment ?? true);
    } catch (error) {
      await runtime.dispose();
      throw error;
    }
  }

  /** A pipeline over an embedder someone else owns (a shared device): dispose with disposeDetector(). */
  static async withEmbedder(embedder: Embedder, options: PipelineOptions = {}): Promise<FacePipeline> {
    const { detector, runtime } = await openDetector(options.detector);
    return new FacePipeline(detector, runtime, embedder, options.quality ?? {}, options.meshAtEnrolment ?? true);
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
   * Aligns a photo a person is enrolled from: on five face mesh points (eye
   * centres, nose tip, mouth corners) to the full ArcFace template, which
   * makes a steadier imprinted weight than BlazeFace's keypoints (README,
   * "Accuracy": with probes aligned as usual, one-photo TPIR at 1 in 60
   * strangers 96.0 -> 97.7 %). It costs a second model run per face, which
   * is why probes keep align(). The crop's embedding is computed as any
   * other, so the embedder id does not change. Falls back to align() when
   * the mesh model does not find a face in the detection's region.
   */
  async alignForEnrolment(image: RgbImage, detection: Detection): Promise<{ crop: RgbImage; quality: FaceQuality }> {
    if (!this.meshAtEnrolment) return this.align(image, detection);
    this.landmarker ??= FaceLandmarker.open();
    const { points, presence } = await (await this.landmarker).landmarks(image, detection);
    if (presence < MIN_MESH_PRESENCE) return this.align(image, detection);
    const { crop } = alignFaceFivePoints(image, fivePoints(points), this.embedder.inputSize);
    return { crop, quality: assessQuality(crop, detection, this.quality) };
  }

  embed(crops: RgbImage[]): Promise<Float32Array[]> {
    return crops.length === 0 ? Promise.resolve([]) : this.embedder.embed(crops);
  }

  /**
   * Detects, aligns and embeds every face. With `qualityGate` (default true)
   * faces that fail a quality threshold are returned with their reasons but
   * not embedded.
   */
  async analyse(
    image: RgbImage,
    options: { qualityGate?: boolean; maxFaces?: number } = {},
  ): Promise<{ faces: AnalysedFace[]; timings: StageTimings }> {
    const t0 = now();
    let detections = await this.detect(image);
    if (options.maxFaces !== undefined) detections = detections.slice(0, options.maxFaces);
    const t1 = now();
    const faces: AnalysedFace[] = detections.map((d) => ({ ...d, ...this.align(image, d) }));
    const t2 = now();
    const gate = options.qualityGate ?? true;
    const toEmbed = faces.filter((f) => !gate || f.quality.ok);
    const embeddings = await this.embed(toEmbed.map((f) => f.crop));
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
