/** Camera-like frames made from the dev set's group photos at test time. */
import * as path from 'path';
import sharp from 'sharp';
import type { RgbImage } from '../../nodes/core/media/image';
import { FACES_DIR } from '../models';

/** A group photo scaled to fill a width x height frame (aspect kept, centre crop), as a camera would frame it. */
export async function groupFrame(name: string, width = 1280, height = 720): Promise<RgbImage> {
  const { data, info } = await sharp(path.join(FACES_DIR, '_group', name))
    .resize(width, height, { fit: 'cover' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}
