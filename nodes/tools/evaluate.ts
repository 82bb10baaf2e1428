/**
 * The fixed accuracy protocol (`coral-face eval`). On a folder laid out as
 * one folder per identity plus `_unknown/` (impostors) and `_group/`
 * (ignored): per identity the first `shots` photos by file name enrol, the
 * rest probe. The gallery is the imprinted head itself (ImprintedHead, the
 * one the nodes use); scores are its cosines.
 *
 * Reported: closed-set top-1 over all probes (a probe whose face is not found
 * counts as wrong); the open-set TPIR (probes accepted as the right person)
 * at the thresholds that let in 1 and 3 of every 60 impostors; and what the
 * head's own rule (threshold and margin, the defaults unless given) does:
 * `atDefault`, so anyone can see what the defaults do on their own photos.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_MARGIN, DEFAULT_THRESHOLD, ImprintedHead, type Classification } from '../core/identify/imprint';

export const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp)$/i;
export const DEFAULT_SHOTS = 5;

export interface Dataset {
  identities: { name: string; enrol: string[]; probes: string[] }[];
  impostors: string[];
}

export function readDataset(dir: string, shots = DEFAULT_SHOTS): Dataset {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`dataset folder not found: ${dir}`);
  const images = (folder: string) =>
    fs
      .readdirSync(folder)
      .filter((f) => IMAGE_EXTENSIONS.test(f))
      .sort()
      .map((f) => path.join(folder, f));
  const folders = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const identities = folders
    .filter((f) => !f.startsWith('_'))
    .map((name) => {
      const files = images(path.join(dir, name));
      return { name, enrol: files.slice(0, shots), probes: files.slice(shots) };
    })
    .filter((identity) => identity.enrol.length > 0);
  const impostors = folders.includes('_unknown') ? images(path.join(dir, '_unknown')) : [];
  if (identities.length === 0) throw new Error(`no identity folders with images in ${dir}`);
  return { identities, impostors };
}

/**
 * One system under test: an embedding per photo, or null when no face is
 * found. `role` says whether the photo teaches the gallery or is a probe, for
 * systems that embed the two differently.
 */
export type DescribePhoto = (file: string, role: 'enrol' | 'probe') => Promise<Float32Array | null>;

export interface EvalOptions {
  /** The head's threshold and margin for `atDefault` (default: DEFAULT_THRESHOLD, DEFAULT_MARGIN). */
  threshold?: number;
  margin?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult {
  shots: number;
  identities: number;
  probes: number;
  impostors: number;
  top1: number;
  tpirAtFpir: { '1/60': number; '3/60': number };
  thresholds: { '1/60': number; '3/60': number };
  /** The head's decision (threshold and margin) as the nodes apply it: known faces kept, strangers let in. */
  atDefault: { threshold: number; margin: number; tpir: number; fpir: number };
  detectFailures: number;
  /** TPIR and FPIR over a sweep of thresholds, at atDefault's margin: the curve the default threshold was picked from. */
  curve: { threshold: number; tpir: number; fpir: number }[];
}

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

/** Whether the head's rule at (threshold, margin) accepts the classification's best person. */
function accepts(c: Classification, threshold: number, margin: number): boolean {
  return c.bestPersonId !== null && c.cosine >= threshold && c.cosine - c.secondCosine >= margin;
}

/**
 * Runs the protocol once per entry of `shotsList` (default: one run at
 * DEFAULT_SHOTS). Each photo is described once per role, however many runs
 * use it.
 */
export async function evaluateShots(
  dir: string,
  describe: DescribePhoto,
  shotsList: number[] = [DEFAULT_SHOTS],
  options: EvalOptions = {},
): Promise<EvalResult[]> {
  const datasets = shotsList.map((shots) => ({ shots, dataset: readDataset(dir, shots) }));
  const jobs = new Map<string, { file: string; role: 'enrol' | 'probe' }>();
  for (const { dataset } of datasets) {
    for (const identity of dataset.identities) {
      for (const file of identity.enrol) jobs.set(`enrol:${file}`, { file, role: 'enrol' });
      for (const file of identity.probes) jobs.set(`probe:${file}`, { file, role: 'probe' });
    }
    for (const file of dataset.impostors) jobs.set(`probe:${file}`, { file, role: 'probe' });
  }
  const described = new Map<string, Float32Array | null>();
  let done = 0;
  for (const [key, { file, role }] of jobs) {
    described.set(key, await describe(file, role));
    options.onProgress?.(++done, jobs.size);
  }
  return datasets.map(({ shots, dataset }) =>
    score(dataset, shots, (file, role) => described.get(`${role}:${file}`) ?? null, options),
  );
}

function score(
  dataset: Dataset,
  shots: number,
  embeddingOf: (file: string, role: 'enrol' | 'probe') => Float32Array | null,
  options: EvalOptions,
): EvalResult {
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const margin = options.margin ?? DEFAULT_MARGIN;
  let detectFailures = 0;
  const embedded = (file: string, role: 'enrol' | 'probe') => {
    const e = embeddingOf(file, role);
    if (!e) detectFailures++;
    return e;
  };
  // An identity with no usable enrolment photo is not in the head, so none of its probes can be matched.
  const head = new ImprintedHead({ threshold, margin });
  for (const identity of dataset.identities) {
    for (const file of identity.enrol) {
      const e = embedded(file, 'enrol');
      if (e) head.add(identity.name, e);
    }
  }
  const probes = dataset.identities.flatMap((identity) =>
    identity.probes.map((file) => {
      const e = embedded(file, 'probe');
      return { name: identity.name, result: e ? head.classify(e) : null };
    }),
  );
  // An impostor whose face is not found cannot be let in (it still counts in the FPIR's denominator).
  const impostors = dataset.impostors
    .map((file) => embedded(file, 'probe'))
    .filter((e): e is Float32Array => e !== null)
    .map((e) => head.classify(e));
  const probeCount = Math.max(1, probes.length);
  const impostorCount = Math.max(1, dataset.impostors.length);
  const correct = probes.filter((p) => p.result !== null && p.result.bestPersonId === p.name);
  const top1 = correct.length / probeCount;
  const tpirAt = (t: number, m = 0) => correct.filter((p) => accepts(p.result!, t, m)).length / probeCount;
  const fpirAt = (t: number, m = 0) => impostors.filter((c) => accepts(c, t, m)).length / impostorCount;
  const n = dataset.impostors.length;
  const impostorScores = impostors.map((c) => c.cosine);
  // Just above the threshold that lets in k, so that exactly k are accepted by the head's >= rule.
  const t1 = thresholdForFalseAccepts(impostorScores, Math.round(n / 60));
  const t3 = thresholdForFalseAccepts(impostorScores, Math.round((3 * n) / 60));
  const curve = [];
  for (let t = 0.2; t <= 0.8 + 1e-9; t += 0.025) {
    const rounded = Math.round(t * 1000) / 1000;
    curve.push({ threshold: rounded, tpir: tpirAt(rounded, margin), fpir: fpirAt(rounded, margin) });
  }
  return {
    shots,
    identities: dataset.identities.length,
    probes: probes.length,
    impostors: n,
    top1,
    tpirAtFpir: { '1/60': tpirAt(t1), '3/60': tpirAt(t3) },
    thresholds: { '1/60': t1, '3/60': t3 },
    atDefault: { threshold, margin, tpir: tpirAt(threshold, margin), fpir: fpirAt(threshold, margin) },
    detectFailures,
    curve,
  };
}
