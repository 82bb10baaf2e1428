/** node build/test/bench/levers/run.js <variant...>: pairs + dev figures per alignment/TTA variant. */
import * as path from 'path';
import { FacePipeline } from '../../../nodes/core/pipeline';
import { alignFace } from '../../../nodes/core/align/warp';
import { allImages, detections, embeddings, EmbCache, readDev, readPairs } from './cache';
import { addUnit, dot, dprime, pairsProtocol } from './metrics';
import { VARIANTS } from './variants';

type Mode = 'plain' | 'both';
const vec = (e: { plain: Float32Array; flip: Float32Array }, mode: Mode) =>
  mode === 'plain' ? e.plain : addUnit([e.plain, e.flip]);

function pairsFigures(emb: EmbCache, probe: Mode, gallery: Mode) {
  const scored = readPairs().map((p) => {
    const a = emb.get(p.a);
    const b = emb.get(p.b);
    return { fold: p.fold, same: p.same, score: a && b ? dot(vec(a, gallery), vec(b, probe)) : null };
  });
  const r = pairsProtocol(scored);
  const gen = scored.filter((s) => s.same && s.score !== null).map((s) => s.score!);
  const imp = scored.filter((s) => !s.same && s.score !== null).map((s) => s.score!);
  return { ...r, dprime: dprime(gen, imp), noFace: scored.filter((s) => s.score === null).length };
}

function devFigures(emb: EmbCache, shots: number, probe: Mode, gallery: Mode) {
  const dev = readDev();
  const weights = dev.people.map((p) => {
    const es = p.files
      .slice(0, shots)
      .map((f) => emb.get(f))
      .filter((e) => e)
      .map((e) => vec(e!, gallery));
    return es.length ? addUnit(es) : null;
  });
  let correct = 0;
  let n = 0;
  dev.people.forEach((p, idx) => {
    for (const f of p.files.slice(shots)) {
      n++;
      const e = emb.get(f);
      if (!e) continue;
      const v = vec(e, probe);
      const scores = weights.map((w) => (w ? dot(w, v) : -1));
      if (scores.indexOf(Math.max(...scores)) === idx) correct++;
    }
  });
  return { top1: correct / n, n };
}

async function main() {
  const names = process.argv.slice(2);
  const pipeline = await FacePipeline.open({ embedder: { threads: Number(process.env.ACC_THREADS ?? 1) } });
  const files = allImages();
  const dets = await detections(pipeline, files);
  for (const name of names.length ? names : ['base']) {
    const variant = VARIANTS[name] ?? ((img, det) => alignFace(img, det.keypoints, 112).crop);
    const emb = await embeddings(name, pipeline, files, dets, variant);
    for (const [probe, gallery] of [
      ['plain', 'plain'],
      ['plain', 'both'],
      ['both', 'both'],
    ] as [Mode, Mode][]) {
      const pf = pairsFigures(emb, probe, gallery);
      const shots = [1, 2, 3, 5].map((s) => devFigures(emb, s, probe, gallery).top1);
      console.log(
        `${name.padEnd(14)} probe=${probe.padEnd(5)} gallery=${gallery.padEnd(5)} pairs ${(pf.acc * 100).toFixed(2)}±${(pf.std * 100).toFixed(2)} err ${pf.errors} ` +
          `TAR@1e-2 ${(pf.tar1e2 * 100).toFixed(1)} d' ${pf.dprime.toFixed(3)} noFace ${pf.noFace} | top1 shots 1/2/3/5 ${shots.map((v) => (v * 100).toFixed(1)).join(' / ')}`,
      );
    }
  }
  await pipeline.dispose();
  void path;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
