/** Real models and dev photos for tests and benchmark commands. */
import sharp from 'sharp';
import type { RunModel, BlazeFaceVariant } from '../../nodes/core/detect/blazeface';
import type { RgbImage } from '../../nodes/core/media/image';
import { blazeFaceModel } from '../../nodes/core/pipeline';
import { CpuRuntime } from '../../native';
import { FACES_DIR } from '../models';

/** Dev photos beside the repository (../shared/faces/dev). */
export const DEV_DIR = FACES_DIR;

/** A `RunModel` for a BlazeFace variant through the project's own runtime. */
export function modelRunner(variant: BlazeFaceVariant): RunModel {
  let opened: Promise<CpuRuntime> | undefined;
  return async (tensor) => {
    opened ??= CpuRuntime.open(blazeFaceModel(variant));
    return (await opened).invoke([tensor]);
  };
}

export async function loadPhoto(file: string): Promise<RgbImage> {
  const { data, info } = await sharp(file).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

export async function decodeRaw(pipeline: sharp.Sharp): Promise<RgbImage> {
  const { data, info } = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}
