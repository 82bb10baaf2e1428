/**
 * Edge TPU device strings and model pairs, as people know them from Frigate
 * and pycoral: "" / "auto" (the first device, PCIe before USB, as libedgetpu's
 * own plugin does), "usb", "usb:N", "pci", "pci:N", ":N" (the N-th of any
 * type), and "cpu" for no Edge TPU at all.
 */
import * as fs from 'fs';
import { RuntimeError } from './errors';

export interface EdgeTpuDevice {
  type: 'usb' | 'pci';
  path: string;
}

export type DeviceSpec = { kind: 'cpu' } | { kind: 'edgetpu'; type?: 'usb' | 'pci'; index?: number; text: string };

export function parseDeviceSpec(text: string | undefined): DeviceSpec {
  const spec = (text ?? '').trim().toLowerCase();
  if (spec === 'cpu') return { kind: 'cpu' };
  if (spec === '' || spec === 'auto') return { kind: 'edgetpu', text: spec };
  const match = /^(usb|pci)?(?::(\d+))?$/.exec(spec);
  if (!match || (!match[1] && match[2] === undefined)) {
    throw new RuntimeError('ERR_DEVICE_SPEC', `unknown device "${text}": use cpu, auto, usb, usb:N, pci, pci:N or :N`);
  }
  return {
    kind: 'edgetpu',
    type: match[1] as 'usb' | 'pci' | undefined,
    index: match[2] === undefined ? undefined : Number(match[2]),
    text: spec,
  };
}

/** The user-facing name of a device: its type and index among devices of that type. */
export function deviceName(devices: EdgeTpuDevice[], chosen: EdgeTpuDevice): string {
  const sameType = devices.filter((d) => d.type === chosen.type);
  return `${chosen.type}:${sameType.indexOf(chosen)}`;
}

export type DeviceChoice =
  | { ok: true; device: EdgeTpuDevice; name: string }
  | { ok: false; code: 'ERR_EDGETPU_NO_DEVICE' | 'ERR_EDGETPU_DEVICE_NOT_FOUND'; reason: string };

export function chooseDevice(devices: EdgeTpuDevice[], spec: Extract<DeviceSpec, { kind: 'edgetpu' }>): DeviceChoice {
  if (devices.length === 0) {
    return {
      ok: false,
      code: 'ERR_EDGETPU_NO_DEVICE',
      reason: 'no Edge TPU found (check the USB cable or the PCIe driver and /dev/apex_0)',
    };
  }
  // Enumeration order of libedgetpu lists PCIe first, like its plugin's OpenDevice().
  const ordered = [...devices.filter((d) => d.type === 'pci'), ...devices.filter((d) => d.type === 'usb')];
  const candidates = spec.type
    ? ordered.filter((d) => d.type === spec.type)
    : spec.index === undefined
      ? ordered
      : devices;
  const index = spec.index ?? 0;
  const device = candidates[index];
  if (!device) {
    const found = ordered.map((d) => deviceName(devices, d)).join(', ');
    return {
      ok: false,
      code: 'ERR_EDGETPU_DEVICE_NOT_FOUND',
      reason: `${spec.text} not present (found ${found})`,
    };
  }
  return { ok: true, device, name: deviceName(devices, device) };
}

/** A CPU model and its Edge TPU-compiled twin (X.tflite / X_edgetpu.tflite). */
export interface ModelPair {
  cpu?: string;
  edgetpu?: string;
}

export function resolveModelPair(model: string | ModelPair): ModelPair {
  if (typeof model !== 'string') return { ...model };
  if (model.endsWith('_edgetpu.tflite')) {
    const cpu = model.slice(0, -'_edgetpu.tflite'.length) + '.tflite';
    return { edgetpu: model, cpu: fs.existsSync(cpu) ? cpu : undefined };
  }
  const compiled = model.endsWith('.tflite') ? model.slice(0, -'.tflite'.length) + '_edgetpu.tflite' : undefined;
  return { cpu: model, edgetpu: compiled && fs.existsSync(compiled) ? compiled : undefined };
}

export const PERFORMANCE_OPTION: Record<string, string> = { low: 'Low', medium: 'Medium', high: 'High', max: 'Max' };
