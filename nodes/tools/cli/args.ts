/** The command line's arguments: parsed once, with a usage error for anything malformed. */
import * as os from 'os';
import * as path from 'path';
import { DEFAULT_MARGIN, DEFAULT_THRESHOLD } from '../../core/identify/imprint';
import type { PipelineOptions } from '../../core/pipeline';

export const USAGE = `usage: coral-face <command> [options]

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
  --shots <n>[,<n>...] eval: photos per person that enrol, the rest probe (default 5); a list runs each
`;

export class UsageError extends Error {}

export interface Args {
  command: string;
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['gallery', 'detector', 'device', 'threshold', 'margin', 'min-photos', 'port', 'dir', 'shots']);

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

export function numberFlag(args: Args, name: string): number | undefined {
  const value = args.flags.get(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number`);
  return n;
}

export function pipelineOptions(args: Args): PipelineOptions {
  const detector = args.flags.get('detector') ?? 'short';
  if (detector !== 'short' && detector !== 'full') throw new UsageError('--detector is short or full');
  const device = args.flags.get('device');
  return {
    detector: { variant: detector },
    embedder: { device: typeof device === 'string' ? device : 'auto' },
  };
}

export function galleryDir(args: Args): string {
  const flag = args.flags.get('gallery');
  if (typeof flag === 'string') return path.resolve(flag);
  return process.env.CORAL_FACE_GALLERY ?? path.join(os.homedir(), '.coral-face', 'gallery');
}

