/** node build/test/bench/levers/weights.js <variant>: weight and score rules at matched FPIR. */
import { allImages } from './cache';
import { addUnit, dot } from './metrics';
import { loadEmb, sets, thresholdAt } from './openset';
import { cosinesToRest, l2normalize } from '../../../nodes/core/identify/imprint';

const [variant = 'base', mode = 'plain'] = process.argv.slice(2);
const emb = loadEmb(variant, allImages());
const vec = (f: string) => {
  const e = emb.get(f);
  return e ? (mode === 'plain' ? e.plain : addUnit([e.plain, e.flip])) : null;
};
const { dev, extraGenuine, strangers } = sets();
type Scorer = (ex: Float32Array[]) => (v: Float32Array) => number;
const rules: Record<string, Scorer> = {
  mean: (ex) => {
    const w = addUnit(ex);
    return (v) => dot(w, v);
  },
  avgcos: (ex) => {
    const w = addUnit(ex);
    const s = new Float32Array(w.length);
    ex.forEach((e) => e.forEach((x, i) => (s[i] += x / ex.length)));
    return (v) => dot(s, v);
  },
  max: (ex) => (v) => Math.max(...ex.map((e) => dot(e, v))),
  trim: (ex) => {
    if (ex.length < 4) return rules.mean(ex);
    const c = cosinesToRest(ex);
    const worst = c.indexOf(Math.min(...c));
    const w = addUnit(ex.filter((_, i) => i !== worst));
    return (v) => dot(w, v);
  },
  meanPlusMax: (ex) => {
    const w = addUnit(ex);
    return (v) => 0.5 * dot(w, v) + 0.5 * Math.max(...ex.map((e) => dot(e, v)));
  },
  // Normalised by the person's own spread: the expected genuine cosine to the weight is |mean| (mean cosine to rest).
  tnorm: (ex) => {
    const w = addUnit(ex);
    return (v) => dot(w, v);
  },
  spread: (ex) => {
    const w = addUnit(ex);
    const s = new Float32Array(w.length);
    ex.forEach((e) => e.forEach((x, i) => (s[i] += x / ex.length)));
    const len = Math.hypot(...s);
    return (v) => dot(w, v) * (ex.length > 1 ? Math.sqrt(len) : 1);
  },
};
for (const shots of [1, 2, 3, 5]) {
  const line: string[] = [];
  for (const [name, rule] of Object.entries(rules)) {
    const scorers = dev.people.map((p) =>
      rule(
        p.files
          .slice(0, shots)
          .map(vec)
          .filter((e): e is Float32Array => !!e),
      ),
    );
    // tnorm: the mean rule, each probe's scores normalised by their spread over the whole gallery (a cohort of the other people).
    const tnorm = (scores: number[]) => {
      const m = scores.reduce((a, b) => a + b, 0) / scores.length;
      const sd = Math.sqrt(scores.reduce((a, b) => a + (b - m) ** 2, 0) / scores.length);
      return scores.map((x) => (x - m) / sd);
    };
    const sc = (v: Float32Array) => (name === 'tnorm' ? tnorm(scorers.map((s) => s(v))) : scorers.map((s) => s(v)));
    const genuine = [
      ...dev.people.flatMap((p, person) => p.files.slice(5).map((file) => ({ person, file }))),
      ...extraGenuine,
    ].map((g) => ({ person: g.person, s: vec(g.file) ? sc(vec(g.file)!) : null }));
    const str = strangers
      .map((s) => vec(s.file))
      .filter((v): v is Float32Array => !!v)
      .map((v) => Math.max(...sc(v)));
    const t = thresholdAt(str, Math.floor(str.length / 60));
    const top = genuine.filter((g) => g.s && g.s.indexOf(Math.max(...g.s)) === g.person);
    const tpir = top.filter((g) => Math.max(...g.s!) > t).length / genuine.length;
    const top1 = top.length / genuine.length;
    line.push(`${name} ${(top1 * 100).toFixed(1)}/${(tpir * 100).toFixed(1)}@${t.toFixed(3)}`);
  }
  console.log(`shots ${shots} (top-1/TPIR@1/60 strangers): ${line.join('  ')}`);
}
void l2normalize;
