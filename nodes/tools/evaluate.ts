/**
 * The fixed accuracy protocol (`coral-face eval`). On a folder laid out as
 * one folder per identity plus `_unknown/` (impostors) and `_group/`
 * (ignored): per identity the first `enrolCount` photos by file name enrol,
 * the rest probe. The gallery is the imprinted head (normalised mean of
 * normalised embeddings); scores are cosines.
 *
 * Reported: closed-set top-1 over all probes (a probe whose face is not found
 * counts as wrong), and the open-set TPIR (probes accepted as the right
 * person) at the thresholds that let in 1 and 3 of every 60 impostors.
 */
import * as fs from 'fs';
import * as path from 'path';
import { l2normalize } from '../core/identify/imprint';

export const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp)$/i;

export interface Dataset {
  identities: { name: string; enrol: string[]; probes: string[] }[];
  impostors: string[];
}

export function readDataset(dir: string, enrolCount = 5): Dataset {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`dataset folder not found: ${dir}`);
  const images = (folder: string) => fs.readdirSync(folder).filter((f) => IMAGE_EXTENSIONS.test(f)).sort().map((f) => path.join(folder, f));
  const folders = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const identities = folders.filter((f) => !f.startsWith('_')).map((name) => {
    const files = images(path.join(dir, name));
    return { name, enrol: files.slice(0, enrolCount), probes: files.slice(enrolCount) };
  }).filter((identity) => identity.enrol.length > 0);
  const impostors = folders.includes('_unknown') ? images(path.join(dir, '_unknown')) : [];
  if (identities.length === 0) throw new Error(`no identity folders with images in ${dir}`);
  return { identities, impostors };
}

/** One system under test: an embedding per photo, or null when no face is found. */
export type DescribePhoto = (file: string) => Promise<Float32Array | null>;

export interface EvalResult {
  identities: number;
  probes: number;
  impostors: number;
  top1: number;
  tpirAtFpir: { '1/60': number; '3/60': number };
  thresholds: { '1/60': number; '3/60': number };
  detectFailures: number;
  /** TPIR and FPIR over a sweep of thresholds: the curve the default threshold was picked from. */
  curve: { threshold: number; tpir: number; fpir: number }[];
}

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + v * b[i], 0);

/**
 * The threshold that lets in `k` impostors: halfway between the k-th and
 * (k+1)-th highest impostor score, so exactly k score above it.
 */
export function thresholdForFalseAccepts(impostorScores: number[], k: number): number {
  const sorted = [...impostorScores].sort((a, b) => b - a);
  if (sorted.length === 0) return -1;
  if (k >= sorted.length) return sorted[sorted.length - 1] - 1e-6;
  if (k <= 0) return sorted[0] + 1e-6;
  return (sorted[k - 1] + sorted[k]) / 2;
}

export async function evaluate(dataset: Dataset, describe: DescribePhoto,
  onProgress?: (done: number, total: number) => void): Promise<EvalResult> {
  const total = dataset.identities.reduce((n, i) => n + i.enrol.length + i.probes.length, 0) + dataset.impostors.length;
  let done = 0;
  let detectFailures = 0;
  const embed = async (file: string) => {
    const e = await describe(file);
    if (!e) detectFailures++;
    onProgress?.(++done, total);
    return e;
  };

  const weights: Float32Array[] = [];
  const probes: { identity: number; embedding: Float32Array | null }[] = [];
  for (const [index, identity] of dataset.identities.entries()) {
    let sum: Float32Array | null = null;
    for (const file of identity.enrol) {
      const e = await embed(file);
      if (!e) continue;
      sum ??= new Float32Array(e.length);
      const n = l2normalize(e);
      for (let k = 0; k < n.length; k++) sum[k] += n[k];
    }
    // An identity with no usable enrolment photo cannot be matched (empty weight).
    weights[index] = sum ? l2normalize(sum) : new Float32Array(0);
    for (const file of identity.probes) probes.push({ identity: index, embedding: await embed(file) });
  }
  const impostorScores: number[] = [];
  for (const file of dataset.impostors) {
    const e = await embed(file);
    // An impostor whose face is not found cannot be let in.
    if (e) impostorScores.push(Math.max(...weights.map((w) => (w.length ? dot(l2normalize(e), w) : -1))));
  }

  const scored = probes.map(({ identity, embedding }) => {
    if (!embedding) return { correct: false, score: -Infinity };
    const scores = weights.map((w) => (w.length ? dot(l2normalize(embedding), w) : -1));
    const best = scores.indexOf(Math.max(...scores));
    return { correct: best === identity, score: scores[best] };
  });
  const top1 = scored.filter((s) => s.correct).length / Math.max(1, scored.length);
  const tpirAt = (t: number) => scored.filter((s) => s.correct && s.score > t).length / Math.max(1, scored.length);
  const fpirAt = (t: number) => impostorScores.filter((s) => s > t).length / Math.max(1, dataset.impostors.length);
  const n = dataset.impostors.length;
  const t1 = thresholdForFalseAccepts(impostorScores, Math.round(n / 60));
  const t3 = thresholdForFalseAccepts(impostorScores, Math.round((3 * n) / 60));
  const curve = [];
  for (let t = 0.2; t <= 0.8 + 1e-9; t += 0.025) curve.push({ threshold: Math.round(t * 1000) / 1000, tpir: tpirAt(t), fpir: fpirAt(t) });
  return {
    identities: dataset.identities.length,
    probes: scored.length,
    impostors: n,
    top1,
    tpirAtFpir: { '1/60': tpirAt(t1), '3/60': tpirAt(t3) },
    thresholds: { '1/60': t1, '3/60': t3 },
    detectFailures,
    curve,
  };
}
