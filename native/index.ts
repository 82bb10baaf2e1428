/**
 * The native inference runtime: TFLite 2.9 through its C API, XNNPACK on the
 * CPU, a Coral Edge TPU through libedgetpu when one is there.
 *
 *   const runtime = await openRuntime('model.tflite', { device: 'auto' });
 *   const [out] = await runtime.invoke([input]);   // off the main thread
 *   runtime.backend  // { kind: 'cpu', reason: 'no Edge TPU-compiled model ...' }
 */
import { ModelPair, parseDeviceSpec, resolveModelPair } from './devices';
import { EdgeTpuOptions, EdgeTpuRuntime } from './edgetpu';
import { RuntimeError } from './errors';
import { CpuRuntime, InferenceRuntime } from './runtime';

export { addonInfo } from './addon';
export type { AddonInfo, DType, EdgeTpuProbe } from './addon';
export { chooseDevice, parseDeviceSpec, resolveModelPair } from './devices';
export type { DeviceSpec, EdgeTpuDevice, ModelPair } from './devices';
export { defaultEdgeTpuLibrary, EdgeTpuRuntime, listEdgeTpuDevices } from './edgetpu';
export type { EdgeTpuListing, EdgeTpuOptions } from './edgetpu';
export { RuntimeError } from './errors';
export { MODELS_DIR, shippedModels } from './models';
export { resampleRgb } from './resample';
export type { ResampleOptions, ResampleTaps } from './resample';
export type { RuntimeErrorCode } from './errors';
export { CpuRuntime, defaultThreads } from './runtime';
export type { BackendInfo, CpuOptions, InferenceRuntime, Performance } from './runtime';
export type { InputData, RawTensorData, TensorInfo } from './tensors';

export type RuntimeOptions = EdgeTpuOptions;

/**
 * Opens a model. `model` is a path, a Buffer, or a pair: given X.tflite, a
 * compiled X_edgetpu.tflite beside it is found automatically. The compiled
 * model runs on the Edge TPU named by `options.device` when one is there; the
 * CPU model runs otherwise, and `backend.reason` says why.
 */
export async function openRuntime(
  model: string | Uint8Array | ModelPair,
  options: RuntimeOptions = {},
): Promise<InferenceRuntime> {
  if (typeof model !== 'string' && !(model instanceof Uint8Array)) {
    if (!model.cpu && !model.edgetpu)
      throw new RuntimeError('ERR_MODEL_NOT_FOUND', 'a model pair needs a cpu or an edgetpu model path');
  }
  if (model instanceof Uint8Array) return CpuRuntime.open(model, options, 'model given as a buffer: CPU');
  const pair = resolveModelPair(model);
  const spec = parseDeviceSpec(options.device ?? 'auto');
  const cpuFallback = (reason: string, code?: string): Promise<CpuRuntime> => {
    if (!pair.cpu) {
      throw new RuntimeError(
        (code ?? 'ERR_EDGETPU_UNAVAILABLE') as never,
        `${reason}; and no CPU model to fall back to (put X.tflite beside X_edgetpu.tflite)`,
      );
    }
    return CpuRuntime.open(pair.cpu, options, reason, code);
  };
  if (spec.kind === 'cpu') return cpuFallback('CPU requested');
  if (!pair.edgetpu) {
    return cpuFallback(
      'no Edge TPU-compiled model (X_edgetpu.tflite) for this model: make one with coral-face edgetpu-compile',
      'ERR_NO_COMPILED_MODEL',
    );
  }
  const started = await EdgeTpuRuntime.start(pair, options);
  if (started.ok) return started.runtime;
  return cpuFallback(started.reason, started.code);
}
