/**
 * Separable resampling of RGB pixels into a float tensor, in C++ on the libuv
 * thread pool (native/src/resample.cc). The caller computes the taps once per
 * geometry (nodes/core/blazeface.ts caches them per frame size).
 */
import { loadAddon, ResampleTaps } from './addon';

export type { ResampleTaps } from './addon';

export interface ResampleOptions {
  /** Horizontal taps: output column o reads columns x.indices[k], k in [x.first[o], x.first[o + 1]). */
  x: ResampleTaps;
  /** Vertical taps, likewise for rows. */
  y: ResampleTaps;
  /** Each output value is sum * scale + offset (e.g. 1 / 127.5 and -1 for [-1, 1]). */
  scale: number;
  offset: number;
}

/**
 * `rgb` holds whole rows of `width` RGB pixels. Resolves with a Float32Array
 * of x.first.length - 1 by y.first.length - 1 RGB values. Taps that read
 * outside the image, or that do not cover their indices, throw before any
 * work starts.
 */
export function resampleRgb(rgb: Uint8Array, width: number, options: ResampleOptions): Promise<Float32Array> {
  return loadAddon().resample(rgb, width, options.x, options.y, options.scale, options.offset);
}
