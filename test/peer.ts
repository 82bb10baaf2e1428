/**
 * The peer binding, tfjs-tflite-node (same TFLite 2.9 library, synchronous
 * infer on the calling thread). Used by tests as an independent reference and
 * by the benchmarks as the comparison. It has no XNNPACK switch of its own, so
 * "with XNNPACK" hands it our external-delegate plugin
 * (test/bench/xnnpack_plugin.c, built here on first use: it is never part of
 * the package), which returns the same library's XNNPACK delegate.
 */
import * as fs from 'fs';
import * as path from 'path';
import { buildSharedLibrary } from './helpers/c-library';
import { findRepoRoot, tfliteCcDeps } from './helpers/fake-edgetpu';

interface PeerTensor {
  data(): Float32Array | Uint8Array | Int8Array | Int32Array;
  name: string;
  dataType: string;
  shape: string;
}

interface PeerRunner {
  getInputs(): PeerTensor[];
  getOutputs(): PeerTensor[];
  infer(): void;
}

export type PeerRunnerClass = new (
  model: ArrayBuffer,
  options: {
    threads: number;
    delegate?: { path: string; options: [string, string][] };
  },
) => PeerRunner;

/**
 * The peer's native binding itself (its Interpreter class is what the package
 * exports as TFLiteNodeModelRunner). Loading the package's index would also
 * load its own @tensorflow/tfjs-core 3.x, whose global engine then clashes
 * with the tfjs-core 4.x that face-api uses in the same mocha process.
 */
export function peerRunnerClass(): PeerRunnerClass {
  const dir = path.dirname(require.resolve('tfjs-tflite-node/package.json'));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(path.join(dir, 'build', 'Release', 'node_tflite_binding.node')) as { Interpreter: PeerRunnerClass })
    .Interpreter;
}

/** The benchmark's external-delegate plugin, linked against the peer's own TFLite library. */
export function xnnpackPlugin(): string {
  const { includeDir, libDir } = tfliteCcDeps();
  return buildSharedLibrary(
    path.join(findRepoRoot(), 'test', 'bench', 'xnnpack_plugin.c'),
    'xnnpack_plugin.so',
    ['-O2', `-I${includeDir}`, `-I${path.join(findRepoRoot(), 'native', 'src')}`],
    [`-L${libDir}`, '-ltensorflowlite_c', `-Wl,-rpath,${libDir}`],
  );
}

export class PeerModel {
  private runner: PeerRunner;
  private inputs: PeerTensor[];
  private outputs: PeerTensor[];

  constructor(modelPath: string, options: { threads: number; xnnpack: boolean }) {
    const TFLiteNodeModelRunner = peerRunnerClass();
    const bytes = fs.readFileSync(modelPath);
    const model = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    // The binding checks for the key, not its value: leave it out for "no delegate".
    this.runner = new TFLiteNodeModelRunner(
      model,
      options.xnnpack
        ? {
            threads: options.threads,
            delegate: { path: xnnpackPlugin(), options: [['num_threads', String(options.threads)]] },
          }
        : { threads: options.threads },
    );
    this.inputs = this.runner.getInputs();
    this.outputs = this.runner.getOutputs();
  }

  /** Runs synchronously, like the peer does; returns copies of the outputs. */
  run(inputs: Float32Array[]): Float32Array[] {
    inputs.forEach((data, i) => (this.inputs[i].data() as Float32Array).set(data));
    this.runner.infer();
    return this.outputs.map((t) => Float32Array.from(t.data() as Float32Array));
  }
}
