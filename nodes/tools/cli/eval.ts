/** `coral-face eval`: the accuracy protocol (README, "Accuracy") on a folder of photos. */
import * as path from 'path';
import { DEFAULT_MARGIN, DEFAULT_THRESHOLD } from '../../core/identify/imprint';
import { decodeImage } from '../../core/media/decode';
import type { Box, RgbImage } from '../../core/media/image';
import { FacePipeline, mainFace } from '../../core/pipeline';
import { DEFAULT_SHOTS, DescribePhoto, EvalResult, evaluateShots } from '../evaluate';
import { type Args, numberFlag, UsageError } from './args';
import { print, withPipeline } from './output';

/** The part of test/bench/peers/faceapi.ts that eval uses. */
interface FaceApiPeerModule {
  openFaceApiPeer(this: void): Promise<{
    describe(image: RgbImage, options?: { padding?: number }): Promise<{ box: Box; descriptor: Float32Array }[]>;
    dispose(): Promise<void>;
  }>;
  largestFace<T extends { box: Box }>(this: void, faces: readonly T[]): T | undefined;
}

async function ourDescriber(pipeline: FacePipeline, aligned: boolean): Promise<DescribePhoto> {
  const size = pipeline.embedder.inputSize;
  return async (file) => {
    const image = await decodeImage(file);
    if (aligned) {
      if (image.width !== size || image.height !== size)
        throw new Error(`${file}: --aligned expects ${size}x${size} crops`);
      return (await pipeline.embed([image], { mirror: true }))[0];
    }
    const face = mainFace(await pipeline.detect(image), image);
    // As enrol and identify do it: enrolment photos and probe photos alike align on face mesh points
    // and are embedded with their mirror image (a stream's later frames are not: bench:stream).
    return face ? pipeline.embedCarefully(image, face) : null;
  };
}

/** `--shots 5` or a list, `--shots 1,2,3,5`: photos per identity that enrol, one run each. */
export function shotsFlag(args: Args): number[] {
  const value = args.flags.get('shots');
  if (value === undefined) return [DEFAULT_SHOTS];
  const list = typeof value === 'string' ? value.split(',').map((v) => Number(v.trim())) : [];
  if (list.length === 0 || !list.every((n) => Number.isInteger(n) && n >= 1 && n <= 100)) {
    throw new UsageError('--shots is a whole number of photos from 1 to 100, or a list such as 1,2,3,5');
  }
  return [...new Set(list)].sort((a, b) => a - b);
}

export async function runEval(args: Args): Promise<number> {
  const [dir] = args.positional;
  if (!dir) throw new UsageError('eval needs a dataset folder');
  const shots = shotsFlag(args);
  const rule = {
    threshold: numberFlag(args, 'threshold') ?? DEFAULT_THRESHOLD,
    margin: numberFlag(args, 'margin') ?? DEFAULT_MARGIN,
  };
  const json = args.flags.has('json');
  const progress = (label: string) => (done: number, total: number) => {
    if (!json && process.stderr.isTTY) process.stderr.write(`\r${label} ${done}/${total}`);
  };
  const folder = path.resolve(dir);
  // Which model made the embeddings (--model, or the default), and where it ran.
  let embedder = { id: '', backend: '', model: '' };
  const ours = await withPipeline(args, async (pipeline) => {
    embedder = {
      id: pipeline.embedder.id,
      backend: pipeline.embedder.backend.kind,
      model: pipeline.embedder.backend.model,
    };
    return evaluateShots(folder, await ourDescriber(pipeline, args.flags.has('aligned')), shots, {
      ...rule,
      onProgress: progress('coral-face'),
    });
  });
  let peer: EvalResult[] | null = null;
  if (args.flags.has('peer')) {
    // The peer is a benchmark of the repository (with its dev dependencies), not part of the package.
    // Its path is built at run time so that the package build (tsconfig.json, which sees no test/) does not follow it.
    const peerModule = path.join(__dirname, '..', '..', '..', 'test', 'bench', 'peers', 'faceapi.js');
    const { openFaceApiPeer, largestFace: largestPeerFace } = await (
      import(peerModule) as Promise<FaceApiPeerModule>
    ).catch(() => {
      throw new UsageError(
        '--peer runs from a clone of the repository (npm install there): the peer is a benchmark, not part of the package',
      );
    });
    const faceapi = await openFaceApiPeer();
    try {
      // The protocol pads each photo by 125 px: face-api's detector misses tightly framed faces otherwise.
      // Its cosines sit at 0.8-0.98, so our threshold means nothing for it: its atDefault is at its own 1/60 threshold.
      peer = await evaluateShots(
        folder,
        async (file) =>
          largestPeerFace(await faceapi.describe(await decodeImage(file), { padding: 125 }))?.descriptor ?? null,
        shots,
        { onProgress: progress('face-api') },
      );
    } finally {
      await faceapi.dispose();
    }
  }
  if (!json && process.stderr.isTTY) process.stderr.write('\n');
  if (!json) console.log(`model: ${embedder.model} (${embedder.backend})`);
  ours.forEach((result, index) => {
    const peerResult = peer ? peer[index] : null;
    if (json) {
      const { curve, ...summary } = result;
      print({
        ...summary,
        model: embedder.model,
        embedder,
        peer: peerResult ? (({ curve: _p, atDefault: _a, ...s }) => s)(peerResult) : null,
        curve,
      });
    } else {
      printTable(result, peerResult);
    }
  });
  return 0;
}

function printTable(ours: EvalResult, peer: EvalResult | null): void {
  const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
  const rows = [
    [
      `${ours.shots} photo${ours.shots === 1 ? '' : 's'} per person enrol`,
      'coral-face',
      ...(peer ? ['face-api (padded 125 px)'] : []),
    ],
  ];
  const add = (label: string, f: (r: EvalResult) => string, peerToo = true) =>
    rows.push([label, f(ours), ...(peer ? [peerToo ? f(peer) : '–'] : [])]);
  add('identities / probes / impostors', (r) => `${r.identities} / ${r.probes} / ${r.impostors}`);
  add('top-1', (r) => pct(r.top1));
  add('TPIR @ FPIR 1/60', (r) => `${pct(r.tpirAtFpir['1/60'])} (threshold ${r.thresholds['1/60'].toFixed(3)})`);
  add('TPIR @ FPIR 3/60', (r) => `${pct(r.tpirAtFpir['3/60'])} (threshold ${r.thresholds['3/60'].toFixed(3)})`);
  const { threshold, margin, tpir, fpir } = ours.atDefault;
  add(`at threshold ${threshold}, margin ${margin}`, () => `TPIR ${pct(tpir)}, FPIR ${pct(fpir)}`, false);
  add('no face found', (r) => String(r.detectFailures));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 34 : 34)).join(''));
}
