/**
 * npm run bench:pipeline [-- --json] [-- --photos N] [-- --frames N] [-- --no-peer]
 *
 * Per stage (decode, detect, align, embed, classify) and in total, median and
 * p95: on dev photos (250x250 JPEG, short-range detector), and on a 1280x720
 * frame with 5 faces made from a _group photo (full-range detector; raw
 * pixels as a camera delivers them, so no decode). Each twice: fast
 * (BlazeFace keypoints, one inference: a stream's frames after a face's
 * first few) and careful (face mesh alignment and the mirror image: photos,
 * enrolment, a face's first frames). The same inputs through
 * @vladmandic/face-api (tfjs wasm) in the same run, as ratios.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeImage } from '../../nodes/core/media/decode';
import type { RgbImage } from '../../nodes/core/media/image';
import { ImprintedHead } from '../../nodes/core/identify/imprint';
import { openFaceApiPeer } from './peers/faceapi';
import { FacePipeline, mainFace } from '../../nodes/core/pipeline';
import { groupFrame } from '../helpers/frames';
import { FACES_DIR } from '../models';
import { median, nowMs, percentile, round } from './stats';

const args = process.argv.slice(2);
const json = args.includes('--json');
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const photoCount = flag('photos', 200);
const frameCount = flag('frames', 100);
const withPeer = !args.includes('--no-peer');

type Stages = Record<string, number[]>;

function summarise(name: string, totals: number[], stages: Stages, peerTotals: number[] | null) {
  const medianMs = median(totals);
  return {
    case: name,
    runs: totals.length,
    medianMs: round(medianMs, 2),
    p95Ms: round(percentile(totals, 95), 2),
    stages: Object.fromEntries(
      Object.entries(stages).map(([k, v]) => [
        k,
        { medianMs: round(median(v), 2), p95Ms: round(percentile(v, 95), 2) },
      ]),
    ),
    peerMedianMs: peerTotals ? round(median(peerTotals), 1) : null,
    speedup: peerTotals ? round(median(peerTotals) / medianMs, 1) : null,
  };
}

function devPhotos(count: number): string[] {
  const people = fs
    .readdirSync(FACES_DIR)
    .filter((d) => !d.startsWith('_') && fs.statSync(path.join(FACES_DIR, d)).isDirectory())
    .sort();
  const all = people.flatMap((p) =>
    fs
      .readdirSync(path.join(FACES_DIR, p))
      .filter((f) => f.endsWith('.jpg'))
      .sort()
      .map((f) => path.join(FACES_DIR, p, f)),
  );
  // Evenly spread over the set, not the first few people only.
  const step = Math.max(1, Math.floor(all.length / count));
  return all.filter((_, i) => i % step === 0).slice(0, count);
}

async function headFor(pipeline: FacePipeline): Promise<ImprintedHead> {
  // A gallery of the 50 dev identities, so classify does real work.
  const head = new ImprintedHead();
  for (const person of fs
    .readdirSync(FACES_DIR)
    .filter((d) => !d.startsWith('_'))
    .sort()) {
    const dir = path.join(FACES_DIR, person);
    if (!fs.statSync(dir).isDirectory()) continue;
    const file = path.join(dir, fs.readdirSync(dir).sort()[0]);
    const image = await decodeImage(file);
    const face = mainFace(await pipeline.detect(image), image);
    if (face) head.add(person, (await pipeline.embed([pipeline.align(image, face).crop]))[0]);
  }
  return head;
}

async function run(
  pipeline: FacePipeline,
  head: ImprintedHead,
  image: RgbImage | string,
  careful = false,
): Promise<Record<string, number>> {
  const t0 = nowMs();
  const decoded = typeof image === 'string' ? await decodeImage(image) : image;
  const t1 = nowMs();
  const detections = await pipeline.detect(decoded);
  const t2 = nowMs();
  const crops: RgbImage[] = [];
  for (const d of detections)
    crops.push((careful ? await pipeline.alignOnMesh(decoded, d) : pipeline.align(decoded, d)).crop);
  const t3 = nowMs();
  const embeddings = await pipeline.embed(crops, { mirror: careful });
  const t4 = nowMs();
  for (const e of embeddings) head.classify(e);
  const t5 = nowMs();
  return {
    decode: t1 - t0,
    detect: t2 - t1,
    align: t3 - t2,
    embed: t4 - t3,
    classify: t5 - t4,
    total: t5 - t0,
    faces: detections.length,
  };
}

async function main(): Promise<void> {
  if (!json)
    console.log(`bench:pipeline on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.availableParallelism()} cores)\n`);

  // Ours first, both cases, then the peer: face-api's tfjs heap and WASM
  // memory in the same process slowed our stages (garbage collection and
  // cache pressure) when it was loaded first.
  const files = devPhotos(photoCount);
  const frame = await groupFrame('five-people.jpg');

  // Photos: short-range detector, one face each. Fast: BlazeFace keypoints
  // and one inference, as every frame of a face after its first few;
  // careful: face mesh alignment and the mirror image too, as photos and a
  // face's first frames.
  const photoCase = () => ({
    totals: [] as number[],
    stages: { decode: [], detect: [], align: [], embed: [], classify: [] } as Stages,
  });
  const photo = photoCase();
  const photoCareful = photoCase();
  {
    const pipeline = await FacePipeline.open({ detector: { variant: 'short' } });
    const head = await headFor(pipeline);
    for (const careful of [false, true]) {
      const into = careful ? photoCareful : photo;
      for (const f of files.slice(0, 10)) await run(pipeline, head, f, careful); // warm up
      for (const file of files) {
        const r = await run(pipeline, head, file, careful);
        for (const k of Object.keys(into.stages)) into.stages[k].push(r[k]);
        into.totals.push(r.total);
      }
    }
    await pipeline.dispose();
  }

  // 1280x720 frame with 5 faces: full-range detector, raw pixels (no decode).
  // Careful: all five faces new at once (the worst case for a stream).
  const frameCase = () => ({
    totals: [] as number[],
    stages: { detect: [], align: [], embed: [], classify: [] } as Stages,
    faces: 0,
  });
  const frames = frameCase();
  const framesCareful = frameCase();
  {
    const pipeline = await FacePipeline.open({ detector: { variant: 'full' } });
    const head = await headFor(pipeline);
    for (const careful of [false, true]) {
      const into = careful ? framesCareful : frames;
      for (let i = 0; i < 5; i++) await run(pipeline, head, frame, careful);
      for (let i = 0; i < (careful ? Math.ceil(frameCount / 2) : frameCount); i++) {
        const r = await run(pipeline, head, frame, careful);
        for (const k of Object.keys(into.stages)) into.stages[k].push(r[k]);
        into.totals.push(r.total);
        into.faces = r.faces;
      }
    }
    await pipeline.dispose();
  }

  let peerPhotos: number[] | null = null;
  let peerFrames: number[] | null = null;
  if (withPeer) {
    const peer = await openFaceApiPeer();
    peerPhotos = [];
    for (const file of files.slice(0, Math.min(files.length, 60))) {
      const start = nowMs();
      await peer.describe(await decodeImage(file), { padding: 125 });
      peerPhotos.push(nowMs() - start);
    }
    peerFrames = [];
    for (let i = 0; i < 10; i++) {
      const start = nowMs();
      await peer.describe(frame);
      peerFrames.push(nowMs() - start);
    }
    await peer.dispose();
  }

  const results = [
    summarise('photo', photo.totals, photo.stages, peerPhotos),
    { ...summarise('frame720p5', frames.totals, frames.stages, peerFrames), faces: frames.faces },
    summarise('photo-careful', photoCareful.totals, photoCareful.stages, peerPhotos),
    {
      ...summarise('frame720p5-careful', framesCareful.totals, framesCareful.stages, peerFrames),
      faces: framesCareful.faces,
    },
  ];
  for (const r of results) {
    if (json) {
      console.log(JSON.stringify(r));
      continue;
    }
    console.log(
      `${r.case}: ${r.runs} runs, median ${r.medianMs} ms, p95 ${r.p95Ms} ms` +
        (r.peerMedianMs !== null ? `; face-api ${r.peerMedianMs} ms (${r.speedup}x)` : ''),
    );
    for (const [stage, s] of Object.entries(r.stages))
      console.log(
        `  ${stage.padEnd(9)} median ${String(s.medianMs).padStart(6)} ms  p95 ${String(s.p95Ms).padStart(6)} ms`,
      );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
