/** node build/test/bench/levers/cross.js galleryVariant:mode probeVariant:mode ... : enrol side vs probe side. */
import { allImages, readPairs } from './cache';
import { addUnit, dot, dprime, pairsProtocol } from './metrics';
import { decide, loadEmb, sets, thresholdAt } from './openset';

const files = allImages();
const cache = new Map<string, ReturnType<typeof loadEmb>>();
const get = (spec: string) => {
  const [variant, mode] = spec.split(':');
  if (!cache.has(variant)) cache.set(variant, loadEmb(variant, files));
  const emb = cache.get(variant)!;
  return (f: string) => {
    const e = emb.get(f);
    return e ? (mode === 'both' ? addUnit([e.plain, e.flip]) : e.plain) : null;
  };
};
const { dev, extraGenuine, strangers } = sets();
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 2) {
  const g = get(args[i]);
  const p = get(args[i + 1]);
  const scored = readPairs().map((q) => {
    const a = g(q.a);
    const b = p(q.b);
    return { fold: q.fold, same: q.same, score: a && b ? dot(a, b) : null };
  });
  const pr = pairsProtocol(scored);
  const d = dprime(
    scored.filter((s) => s.same).map((s) => s.score!),
    scored.filter((s) => !s.same).map((s) => s.score!),
  );
  const out: string[] = [];
  for (const shots of [1, 2, 3, 5]) {
    const weights = dev.people.map((q) =>
      addUnit(
        q.files
          .slice(0, shots)
          .map(g)
          .filter((e): e is Float32Array => !!e),
      ),
    );
    const genuine = [
      ...dev.people.flatMap((q, person) => q.files.slice(5).map((file) => ({ person, file }))),
      ...extraGenuine,
    ].map((x) => ({ person: x.person, s: p(x.file) ? weights.map((w) => dot(w, p(x.file)!)) : null }));
    const str = strangers
      .map((s) => p(s.file))
      .filter((v): v is Float32Array => !!v)
      .map((v) => weights.map((w) => dot(w, v)));
    const t = thresholdAt(
      str.map((s) => Math.max(...s)),
      Math.floor(str.length / 60),
    );
    const top1 = genuine.filter((x) => x.s && decide(x.s, -2, 0) === x.person).length / genuine.length;
    const tpir = genuine.filter((x) => x.s && decide(x.s, t, 0) === x.person).length / genuine.length;
    // at a fixed rule for comparison
    out.push(`${shots}: ${(top1 * 100).toFixed(1)}/${(tpir * 100).toFixed(1)}@${t.toFixed(3)}`);
  }
  console.log(
    `${args[i].padEnd(12)} x ${args[i + 1].padEnd(12)} pairs ${(pr.acc * 100).toFixed(2)}±${(pr.std * 100).toFixed(2)} err ${pr.errors} d' ${d.toFixed(3)} TAR@1e-2 ${(pr.tar1e2 * 100).toFixed(1)} | shots top1/TPIR@1/60: ${out.join('  ')}`,
  );
}
