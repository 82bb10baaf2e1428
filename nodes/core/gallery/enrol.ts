/**
 * Enrolment: photos of one person in, aligned crops into the gallery, with a
 * report per photo of what was accepted and why anything was not. Nothing is
 * written unless enough photos pass, so a bad batch changes nothing.
 *
 * The bar a photo must clear, and why:
 * - It must show one usable face (the quality gate: size, sharpness, pose,
 *   exposure).
 * - It must not be stored already: the same crop (same pixels, or an
 *   embedding practically equal to a stored one: the same photo re-encoded)
 *   never counts twice, within a batch or across runs, so re-running an
 *   enrolment that completed adds nothing.
 * - Added to someone already known, it must be recognised as them by the
 *   gallery as it is (cosine to their weight at or above the recognition
 *   threshold, and ahead of everyone else by the margin). This, not a check
 *   against the new batch, is what stops a stranger from joining a person: a
 *   batch of someone else is consistent with itself, and before this rule 7
 *   of 8 photos of another man were added to "Andre Agassi". The same bar
 *   holds for walk-up enrolment from a camera.
 * - Enrolling a new person, the photos must agree with each other (the
 *   outlier check: a photo far from the mean of the others is someone else or
 *   a bad crop), and none may be recognised as someone already in the gallery
 *   (a mislabelled photo, or the same person under a second name).
 * - A name that only resembles an existing one ("andre_agassi" for "Andre
 *   Agassi") is never taken to mean that person: the caller chooses 'add' or
 *   'new' (the gallery refuses otherwise).
 */
import type { FaceQuality, QualityReason } from '../align/quality';
import { CodedError } from '../common/errors';
import { type Embedder, embedFor } from '../embed/embedder';
import {
  cosinesToRest,
  DEFAULT_MARGIN,
  DEFAULT_OUTLIER_MIN_COSINE,
  DEFAULT_THRESHOLD,
  ImprintedHead,
  l2normalize,
} from '../identify/imprint';
import { decodeImage, ImageError } from '../media/decode';
import type { RgbImage } from '../media/image';
import { FacePipeline, mainFace } from '../pipeline';
import { cropDigest, type AddMode, type Gallery } from './gallery';
import { nameCollisionError, type PersonRecord } from './format';

export type RejectCode =
  | QualityReason['code']
  | 'no-face'
  | 'outlier'
  | 'duplicate'
  | 'not-this-person'
  | 'known-person'
  | 'ERR_IMAGE_INVALID'
  | ImageError['code'];

export interface PhotoReport {
  source: string;
  accepted: boolean;
  faces: number;
  reasons: { code: RejectCode; message: string }[];
  quality?: CropQuality;
  /** For a photo checked against people already enrolled: its cosine to the person it was meant for. */
  cosine?: number;
}

/** What enrolment keeps of a crop's quality (stored with it in the gallery). */
export type CropQuality = Pick<FaceQuality, 'sharpness' | 'yawDeg'>;

export interface EnrolResult {
  name: string;
  person: PersonRecord | null;
  /** Whether the photos went to a person who was already in the gallery. */
  existing: boolean;
  accepted: number;
  rejected: number;
  photos: PhotoReport[];
}

export interface EnrolOptions {
  /** Fewest good photos to enrol a new person (default 3). */
  minPhotos?: number;
  /** Reject new-person photos far from the rest of the batch (default true). */
  rejectOutliers?: boolean;
  /** How the name finds its person (see AddMode): 'auto' (default), 'add' or 'new'. */
  mode?: AddMode;
  /** The gallery's recognition threshold and margin: photos for a known person must be recognised as them. */
  threshold?: number;
  margin?: number;
}

export type EnrolInput = string | Buffer | { source: string; image: RgbImage };

export class EnrolError extends CodedError<'ERR_TOO_FEW_PHOTOS'> {
  constructor(
    message: string,
    readonly result: EnrolResult,
  ) {
    super('ERR_TOO_FEW_PHOTOS', message);
  }
}

/**
 * Two embeddings of one face crop this close are the same photo (re-encoded,
 * resized); two different photos of one person sit at 0.5–0.9, and even
 * consecutive frames of a still face stay under it.
 */
export const DUPLICATE_MIN_COSINE = 0.995;

interface Candidate {
  report: PhotoReport;
  crop: RgbImage;
  embedding: Float32Array;
  digest: string;
}

function describeInput(input: EnrolInput, index: number): string {
  if (typeof input === 'string') return input;
  if (Buffer.isBuffer(input)) return `buffer #${index + 1}`;
  return typeof input?.source === 'string' ? input.source : `photo #${index + 1}`;
}

function isInput(input: unknown): input is EnrolInput {
  if (typeof input === 'string' || Buffer.isBuffer(input)) return true;
  const image = (input as { image?: RgbImage } | null)?.image;
  return !!image && image.data instanceof Uint8Array && Number.isInteger(image.width) && Number.isInteger(image.height);
}

async function examine(pipeline: FacePipeline, input: unknown, source: string): Promise<Candidate | PhotoReport> {
  if (!isInput(input)) {
    return {
      source,
      accepted: false,
      faces: 0,
      reasons: [
        {
          code: 'ERR_IMAGE_INVALID',
          message: 'not an image: give a file path, a Buffer of JPEG/PNG/WebP bytes, or { source, image }',
        },
      ],
    };
  }
  let image: RgbImage;
  try {
    image = typeof input === 'string' || Buffer.isBuffer(input) ? await decodeImage(input) : input.image;
  } catch (error) {
    const e = error as ImageError;
    return {
      source,
      accepted: false,
      faces: 0,
      reasons: [{ code: e.code ?? 'ERR_IMAGE_CORRUPT', message: e.message }],
    };
  }
  const detections = await pipeline.detect(image);
  const face = mainFace(detections, image);
  if (!face) {
    return { source, accepted: false, faces: 0, reasons: [{ code: 'no-face', message: 'no face found' }] };
  }
  // Enrolment photos align on face mesh points: a steadier weight for every later probe (pipeline.ts).
  const { crop, quality } = await pipeline.alignOnMesh(image, face);
  const report: PhotoReport = {
    source,
    accepted: quality.ok,
    faces: detections.length,
    reasons: [...quality.reasons],
    quality: { sharpness: quality.sharpness, yawDeg: quality.yawDeg },
  };
  if (!quality.ok) return report;
  // With its mirror image, as the gallery embeds its crops: duplicates and checks compare like with like.
  const [embedding] = await pipeline.embed([crop], { mirror: true });
  return { report, crop, embedding, digest: cropDigest(crop) };
}

export async function enrolPerson(
  pipeline: FacePipeline,
  gallery: Gallery,
  name: string,
  inputs: unknown[],
  options: EnrolOptions = {},
): Promise<EnrolResult> {
  const reports: PhotoReport[] = [];
  const candidates: Candidate[] = [];
  for (const [index, input] of (Array.isArray(inputs) ? inputs : []).entries()) {
    const examined = await examine(pipeline, input, describeInput(input as EnrolInput, index));
    if ('crop' in examined) {
      candidates.push(examined);
      reports.push(examined.report);
    } else {
      reports.push(examined);
    }
  }
  return commitCandidates(pipeline.embedder, gallery, name, candidates, reports, options, 'embedding');
}

/**
 * Enrols crops that are already aligned and quality-checked (walk-up
 * enrolment from a camera, a face library group), under the same bar and
 * atomic commit as photos. One difference: within the batch, only crops with
 * the same pixels count once. Frames of a face that stands still are
 * distinct frames (the walk-up collector takes them apart in time), yet their
 * embeddings can reach the duplicate cosine; a crop already stored for the
 * person still counts once, so a walk-up run again adds nothing.
 */
export async function enrolCrops(
  embedder: Embedder,
  gallery: Gallery,
  name: string,
  crops: { source: string; crop: RgbImage; quality: CropQuality }[],
  rejected: PhotoReport[] = [],
  options: EnrolOptions = {},
): Promise<EnrolResult> {
  const embeddings =
    crops.length > 0
      ? await embedder.embed(
          crops.map((c) => c.crop),
          { mirror: true },
        )
      : [];
  const candidates: Candidate[] = crops.map((c, i) => ({
    crop: c.crop,
    embedding: embeddings[i],
    digest: cropDigest(c.crop),
    report: {
      source: c.source,
      accepted: true,
      faces: 1,
      reasons: [],
      quality: { sharpness: c.quality.sharpness, yawDeg: c.quality.yawDeg },
    },
  }));
  return commitCandidates(
    embedder,
    gallery,
    name,
    candidates,
    [...candidates.map((c) => c.report), ...rejected],
    options,
    'pixels',
  );
}

function reject(candidate: Candidate, code: RejectCode, message: string): false {
  candidate.report.accepted = false;
  candidate.report.reasons.push({ code, message });
  return false;
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, value, i) => sum + value * b[i], 0);
const round = (value: number) => Math.round(value * 1000) / 1000;

/** The person a name is meant for, as the gallery will resolve it (it checks again when it writes). */
function targetOf(gallery: Gallery, name: string, mode: AddMode): PersonRecord | undefined {
  const { exact, similar } = gallery.matchName(name);
  if (mode === 'new') return undefined;
  if (exact) return exact;
  return mode === 'add' && similar.length === 1 ? similar[0] : undefined;
}

async function commitCandidates(
  embedder: Embedder,
  gallery: Gallery,
  name: string,
  candidates: Candidate[],
  reports: PhotoReport[],
  options: EnrolOptions,
  /** What makes two candidates of this batch the same: their embeddings (photos: re-encoded, resized) or their pixels. */
  sameInBatch: 'embedding' | 'pixels',
): Promise<EnrolResult> {
  const minPhotos = options.minPhotos ?? 3;
  const mode = options.mode ?? 'auto';
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const margin = options.margin ?? DEFAULT_MARGIN;
  const target = targetOf(gallery, name, mode);
  const { exact, similar } = gallery.matchName(name);
  if (mode === 'auto' && !exact && similar.length > 0) {
    throw nameCollisionError(name, similar); // before any work: the gallery would refuse it at the end
  }
  // embedFor: the cache of this id never takes another model's embeddings (a pair switching sides).
  const byPerson = await gallery.embeddings(embedder.id, embedFor(embedder, embedder.id));
  const known = target ? (byPerson.get(target.id) ?? []) : [];
  const storedDigests = new Set(target?.crops.map((crop) => crop.sha256).filter(Boolean));

  // Duplicates: the same crop, in this batch or already stored, counts once.
  const seen: Candidate[] = [];
  let kept = candidates.filter((candidate) => {
    const unit = l2normalize(candidate.embedding);
    if (
      storedDigests.has(candidate.digest) ||
      known.some((vector) => dot(unit, l2normalize(vector)) >= DUPLICATE_MIN_COSINE)
    ) {
      return reject(candidate, 'duplicate', `already enrolled for ${target!.name}`);
    }
    const twin = seen.find(
      (other) =>
        other.digest === candidate.digest ||
        (sameInBatch === 'embedding' && dot(unit, l2normalize(other.embedding)) >= DUPLICATE_MIN_COSINE),
    );
    if (twin) return reject(candidate, 'duplicate', `the same photo as ${twin.report.source}`);
    seen.push(candidate);
    return true;
  });

  const head = ImprintedHead.fromEmbeddings(byPerson, { threshold, margin });
  const nameOf = (id: string | null) => gallery.listPeople().find((p) => p.id === id)?.name ?? String(id);
  if (target && known.length > 0) {
    // Joining someone known: each photo must already be recognised as them.
    kept = kept.filter((candidate) => {
      const result = head.classify(candidate.embedding);
      const own = result.scores.find((s) => s.personId === target.id)?.cosine ?? -1;
      candidate.report.cosine = round(own);
      if (result.personId === target.id) return true;
      if (result.bestPersonId !== target.id && result.cosine >= threshold) {
        return reject(
          candidate,
          'not-this-person',
          `looks like ${nameOf(result.bestPersonId)} (${round(result.cosine)}), not ${target.name} (${round(own)})`,
        );
      }
      return reject(
        candidate,
        'not-this-person',
        `does not match the photos already enrolled for ${target.name} (${round(own)}; ${threshold} needed, ahead of anyone else by ${margin})`,
      );
    });
  } else {
    if ((options.rejectOutliers ?? true) && kept.length >= 3) {
      const cosines = cosinesToRest(kept.map((c) => c.embedding));
      kept = kept.filter(
        (candidate, i) =>
          cosines[i] >= DEFAULT_OUTLIER_MIN_COSINE ||
          reject(candidate, 'outlier', `does not look like the other photos of this person (${round(cosines[i])})`),
      );
    }
    // A new person's photo that the gallery already recognises is someone else's (or theirs under another name).
    kept = kept.filter((candidate) => {
      const result = head.classify(candidate.embedding);
      if (result.personId === null) return true;
      return reject(
        candidate,
        'known-person',
        `this is ${nameOf(result.personId)} (${round(result.cosine)}), already in the gallery`,
      );
    });
  }

  const existing = target !== undefined && known.length > 0;
  const result: EnrolResult = {
    name,
    person: null,
    existing,
    accepted: kept.length,
    rejected: reports.length - kept.length,
    photos: reports,
  };
  const needed = existing ? 1 : minPhotos;
  if (kept.length < needed) {
    const who = existing ? `${target.name} (already enrolled)` : name;
    throw new EnrolError(
      `${who}: ${kept.length} usable photo(s) of ${reports.length}, ${needed} needed; nothing was saved. ` +
        (existing
          ? 'Photos added to a known person must be recognised as them already.'
          : 'Use clear, frontal, well-lit photos with one face each.'),
      result,
    );
  }
  result.person = await gallery.addCrops(
    name,
    kept.map((c) => ({
      image: c.crop,
      source: c.report.source,
      quality: { sharpness: c.report.quality?.sharpness, yawDeg: c.report.quality?.yawDeg },
    })),
    { mode },
  );
  return result;
}
