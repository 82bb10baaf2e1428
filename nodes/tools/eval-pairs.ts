/**
 * The standard face-verification protocol on LFW's pairs.txt format
 * (`coral-face eval-pairs`; the command is cli/eval-pairs.ts). The first line says how many folds there are
 * and how many same-person and different-person pairs each holds; then per
 * fold the same-person lines (`name n1 n2`) followed by the different-person
 * lines (`name1 n1 name2 n2`). Image n of a person is
 * <images>/<name>/<name>_<nnnn>.jpg.
 *
 * Per fold, the cosine threshold that maximises accuracy on the other folds
 * decides the held-out fold; reported are the mean and standard deviation
 * (population, as numpy's std) of the fold accuracies, and over all pairs the
 * true-accept rate at false-accept rates 1e-2 and 1e-3. A pair with an image
 * where no face was found counts as wrong at any threshold.
 */
import * as fs from 'fs';
import * as path from 'path';
import { thresholdForFalseAccepts } from './evaluate';

export interface FacePair {
  fold: number;
  same: boolean;
  a: string;
  b: string;
}

export interface PairList {
  folds: number;
  pairsPerFold: number;
  pairs: FacePair[];
}

export class PairsFormatError extends Error {
  override readonly name = 'PairsFormatError';
  readonly code = 'ERR_PAIRS_FORMAT';
}

export function imagePath(imagesDir: string, name: string, number: number): string {
  return path.join(imagesDir, name, `${name}_${String(number).padStart(4, '0')}.jpg`);
}

/** Parses pairs.txt. `imagesDir` is where the person folders are. */
export function parsePairs(text: string, imagesDir: string): PairList {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const header = (lines.shift() ?? '').split(/\s+/).map(Number);
  if (header.length === 0 || !header.every((n) => Number.isInteger(n) && n > 0)) {
    throw new PairsFormatError('the first line of a pairs file gives the folds and the pairs per fold, e.g. "10 300"');
  }
  // LFW's View 1 files have a single count and one fold.
  const [folds, perKind] = header.length >= 2 ? header : [1, header[0]];
  if (lines.length !== folds * perKind * 2) {
    throw new PairsFormatError(
      `the header promises ${folds} folds of ${perKind} + ${perKind} pairs (${folds * perKind * 2} lines), the file has ${lines.length}`,
    );
  }
  const pairs = lines.map((line, i): FacePair => {
    const fields = line.split(/\s+/);
    const fold = Math.floor(i / (2 * perKind));
    const same = i % (2 * perKind) < perKind;
    const number = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new PairsFormatError(`line ${i + 2}: "${v}" is not an image number`);
      return n;
    };
    if (same && fields.length === 3)
      return {
        fold,
        same,
        a: imagePath(imagesDir, fields[0], number(fields[1])),
        b: imagePath(imagesDir, fields[0], number(fields[2])),
      };
    if (!same && fields.length === 4)
      return {
        fold,
        same,
        a: imagePath(imagesDir, fields[0], number(fields[1])),
        b: imagePath(imagesDir, fields[2], number(fields[3])),
      };
    throw new PairsFormatError(
      `line ${i + 2}: a ${same ? 'same-person line has 3' : 'different-person line has 4'} fields, got "${line}"`,
    );
  });
  return { folds, pairsPerFold: perKind * 2, pairs };
}

/** The images folder of a pairs file: `images/` beside it when there is one, else the file's own folder. */
export function defaultImagesDir(pairsFile: string): string {
  const beside = path.join(path.dirname(pairsFile), 'images');
  return fs.existsSync(beside) ? beside : path.dirname(pairsFile);
}

export interface PairsResult {
  pairs: number;
  folds: number;
  accuracy: number;
  std: number;
  foldAccuracies: number[];
  thresholds: number[];
  tarAtFar: { '1e-2': number; '1e-3': number };
  /** The thresholds those rates were read at, and how many different-person pairs set them. */
  farThresholds: { '1e-2': number; '1e-3': number };
  differentPairs: number;
  /** Images in which no face was found. */
  noFace: number;
  images: number;
}

type Scored = { fold: number; same: boolean; score: number | null };

/** Accuracy at threshold t (a pair is "same" when its cosine is above t; a pair without a score is wrong). */
function accuracyAt(scored: Scored[], t: number): number {
  const correct = scored.filter((p) => p.score !== null && (p.same ? p.score > t : p.score <= t)).length;
  return correct / Math.max(1, scored.length);
}

/** The threshold with the best accuracy: candidates halfway between consecutive scores. */
export function bestThreshold(scored: Scored[]): number {
  const scores = [...new Set(scored.filter((p) => p.score !== null).map((p) => p.score!))].sort((a, b) => a - b);
  if (scores.length === 0) return 0;
  const candidates = [
    scores[0] - 1e-6,
    ...scores.slice(1).map((s, i) => (s + scores[i]) / 2),
    scores[scores.length - 1] + 1e-6,
  ];
  // Sweep once: count same pairs above and different pairs at or below each candidate.
  const same = scored
    .filter((p) => p.same && p.score !== null)
    .map((p) => p.score!)
    .sort((a, b) => a - b);
  const diff = scored
    .filter((p) => !p.same && p.score !== null)
    .map((p) => p.score!)
    .sort((a, b) => a - b);
  let best = candidates[0];
  let bestCorrect = -1;
  let s = 0;
  let d = 0;
  for (const t of candidates) {
    while (s < same.length && same[s] <= t) s++;
    while (d < diff.length && diff[d] <= t) d++;
    const correct = same.length - s + d;
    if (correct > bestCorrect) {
      bestCorrect = correct;
      best = t;
    }
  }
  return best;
}

/** Runs the protocol given a cosine per pair (null when one of its images has no face). */
export function verificationResult(
  list: PairList,
  scores: (number | null)[],
  noFace: number,
  images: number,
): PairsResult {
  const scored: Scored[] = list.pairs.map((p, i) => ({ fold: p.fold, same: p.same, score: scores[i] }));
  const foldAccuracies: number[] = [];
  const thresholds: number[] = [];
  for (let fold = 0; fold < list.folds; fold++) {
    const train = list.folds > 1 ? scored.filter((p) => p.fold !== fold) : scored;
    const t = bestThreshold(train);
    thresholds.push(t);
    foldAccuracies.push(
      accuracyAt(
        scored.filter((p) => p.fold === fold),
        t,
      ),
    );
  }
  const mean = foldAccuracies.reduce((a, b) => a + b, 0) / foldAccuracies.length;
  const std = Math.sqrt(foldAccuracies.reduce((a, v) => a + (v - mean) ** 2, 0) / foldAccuracies.length);
  const impostors = scored.filter((p) => !p.same);
  // A different-person pair without a face cannot be falsely accepted.
  const impostorScores = impostors.filter((p) => p.score !== null).map((p) => p.score!);
  const genuine = scored.filter((p) => p.same);
  const tarAt = (far: number) => {
    const t = thresholdForFalseAccepts(impostorScores, Math.floor(far * impostors.length));
    return { t, tar: genuine.filter((p) => p.score !== null && p.score > t).length / Math.max(1, genuine.length) };
  };
  const [r2, r3] = [tarAt(1e-2), tarAt(1e-3)];
  return {
    pairs: list.pairs.length,
    folds: list.folds,
    accuracy: mean,
    std,
    foldAccuracies,
    thresholds,
    tarAtFar: { '1e-2': r2.tar, '1e-3': r3.tar },
    farThresholds: { '1e-2': r2.t, '1e-3': r3.t },
    differentPairs: impostors.length,
    noFace,
    images,
  };
}

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + v * b[i], 0);

/** Describes each distinct image once (`describe` gives an L2-normalised embedding or null) and runs the protocol. */
export async function evaluatePairs(
  list: PairList,
  describe: (file: string) => Promise<Float32Array | null>,
  onProgress?: (done: number, total: number) => void,
): Promise<PairsResult & { msPerImage: number }> {
  const files = [...new Set(list.pairs.flatMap((p) => [p.a, p.b]))];
  const embeddings = new Map<string, Float32Array | null>();
  const started = performance.now();
  for (const [i, file] of files.entries()) {
    embeddings.set(file, await describe(file));
    onProgress?.(i + 1, files.length);
  }
  const msPerImage = (performance.now() - started) / Math.max(1, files.length);
  const scores = list.pairs.map((p) => {
    const [a, b] = [embeddings.get(p.a), embeddings.get(p.b)];
    return a && b ? dot(a, b) : null;
  });
  const noFace = [...embeddings.values()].filter((e) => e === null).length;
  return { ...verificationResult(list, scores, noFace, files.length), msPerImage };
}
