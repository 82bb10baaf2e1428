/**
 * node build/test/bench/levers/openset.js <variant> [mode]: open-set figures on dev + the dev-pairs strangers.
 * Gallery: the 50 dev identities (first N photos). Genuine probes: dev photos after the 5th, plus dev-pairs
 * photos of the same people that are not dev files. Strangers: dev _unknown plus every dev-pairs photo of
 * someone not in the gallery, in 5 folds by person.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CACHE, DEV, PAIRS, readDev } from './cache';
import { addUnit, dot } from './metrics';

type E = { plain: Float32Array; flip: Float32Array };

export function loadEmb(name: string, files: string[], dim = 192): Map<string, E | null> {
  const buf = new Float32Array(new Uint8Array(fs.readFileSync(path.join(CACHE, `emb-${name}.bin`))).buffer);
  const m = new Map<string, E | null>();
  files.forEach((f, i) => {
    const o = i * 2 * dim;
    m.set(f, Number.isNaN(buf[o]) ? null : { plain: buf.slice(o, o + dim), flip: buf.slice(o + dim, o + 2 * dim) });
  });
  return m;
}

export function sets() {
  const dev = readDev();
  const names = new Set(dev.people.map((p) => p.name));
  const pairsDir = path.join(PAIRS, 'images');
  const extraGenuine: { person: number; file: string }[] = [];
  const strangers: { fold: number; file: string }[] = dev.impostors.map((file, i) => ({ fold: i % 5, file }));
  const others = fs.readdirSync(pairsDir).sort();
  let k = 0;
  for (const person of others) {
    const files = fs
      .readdirSync(path.join(pairsDir, person))
      .sort()
      .map((f) => path.join(pairsDir, person, f));
    if (names.has(person)) {
      const idx = dev.people.findIndex((p) => p.name === person);
      for (const f of files)
        if (!fs.existsSync(path.join(DEV, person, path.basename(f)))) extraGenuine.push({ person: idx, file: f });
    } else {
      const fold = k++ % 5;
      for (const f of files) strangers.push({ fold, file: f });
    }
  }
  return { dev, extraGenuine, strangers };
}

export type Weighting = (es: Float32Array[]) => Float32Array;
export const meanWeight: Weighting = (es) => addUnit(es);

export interface Probe {
  person: number;
  v: Float32Array;
}

export function scoreAll(weights: Float32Array[], v: Float32Array): number[] {
  return weights.map((w) => dot(w, v));
}

export function decide(scores: number[], t: number, m: number): number {
  let b = -1;
  let bs = -Infinity;
  let ss = -Infinity;
  scores.forEach((s, i) => {
    if (s > bs) {
      ss = bs;
      bs = s;
      b = i;
    } else if (s > ss) ss = s;
  });
  return bs >= t && bs - ss >= m ? b : -1;
}

export function thresholdAt(strangerBest: number[], k: number): number {
  const s = [...strangerBest].sort((a, b) => b - a);
  return k <= 0 ? s[0] + 1e-6 : (s[k - 1] + s[k]) / 2;
}
