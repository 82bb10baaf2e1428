/** Typed view of the compiled addon (native/src/addon.cc). */
import * as fs from 'fs';
import * as path from 'path';
import { RuntimeError } from './errors';

export type DType = 'float32' | 'int32' | 'uint8' | 'int64' | 'bool' | 'int16' | 'int8' | 'float16' | 'float64' | 'unsupported';

export interface NativeTensorInfo {
  index: number;
  name: string;
  dtype: DType;
  shape: number[];
  /** Quantisation scale; 0 for a float tensor. */
  scale: number;
  zeroPoint: number;
  byteLength: number;
}

export interface NativeEdgeTpuOptions {
  library: string;
  type: 'usb' | 'pci';
  path: string;
  options: Record<string, string>;
}

export interface NativeOpenOptions {
  threads: number;
  xnnpack: boolean;
  edgetpu?: NativeEdgeTpuOptions;
}

export interface NativeInterpreter {
  inputs(): NativeTensorInfo[];
  outputs(): NativeTensorInfo[];
  resizeInput(index: number, shape: number[]): Promise<void>;
  invoke(inputs: ArrayBufferView[]): Promise<ArrayBuffer[]>;
  dispose(): void;
}

export interface EdgeTpuProbe {
  loaded: boolean;
  error?: string;
  version?: string;
  devices: { type: 'usb' | 'pci'; path: string }[];
}

/** Per-axis taps of a separable filter: output o reads indices[k] with weights[k], k in [first[o], first[o + 1]). */
export interface ResampleTaps {
  first: Int32Array;
  indices: Int32Array;
  weights: Float32Array;
}

export interface NativeAddon {
  open(model: string | Uint8Array, options: NativeOpenOptions): Promise<NativeInterpreter>;
  /** RGB rows of `width` pixels to a float tensor (value * scale + offset), on the libuv pool. */
  resample(rgb: Uint8Array, width: number, x: ResampleTaps, y: ResampleTaps, scale: number, offset: number): Promise<Float32Array>;
  edgetpuProbe(library: string): EdgeTpuProbe;
  tfliteVersion(): string;
  /** flock(fd, LOCK_EX | LOCK_NB): true when this open file now holds the lock. */
  tryLockFile(fd: number): boolean;
  unlockFile(fd: number): void;
}

/** The repository (or installed package) root, found from this file's place in build/. */
export const packageRoot = path.resolve(__dirname, '..', '..');

/** Built by `npm install` (node-gyp, native/binding.gyp). */
export const releaseDir = path.join(packageRoot, 'native', 'build', 'Release');

let loaded: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (loaded) return loaded;
  const file = path.join(releaseDir, 'coral_face_native.node');
  if (!fs.existsSync(file)) {
    throw new RuntimeError('ERR_ADDON_MISSING',
      `the native addon is not built (${file} is missing): run "npm install" (or "npm rebuild node-red-contrib-coral-face") ` +
      'with python3, make and g++ installed');
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded = require(file) as NativeAddon;
  return loaded;
}
