/**
 * The Edge TPU backend: a supervised child process (edgetpu-host.ts) runs the
 * compiled model, so that a libedgetpu abort on a USB error cannot take
 * Node-RED down. When the child dies or hangs, the in-flight inference re-runs
 * on the CPU model of the pair, the CPU serves until the child is back
 * (restarted with exponential backoff), and a 'backend' event reports each
 * switch.
 */
import { ChildProcess, fork } from 'child_process';
import { EventEmitter } from 'events';
import * as path from 'path';
import { deviceName, EdgeTpuDevice, ModelPair } from './devices';
import type { HostReply, HostRequest, InvokeReply, OpenReply, ProbeReply } from './edgetpu-protocol';
import { RuntimeError, RuntimeErrorCode } from './errors';
import { SerialQueue } from './queue';
import { BackendInfo, CpuOptions, CpuRuntime, defaultThreads, InferenceRuntime, Performance } from './runtime';
import { describe, floatOutput, InputData, prepareInput, RawTensorData, rawOutput, TensorInfo } from './tensors';

export interface EdgeTpuOptions extends CpuOptions {
  /** cpu | auto | "" | usb | usb:N | pci | pci:N | :N (default auto). */
  device?: string;
  /** USB clock: low | medium | high | max (default high; "max" needs the libedgetpu1-max build). */
  performance?: Performance;
  /** Path or soname of libedgetpu (default $CORAL_EDGETPU_LIBRARY or libedgetpu.so.1). */
  edgetpuLibrary?: string;
  /** Backoff between restarts of a crashed Edge TPU process. */
  restart?: { initialMs?: number; maxMs?: number };
  /** An inference that takes longer is treated as a hung device (default 10 s). */
  invokeTimeoutMs?: number;
}

const HOST_SCRIPT = path.join(__dirname, 'edgetpu-host.js');
const STDERR_TAIL = 4096;

export function defaultEdgeTpuLibrary(): string {
  return process.env.CORAL_EDGETPU_LIBRARY || 'libedgetpu.so.1';
}

/** A child process speaking the host protocol, with the tail of its stderr kept for crash reports. */
class HostProcess {
  readonly child: ChildProcess;
  private stderr = '';
  private waiters = new Map<string, (reply: HostReply) => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor() {
    this.child = fork(HOST_SCRIPT, [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_TAIL);
    });
    this.child.on('message', (reply: HostReply) => {
      const key = reply.type === 'result' || reply.type === 'error' ? `invoke:${reply.id}` : reply.type;
      const waiter = this.waiters.get(key);
      this.waiters.delete(key);
      waiter?.(reply);
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Sends a request; resolves with its reply, or rejects when the process dies first or the timeout passes. */
  request<R extends HostReply>(request: HostRequest, key: string, timeoutMs: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new RuntimeError('ERR_EDGETPU_CRASHED', `the Edge TPU did not answer within ${timeoutMs} ms`));
        this.kill();
      }, timeoutMs);
      this.waiters.set(key, (reply) => {
        clearTimeout(timer);
        resolve(reply as R);
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        if (this.waiters.delete(key)) reject(new RuntimeError('ERR_EDGETPU_CRASHED', this.deathReason(code, signal)));
      });
      this.child.send(request);
    });
  }

  deathReason(code: number | null, signal: NodeJS.Signals | null): string {
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    // libedgetpu's fatal log lines look like "F driver/usb/usb_driver.cc:802] bulk out ... Abort."
    const lines = this.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('INFO:'));
    const fatal = lines.reverse().find((l) => /^F\d*\s|abort|fatal|error/i.test(l));
    return `Edge TPU process ${how}${fatal ? `: ${fatal.slice(0, 300)}` : ''}`;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

export interface EdgeTpuListing {
  loaded: boolean;
  error?: string;
  version?: string;
  devices: (EdgeTpuDevice & { name: string })[];
}

/**
 * Lists Edge TPUs through a short-lived child process (libedgetpu never loads
 * in this one). `timeoutMs` (default 15 s) bounds the child's start and answer.
 */
export async function listEdgeTpuDevices(
  options: { edgetpuLibrary?: string; timeoutMs?: number } = {},
): Promise<EdgeTpuListing> {
  const host = new HostProcess();
  try {
    const reply = await host.request<ProbeReply>(
      { type: 'probe', library: options.edgetpuLibrary ?? defaultEdgeTpuLibrary() },
      'probe',
      options.timeoutMs ?? 15000,
    );
    return { ...reply, devices: reply.devices.map((d) => ({ ...d, name: deviceName(reply.devices, d) })) };
  } finally {
    host.child.disconnect?.();
    host.kill();
  }
}

type Active = { kind: 'tpu'; host: HostProcess } | { kind: 'cpu' };

export class EdgeTpuRuntime extends EventEmitter implements InferenceRuntime {
  private active: Active;
  private cpu: CpuRuntime | undefined;
  private tpuInputs: TensorInfo[] = [];
  private tpuOutputs: TensorInfo[] = [];
  private queue = new SerialQueue();
  private nextId = 1;
  private disposed = false;
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private current: BackendInfo;
  /** The Edge TPU backend of the live child: what answers from it are tagged with. */
  private tpuBackend: BackendInfo | undefined;
  /** How many times the Edge TPU process died; for status and tests. */
  crashes = 0;

  private constructor(
    private readonly pair: ModelPair,
    private readonly options: EdgeTpuOptions,
    host: HostProcess,
    opened: Extract<OpenReply, { ok: true }>,
  ) {
    super();
    this.restartDelay = options.restart?.initialMs ?? 1000;
    this.active = { kind: 'tpu', host };
    this.current = this.adopt(host, opened);
  }

  /**
   * Starts the child and opens the compiled model on the chosen device.
   * Resolves with the runtime, or with the reason the Edge TPU cannot be used.
   */
  static async start(
    pair: ModelPair,
    options: EdgeTpuOptions,
  ): Promise<{ ok: true; runtime: EdgeTpuRuntime } | { ok: false; code: RuntimeErrorCode; reason: string }> {
    const attempt = await EdgeTpuRuntime.openHost(pair, options);
    if (!attempt.ok) return attempt;
    return { ok: true, runtime: new EdgeTpuRuntime(pair, options, attempt.host, attempt.reply) };
  }

  private static async openHost(
    pair: ModelPair,
    options: EdgeTpuOptions,
  ): Promise<
    | { ok: true; host: HostProcess; reply: Extract<OpenReply, { ok: true }> }
    | { ok: false; code: RuntimeErrorCode; reason: string }
  > {
    const host = new HostProcess();
    try {
      const reply = await host.request<OpenReply>(
        {
          type: 'open',
          model: pair.edgetpu!,
          library: options.edgetpuLibrary ?? defaultEdgeTpuLibrary(),
          device: options.device ?? 'auto',
          performance: options.performance ?? 'high',
          threads: options.threads ?? defaultThreads(),
          xnnpack: options.xnnpack ?? true,
        },
        'opened',
        60000,
      ); // a USB Coral's first open loads firmware and may retry for many seconds
      if (reply.ok) return { ok: true, host, reply };
      host.child.disconnect?.();
      host.kill();
      return { ok: false, code: reply.code as RuntimeErrorCode, reason: reply.reason };
    } catch (error) {
      host.kill();
      const err = error as RuntimeError;
      return { ok: false, code: err.code ?? 'ERR_EDGETPU_CRASHED', reason: err.message };
    }
  }

  private adopt(host: HostProcess, opened: Extract<OpenReply, { ok: true }>): BackendInfo {
    this.tpuInputs = opened.inputs.map(describe);
    this.tpuOutputs = opened.outputs.map(describe);
    void host.exited.then(({ code, signal }) => this.onHostExit(host, code, signal));
    this.tpuBackend = {
      kind: 'edgetpu',
      device: opened.device,
      devicePath: opened.devicePath,
      reason: 'Edge TPU in use',
      threads: this.options.threads ?? defaultThreads(),
      model: this.pair.edgetpu!,
    };
    return this.tpuBackend;
  }

  get backend(): BackendInfo {
    return this.current;
  }

  get inputs(): readonly TensorInfo[] {
    return this.active.kind === 'tpu' || !this.cpu ? this.tpuInputs : this.cpu.inputs;
  }

  get outputs(): readonly TensorInfo[] {
    return this.active.kind === 'tpu' || !this.cpu ? this.tpuOutputs : this.cpu.outputs;
  }

  private setBackend(backend: BackendInfo): void {
    this.current = backend;
    this.emit('backend', backend);
  }

  private onHostExit(host: HostProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.disposed || this.active.kind !== 'tpu' || this.active.host !== host) return;
    this.crashes++;
    clearTimeout(this.stableTimer);
    this.active = { kind: 'cpu' };
    const reason = `${host.deathReason(code, signal)}; CPU fallback, restarting in ${this.restartDelay} ms`;
    this.setBackend({
      kind: 'cpu',
      reason,
      reasonCode: 'ERR_EDGETPU_CRASHED',
      threads: this.options.threads ?? defaultThreads(),
      model: this.pair.cpu ?? '(none)',
    });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.restartDelay;
    this.restartDelay = Math.min(delay * 2, this.options.restart?.maxMs ?? 60000);
    this.restartTimer = setTimeout(() => void this.restart(), delay);
    this.restartTimer.unref?.();
  }

  private async restart(): Promise<void> {
    if (this.disposed) return;
    const attempt = await EdgeTpuRuntime.openHost(this.pair, this.options);
    if (this.disposed) {
      if (attempt.ok) attempt.host.kill();
      return;
    }
    if (!attempt.ok) {
      this.setBackend({
        ...this.current,
        reason: `Edge TPU restart failed (${attempt.reason}); CPU fallback, next try in ${this.restartDelay} ms`,
      });
      this.scheduleRestart();
      return;
    }
    // Swap inside the queue so no inference straddles the switch.
    await this.queue.run(async () => {
      this.active = { kind: 'tpu', host: attempt.host };
      this.setBackend(this.adopt(attempt.host, attempt.reply));
    });
    // Only a device that stays up resets the backoff: one that dies right
    // after each restart keeps backing off.
    const initial = this.options.restart?.initialMs ?? 1000;
    this.stableTimer = setTimeout(() => {
      this.restartDelay = initial;
    }, 60000);
    this.stableTimer.unref?.();
  }

  private async cpuRuntime(): Promise<CpuRuntime> {
    if (this.cpu) return this.cpu;
    if (!this.pair.cpu) {
      throw new RuntimeError(
        'ERR_EDGETPU_UNAVAILABLE',
        `${this.current.reason}; and there is no CPU model to fall back to (put X.tflite beside X_edgetpu.tflite)`,
      );
    }
    const cpu = await CpuRuntime.open(this.pair.cpu, this.options);
    // The two sides may differ in batch (a compiled model has batch 1, the
    // float MobileFaceNet ships with 2): callers size their inputs for the
    // compiled model, so the CPU model takes its shapes where it can.
    for (const [i, info] of this.tpuInputs.entries()) {
      if (cpu.inputs[i] && cpu.inputs[i].shape.join() !== info.shape.join())
        await cpu.resizeInput(i, [...info.shape]).catch(() => undefined);
    }
    this.cpu = cpu;
    return cpu;
  }

  private async run(
    inputs: InputData[],
  ): Promise<{ raw: RawTensorData[]; infos: readonly TensorInfo[]; answeredBy: BackendInfo }> {
    if (this.disposed)
      throw new RuntimeError('ERR_DISPOSED', 'this runtime was disposed: open the model again to use it');
    if (this.active.kind === 'tpu') {
      const host = this.active.host;
      if (!Array.isArray(inputs) || inputs.length !== this.tpuInputs.length) {
        throw new RuntimeError(
          'ERR_INPUT_COUNT',
          `the model takes ${this.tpuInputs.length} input(s), got ${Array.isArray(inputs) ? inputs.length : typeof inputs}`,
        );
      }
      const prepared = inputs.map((data, i) => prepareInput(data, this.tpuInputs[i]));
      const id = this.nextId++;
      try {
        const reply = await host.request<InvokeReply>(
          { type: 'invoke', id, inputs: prepared },
          `invoke:${id}`,
          this.options.invokeTimeoutMs ?? 10000,
        );
        if (reply.type === 'error') throw new RuntimeError(reply.code as RuntimeErrorCode, reply.message);
        return {
          raw: reply.outputs.map((b, i) => rawOutput(b, this.tpuOutputs[i])),
          infos: this.tpuOutputs,
          answeredBy: this.tpuBackend!,
        };
      } catch (error) {
        if ((error as RuntimeError).code !== 'ERR_EDGETPU_CRASHED') throw error;
        // The device died under this inference: wait for the switch, then
        // answer it on the CPU so the caller never sees the crash.
        await host.exited;
        this.onHostExit(host, host.child.exitCode, host.child.signalCode);
      }
    }
    const cpu = await this.cpuRuntime();
    const answeredBy = this.current.kind === 'cpu' ? this.current : { ...cpu.backend, reason: this.current.reason };
    return { raw: await cpu.invokeRaw(inputs), infos: cpu.outputs, answeredBy };
  }

  invokeRaw(inputs: InputData[]): Promise<RawTensorData[]> {
    return this.queue.run(async () => (await this.run(inputs)).raw);
  }

  invoke(inputs: InputData[]): Promise<Float32Array[]> {
    return this.invokeWithBackend(inputs).then((r) => r.outputs);
  }

  invokeWithBackend(inputs: InputData[]): Promise<{ outputs: Float32Array[]; backend: BackendInfo }> {
    return this.queue.run(async () => {
      const { raw, infos, answeredBy } = await this.run(inputs);
      return { outputs: raw.map((data, i) => floatOutput(data, infos[i])), backend: answeredBy };
    });
  }

  resizeInput(): Promise<void> {
    return Promise.reject(
      new RuntimeError(
        'ERR_RESIZE',
        'Edge TPU-compiled models have fixed input shapes; compile one for the batch you need',
      ),
    );
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    if (this.active.kind === 'tpu') {
      const host = this.active.host;
      host.child.disconnect?.();
      host.kill();
      await host.exited;
    }
    await this.cpu?.dispose();
  }
}
