/** The command line's arguments: parsed once, with a usage error for anything malformed. */
import * as fs from 'fs';
import * as os from 'os';
import { defaultGalleryDir } from './gallery-location';
import * as path from 'path';
import { DEFAULT_MARGIN, DEFAULT_THRESHOLD } from '../../core/identify/imprint';
import { numberSetting, SETTINGS, type NumberRule } from '../../core/flow/settings';
import type { PipelineOptions } from '../../core/pipeline';

export const USAGE = `usage: coral-face <command> [options]

commands:
  enrol <name> <image...>      teach a person from photos (JPEG, PNG, WebP); --add / --new when the
                               name resembles someone's already enrolled
  forget <name>                remove a person and their photos
  rename <old> <new>           rename a person
  list                         list people
  repair                       rebuild a damaged or lost gallery index from the person folders
  identify <image...>          name every face in each image, or say unknown and why
  eval <dataset-dir>           accuracy on a folder per identity + _unknown/ (see README); --model <path>
  eval-pairs <pairs.txt>       verification accuracy on LFW's pairs format (the k-fold protocol);
                               --images <dir> (default images/ beside the file), --model <path>
  quantize [model] --calibration <dir> -o <int8.tflite> [--record <file.json>] [--method mse|minmax|percentile[:p]] [--limit N]
                               full-int8 copy of a float embedder (default the shipped MobileFaceNet),
                               calibrated on the main face of every photo under <dir>
  quantize [model] --record <file.json> -o <int8.tflite>
                               the same from a saved calibration record (no photos), as the build does
  quantize --detector short|full --calibration <dir> -o <int8.tflite>
                               the same for BlazeFace, calibrated on its own inputs for the photos in <dir>
  edgetpu-check <model>        would edgetpu_compiler map every operation? (exit 0 yes, 1 no, and why)
  edgetpu-compile [model] [-o <dir>]
                               compile for the Coral with edgetpu_compiler (default the int8 MobileFaceNet),
                               or print how to install it and what to run
  devices                      list Coral Edge TPUs
  demo [--port N] [--host H] [--dir D]
                               start Node-RED with the demo flow on a clip (no camera or Coral needed);
                               --host 0.0.0.0 opens it to the network (no login: trusted networks only)

options:
  --gallery <dir>      gallery folder (default $CORAL_FACE_GALLERY, else the one Node-RED's nodes use by
                       default: ~/.node-red/coral-face/gallery)
  --detector short|full  BlazeFace short-range (near faces, default) or full-range (far faces)
  --device <spec>      auto (default), cpu, usb, usb:N, pci, pci:N
  --model <path>       eval, eval-pairs: the embedder model (default the float MobileFaceNet; an
                       X_edgetpu.tflite beside it runs on a Coral)
  --threshold <cos>    accept a face above this cosine (default ${DEFAULT_THRESHOLD})
  --margin <cos>       and this far above the runner-up (default ${DEFAULT_MARGIN})
  --min-photos <n>     enrol: fewest usable photos for a new person (default 3)
  --add                enrol: add to the person whose name this resembles ("alice" for "Alice")
  --new                enrol: a new person, even though the name resembles someone's
  --json               for machines: one JSON object per result (errors too, on stdout)
  --verbose            also TFLite's own log lines, and stack traces
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

const VALUE_FLAGS = new Set([
  'gallery',
  'detector',
  'device',
  'threshold',
  'margin',
  'min-photos',
  'port',
  'host',
  'dir',
  'shots',
  'model',
  'calibration',
  'out',
  'images',
  'method',
  'record',
  'limit',
]);

export function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-o') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--'))
        throw new UsageError('-o needs a value (the output file or folder)');
      flags.set('out', value);
      continue;
    }
    if (arg.startsWith('--')) {
      const [key, inline] = arg.slice(2).split(/=(.*)/s, 2);
      if (VALUE_FLAGS.has(key)) {
        const value = inline ?? argv[++i];
        // "--gallery --json" is a forgotten value, not a folder named "--json".
        if (value === undefined || (inline === undefined && value.startsWith('--')))
          throw new UsageError(`--${key} needs a value`);
        flags.set(key, value);
      } else if (['json', 'peer', 'aligned', 'help', 'verbose', 'add', 'new'].includes(key)) {
        if (inline !== undefined) throw new UsageError(`--${key} takes no value`);
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

/** An option's text value, or undefined when it was not given. */
export function stringFlag(args: Args, name: string): string | undefined {
  const value = args.flags.get(name);
  if (value === true) throw new UsageError(`--${name} needs a value`);
  return value;
}

/** A numeric option within its range (the same ranges the nodes use: nodes/core/flow/settings.ts). */
export function numberFlag(args: Args, name: string, rule: NumberRule = {}): number | undefined {
  const value = args.flags.get(name);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new UsageError(`--${name} needs a value`);
  try {
    return numberSetting(`--${name}`, value, NaN, rule);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The recognition threshold and margin asked for, each within its range. */
export function recognitionFlags(args: Args): { threshold?: number; margin?: number } {
  return {
    threshold: numberFlag(args, 'threshold', SETTINGS['face-gallery'].threshold),
    margin: numberFlag(args, 'margin', SETTINGS['face-gallery'].margin),
  };
}

export function pipelineOptions(args: Args): PipelineOptions {
  const detector = args.flags.get('detector') ?? 'short';
  if (detector !== 'short' && detector !== 'full') throw new UsageError('--detector is short or full');
  const device = args.flags.get('device');
  const model = stringFlag(args, 'model');
  return {
    detector: { variant: detector },
    embedder: {
      device: typeof device === 'string' ? device : 'auto',
      ...(model === undefined ? {} : { model: path.resolve(model) }),
    },
  };
}

export function galleryDir(args: Args): string {
  const flag = args.flags.get('gallery');
  if (typeof flag === 'string') return path.resolve(flag);
  return defaultGalleryDir(
    process.env,
    os.homedir(),
    (dir) => fs.existsSync(dir),
    (text) => {
      if (!args.flags.has('json')) process.stderr.write(`${text}\n`);
    },
  );
}
