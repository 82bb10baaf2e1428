/**
 * npm run bench:runtime [-- --json] [-- --iterations N]
 *
 * For each model and 1 and 2 threads: median and p95 latency of one invoke
 * through our runtime (async, off the main thread), Node's event-loop delay
 * p99 while invoking back to back, and the same model through the peer
 * binding tfjs-tflite-node in the same run: with its defaults and with
 * XNNPACK switched on through a delegate plugin. A model that our load-time
 * rewrites change (native/model-rewrite.ts: MobileFaceNet) is measured both
 * as shipped, the same graph the peer runs, and rewritten: same outputs,
 * fewer ops. The int8 MobileFaceNet (build/models, made by the quantiser)
 * runs last, with XNNPACK (its QS8 kernels; TFLite 2.9 leaves int8 PRELU and
 * RESHAPE to its own kernels) and without; the peer is not run on it.
 */
import { monitorEventLoopDelay } from 'perf_hooks';
import * as os from 'os';
import * as fs from 'fs';
import { CpuRuntime, shippedModels } from '../../native';
import { rewriteForCpu } from '../../native/model-rewrite';
import { MODELS, ModelName } from '../models';
import { PeerModel } from '../peer';
import { median, nowMs, percentile, round } from './stats';

const args = process.argv.slice(2);
const json = args.includes('--json');
const iterArg = args.indexOf('--iterations');
const iterations = iterArg >= 0 ? Number(args[iterArg + 1]) : 200;

function randomInput(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return data;
}

async function benchOurs(model: string, threads: number, rewrite: boolean, inputs: Float32Array[][], xnnpack = true) {
  const runtime = await CpuRuntime.open(model, { threads, rewrite, xnnpack });
  for (let i = 0; i < 10; i++) await runtime.invoke(inputs[i % inputs.length]);
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = nowMs();
    await runtime.invoke(inputs[i % inputs.length]);
    times.push(nowMs() - start);
  }
  histogram.disable();
  await runtime.dispose();
  return { times, loopP99: histogram.percentile(99) / 1e6 };
}

function benchPeer(model: string, threads: number, xnnpack: boolean, inputs: Float32Array[][], count: number) {
  const peer = new PeerModel(model, { threads, xnnpack });
  for (let i = 0; i < 3; i++) peer.run(inputs[i % inputs.length]);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = nowMs();
    peer.run(inputs[i % inputs.length]);
    times.push(nowMs() - start);
  }
  return times;
}

async function main(): Promise<void> {
  if (!json)
    console.log(
      `bench:runtime on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.availableParallelism()} cores), ${iterations} invokes per case\n`,
    );
  const rows: Record<string, string | number | boolean | null>[] = [];
  for (const name of Object.keys(MODELS) as ModelName[]) {
    const probe = await CpuRuntime.open(MODELS[name], { threads: 1 });
    const info = probe.inputs[0];
    await probe.dispose();
    const length = info.shape.reduce((a, b) => a * b, 1);
    const inputs = [0, 1, 2, 3].map((seed) => [randomInput(length, seed + 1)]);
    const batch = info.shape[0];
    const rewritable = rewriteForCpu(fs.readFileSync(MODELS[name])).applied.length > 0;
    for (const [threads, rewrite] of [
      [1, false],
      [2, false],
      ...(rewritable
        ? [
            [1, true],
            [2, true],
          ]
        : []),
    ] as [number, boolean][]) {
      const ours = await benchOurs(MODELS[name], threads, rewrite, inputs);
      // The peer without XNNPACK is many times slower: fewer runs keep the benchmark short.
      const peerDefault = benchPeer(MODELS[name], threads, false, inputs, Math.max(10, Math.round(iterations / 10)));
      const peerXnnpack = benchPeer(MODELS[name], threads, true, inputs, iterations);
      const medianMs = median(ours.times);
      const row = {
        model: name,
        rewritten: rewrite,
        backend: 'cpu',
        threads,
        batch,
        medianMs: round(medianMs, 3),
        p95Ms: round(percentile(ours.times, 95), 3),
        perFaceMs: round(medianMs / batch, 3),
        peerMedianMs: round(median(peerDefault), 3),
        speedup: round(median(peerDefault) / medianMs, 2),
        peerXnnpackMedianMs: round(median(peerXnnpack), 3),
        speedupVsXnnpack: round(median(peerXnnpack) / medianMs, 3),
        eventLoopP99Ms: round(ours.loopP99, 3),
      };
      rows.push(row);
      if (json) console.log(JSON.stringify(row));
    }
  }
  if (fs.existsSync(shippedModels.mobilefacenetInt8)) {
    const length = 112 * 112 * 3;
    const inputs = [0, 1, 2, 3].map((seed) => [randomInput(length, seed + 1)]);
    for (const [threads, xnnpack] of [
      [1, true],
      [2, true],
      [1, false],
      [2, false],
    ] as [number, boolean][]) {
      const ours = await benchOurs(shippedModels.mobilefacenetInt8, threads, true, inputs, xnnpack);
      const medianMs = median(ours.times);
      const row = {
        model: `mobilefacenet-int8${xnnpack ? '' : ' (no XNNPACK)'}`,
        rewritten: false,
        backend: 'cpu',
        threads,
        batch: 1,
        medianMs: round(medianMs, 3),
        p95Ms: round(percentile(ours.times, 95), 3),
        perFaceMs: round(medianMs, 3),
        peerMedianMs: null,
        speedup: null,
        peerXnnpackMedianMs: null,
        speedupVsXnnpack: null,
        eventLoopP99Ms: round(ours.loopP99, 3),
      };
      rows.push(row);
      if (json) console.log(JSON.stringify(row));
    }
  }
  if (!json) {
    console.log(
      'model                      thr batch  median   p95  per-face | peer default  x     | peer+XNNPACK  x     | loop p99',
    );
    for (const r of rows) {
      const cell = (v: string | number | boolean | null | undefined) =>
        v === null || v === undefined ? '-' : String(v);
      console.log(
        `${(String(r.model) + (r.rewritten ? ' (rewritten)' : '')).padEnd(26)} ${r.threads}   ${r.batch}    ${String(r.medianMs).padStart(6)} ${String(r.p95Ms).padStart(6)} ${String(r.perFaceMs).padStart(6)}  | ${cell(r.peerMedianMs).padStart(8)} ms ${cell(r.speedup).padStart(6)} | ${cell(r.peerXnnpackMedianMs).padStart(8)} ms ${cell(r.speedupVsXnnpack).padStart(5)} | ${r.eventLoopP99Ms} ms`,
      );
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
