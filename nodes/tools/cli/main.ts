#!/usr/bin/env node
/**
 * coral-face: the recognition engine from the command line.
 *
 *   coral-face enrol <name> <image...>     coral-face identify <image...>
 *   coral-face forget <name>               coral-face list
 *   coral-face rename <old> <new>          coral-face eval <dataset-dir> [--json] [--peer] [--aligned] [--shots N]
 *   coral-face devices                     coral-face demo [--port N] [--host H]
 *   coral-face eval-pairs <pairs.txt> [--images <dir>] [--model <path>]
 *   coral-face quantize [model] --calibration <dir> -o <int8.tflite>   (or --record <file.json>)
 *   coral-face edgetpu-check <model>       coral-face edgetpu-compile [model] [-o <dir>]
 *
 * Output for people by default, one JSON object per result with --json;
 * errors in one place (output.ts). Exit codes: 0 success, 1 the operation
 * failed on its input (bad image, too few usable photos, unknown person), 2
 * usage error. Commands are loaded when run, so `--help` loads neither the
 * native runtime nor sharp.
 */
import { type Args, parseArgs, USAGE, UsageError } from './args';
import { emit, emitError, outputOf } from './output';

async function devices(args: Args): Promise<number> {
  const { listEdgeTpuDevices } = await import('../../../native');
  const found = await listEdgeTpuDevices();
  emit(outputOf(args), found, () => {
    if (!found.loaded)
      return `libedgetpu is not installed or could not be loaded${found.error ? ` (${found.error})` : ''}: the CPU is used`;
    if (found.devices.length === 0)
      return `no Coral Edge TPU found (libedgetpu ${found.version ?? ''}): the CPU is used`;
    return [`libedgetpu ${found.version ?? ''}`, ...found.devices.map((d) => `  ${d.name}  ${JSON.stringify(d)}`)].join(
      '\n',
    );
  });
  return 0;
}

const gallery = () => import('./gallery');
const COMMANDS: Record<string, (args: Args) => Promise<number>> = {
  enrol: async (a) => (await gallery()).enrol(a),
  enroll: async (a) => (await gallery()).enrol(a),
  identify: async (a) => (await gallery()).identify(a),
  list: async (a) => (await gallery()).list(a),
  forget: async (a) => (await gallery()).forget(a),
  rename: async (a) => (await gallery()).rename(a),
  repair: async (a) => (await gallery()).repair(a),
  eval: async (a) => (await import('./eval')).runEval(a),
  'eval-pairs': async (a) => (await import('./eval-pairs')).evalPairs(a),
  quantize: async (a) => (await import('./quantize')).quantize(a),
  'edgetpu-check': async (a) => (await import('./edgetpu')).edgetpuCheck(a),
  'edgetpu-compile': async (a) => (await import('./edgetpu')).edgetpuCompile(a),
  devices,
  demo: async (a) => (await import('./demo')).demo(a),
};

export async function main(argv: string[]): Promise<number> {
  let args: Args | null = null;
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
    const out = args ? outputOf(args) : { json: argv.includes('--json'), verbose: false };
    if (error instanceof UsageError) {
      emitError(out, { code: 'ERR_USAGE', message: error.message });
      if (!out.json) process.stderr.write(`\n${USAGE}`);
      return 2;
    }
    const e = error as { code?: unknown; message?: string };
    const code = typeof e.code === 'string' && e.code.startsWith('ERR_') ? e.code : undefined;
    emitError(out, { code, message: e.message ?? String(error) });
    if (out.verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
