/**
 * The levers harness (README, "Accuracy"): the figures of each alignment,
 * mirror and weight variant came from these scripts. Detections and the
 * embeddings of each variant (the crop and its mirror image) are cached in
 * $ACC_CACHE (default /tmp/coral-face-levers), so variants compare quickly:
 *
 *   npm run build && node build/test/bench/levers/run.js base mesh5 s105 ...   pairs + top-1 per variant and mirror mode
 *   node build/test/bench/levers/cross.js mesh5:plain base:plain ...        enrolment side x probe side
 *   node build/test/bench/levers/calibrate.js base plain plain mesh5          threshold x margin grid, 5 folds
 *   node build/test/bench/levers/weights.js base plain                        weight and score rules
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeImage } from '../../../nodes/core/media/decode';
import { mirrorImage, type RgbImage } from '../../../nodes/core/media/image';
import { FacePipeline, mainFace } from '../../../nodes/core/pipeline';
import type { Detection } from '../../../nodes/core/detect/blazeface';
import { FACES_DIR } from '../../models';

export const CACHE = process.env.ACC_CACHE ?? path.join(os.tmpdir(), 'coral-face-levers');
export const DEV = FACES_DIR;
export const PAIRS = process.env.CORAL_PAIRS_DIR ?? path.join(path.dirname(FACES_DIR), 'dev-pairs');

export interface PairRec {
  fold: number;
  same: boolean;
  a: string;
  b: string;
}

export function readPairs(): PairRec[] {
  const lines = fs.readFileSync(path.join(PAIRS, 'pairs.txt'), 'utf8').trim().split(/\r?\n/);
  const [folds, per] = lines.shift()!.split(/\s+/).map(Number);
  const img = (n: string, k: string) => path.join(PAIRS, 'images', n, `${n}_${k.padStart(4, '0')}.jpg`);
  return lines
    .map((line, i) => {
      const f = line.trim().split(/\s+/);
      const fold = Math.floor(i / (2 * per));
      const same = i % (2 * per) < per;
      return same
        ? { fold, same, a: img(f[0], f[1]), b: img(f[0], f[2]) }
        : { fold, same, a: img(f[0], f[1]), b: img(f[2], f[3]) };
    })
    .slice(0, folds * per * 2);
}

export interface DevSet {
  people: { name: string; files: string[] }[];
  impostors: string[];
}

export function readDev(): DevSet {
  const list = (d: string) =>
    fs
      .readdirSync(d)
      .filter((f) => /\.jpe?g$/i.test(f))
      .sort()
      .map((f) => path.join(d, f));
  const people = fs
    .readdirSync(DEV, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('_'))
    .map((e) => e.name)
    .sort()
    .map((name) => ({ name, files: list(path.join(DEV, name)) }));
  return { people, impostors: list(path.join(DEV, '_unknown')) };
}

export function allImages(): string[] {
  const dev = readDev();
  const set = new Set<string>([...dev.people.flatMap((p) => p.files), ...dev.impostors]);
  for (const p of readPairs()) {
    set.add(p.a);
    set.add(p.b);
  }
  return [...set].sort();
}

export type DetCache = Record<string, Detection | null>;

export async function detections(pipeline: FacePipeline, files: string[]): Promise<DetCache> {
  const file = path.join(CACHE, 'detections.json');
  fs.mkdirSync(CACHE, { recursive: true });
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const out: DetCache = {};
  for (const f of files) {
    const image = await decodeImage(f);
    out[f] = mainFace(await pipeline.detect(image), image) ?? null;
  }
  fs.writeFileSync(file, JSON.stringify(out));
  return out;
}

/** Embedding of the crop and of its mirror image, per file (null: no face). */
export type EmbCache = Map<string, { plain: Float32Array; flip: Float32Array } | null>;

export async function embeddings(
  name: string,
  pipeline: FacePipeline,
  files: string[],
  dets: DetCache,
  crop: (image: RgbImage, det: Detection, file: string) => RgbImage | null | Promise<RgbImage | null>,
): Promise<EmbCache> {
  const file = path.join(CACHE, `emb-${name}.bin`);
  const dim = pipeline.embedder.dimension;
  const result: EmbCache = new Map();
  if (fs.existsSync(file)) {
    const buf = new Float32Array(new Uint8Array(fs.readFileSync(file)).buffer);
    files.forEach((f, i) => {
      const o = i * 2 * dim;
      if (Number.isNaN(buf[o])) result.set(f, null);
      else result.set(f, { plain: buf.slice(o, o + dim), flip: buf.slice(o + dim, o + 2 * dim) });
    });
    return result;
  }
  const buf = new Float32Array(files.length * 2 * dim).fill(NaN);
  let i = 0;
  for (const f of files) {
    const det = dets[f];
    const image = det ? await decodeImage(f) : null;
    const c = det && image ? await crop(image, det, f) : null;
    if (c) {
      const [plain, flip] = await pipeline.embed([c, mirrorImage(c)]);
      buf.set(plain, i * 2 * dim);
      buf.set(flip, i * 2 * dim + dim);
      result.set(f, { plain, flip });
    } else result.set(f, null);
    i++;
    if (i % 200 === 0) process.stderr.write(`${name} ${i}/${files.length}\n`);
  }
  fs.writeFileSync(file, Buffer.from(buf.buffer));
  return result;
}
