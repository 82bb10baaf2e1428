/**
 * The one pixel format the core passes between stages: 8-bit RGB, interleaved,
 * row-major, no padding between rows. Decoding (sharp, ffmpeg) produces it;
 * detection, alignment and quality measures read it.
 */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** width * height * 3 bytes: R, G, B for each pixel, rows top to bottom. */
  readonly data: Uint8Array;
}

export interface Point {
  x: number;
  y: number;
}

/** An axis-aligned box in pixel coordinates of the image it was found in. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export function createRgbImage(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

/** Intersection over union of two boxes; 0 for boxes that do not overlap or have no area. */
export function intersectionOverUnion(a: Box, b: Box): number {
  const left = Math.max(a.x, b.x);
  const top = Math.max(a.y, b.y);
  const right = Math.min(a.x + a.width, b.x + b.width);
  const bottom = Math.min(a.y + a.height, b.y + b.height);
  if (!(right > left && bottom > top)) return 0;
  const intersection = (right - left) * (bottom - top);
  const union = a.width * a.height + b.width * b.height - intersection;
  return union > 0 ? intersection / union : 0;
}

/** The image flipped left to right. */
export function mirrorImage(image: RgbImage): RgbImage {
  const out = new Uint8Array(image.data.length);
  const row = image.width * 3;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const from = y * row + x * 3;
      const to = y * row + (image.width - 1 - x) * 3;
      out[to] = image.data[from];
      out[to + 1] = image.data[from + 1];
      out[to + 2] = image.data[from + 2];
    }
  }
  return { width: image.width, height: image.height, data: out };
}
