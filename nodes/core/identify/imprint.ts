/**
 * Open-set classifier head built by weight imprinting (Qi, Brown & Lowe 2018),
 * the way Coral's ImprintingEngine does it: each person's weight is the running
 * sum of their L2-normalised embeddings, normalised again when used. A probe is
 * scored by the cosine between it and each weight; the best person is accepted
 * only if that cosine is high enough and clearly ahead of the runner-up.
 *
 * Keeping the raw sum and the count (not a mean) makes adding or removing one
 * example O(d) and exact up to rounding, so enrolment and deletion never need
 * the other examples again.
 */

/**
 * Temperature of the softmax that turns cosines into a confidence.
 *
 * Face embeddings put their cosines in a narrow band (same person roughly
 * 0.4–0.8, different people roughly 0–0.3), so an unscaled softmax over
 * [-1, 1] is close to uniform and says nothing. Normalised-softmax heads
 * (NormFace, CosFace, ArcFace) multiply cosines by a scale s for the same
 * reason; practice puts s around 16–30 for a handful of classes. We use 20 =
 * 1 / DEFAULT_MARGIN: a lead of exactly the default margin then gives odds of
 * e:1 (≈73 % in a two-way contest), and a typical genuine-vs-impostor gap of
 * 0.3 gives e^6 ≈ 400:1 (> 99 %), so the number reads as "how clearly the
 * best person beats the others".
 */
export const SOFTMAX_SCALE = 20;

/** The name given to a face the head does not accept: in messages, visits and Home Assistant events. */
export const UNKNOWN = 'unknown';

/**
 * Lowest best-cosine accepted as a known person. Calibrated with
 * `npm run bench:accuracy` against 1,437 strangers (dev's 60 plus every
 * dev-pairs photo of someone not enrolled) and a 50-person gallery enrolled
 * as enrolment does it: the threshold that lets in 1 in 60 of four folds of
 * the strangers comes out at 0.502-0.527 (1-5 photos per person) and lets in
 * up to 2 in 60 on the fifth. 0.53 sits above all of those: 0.42-0.67
 * strangers per 60 over all of them, known faces kept 99.1 % with 3-5 photos
 * (0.49, the dev-only choice before, let in 1.4-1.7 per 60). README, "Accuracy".
 */
export const DEFAULT_THRESHOLD = 0.53;

/**
 * Smallest lead of the best cosine over the second-best accepted as a known
 * person. On the same calibration 0.05 turns away about 1 in 10 of the
 * strangers the threshold alone lets in, for one known face in 429 at 5
 * photos per person; 0.08 adds little and loses known faces at 1 photo.
 */
export const DEFAULT_MARGIN = 0.05;

/**
 * Enrolment photos whose cosine to the mean of the person's other photos falls
 * below this are flagged. Deliberately well under DEFAULT_THRESHOLD: the mean
 * of several photos is a steadier reference than any single one, so genuine
 * photos in hard poses still clear it, while a crop of someone else or a
 * broken crop (cosine near 0) does not. Set by calibration alongside the
 * threshold; see the README.
 */
export const DEFAULT_OUTLIER_MIN_COSINE = 0.3;

/** Below this norm a vector is treated as zero rather than blown up to noise. */
const ZERO_NORM = 1e-12;

/**
 * Returns v / ‖v‖ (a new array). Done on the host because the Edge TPU has no
 * L2-norm op, so the embedder's output arrives unnormalised. A zero vector
 * stays zero, so it scores cosine 0 against everyone instead of NaN.
 */
export function l2normalize(v: ArrayLike<number>): Float32Array {
  let sumOfSquares = 0;
  for (let i = 0; i < v.length; i++) sumOfSquares += v[i] * v[i];
  if (!Number.isFinite(sumOfSquares)) {
    throw new RangeError('embedding contains NaN or Infinity');
  }
  const norm = Math.sqrt(sumOfSquares);
  const out = new Float32Array(v.length);
  if (norm < ZERO_NORM) return out;
  for (let i = 0; i < v.length; i++) out[i] = v[i] / norm;
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

export interface PersonScore {
  personId: string;
  cosine: number;
}

export type UnknownReason = 'no-people' | 'below-threshold' | 'ambiguous';

export interface Classification {
  /** The accepted person, or null for "unknown". */
  personId: string | null;
  /** The closest person even when rejected, so callers can explain the decision. */
  bestPersonId: string | null;
  /** Why personId is null; null when a person was accepted. */
  unknownReason: UnknownReason | null;
  /** Best cosine; -1 when there is nobody to compare with. */
  cosine: number;
  /** Runner-up cosine; -1 (the lowest possible) when fewer than two people. */
  secondCosine: number;
  /** Softmax probability of the best person over SOFTMAX_SCALE·cosine; 0 with no people. */
  confidence: number;
  /** Every person, best first. */
  scores: PersonScore[];
}

export interface ImprintedHeadOptions {
  threshold?: number;
  margin?: number;
  softmaxScale?: number;
}

interface PersonWeight {
  /** Sum of normalised examples in float64 so add-then-remove comes back to within rounding. */
  sum: Float64Array;
  count: number;
  /** sum / ‖sum‖, computed on first use after a change. */
  normalised: Float32Array | null;
}

export class ImprintedHead {
  readonly threshold: number;
  readonly margin: number;
  readonly softmaxScale: number;
  private readonly weights = new Map<string, PersonWeight>();
  /** Fixed by the first example; reset when the head becomes empty. */
  private dimension: number | null = null;

  constructor(options: ImprintedHeadOptions = {}) {
    this.threshold = options.threshold ?? DEFAULT_THRESHOLD;
    this.margin = options.margin ?? DEFAULT_MARGIN;
    this.softmaxScale = options.softmaxScale ?? SOFTMAX_SCALE;
    for (const [label, value] of [
      ['threshold', this.threshold],
      ['margin', this.margin],
      ['softmaxScale', this.softmaxScale],
    ] as const) {
      if (!Number.isFinite(value)) throw new RangeError(`${label} must be a finite number`);
    }
  }

  /** Builds a head from per-person embeddings (e.g. Gallery.embeddings()); people without any are skipped. */
  static fromEmbeddings(
    embeddingsByPerson: ReadonlyMap<string, readonly Float32Array[]>,
    options: ImprintedHeadOptions = {},
  ): ImprintedHead {
    const head = new ImprintedHead(options);
    for (const [personId, embeddings] of embeddingsByPerson) {
      for (const embedding of embeddings) head.add(personId, embedding);
    }
    return head;
  }

  add(personId: string, embedding: ArrayLike<number>): void {
    const unit = this.checkedUnit(embedding);
    let weight = this.weights.get(personId);
    if (!weight) {
      weight = { sum: new Float64Array(unit.length), count: 0, normalised: null };
      this.weights.set(personId, weight);
    }
    for (let i = 0; i < unit.length; i++) weight.sum[i] += unit[i];
    weight.count++;
    weight.normalised = null;
  }

  /**
   * Takes one example back out. The caller must pass an embedding it added
   * (the head keeps no examples, so it cannot check). The person disappears
   * with their last example.
   */
  remove(personId: string, embedding: ArrayLike<number>): void {
    const weight = this.weights.get(personId);
    if (!weight) throw new Error(`unknown person '${personId}'`);
    const unit = this.checkedUnit(embedding);
    if (weight.count <= 1) {
      this.removePerson(personId);
      return;
    }
    for (let i = 0; i < unit.length; i++) weight.sum[i] -= unit[i];
    weight.count--;
    weight.normalised = null;
  }

  removePerson(personId: string): boolean {
    const removed = this.weights.delete(personId);
    if (this.weights.size === 0) this.dimension = null;
    return removed;
  }

  renamePerson(oldId: string, newId: string): void {
    const weight = this.weights.get(oldId);
    if (!weight) throw new Error(`unknown person '${oldId}'`);
    if (oldId === newId) return;
    if (this.weights.has(newId)) throw new Error(`person '${newId}' already exists`);
    this.weights.delete(oldId);
    this.weights.set(newId, weight);
  }

  people(): string[] {
    return [...this.weights.keys()];
  }

  exampleCount(personId: string): number {
    return this.weights.get(personId)?.count ?? 0;
  }

  /** The normalised weight (a copy), or undefined for an unknown person. */
  weight(personId: string): Float32Array | undefined {
    const weight = this.weights.get(personId);
    return weight ? Float32Array.from(this.normalisedWeight(weight)) : undefined;
  }

  classify(embedding: ArrayLike<number>): Classification {
    if (this.weights.size === 0) {
      return {
        personId: null,
        bestPersonId: null,
        unknownReason: 'no-people',
        cosine: -1,
        secondCosine: -1,
        confidence: 0,
        scores: [],
      };
    }
    const probe = this.checkedUnit(embedding);
    const scores: PersonScore[] = [];
    for (const [personId, weight] of this.weights) {
      scores.push({ personId, cosine: dot(probe, this.normalisedWeight(weight)) });
    }
    // Ties broken by id so the same input always gives the same answer.
    scores.sort((a, b) => b.cosine - a.cosine || (a.personId < b.personId ? -1 : 1));

    const best = scores[0];
    const secondCosine = scores.length > 1 ? scores[1].cosine : -1;
    // Subtracting the best logit keeps exp() from overflowing for large scales.
    let partition = 0;
    for (const score of scores) partition += Math.exp(this.softmaxScale * (score.cosine - best.cosine));
    const confidence = 1 / partition;

    let unknownReason: UnknownReason | null = null;
    if (best.cosine < this.threshold) unknownReason = 'below-threshold';
    else if (best.cosine - secondCosine < this.margin) unknownReason = 'ambiguous';

    return {
      personId: unknownReason === null ? best.personId : null,
      bestPersonId: best.personId,
      unknownReason,
      cosine: best.cosine,
      secondCosine,
      confidence,
      scores,
    };
  }

  private normalisedWeight(weight: PersonWeight): Float32Array {
    weight.normalised ??= l2normalize(weight.sum);
    return weight.normalised;
  }

  private checkedUnit(embedding: ArrayLike<number>): Float32Array {
    if (embedding.length === 0) throw new RangeError('embedding is empty');
    if (this.dimension !== null && embedding.length !== this.dimension) {
      throw new RangeError(`embedding has ${embedding.length} values, the head holds ${this.dimension}`);
    }
    const unit = l2normalize(embedding);
    this.dimension = embedding.length;
    return unit;
  }
}

/**
 * For each photo of one person, the cosine between it and the normalised mean
 * of the other photos (leave-one-out). O(n·d): the total is summed once and
 * each photo's own share is subtracted. With a single photo there is nothing
 * to compare with, and its value is 1.
 */
export function cosinesToRest(embeddings: readonly ArrayLike<number>[]): number[] {
  if (embeddings.length === 0) return [];
  const dimension = embeddings[0].length;
  const units = embeddings.map((embedding, index) => {
    if (embedding.length !== dimension) {
      throw new RangeError(`embedding ${index} has ${embedding.length} values, expected ${dimension}`);
    }
    return l2normalize(embedding);
  });
  if (units.length === 1) return [1];
  const total = new Float64Array(dimension);
  for (const unit of units) for (let i = 0; i < dimension; i++) total[i] += unit[i];
  const rest = new Float64Array(dimension);
  return units.map((unit) => {
    for (let i = 0; i < dimension; i++) rest[i] = total[i] - unit[i];
    return dot(unit, l2normalize(rest));
  });
}

/**
 * Indices of enrolment photos that disagree with the person's other photos
 * (likely another face, a bad crop or a bad alignment), so enrolment can
 * reject them with a reason. With two photos that disagree, both are flagged:
 * there is no majority to say which one is wrong.
 */
export function enrolmentOutliers(
  embeddings: readonly ArrayLike<number>[],
  minCosineToRest: number = DEFAULT_OUTLIER_MIN_COSINE,
): number[] {
  const outliers: number[] = [];
  cosinesToRest(embeddings).forEach((cosine, index) => {
    if (cosine < minCosineToRest) outliers.push(index);
  });
  return outliers;
}
