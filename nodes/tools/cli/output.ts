/** What the command line prints: one JSON line per result on stdout. */
import { FacePipeline } from '../../core/pipeline';
import { type Args, pipelineOptions } from './args';

export function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export const round = (v: number, d = 4): number => Math.round(v * 10 ** d) / 10 ** d;

export async function withPipeline<T>(args: Args, job: (pipeline: FacePipeline) => Promise<T>): Promise<T> {
  const pipeline = await FacePipeline.open(pipelineOptions(args));
  try {
    return await job(pipeline);
  } finally {
    await pipeline.dispose();
  }
}

