/**
 * Calibration: the value range of every activation tensor of a float model,
 * measured by running it over sample inputs. TFLite only hands back graph
 * outputs, so the model is rewritten (a copy) with every activation tensor
 * as an output, and run on the CPU through our own runtime, three times over
 * the inputs: per-channel ranges for channel equalisation (equalize.ts),
 * then on the equalised model each tensor's min and max, then a histogram
 * over that span (ranges.ts picks a range from it).
 */
import { CpuRuntime } from '../runtime';
import { applyEqualization, channelMaxAbs, chooseScales, findPairs } from './equalize';
import { activationTensors, mainSubgraph, prepareFloatGraph } from './graph';
import { RangeMethod, TensorStats, chooseRange } from './ranges';
import { tensorKeys } from './quantize';
import { readModel, TfliteModel, writeModel } from './tflite-file';

/** Inputs for one inference, in the model's input order. Called once per pass: it must give the same inputs each time. */
export type CalibrationInputs = () => AsyncIterable<Float32Array[]>;

export interface Calibration {
  /** The prepared float graph (graph.ts), equalised, that the statistics belong to. */
  model: TfliteModel;
  /** Channel equalisation scales by pair key (equalize.ts); empty when off. */
  equalization: Record<string, number[]>;
  /** Per activation tensor index. */
  stats: Map<number, TensorStats>;
  /** Inferences run per pass. */
  samples: number;
  applied: string[];
}

export interface CalibrateOptions {
  /** XNNPACK threads (default 1: a calibration runs beside other work, and a spinning second thread can cost 20x when cores are busy). */
  threads?: number;
  /** Channel equalisation before the ranges are measured (default true). */
  equalize?: boolean;
  onProgress?: (pass: 0 | 1 | 2, done: number) => void;
}

/**
 * A copy of `model` with every activation tensor as an output, opened on the
 * CPU, and the output index of each tensor in `wanted`. Always all of them:
 * TFLite 2.9's XNNPACK delegate crashes (segfault) on MobileFaceNet when only
 * some intermediate tensors are outputs. Checks TFLite's shapes against the
 * declared ones, which the quantised model keeps.
 */
async function openProbe(
  model: TfliteModel,
  wanted: number[],
  threads?: number,
): Promise<{ runtime: CpuRuntime; slots: number[] }> {
  const probe = structuredClone(model);
  const all = activationTensors(model);
  mainSubgraph(probe).outputs = all;
  const runtime = await CpuRuntime.open(writeModel(probe), { threads: threads ?? 1, rewrite: false });
  for (const [i, info] of runtime.outputs.entries()) {
    const declared = mainSubgraph(model).tensors[all[i]];
    if (info.shape.join() !== declared.shape.join()) {
      await runtime.dispose();
      throw new Error(
        `tensor "${declared.name}" is declared [${declared.shape}] but TFLite computes [${info.shape}] at batch 1`,
      );
    }
  }
  return { runtime, slots: wanted.map((t) => all.indexOf(t)) };
}

export async function calibrate(
  floatModel: Uint8Array,
  inputs: CalibrationInputs,
  options: CalibrateOptions = {},
): Promise<Calibration> {
  const { model, applied } = prepareFloatGraph(floatModel, readModel);
  let equalization: Record<string, number[]> = {};
  if (options.equalize ?? true) {
    const pairs = findPairs(model);
    const tensors = [...new Set(pairs.flatMap((p) => p.tensors))];
    if (tensors.length) {
      const { runtime, slots } = await openProbe(model, tensors, options.threads);
      const ranges = new Map(tensors.map((t) => [t, new Float64Array(mainSubgraph(model).tensors[t].shape.at(-1)!)]));
      try {
        let done = 0;
        for await (const sample of inputs()) {
          const outputs = await runtime.invoke(sample);
          tensors.forEach((t, i) => channelMaxAbs(outputs[slots[i]], ranges.get(t)!.length, ranges.get(t)!));
          done++;
          options.onProgress?.(0, done);
        }
      } finally {
        await runtime.dispose();
      }
      equalization = chooseScales(model, pairs, ranges);
      const count = applyEqualization(model, equalization);
      if (count) applied.push(`equalised the channels of ${count} groups of convolutions`);
    }
  }
  const observed = activationTensors(model);
  const { runtime } = await openProbe(model, observed, options.threads);
  const stats = new Map(observed.map((t) => [t, new TensorStats()]));
  let samples = 0;
  try {
    for (const pass of [1, 2] as const) {
      let done = 0;
      for await (const sample of inputs()) {
        const outputs = await runtime.invoke(sample);
        outputs.forEach((values, i) => {
          const s = stats.get(observed[i])!;
          if (pass === 1) s.observeRange(values);
          else s.observeHistogram(values);
        });
        done++;
        options.onProgress?.(pass, done);
      }
      if (pass === 1) samples = done;
      else if (done !== samples)
        throw new Error(`the calibration inputs changed between passes (${samples} then ${done})`);
      if (done === 0) break;
    }
  } finally {
    await runtime.dispose();
  }
  if (samples === 0) throw new Error('no calibration inputs: give at least one sample');
  return { model, equalization, stats, samples, applied };
}

/** Ranges per tensor name, by `method`; the graph input keeps its full span (clipping the input only loses information). */
export function rangesFrom(calibration: Calibration, method: RangeMethod): Record<string, [number, number]> {
  const subgraph = mainSubgraph(calibration.model);
  const inputs = new Set(subgraph.inputs);
  const keys = tensorKeys(calibration.model);
  const ranges: Record<string, [number, number]> = {};
  for (const [index, stats] of calibration.stats) {
    ranges[keys[index]] = chooseRange(stats, inputs.has(index) ? { name: 'minmax' } : method);
  }
  return ranges;
}
