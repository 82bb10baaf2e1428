/**
 * Gallery health on the user's own data: for each person, how their own photos score against the
 * rest of their photos (leave-one-out) and how close the nearest other person is; for the gallery,
 * the accept/reject curve of the threshold and a suggested threshold.
 *
 * - Leave-one-out: photo i of P is scored against P's weight without i (the sum minus its own unit
 *   vector, normalised) and every other person's full weight. Top-1 = P comes first. O(n·K·d).
 * - Genuine scores: each photo's leave-one-out cosine to its own person when P is top-1 (a photo
 *   that another person beats could never be accepted as P, whatever the threshold).
 * - Impostor scores: what a face that is not in the gallery would score, from two sources: the
 *   stored unknown visits (strangers the cameras really saw, best cosine over all people), and
 *   every photo of P against the other people (P as if never enrolled).
 * - Suggested threshold: the lowest threshold on a 0.01 grid (from 0.30 to 0.80) at which at most
 *   `targetFpir` of the impostor scores would be accepted (strangers kept out first; the gallery's
 *   acceptance at that threshold is shown beside it), only with enough scores to mean something,
 *   and none when no threshold in that range gets there (then the data, not the threshold, is wrong).
 */
import { l2normalize } from '../identify/imprint';

export interface HealthPersonInput {
  id: string;
  name: string;
  ignored?: boolean;
  /** Crop file names, in the order of `embeddings`. */
  files: readonly string[];
  embeddings: readonly Float32Array[];
}

export interface PhotoScore {
  file: string;
  /** Leave-one-out cosine to the person's own weight; null with a single photo. */
  cosine: number | null;
  /** Whether the person is top-1 for this photo with it left out; null with a single photo. */
  top1: boolean | null;
  /** Best other person for this photo and its cosine. */
  nearest: { personId: string; name: string; cosine: number } | null;
}

export interface PersonHealth {
  id: string;
  name: string;
  photos: PhotoScore[];
  /** Fraction of photos for which the person is top-1 with the photo left out; null below 2 photos. */
  top1Rate: number | null;
  meanCosine: number | null;
  /** The other person whose weight is closest to this person's, and the cosine between the weights. */
  nearest: { personId: string; name: string; cosine: number } | null;
  warnings: string[];
}

export interface CurvePoint {
  threshold: number;
  /** Share of genuine photos accepted. */
  tpir: number;
  /** Share of impostor scores accepted. */
  fpir: number;
}

export interface GalleryHealth {
  people: PersonHealth[];
  curve: CurvePoint[];
  genuine: number[];
  impostor: { strangers: number[]; otherPeople: number[] };
  suggestion: { threshold: number; tpir: number; fpir: number } | null;
  /** Why there is no suggestion, or what it rests on. */
  basis: string;
  targetFpir: number;
}

export const DEFAULT_TARGET_FPIR = 0.01;
/** Fewer impostor scores than this and a 1 % rate cannot be told from 0. */
export const MIN_IMPOSTOR_SCORES = 50;
export const MIN_GENUINE_SCORES = 6;
/** Weights closer than this: the two people are easily confused. */
export const CLOSE_WEIGHTS_COSINE = 0.45;
const GRID = { from: 0.2, to: 0.9, step: 0.01 };
const SUGGEST_RANGE = { min: 0.3, max: 0.8 };

export function galleryHealth(
  people: readonly HealthPersonInput[],
  strangers: readonly Float32Array[],
  options: { targetFpir?: number } = {},
): GalleryHealth {
  const targetFpir = options.targetFpir ?? DEFAULT_TARGET_FPIR;
  const units = people.map((p) => p.embeddings.map((e) => l2normalize(e)));
  const dimension = units.find((u) => u.length > 0)?.[0].length ?? 0;
  const sums = units.map((list) => {
    const sum = new Float64Array(dimension);
    for (const unit of list) for (let i = 0; i < dimension; i++) sum[i] += unit[i];
    return sum;
  });
  const weights = sums.map((sum, p) => (units[p].length > 0 ? l2normalize(sum) : null));

  const genuine: number[] = [];
  const otherPeople: number[] = [];
  const report: PersonHealth[] = people.map((person, p) => {
    const photos: PhotoScore[] = person.files.map((file, i) => {
      const unit = units[p][i];
      let nearest: PhotoScore['nearest'] = null;
      weights.forEach((w, q) => {
        if (q === p || !w) return;
        const cosine = dot(unit, w);
        if (!nearest || cosine > nearest.cosine) nearest = { personId: people[q].id, name: people[q].name, cosine };
      });
      const nearestOther = nearest as PhotoScore['nearest'];
      if (nearestOther) otherPeople.push(nearestOther.cosine);
      if (units[p].length < 2) return { file, cosine: null, top1: null, nearest: nearestOther };
      const rest = new Float64Array(dimension);
      for (let k = 0; k < dimension; k++) rest[k] = sums[p][k] - unit[k];
      const cosine = dot(unit, l2normalize(rest));
      const top1 = !nearestOther || cosine > nearestOther.cosine;
      if (top1) genuine.push(cosine);
      else genuine.push(-1);
      return { file, cosine, top1, nearest: nearestOther };
    });
    const scored = photos.filter((photo) => photo.cosine !== null);
    let nearest: PersonHealth['nearest'] = null;
    weights.forEach((w, q) => {
      if (q === p || !w || !weights[p]) return;
      const cosine = dot(weights[p], w);
      if (!nearest || cosine > nearest.cosine) nearest = { personId: people[q].id, name: people[q].name, cosine };
    });
    const top1Rate = scored.length > 0 ? scored.filter((photo) => photo.top1).length / scored.length : null;
    const meanCosine = scored.length > 0 ? scored.reduce((s, photo) => s + photo.cosine!, 0) / scored.length : null;
    const warnings: string[] = [];
    const closest = nearest as PersonHealth['nearest'];
    if (closest && closest.cosine >= CLOSE_WEIGHTS_COSINE) {
      warnings.push(
        `${person.name}'s photos are close to ${closest.name}'s: ${closest.cosine.toFixed(2)} — add better photos of both`,
      );
    }
    if (person.files.length < 3)
      warnings.push(`only ${person.files.length} photo(s): add a few more, from different days and angles`);
    if (top1Rate !== null && top1Rate < 1) {
      const lost = scored.filter((photo) => !photo.top1).length;
      warnings.push(`${lost} of ${scored.length} photos would be taken for someone else: check or delete them`);
    }
    return { id: person.id, name: person.name, photos, top1Rate, meanCosine, nearest: closest, warnings };
  });

  const strangerScores = strangers
    .map((embedding) => {
      const unit = l2normalize(embedding);
      let best = -1;
      for (const w of weights) if (w && w.length === unit.length) best = Math.max(best, dot(unit, w));
      return best;
    })
    .filter((score) => score > -1);

  const impostorScores = [...strangerScores, ...otherPeople];
  const curve: CurvePoint[] = [];
  for (let t = GRID.from; t <= GRID.to + 1e-9; t += GRID.step) {
    const threshold = Math.round(t * 100) / 100;
    curve.push({ threshold, tpir: share(genuine, threshold), fpir: share(impostorScores, threshold) });
  }

  let suggestion: GalleryHealth['suggestion'] = null;
  let basis: string;
  if (genuine.length < MIN_GENUINE_SCORES) {
    basis = `needs at least ${MIN_GENUINE_SCORES} photos of people with two photos or more (has ${genuine.length})`;
  } else if (impostorScores.length < MIN_IMPOSTOR_SCORES) {
    basis =
      `needs at least ${MIN_IMPOSTOR_SCORES} stranger faces or photos of other people (has ${impostorScores.length}); ` +
      'let the cameras see a few strangers, or enrol more people';
  } else {
    const point = curve.find(
      (c) => c.threshold >= SUGGEST_RANGE.min && c.threshold <= SUGGEST_RANGE.max && c.fpir <= targetFpir,
    );
    if (point) {
      suggestion = { threshold: point.threshold, tpir: point.tpir, fpir: point.fpir };
      basis =
        `${genuine.length} photos of your people against ${strangerScores.length} stranger faces and ` +
        `${otherPeople.length} photos of other people`;
    } else {
      basis =
        `no threshold up to ${SUGGEST_RANGE.max} keeps strangers under ${Math.round(targetFpir * 100)} %: some "strangers" may be ` +
        'people you know (name them under Unknown people), or two people look alike (see the advice below)';
    }
  }
  return {
    people: report,
    curve,
    genuine: genuine.filter((g) => g > -1),
    impostor: { strangers: strangerScores, otherPeople },
    suggestion,
    basis,
    targetFpir,
  };
}

function share(scores: readonly number[], threshold: number): number {
  if (scores.length === 0) return 0;
  let accepted = 0;
  for (const score of scores) if (score >= threshold) accepted++;
  return accepted / scores.length;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}
