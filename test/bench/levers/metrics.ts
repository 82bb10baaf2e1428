/** Exploration metrics (not shipped). */
import { l2normalize } from '../../../nodes/core/identify/imprint';

export const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

export function addUnit(vs: ArrayLike<number>[]): Float32Array {
  const sum = new Float32Array(vs[0].length);
  for (const v of vs) {
    const u = l2normalize(v);
    for (let i = 0; i < u.length; i++) sum[i] += u[i];
  }
  return l2normalize(sum);
}

export interface Scored {
  fold: number;
  same: boolean;
  score: number | null;
}

function bestThreshold(train: Scored[]): number {
  const s = train
    .filter((p) => p.score !== null)
    .map((p) => p.score!)
    .sort((a, b) => a - b);
  let best = 0;
  let bestCorrect = -1;
  const cands = [s[0] - 1e-6, ...s.slice(1).map((v, i) => (v + s[i]) / 2)];
  for (const t of cands) {
    const c = train.filter((p) => p.score !== null && (p.same ? p.score > t : p.score <= t)).length;
    if (c > bestCorrect) {
      bestCorrect = c;
      best = t;
    }
  }
  return best;
}

export function pairsProtocol(scored: Scored[]) {
  const folds = Math.max(...scored.map((p) => p.fold)) + 1;
  const accs: number[] = [];
  const ts: number[] = [];
  const errors: number[] = [];
  for (let f = 0; f < folds; f++) {
    const t = bestThreshold(scored.filter((p) => p.fold !== f));
    const test = scored.filter((p) => p.fold === f);
    const ok = test.filter((p) => p.score !== null && (p.same ? p.score > t : p.score <= t)).length;
    accs.push(ok / test.length);
    ts.push(t);
    errors.push(test.length - ok);
  }
  const mean = accs.reduce((a, b) => a + b, 0) / folds;
  const std = Math.sqrt(accs.reduce((a, v) => a + (v - mean) ** 2, 0) / folds);
  const imp = scored
    .filter((p) => !p.same && p.score !== null)
    .map((p) => p.score!)
    .sort((a, b) => b - a);
  const nImp = scored.filter((p) => !p.same).length;
  const gen = scored.filter((p) => p.same);
  const tarAt = (far: number) => {
    const k = Math.floor(far * nImp);
    const t = k <= 0 ? imp[0] + 1e-6 : (imp[k - 1] + imp[k]) / 2;
    return gen.filter((p) => p.score !== null && p.score > t).length / gen.length;
  };
  return { acc: mean, std, errors: errors.reduce((a, b) => a + b, 0), ts, tar1e2: tarAt(1e-2), tar1e3: tarAt(1e-3) };
}

/** d' between genuine and impostor score distributions. */
export function dprime(gen: number[], imp: number[]): number {
  const m = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const va = (v: number[]) => {
    const mu = m(v);
    return v.reduce((a, b) => a + (b - mu) ** 2, 0) / v.length;
  };
  return (m(gen) - m(imp)) / Math.sqrt((va(gen) + va(imp)) / 2);
}
