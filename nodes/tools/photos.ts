/**
 * What the measuring commands share (quantize, eval-pairs, bench:quantize):
 * the photos under a folder in a stable order, the main face of a photo as an
 * aligned crop (as the embedder sees faces), and an atomic file write.
 */
import * as fs from 'fs';
import * as path from 'path';
import { alignFace } from '../core/align/warp';
import type { FaceDetector } from '../core/detect/blazeface';
import { decodeImage } from '../core/media/decode';
import type { RgbImage } from '../core/media/image';
import { mainFace } from '../core/pipeline';
import { IMAGE_EXTENSIONS } from './evaluate';

/** Every image under `dir`, recursively, sorted by path (a stable order); undefined when `dir` is not a folder. */
export function listImages(dir: string): string[] | undefined {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return undefined;
  const found: string[] = [];
  const walk = (folder: string) => {
    for (const entry of fs
      .readdirSync(folder, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (IMAGE_EXTENSIONS.test(entry.name)) found.push(full);
    }
  };
  walk(dir);
  return found;
}

/** The aligned crop of a photo's main face (pipeline.ts mainFace, BlazeFace keypoints), or null when no face is found. */
export async function mainFaceCrop(detector: FaceDetector, file: string, size = 112): Promise<RgbImage | null> {
  const image = await decodeImage(file);
  const face = mainFace(await detector.detect(image), image);
  return face ? alignFace(image, face.keypoints, size).crop : null;
}

/** Writes a file through a temporary file and a rename, so that a crash never leaves half a model behind. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  await fs.promises.mkdir(dir, { recursive: true });
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await fs.promises.writeFile(temp, data);
    await fs.promises.rename(temp, file);
  } catch (error) {
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
}
