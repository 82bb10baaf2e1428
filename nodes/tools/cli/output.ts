/**
 * What the command line prints. For people by default: one readable block per
 * result on stdout, errors as one line on stderr ("coral-face: <message>
 * [<code>]"). With --json, for machines: one JSON object per result on
 * stdout, and errors as {"error": {"code", "message"}} on stdout too. The exit
 * codes are the same either way: 0 success, 1 the operation failed on its
 * input, 2 usage.
 */
import type { FacePipeline } from '../../core/pipeline';
import { type Args, pipelineOptions } from './args';

export interface Output {
  json: boolean;
  verbose: boolean;
}

export function outputOf(args: Args): Output {
  return { json: args.flags.has('json'), verbose: args.flags.has('verbose') };
}

/** One result: `human` lines for people, `machine` as one JSON line with --json. */
export function emit(out: Output, machine: unknown, human: () => string): void {
  process.stdout.write(out.json ? `${JSON.stringify(machine)}\n` : `${human().replace(/\n*$/, '')}\n`);
}

/** A JSON line, whatever the mode (commands that only speak JSON). */
export function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** A failure of one result or of the command: the one place errors are written. */
export function emitError(
  out: Output,
  error: { code?: string; message: string },
  extra: Record<string, unknown> = {},
): void {
  const body = { code: error.code ?? 'ERR_FAILED', message: error.message };
  if (out.json) process.stdout.write(`${JSON.stringify({ ...extra, error: body })}\n`);
  else process.stderr.write(`coral-face: ${error.message}${error.code ? ` [${error.code}]` : ''}\n`);
}

/** A hint for people (stderr, so stdout stays the results); silent with --json. */
export function hint(out: Output, text: string): void {
  if (!out.json) process.stderr.write(`${text}\n`);
}

export const round = (v: number, d = 4): number => Math.round(v * 10 ** d) / 10 ** d;

export async function withPipeline<T>(args: Args, job: (pipeline: FacePipeline) => Promise<T>): Promise<T> {
  // The native runtime and sharp load here, not at start: `coral-face --help` needs neither.
  if (args.flags.has('verbose')) process.env.CORAL_FACE_TFLITE_LOG = '1';
  const { FacePipeline } = await import('../../core/pipeline');
  const pipeline = await FacePipeline.open(pipelineOptions(args));
  try {
    return await job(pipeline);
  } finally {
    await pipeline.dispose();
  }
}
