/**
 * Hard cuts in a camera's picture: the demo clip's jump from one photo to the
 * next, a PTZ preset recall, a stream that restarts on another scene. The
 * trackers must not carry a face across one (a stranger's track would stick
 * to whoever stands in the same spot next), and the live view must not draw
 * the old picture's boxes on the new one.
 *
 * Each frame is reduced to a coarse luma signature (GRID_W x GRID_H cells,
 * each the mean of a few sampled pixels: about 1,000 reads per frame,
 * whatever the resolution); a cut is a mean absolute change of the cells
 * above `threshold` (0-255 luma). Someone walking through the picture moves a
 * few cells; a cut moves most of them.
 */
import type { RgbImage } from '../media/image';

const GRID_W = 16;
const GRID_H = 9;
/** Sampled pixels per cell side. */
const TAPS = 3;

export function sceneSignature(image: RgbImage): Float32Array {
  const out = new Float32Array(GRID_W * GRID_H);
  const { width, height, data } = image;
  for (let gy = 0; gy < GRID_H; gy++) {
    for (let gx = 0; gx < GRID_W; gx++) {
      let sum = 0;
      for (let ty = 0; ty < TAPS; ty++) {
        const y = Math.min(height - 1, Math.floor(((gy + (ty + 0.5) / TAPS) * height) / GRID_H));
        for (let tx = 0; tx < TAPS; tx++) {
          const x = Math.min(width - 1, Math.floor(((gx + (tx + 0.5) / TAPS) * width) / GRID_W));
          const i = (y * width + x) * 3;
          sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
        }
      }
      out[gy * GRID_W + gx] = sum / (TAPS * TAPS);
    }
  }
  return out;
}

/** Mean absolute difference of two signatures, 0-255. */
export function sceneDistance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

export class SceneCounter {
  private last: Float32Array | null = null;
  private size = '';
  /** The current scene's number: starts at 0, +1 per cut or restart. */
  scene = 0;

  constructor(private readonly threshold = 24) {}

  /** Feeds a frame; returns its scene number. */
  next(image: RgbImage): number {
    const signature = sceneSignature(image);
    const size = `${image.width}x${image.height}`;
    if (this.last && (size !== this.size || sceneDistance(signature, this.last) > this.threshold)) this.scene++;
    this.last = signature;
    this.size = size;
    return this.scene;
  }

  /** The stream restarted: whatever comes next is a new scene. */
  restart(): void {
    if (this.last) this.scene++;
    this.last = null;
  }
}
