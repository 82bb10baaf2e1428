/**
 * The inference runtime: a TFLite model that runs off Node's main thread.
 * `CpuRuntime` runs in this process with XNNPACK; `EdgeTpuRuntime`
 * (edgetpu.ts) runs a compiled model on a Coral in a supervised child process
 * and falls back to a `CpuRuntime`. Both implement `InferenceRuntime`.
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as os from 'os';
import { loadAddon, NativeInterpreter } from './addon';
import { asRuntimeError, RuntimeError } from './errors';
import { rewriteForCpu } from './model-rewrite';
import { SerialQueue } from './queue';
import { describe, floatOutput, InputData, prepareInput, RawTensorData, rawOutput, TensorInfo } from './tensors';

export type Performance = 'low' | 'medium' | 'high' | 'max';

/** Which hardware runs the model, and why. */
export interface BackendInfo {
  kind: 'cpu' | 'edgetpu';
  /** For the Edge TPU: the device as the user would name it, e.g. "usb:0". */
  device?: string;
  /** For the Edge TPU: the device path, e.g. /dev/apex_0. */
  devicePath?: string;
  /** Why this backend runs: the reason the Edge TPU is not used, or "requested". */
  reason: string;
  /** Stable code of the reason when it is a fallback (e.g. ERR_EDGETPU_LIBRARY). */
  reasonCode?: string;
  threads: number;
  model: string;
  /** Load-time rewrites applied to the CPU model (model-rewrite.ts); empty when none applied. */
  rewrites?: string[];
}

export interface InferenceRuntime extends EventEmitter {
  readonly backend: BackendInfo;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** Runs one inference; outputs dequantised to Float32Array. Off the main thread; queued in order. */
  invoke(inputs: InputData[]): Promise<Float32Array[]>;
  /** Same, outputs in each tensor's own dtype. */
  invokeRaw(inputs: InputData[]): Promise<RawTensorData[]>;
  /**
   * Same as invoke, and which backend answered. It differs from `backend`
   * only around a switch (an Edge TPU crash answers on the CPU model), and
   * matters when the two sides of a pair are different models.
   */
  invokeWithBackend(inputs: InputData[]): Promise<{ outputs: Float32Array[]; backend: BackendInfo }>;
  /** Changes an input's shape (e.g. the batch); waits for invokes already queued. */
  resizeInput(index: number, shape: number[]): Promise<void>;
  dispose(): Promise<void>;
  /** Events: 'backend' (BackendInfo) whenever the backend changes. */
}

export interface CpuOptions {
  /** Threads for XNNPACK and TFLite (default: 2, or 1 on a single core). */
  threads?: number;
  /** Apply the XNNPACK delegate (default true: many times faster than TFLite's own kernels; bench:runtime). */
  xnnpack?: boolean;
  /**
   * Apply the result-preserving rewrites of model-rewrite.ts (default true):
   * fused PReLU, a resizable batch.
   */
  rewrite?: boolean;
}

export function defaultThreads(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

function checkModelFile(model: string | Uint8Array): void {
  if (typeof model !== 'string') return;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(model);
  } catch {
    throw new RuntimeError('ERR_MODEL_NOT_FOUND', `model file not found: ${model}: check the path`);
  }
  if (!stat.isFile()) throw new RuntimeError('ERR_MODEL_NOT_FOUND', `model path is not a file: ${model}`);
}

/** Checks the TFLite file identifier before TFLite sees the bytes. */
function checkModelBytes(model: string | Uint8Array, label: string): void {
  let head: Buffer;
  if (typeof model === 'string') {
    const fd = fs.openSync(model, 'r');
    try {
      head = Buffer.alloc(8);
      fs.readSync(fd, head, 0, 8, 0);
    } finally {
      fs.closeSync(fd);
    }
  } else {
    head = Buffer.from(model.buffer, model.byteOffset, Math.min(8, model.byteLength));
  }
  if (head.length < 8 || head.toString('latin1', 4, 8) !== 'TFL3') {
    throw new RuntimeError(
      'ERR_MODEL_INVALID',
      `${label} is not a TFLite model (no "TFL3" identifier): give a .tflite file`,
    );
  }
}

/**
 * The rewritten bytes of a model file, kept for the few files a process opens again and again: every
 * Node-RED deploy opens the detector and the embedder anew, and rewriting MobileFaceNet is about 10 ms of
 * JavaScript on the event loop. Keyed by path, size and modification time, so a changed file is read again.
 */
const rewriteCache = new Map<string, ReturnType<typeof rewriteForCpu>>();
const REWRITE_CACHE_FILES = 8;

async function rewrittenModel(model: string | Uint8Array): Promise<ReturnType<typeof rewriteForCpu>> {
  if (typeof model !== 'string') return rewriteForCpu(model);
  const stat = await fs.promises.stat(model);
  const key = `${stat.size}:${stat.mtimeMs}:${model}`;
  const cached = rewriteCache.get(key);
  if (cached) return cached;
  const result = rewriteForCpu(await fs.promises.readFile(model));
  if (rewriteCache.size >= REWRITE_CACHE_FILES) rewriteCache.delete(rewriteCache.keys().next().value!);
  rewriteCache.set(key, result);
  return result;
}

export class CpuRuntime extends EventEmitter implements InferenceRuntime {
  private native: NativeInterpreter | undefined;
  private queue = new SerialQueue();
  private inputInfo: TensorInfo[];
  private outputInfo: TensorInfo[];
  readonly backend: BackendInfo;

  private constructor(native: NativeInterpreter, backend: BackendInfo) {
    super();
    this.native = native;
    this.backend = backend;
    this.inputInfo = native.inputs().map(describe);
    this.outputInfo = native.outputs().map(describe);
  }

  /** Opens a model (path or bytes) on the CPU. */
  static async open(
    model: string | Uint8Array,
    options: CpuOptions = {},
    reason = 'CPU requested',
    reasonCode?: string,
  ): Promise<CpuRuntime> {
    const label = typeof model === 'string' ? model : 'model buffer';
    checkModelFile(model);
    checkModelBytes(model, label);
    const threads = options.threads ?? defaultThreads();
    const xnnpack = options.xnnpack ?? true;
    const rewritten = (options.rewrite ?? true) ? await rewrittenModel(model) : null;
    const backend = (rewrites: string[]): BackendInfo => ({
      kind: 'cpu',
      reason,
      reasonCode,
      threads,
      model: label,
      rewrites,
    });
    if (rewritten?.applied.length) {
      try {
        return new CpuRuntime(
          await loadAddon().open(rewritten.bytes, { threads, xnnpack }),
          backend(rewritten.applied),
        );
      } catch {
        // A rewrite TFLite rejects only loses the speed-up: load the model as it is.
      }
    }
    try {
      const native = await loadAddon().open(model, { threads, xnnpack });
      return new CpuRuntime(native, backend([]));
    } catch (error) {
      throw asRuntimeError(error);
    }
  }

  get inputs(): readonly TensorInfo[] {
    return this.inputInfo;
  }

  get outputs(): readonly TensorInfo[] {
    return this.outputInfo;
  }

  private live(): NativeInterpreter {
    if (!this.native)
      throw new RuntimeError('ERR_DISPOSED', 'this runtime was disposed: open the model again to use it');
    return this.native;
  }

  invokeRaw(inputs: InputData[]): Promise<RawTensorData[]> {
    return this.queue.run(async () => {
      const native = this.live();
      if (!Array.isArray(inputs) || inputs.length !== this.inputInfo.length) {
        throw new RuntimeError(
          'ERR_INPUT_COUNT',
          `the model takes ${this.inputInfo.length} input(s), got ${Array.isArray(inputs) ? inputs.length : typeof inputs}`,
        );
      }
      const prepared = inputs.map((data, i) => prepareInput(data, this.inputInfo[i]));
      let buffers: ArrayBuffer[];
      try {
        buffers = await native.invoke(prepared);
      } catch (error) {
        throw asRuntimeError(error);
      }
      return buffers.map((buffer, i) => rawOutput(buffer, this.outputInfo[i]));
    });
  }

  async invoke(inputs: InputData[]): Promise<Float32Array[]> {
    const raw = await this.invokeRaw(inputs);
    return raw.map((data, i) => floatOutput(data, this.outputInfo[i]));
  }

  async invokeWithBackend(inputs: InputData[]): Promise<{ outputs: Float32Array[]; backend: BackendInfo }> {
    return { outputs: await this.invoke(inputs), backend: this.backend };
  }

  resizeInput(index: number, shape: number[]): Promise<void> {
    return this.queue.run(async () => {
      const native = this.live();
      try {
        await native.resizeInput(index, shape);
      } catch (error) {
        throw asRuntimeError(error);
      }
      this.inputInfo = native.inputs().map(describe);
      this.outputInfo = native.outputs().map(describe);
    });
  }

  async dispose(): Promise<void> {
    const native = this.native;
    this.native = undefined;
    native?.dispose();
  }
}
