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
