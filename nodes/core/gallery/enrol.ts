/**
 * Enrolment: photos of one person in, aligned crops into the gallery, with a
 * report per photo of what was accepted and why anything was not. Nothing is
 * written unless enough photos pass (default 3), so a bad batch changes
 * nothing.
 */
import type { FaceQuality, QualityReason } from '../align/quality';
import { decodeImage, ImageError } from '../media/decode';
import type { Gallery, PersonRecord } from './gallery';
import type { RgbImage } from '../media/image';
import { enrolmentOutliers } from '../identify/imprint';
import type { Embedder } from '../embed/embedder';
import { FacePipeline, mainFace } from '../pipeline';

export type RejectCode = QualityReason['code'] | 'no-face' | 'outlier' | ImageError['code'];

export interface PhotoReport {
  source: string;
  accepted: boolean;
  faces: number;
  reasons: { code: RejectCode; message: string }[];
  quality?: CropQuality;
}

/** What enrolment keeps of a crop's quality (stored with it in the gallery). */
export type CropQuality = Pick<FaceQuality, 'sharpness' | 'yawDeg'>;

export interface EnrolResult {
  name: string;
  person: PersonRecord | null;
  accepted: number;
  rejected: number;
  photos: PhotoReport[];
}

export interface EnrolOptions {
  /** Fewest good photos to enrol a new person (default 3). */
  minPhotos?: number;
  /** Reject photos far from the rest of the person's photos (default true). */
  rejectOutliers?: boolean;
}

export type EnrolInput = string | Buffer | { source: string; image: RgbImage };

export class EnrolError extends Error {
  readonly code = 'ERR_TOO_FEW_PHOTOS';
  constructor(message: string, readonly result: EnrolResult) {
    super(message);
    this.name = 'EnrolError';
  }
}

interface Candidate {
  report: PhotoReport;
  crop: RgbImage;
  embedding: Float32Array;
}

function describeInput(input: EnrolInput, index: number): string {
  if (typeof input === 'string') return input;
  if (Buffer.isBuffer(input)) return `buffer #${index + 1}`;
  return input.source;
}

async function examine(pipeline: FacePipeline, input: EnrolInput, source: string): Promise<Candidate | PhotoReport> {
  let image: RgbImage;
  try {
    image = typeof input === 'string' || Buffer.isBuffer(input) ? await decodeImage(input) : input.image;
  } catch (error) {
    const e = error as ImageError;
    return { source, accepted: false, faces: 0, reasons: [{ code: e.code ?? 'ERR_IMAGE_CORRUPT', message: e.message }] };
  }
  const detections = await pipeline.detect(image);
  const face = mainFace(detections, image);
  if (!face) {
    return { source, accepted: false, faces: 0, reasons: [{ code: 'no-face', message: 'no face found' }] };
  }
  // Enrolment photos align on face mesh points: a steadier weight for every later probe (pipeline.ts).
  const { crop, quality } = await pipeline.alignForEnrolment(image, face);
  const report: PhotoReport = { source, accepted: quality.ok, faces: detections.length, reasons: [...quality.reasons], quality };
  if (!quality.ok) return report;
  const [embedding] = await pipeline.embed([crop]);
  return { report, crop, embedding };
}

export async function enrolPerson(pipeline: FacePipeline, gallery: Gallery, name: string, inputs: EnrolInput[],
  options: EnrolOptions = {}): Promise<EnrolResult> {
  const reports: PhotoReport[] = [];
  const candidates: Candidate[] = [];
  for (const [index, input] of inputs.entries()) {
    const examined = await examine(pipeline, input, describeInput(input, index));
    if ('crop' in examined) {
      candidates.push(examined);
      reports.push(examined.report);
    } else {
      reports.push(examined);
    }
  }
  return commitCandidates(pipeline.embedder, gallery, name, candidates, reports, options);
}

/**
 * Enrols crops that are already aligned and quality-checked (walk-up
 * enrolment from a camera): the same outlier check, minimum and atomic
 * commit as photos.
 */
export async function enrolCrops(embedder: Embedder, gallery: Gallery, name: string,
  crops: { source: string; crop: RgbImage; quality: CropQuality }[], rejected: PhotoReport[] = [],
  options: EnrolOptions = {}): Promise<EnrolResult> {
  const embeddings = await embedder.embed(crops.map((c) => c.crop));
  const candidates = crops.map((c, i) => ({
    crop: c.crop,
    embedding: embeddings[i],
    report: { source: c.source, accepted: true, faces: 1, reasons: [], quality: c.quality } as PhotoReport,
  }));
  return commitCandidates(embedder, gallery, name, candidates, [...candidates.map((c) => c.report), ...rejected], options);
}

async function commitCandidates(embedder: Embedder, gallery: Gallery, name: string, candidates: Candidate[],
  reports: PhotoReport[], options: EnrolOptions): Promise<EnrolResult> {
  const minPhotos = options.minPhotos ?? 3;
  // Outliers are judged against everything known of the person: a photo of
  // someone else in the batch stands out from both the batch and the gallery.
  let kept = candidates;
  const existing = gallery.getPerson(name);
  if ((options.rejectOutliers ?? true) && candidates.length > 0) {
    const known = existing ? (await gallery.embeddings(embedder.id, (c) => embedder.embed(c))).get(existing.id) ?? [] : [];
    const pool = [...candidates.map((c) => c.embedding), ...known];
    if (pool.length >= 3) {
      const outliers = new Set(enrolmentOutliers(pool).filter((i) => i < candidates.length));
      kept = candidates.filter((c, i) => {
        if (!outliers.has(i)) return true;
        c.report.accepted = false;
        c.report.reasons.push({ code: 'outlier', message: 'does not look like the other photos of this person' });
        return false;
      });
    }
  }

  const result: EnrolResult = { name, person: null, accepted: kept.length, rejected: reports.length - kept.length, photos: reports };
  const needed = existing ? 1 : minPhotos;
  if (kept.length < needed) {
    throw new EnrolError(
      `${name}: ${kept.length} usable photo(s) of ${reports.length}, ${needed} needed; nothing was saved. ` +
      'Use clear, frontal, well-lit photos with one face each.', result);
  }
  result.person = await gallery.addCrops(name, kept.map((c) => ({
    image: c.crop,
    source: c.report.source,
    quality: { sharpness: c.report.quality?.sharpness, yawDeg: c.report.quality?.yawDeg },
  })));
  return result;
}
