/** Real crops and embeddings of dev photos (detected, aligned, embedded by the project's pipeline), shared by the library tests. */
import * as fs from 'fs';
import * as path from 'path';
import { decodeImage } from '../../../nodes/core/media/decode';
import type { RgbImage } from '../../../nodes/core/media/image';
import { FacePipeline, mainFace } from '../../../nodes/core/pipeline';
import { FACES_DIR } from '../../models';

export interface Face {
  identity: string;
  file: string;
  crop: RgbImage;
  sharpness: number;
  yawDeg: number;
  embedding: Float32Array;
}

let pipeline: Promise<FacePipeline> | null = null;
export function sharedPipeline(): Promise<FacePipeline> {
  return (pipeline ??= FacePipeline.open({ detector: { variant: 'short' } }));
}

export async function disposeSharedPipeline(): Promise<void> {
  const p = pipeline;
  pipeline = null;
  if (p) await (await p).dispose();
}

export function photosOf(identity: string): string[] {
  const dir = path.join(FACES_DIR, identity);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Identities of the dev set (folders not starting with "_"), sorted. */
export function identities(): string[] {
  return fs
    .readdirSync(FACES_DIR)
    .filter((d) => !d.startsWith('_') && fs.statSync(path.join(FACES_DIR, d)).isDirectory())
    .sort();
}

const cache = new Map<string, Face | null>();

/** The main face of each photo that passes the quality gate (others are skipped). */
export async function facesOf(identity: string, limit = 12): Promise<Face[]> {
  const p = await sharedPipeline();
  const faces: Face[] = [];
  for (const file of photosOf(identity).slice(0, limit)) {
    if (!cache.has(file)) {
      const image = await decodeImage(file);
      const face = mainFace(await p.detect(image), image);
      let entry: Face | null = null;
      if (face) {
        const { crop, quality } = p.align(image, face);
        if (quality.ok) {
          const [embedding] = await p.embed([crop]);
          entry = { identity, file, crop, sharpness: quality.sharpness, yawDeg: quality.yawDeg, embedding };
        }
      }
      cache.set(file, entry);
    }
    const entry = cache.get(file);
    if (entry) faces.push(entry);
  }
  return faces;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0,
    na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

export function mean(vectors: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(vectors[0].length);
  for (const v of vectors) for (let i = 0; i < v.length; i++) out[i] += v[i];
  return out;
}
