#!/usr/bin/env node
/**
 * coral-face: the recognition engine from the command line.
 *
 *   coral-face enrol <name> <image...>     coral-face identify <image...>
 *   coral-face forget <name>               coral-face list
 *   coral-face rename <old> <new>          coral-face eval <dataset-dir> [--json] [--peer] [--aligned]
 *   coral-face devices
 *
 * Exit codes: 0 success, 1 the operation failed on its input (bad image,
 * too few usable photos, unknown person), 2 usage error.
 */
import * as os from 'os';
import * as path from 'path';
import { listEdgeTpuDevices } from '../../native';
import { decodeImage, ImageError } from './decode';
import { EnrolError, enrolPerson } from './enrol';
import { DescribePhoto, evaluate, readDataset } from './evaluate';
import { Gallery, GalleryError } from './gallery';
import type { RgbImage } from './image';
import { DEFAULT_MARGIN, DEFAULT_THRESHOLD } from './imprint';
import { FacePipeline, mainFace, PipelineOptions } from './pipeline';
import { Recognizer } from './recognizer';

const USAGE = `usage: coral-face <command> [options]

commands:
  enrol <name> <image...>      teach a person from photos (JPEG, PNG, WebP)
  forget <name>                remove a person and their photos
  rename <old> <new>           rename a person
  list                         list people (JSON)
  identify <image...>          name every face in each image (one JSON line per image)
  eval <dataset-dir>           accuracy on a folder per identity + _unknown/ (see README)
  devices                      list Coral Edge TPUs
  demo [--port N] [--dir D]    start Node-RED with the demo flow on a clip (no camera or Coral needed)

options:
  --gallery <dir>      gallery folder (default $CORAL_FACE_GALLERY or ~/.coral-face/gallery)
  --detector short|full  BlazeFace short-range (near faces, default) or full-range (far faces)
  --device <spec>      auto (default), cpu, usb, usb:N, pci, pci:N
  --threshold <cos>    accept a face above this cosine (default ${DEFAULT_THRESHOLD})
  --margin <cos>       and this far above the runner-up (default ${DEFAULT_MARGIN})
  --min-photos <n>     enrol: fewest usable photos for a new person (default 3)
  --json               eval: one JSON object
  --peer               eval: also run @vladmandic/face-api (dev dependency) on the same protocol
  --aligned            eval: the images are aligned 112x112 crops (no detection)
`;

class UsageError extends Error {}

interface Args {
  command: string;
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['gallery', 'detector', 'device', 'threshold', 'margin', 'min-photos', 'port', 'dir']);

export function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const [key, inline] = arg.slice(2).split(/=(.*)/s, 2);
      if (VALUE_FLAGS.has(key)) {
        const value = inline ?? argv[++i];
        if (value === undefined) throw new UsageError(`--${key} needs a value`);
        flags.set(key, value);
      } else if (['json', 'peer', 'aligned', 'help'].includes(key)) {
        flags.set(key, true);
      } else {
        throw new UsageError(`unknown option --${key}`);
      }
    } else {
      positional.push(arg);
    }
  }
  return { command: positional.shift() ?? '', positional, flags };
}

function numberFlag(args: Args, name: string): number | undefined {
  const value = args.flags.get(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number`);
  return n;
}

function pipelineOptions(args: Args): PipelineOptions {
  const detector = args.flags.get('detector') ?? 'short';
  if (detector !== 'short' && detector !== 'full') throw new UsageError('--detector is short or full');
  const device = args.flags.get('device');
  return {
    detector: { variant: detector },
    embedder: { device: typeof device === 'string' ? device : 'auto' },
  };
}

function galleryDir(args: Args): string {
  const flag = args.flags.get('gallery');
  if (typeof flag === 'string') return path.resolve(flag);
  return process.env.CORAL_FACE_GALLERY ?? path.join(os.homedir(), '.coral-face', 'gallery');
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const round = (v: number, d = 4): number => Math.round(v * 10 ** d) / 10 ** d;

async function withPipeline<T>(args: Args, job: (pipeline: FacePipeline) => Promise<T>): Promise<T> {
  const pipeline = await FacePipeline.open(pipelineOptions(args));
  try {
    return await job(pipeline);
  } finally {
    await pipeline.dispose();
  }
}

async function enrol(args: Args): Promise<number> {
  const [name, ...images] = args.positional;
  if (!name || images.length === 0) throw new UsageError('enrol needs a name and at least one image');
  const gallery = await Gallery.open(galleryDir(args), { create: true });
  return withPipeline(args, async (pipeline) => {
    try {
      const result = await enrolPerson(pipeline, gallery, name, images, { minPhotos: numberFlag(args, 'min-photos') });
      print({ name, id: result.person?.id, accepted: result.accepted, rejected: result.rejected, photos: result.photos.map(photoSummary) });
      return 0;
    } catch (error) {
      if (!(error instanceof EnrolError)) throw error;
      print({ name, error: { code: error.code, message: error.message }, photos: error.result.photos.map(photoSummary) });
      return 1;
    }
  });
}

function photoSummary(p: { source: string; accepted: boolean; faces: number; reasons: { code: string; message: string }[] }) {
  return { source: p.source, accepted: p.accepted, faces: p.faces, reasons: p.reasons };
}

async function identify(args: Args): Promise<number> {
  if (args.positional.length === 0) throw new UsageError('identify needs at least one image');
  const gallery = await Gallery.open(galleryDir(args), { create: true });
  return withPipeline(args, async (pipeline) => {
    const recognizer = await Recognizer.open(gallery, pipeline.embedder, {
      threshold: numberFlag(args, 'threshold'),
      margin: numberFlag(args, 'margin'),
    });
    let status = 0;
    for (const source of args.positional) {
      let image: RgbImage;
      try {
        image = await decodeImage(source);
      } catch (error) {
        const e = error as ImageError;
        print({ source, error: { code: e.code, message: e.message } });
        status = 1;
        continue;
      }
      const { faces } = await pipeline.analyse(image, { qualityGate: false });
      print({
        source,
        width: image.width,
        height: image.height,
        faces: faces.map((f) => {
          const id = recognizer.identify(f.embedding!);
          return {
            box: { x: Math.round(f.box.x), y: Math.round(f.box.y), width: Math.round(f.box.width), height: Math.round(f.box.height) },
            score: round(f.score, 3),
            name: id.name,
            known: id.known,
            cosine: round(id.cosine),
            confidence: round(id.confidence),
            ...(id.known ? {} : { unknownReason: id.unknownReason, closest: id.closest }),
            quality: { ok: f.quality.ok, reasons: f.quality.reasons.map((r) => r.code) },
          };
        }),
      });
    }
    recognizer.close();
    return status;
  });
}

async function list(args: Args): Promise<number> {
  const gallery = await Gallery.open(galleryDir(args), { create: true });
  print(gallery.listPeople().map((p) => ({ id: p.id, name: p.name, photos: p.crops.length, updatedAt: p.updatedAt })));
  return 0;
}

async function forget(args: Args): Promise<number> {
  const [name] = args.positional;
  if (!name) throw new UsageError('forget needs a name');
  const gallery = await Gallery.open(galleryDir(args), { create: true });
  const person = await gallery.forget(name);
  print({ forgotten: person.name, id: person.id });
  return 0;
}

async function rename(args: Args): Promise<number> {
  const [from, to] = args.positional;
  if (!from || !to) throw new UsageError('rename needs the old and the new name');
  const gallery = await Gallery.open(galleryDir(args), { create: true });
  const person = await gallery.rename(from, to);
  print({ renamed: from, name: person.name, id: person.id });
  return 0;
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

async function runEval(args: Args): Promise<number> {
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
    const { openFaceApiPeer, largestFace: largestPeerFace } = await import('./peer-faceapi');
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

async function devices(): Promise<number> {
  print(await listEdgeTpuDevices());
  return 0;
}

/**
 * The demo: Node-RED in its own user dir with this package and the demo flow,
 * on a clip made now from the photos @vladmandic/face-api ships in demo/ (so
 * no camera, no Coral, nothing downloaded).
 */
async function demo(args: Args): Promise<number> {
  const dir = path.resolve(typeof args.flags.get('dir') === 'string' ? String(args.flags.get('dir')) : path.join(os.homedir(), '.coral-face', 'demo'));
  const port = numberFlag(args, 'port') ?? 1880;
  const fs = await import('fs');
  const { spawn } = await import('child_process');
  const { makeDemoClip } = await import('./camera');
  const { demoFlow } = await import('./flows');
  const root = path.resolve(__dirname, '..', '..', '..');
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  const clip = path.join(dir, 'demo.mp4');
  if (!fs.existsSync(clip)) {
    let samples: string[];
    try {
      const faceApiDemo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
      samples = fs.readdirSync(faceApiDemo).filter((f) => /^sample\d\.jpg$/.test(f)).sort().map((f) => path.join(faceApiDemo, f));
    } catch {
      throw new Error('the demo clip is made from @vladmandic/face-api/demo photos: run "npm install" in the repository first');
    }
    process.stdout.write(`making the demo clip from ${samples.length} photos...\n`);
    await makeDemoClip(samples, clip, { secondsPerImage: 4, width: 1280, height: 720, fps: 10 });
  }
  // Node-RED finds the package through its user dir's node_modules.
  const link = path.join(dir, 'node_modules', 'node-red-contrib-coral-face');
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'coral-face-demo', private: true,
    dependencies: { 'node-red-contrib-coral-face': `file:${root}` } }, null, 2));
  const flowFile = path.join(dir, 'flows.json');
  if (!fs.existsSync(flowFile)) fs.writeFileSync(flowFile, JSON.stringify(demoFlow(clip, path.join(dir, 'gallery')), null, 2));
  fs.writeFileSync(path.join(dir, 'settings.js'), `module.exports = ${JSON.stringify({
    uiPort: port, uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false,
    editorTheme: { tours: false, projects: { enabled: false } },
  }, null, 2)};\n`);
  let redJs: string;
  try {
    redJs = require.resolve('node-red/red.js');
  } catch {
    throw new Error('Node-RED is not installed here: run "npm install" in the repository (it is a dev dependency)');
  }
  process.stdout.write(`starting Node-RED (user dir ${dir})\n\n  editor: http://127.0.0.1:${port}/\n\nCtrl-C stops it.\n`);
  const child = spawn(process.execPath, [redJs, '--userDir', dir, '--settings', path.join(dir, 'settings.js')], { stdio: 'inherit' });
  const stop = () => child.kill('SIGINT');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 0)));
}

const COMMANDS: Record<string, (args: Args) => Promise<number>> = {
  enrol, enroll: enrol, identify, list, forget, rename, eval: runEval, devices, demo,
};

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
    if (args.flags.has('help') || args.command === 'help' || args.command === '') {
      process.stdout.write(USAGE);
      return args.command === '' && !args.flags.has('help') ? 2 : 0;
    }
    const command = COMMANDS[args.command];
    if (!command) throw new UsageError(`unknown command "${args.command}"`);
    return await command(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`coral-face: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    const e = error as { code?: string; message?: string };
    const known = error instanceof GalleryError || error instanceof ImageError || (typeof e.code === 'string' && e.code.startsWith('ERR_'));
    process.stderr.write(`coral-face: ${e.message ?? String(error)}${known && e.code ? ` [${e.code}]` : ''}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
