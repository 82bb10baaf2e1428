#!/usr/bin/env node
/**
 * coral-face: the recognition engine from the command line.
 *
 *   coral-face enrol <name> <image...>     coral-face identify <image...>
 *   coral-face forget <name>               coral-face list
 *   coral-face rename <old> <new>          coral-face eval <dataset-dir> [--json] [--peer] [--aligned] [--shots N]
 *   coral-face devices
 *
 * Exit codes: 0 success, 1 the operation failed on its input (bad image,
 * too few usable photos, unknown person), 2 usage error.
 */
import { listEdgeTpuDevices } from '../../../native';
import { GalleryError } from '../../core/gallery/gallery';
import { ImageError } from '../../core/media/decode';
import { type Args, parseArgs, USAGE, UsageError } from './args';
import { demo } from './demo';
import { runEval } from './eval';
import { enrol, forget, identify, list, rename } from './gallery';
import { print } from './output';

async function devices(): Promise<number> {
  print(await listEdgeTpuDevices());
  return 0;
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
