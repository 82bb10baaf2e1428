/** Typed view of the compiled addon (native/src/addon.cc). */
import nodeGypBuild from 'node-gyp-build';
import * as path from 'path';
import { RuntimeError } from './errors';

export type DType =
  'float32' | 'int32' | 'uint8' | 'int64' | 'bool' | 'int16' | 'int8' | 'float16' | 'float64' | 'unsupported';

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
  resample(
    rgb: Uint8Array,
    width: number,
    x: ResampleTaps,
    y: ResampleTaps,
    scale: number,
    offset: number,
  ): Promise<Float32Array>;
  edgetpuProbe(library: string): EdgeTpuProbe;
  tfliteVersion(): string;
  /** flock(fd, LOCK_EX | LOCK_NB): true when this open file now holds the lock. */
  tryLockFile(fd: number): boolean;
  unlockFile(fd: number): void;
}

/** The repository (or installed package) root, found from this file's place in build/. */
export const packageRoot = path.resolve(__dirname, '..', '..');

/** Holds binding.gyp, build/Release (a source build) and prebuilds/<platform>-<arch>/ (the shipped addons). */
export const nativeDir = path.join(packageRoot, 'native');

/** What to do when no addon loads; the install script says the same (native/scripts/install.mjs). */
export const ADDON_HELP =
  'Prebuilt addons ship for Linux x64 and arm64 with glibc 2.34 or newer (Debian 12, Ubuntu 22.04, Raspberry Pi OS ' +
  'bookworm, the Home Assistant app). Elsewhere it is built from source at install time, which needs python3, make ' +
  'and g++ (Debian, Ubuntu, Raspberry Pi OS: "sudo apt-get install python3 make g++"), then ' +
  '"npm rebuild node-red-contrib-coral-face" in the Node-RED user directory. Alpine (musl) is not supported: the ' +
  'TFLite library is a glibc build.';

let loaded: { addon: NativeAddon; file: string } | undefined;

/**
 * The compiled addon: a source build in native/build/Release when there is
 * one, else the prebuilt addon for this platform (node-gyp-build's lookup).
 */
export function loadAddon(): NativeAddon {
  return load().addon;
}

function load(): { addon: NativeAddon; file: string } {
  if (loaded) return loaded;
  let file: string;
  try {
    file = nodeGypBuild.path(nativeDir);
  } catch {
    throw new RuntimeError(
      'ERR_ADDON_MISSING',
      `no native addon for ${process.platform}-${process.arch} in ${nativeDir}. ${ADDON_HELP}`,
    );
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = { addon: require(file) as NativeAddon, file };
  } catch (error) {
    throw new RuntimeError(
      'ERR_ADDON_MISSING',
      `the native addon ${file} does not load here: ${(error as Error).message.split('\n')[0]}. ${ADDON_HELP}`,
    );
  }
  return loaded;
}

export interface AddonInfo {
  /** The .node file in use. */
  file: string;
  /** True for a shipped prebuilt addon, false for one built from source on this machine. */
  prebuilt: boolean;
  /** The TFLite C library's version string. */
  tflite: string;
}

/** Loads the addon (or throws the RuntimeError that says what to install) and says which one runs. */
export function addonInfo(): AddonInfo {
  const { addon, file } = load();
  return {
    file,
    prebuilt: path.relative(nativeDir, file).split(path.sep)[0] === 'prebuilds',
    tflite: addon.tfliteVersion(),
  };
}
