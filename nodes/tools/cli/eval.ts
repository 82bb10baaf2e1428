/** `coral-face eval`: the accuracy protocol (README, "Accuracy") on a folder of photos. */
import * as path from 'path';
import { decodeImage } from '../../core/media/decode';
import type { Box, RgbImage } from '../../core/media/image';
import { type FacePipeline, mainFace } from '../../core/pipeline';
import { DescribePhoto, evaluate, readDataset } from '../evaluate';
import { type Args, UsageError } from './args';
import { print, withPipeline } from './output';

/** The part of test/bench/peers/faceapi.ts that eval uses. */
interface FaceApiPeerModule {
  openFaceApiPeer(): Promise<{
    describe(image: RgbImage, options?: { padding?: number }): Promise<{ box: Box; descriptor: Float32Array }[]>;
    dispose(): Promise<void>;
  }>;
  largestFace<T extends { box: Box }>(faces: readonly T[]): T | undefined;
}

async function ourDescriber(pipeline: FacePipeline, aligned: boolean): Promise<DescribePhoto> {
  const size = pipeline.embedder.inputSize;
  return async (file) => {
    const image = await decodeImage(file);
    if (aligned) {
      if (image.width !== size || image.height !== size) throw new Error(`${file}: --aligned expects ${size}x${size} crops`);
      return (await pipeline.embed([image]))[0];
    }
    const face = mainFace(await pipeline.detect(image), image);
    if (!face) return null;
    return (await pipeline.embed([pipeline.align(image, face).crop]))[0];
  };
}

export async function runEval(args: Args): Promise<number> {
  const [dir] = args.positional;
  if (!dir) throw new UsageError('eval needs a dataset folder');
  const dataset = readDataset(path.resolve(dir));
  const json = args.flags.has('json');
  const progress = (label: string) => (done: number, total: number) => {
    if (!json && process.stderr.isTTY) process.stderr.write(`\r${label} ${done}/${total}`);
  };
  const ours = await withPipeline(args, async (pipeline) =>
    evaluate(dataset, await ourDescriber(pipeline, args.flags.has('aligned')), progress('coral-face')));
  let peer = null;
  if (args.flags.has('peer')) {
    // The peer is a benchmark of the repository (with its dev dependencies), not part of the package.
    // Its path is built at run time so that the package build (tsconfig.json, which sees no test/) does not follow it.
    const peerModule = path.join(__dirname, '..', '..', '..', 'test', 'bench', 'peers', 'faceapi.js');
    const { openFaceApiPeer, largestFace: largestPeerFace } = await (import(peerModule) as Promise<FaceApiPeerModule>).catch(() => {
      throw new UsageError('--peer runs from a clone of the repository (npm install there): the peer is a benchmark, not part of the package');
    });
    const faceapi = await openFaceApiPeer();
    try {
      // The protocol pads each photo by 125 px: face-api's detector misses tightly framed faces otherwise.
      peer = await evaluate(dataset, async (file) => largestPeerFace(await faceapi.describe(await decodeImage(file), { padding: 125 }))?.descriptor ?? null,
        progress('face-api'));
    } finally {
      await faceapi.dispose();
    }
  }
  if (!json && process.stderr.isTTY) process.stderr.write('\n');
  if (json) {
    const { curve: _c, ...summary } = ours;
    print({ ...summary, peer: peer ? (({ curve: _p, ...s }) => s)(peer) : null, curve: ours.curve });
  } else {
    const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
    const rows = [['', 'coral-face', ...(peer ? ['face-api (padded 125 px)'] : [])]];
    const add = (label: string, f: (r: typeof ours) => string) => rows.push([label, f(ours), ...(peer ? [f(peer)] : [])]);
    add('identities / probes / impostors', (r) => `${r.identities} / ${r.probes} / ${r.impostors}`);
    add('top-1', (r) => pct(r.top1));
    add('TPIR @ FPIR 1/60', (r) => `${pct(r.tpirAtFpir['1/60'])} (threshold ${r.thresholds['1/60'].toFixed(3)})`);
    add('TPIR @ FPIR 3/60', (r) => `${pct(r.tpirAtFpir['3/60'])} (threshold ${r.thresholds['3/60'].toFixed(3)})`);
    add('no face found', (r) => String(r.detectFailures));
    for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 32 : 34)).join(''));
  }
  return 0;
}

