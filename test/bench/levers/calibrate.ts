/** node build/test/bench/levers/calibrate.js <variant> <probeMode> <galleryMode>: threshold/margin calibration. */
import { allImages } from './cache';
import { addUnit } from './metrics';
import { decide, loadEmb, scoreAll, sets, thresholdAt } from './openset';

const [variant = 'base', probeMode = 'plain', galleryMode = 'plain', galleryVariant = variant] = process.argv.slice(2);
const emb = loadEmb(variant, allImages());
const gemb = loadEmb(galleryVariant, allImages());
const vec = (f: string, mode: string) => {
  const e = (mode.startsWith('g') ? gemb : emb).get(f);
  mode = mode.replace(/^g/, '');
  if (!e) return null;
  return mode === 'plain' ? e.plain : addUnit([e.plain, e.flip]);
};
const { dev, extraGenuine, strangers } = sets();
const pct = (v: number) => (v * 100).toFixed(1);

for (const shots of [1, 2, 3, 5]) {
  const weights = dev.people.map((p) =>
    addUnit(
      p.files
        .slice(0, shots)
        .map((f) => vec(f, 'g' + galleryMode)!)
        .filter(Boolean),
    ),
  );
  const genuine = [
    ...dev.people.flatMap((p, person) => p.files.slice(5).map((file) => ({ person, file }))),
    ...extraGenuine,
  ].map((g) => ({ person: g.person, v: vec(g.file, probeMode) }));
  const str = strangers.map((s) => ({ fold: s.fold, v: vec(s.file, probeMode) })).filter((s) => s.v);
  const gScores = genuine.map((g) => ({ person: g.person, s: g.v ? scoreAll(weights, g.v) : null }));
  const sScores = str.map((s) => ({ fold: s.fold, s: scoreAll(weights, s.v!) }));
  const rate = (t: number, m: number) => {
    const tpir = gScores.filter((g) => g.s && decide(g.s, t, m) === g.person).length / gScores.length;
    const fpir = sScores.filter((s) => decide(s.s, t, m) >= 0).length / sScores.length;
    return { tpir, fpir };
  };
  console.log(`shots ${shots}: ${gScores.length} genuine, ${sScores.length} strangers`);
  for (const m of [0, 0.03, 0.05, 0.08]) {
    const row: string[] = [];
    for (const t of [0.47, 0.49, 0.5, 0.51, 0.52, 0.53, 0.54, 0.55, 0.57]) {
      const r = rate(t, m);
      row.push(`${t}:${pct(r.tpir)}/${(r.fpir * 60).toFixed(2)}`);
    }
    console.log(`  margin ${m}: ` + row.join('  '));
  }
  // 5-fold: choose the threshold letting in 1/60 of the strangers of four folds, test on the fifth.
  const folds = [];
  for (let f = 0; f < 5; f++) {
    const train = sScores.filter((s) => s.fold !== f).map((s) => Math.max(...s.s));
    const t = thresholdAt(train, Math.floor(train.length / 60));
    const test = sScores.filter((s) => s.fold === f);
    const fp = test.filter((s) => decide(s.s, t, 0) >= 0).length / test.length;
    folds.push(`${t.toFixed(3)}->${(fp * 60).toFixed(2)}`);
  }
  const all = sScores.map((s) => Math.max(...s.s));
  const t60 = thresholdAt(all, Math.floor(all.length / 60));
  console.log(
    `  T(1/60 of all strangers) ${t60.toFixed(3)} TPIR ${pct(rate(t60, 0).tpir)}; folds (threshold->strangers per 60 on held-out): ${folds.join(' ')}`,
  );
}
