/**
 * Image decoding for enrolment and photos: JPEG, PNG, WebP (and whatever else
 * libvips reads), EXIF orientation applied, alpha dropped, sRGB. A size limit
 * stops decompression bombs before any pixel is allocated.
 */
import * as fs from 'fs';
import sharp from './vips';
import type { RgbImage } from './image';

/** 8K is 33 MP; a bigger "photo" is an attack or a mistake. */
export const MAX_INPUT_PIXELS = 40_000_000;

export type ImageErrorCode =
  | 'ERR_IMAGE_NOT_FOUND'
  | 'ERR_IMAGE_NOT_A_FILE'
  | 'ERR_IMAGE_UNREADABLE'
  | 'ERR_IMAGE_UNSUPPORTED'
  | 'ERR_IMAGE_CORRUPT'
  | 'ERR_IMAGE_TOO_LARGE';

export class ImageError extends Error {
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}

function label(input: Buffer | string): string {
  return typeof input === 'string' ? input : `image buffer (${input.length} bytes)`;
}

/**
 * A path must name a regular file (symlinks followed). Anything else is
 * refused before libvips opens it: a named pipe (FIFO) would block the open
 * until a writer comes, possibly forever, and hold one of libuv's few pool
 * threads meanwhile; a character device (/dev/zero, a camera) never ends; a
 * folder is a mistake.
 */
async function checkImagePath(file: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new ImageError('ERR_IMAGE_UNREADABLE', `image not readable: ${file} (permission denied)`);
    }
    throw new ImageError('ERR_IMAGE_NOT_FOUND', `image not found: ${file}`);
  }
  if (!stat.isFile()) {
    const what = stat.isDirectory()
      ? 'a folder'
      : stat.isFIFO()
        ? 'a named pipe'
        : stat.isSocket()
          ? 'a socket'
          : stat.isCharacterDevice() || stat.isBlockDevice()
            ? 'a device'
            : 'a special file';
    throw new ImageError(
      'ERR_IMAGE_NOT_A_FILE',
      `${file} is ${what}, not an image file: give the path of a JPEG, PNG or WebP file`,
    );
  }
}

export async function decodeImage(input: Buffer | string): Promise<RgbImage> {
  if (typeof input === 'string') await checkImagePath(input);
  try {
    const { data, info } = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .rotate() // apply EXIF orientation: phones store portraits sideways
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    if (/pixel limit/i.test(message)) {
      throw new ImageError(
        'ERR_IMAGE_TOO_LARGE',
        `${label(input)} is larger than ${MAX_INPUT_PIXELS / 1e6} megapixels: scale it down first`,
      );
    }
    if (/unsupported image format|missing|not a known file format/i.test(message)) {
      throw new ImageError('ERR_IMAGE_UNSUPPORTED', `${label(input)} is not an image (JPEG, PNG or WebP expected)`);
    }
    throw new ImageError(
      'ERR_IMAGE_CORRUPT',
      `${label(input)} could not be decoded (${message.trim()}): the file is damaged or truncated`,
    );
  }
}

/** PNG bytes of an RGB image (crops in the gallery, the last face for Home Assistant). */
export function encodePng(image: RgbImage): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .png()
    .toBuffer();
}

export function encodeJpeg(image: RgbImage, quality = 85): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .jpeg({ quality })
    .toBuffer();
}
