/**
 * The Edge TPU child process. libedgetpu aborts its process on some USB
 * errors (LOG(FATAL) in the USB driver), so it only ever runs here, never in
 * Node-RED's process. The supervisor (edgetpu.ts) forks this file, restarts
 * it when it dies, and runs the CPU model meanwhile.
 */
import { loadAddon, NativeInterpreter } from './addon';
import { chooseDevice, parseDeviceSpec, PERFORMANCE_OPTION } from './devices';
import type { HostReply, HostRequest, OpenRequest } from './edgetpu-protocol';

let interpreter: NativeInterpreter | undefined;

function reply(message: HostReply): void {
  process.send?.(message);
}

async function open(request: OpenRequest): Promise<void> {
  const addon = loadAddon();
  const probe = addon.edgetpuProbe(request.library);
  if (!probe.loaded) {
    return reply({
      type: 'opened',
      ok: false,
      code: 'ERR_EDGETPU_LIBRARY',
      reason: `libedgetpu not found (${probe.error})`,
    });
  }
  const spec = parseDeviceSpec(request.device);
  if (spec.kind === 'cpu')
    return reply({ type: 'opened', ok: false, code: 'ERR_DEVICE_SPEC', reason: 'cpu requested' });
  const choice = chooseDevice(probe.devices, spec);
  if (!choice.ok) return reply({ type: 'opened', ok: false, code: choice.code, reason: choice.reason });
  const options: Record<string, string> = {};
  const performance = PERFORMANCE_OPTION[request.performance];
  // Performance applies to USB only; libedgetpu never throttles PCIe.
  if (performance && choice.device.type === 'usb') options.Performance = performance;
  try {
    interpreter = await addon.open(request.model, {
      threads: request.threads,
      xnnpack: request.xnnpack,
      edgetpu: { library: request.library, type: choice.device.type, path: choice.device.path, options },
    });
  } catch (error) {
    const err = error as { code?: string; message?: string };
    return reply({
      type: 'opened',
      ok: false,
      code: err.code ?? 'ERR_EDGETPU_DELEGATE',
      reason: err.message ?? String(error),
    });
  }
  reply({
    type: 'opened',
    ok: true,
    device: choice.name,
    devicePath: choice.device.path,
    version: probe.version,
    inputs: interpreter.inputs(),
    outputs: interpreter.outputs(),
  });
}

// Requests are handled strictly in order: one interpreter, one invoke at a time.
let chain: Promise<void> = Promise.resolve();

process.on('message', (request: HostRequest) => {
  chain = chain.then(async () => {
    switch (request.type) {
      case 'probe': {
        const probe = loadAddon().edgetpuProbe(request.library);
        return reply({ type: 'probe', ...probe });
      }
      case 'open':
        return open(request);
      case 'invoke': {
        if (!interpreter)
          return reply({ type: 'error', id: request.id, code: 'ERR_EDGETPU_UNAVAILABLE', message: 'model not open' });
        try {
          const outputs = await interpreter.invoke(request.inputs);
          return reply({ type: 'result', id: request.id, outputs });
        } catch (error) {
          const err = error as { code?: string; message?: string };
          return reply({
            type: 'error',
            id: request.id,
            code: err.code ?? 'ERR_INVOKE',
            message: err.message ?? String(error),
          });
        }
      }
    }
  });
});

// The parent went away (Node-RED stopped or crashed): never linger as an orphan.
process.on('disconnect', () => process.exit(0));
