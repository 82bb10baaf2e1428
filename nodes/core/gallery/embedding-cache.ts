/**
 * Cached embeddings of the gallery's crops, one file per embedder id:
 *
 *   <dir>/embeddings/<key>.json
 *     { "format": "coral-face-embeddings", "version": 2, "embedderId", "dimension",
 *       "embeddings": { "<id>/<file>" | "<id>/negatives/<file>": base64 of little-endian float32 } }
 *
 * `<key>` is a slug of the embedder id plus a hash, so any id maps to a safe
 * file name. Caches of other embedders are kept (switching between the Edge
 * TPU and the CPU model is common). The cache is only an optimisation: a
 * missing, damaged or foreign one is rebuilt from the crops, and failing to
 * save it never fails recognition.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { EMBEDDINGS_DIR, isPlainObject, slugify, type GalleryIndex, NEGATIVES_DIR } from './format';
import { listDirectory, writeAtomic, type GalleryFileSystem } from './files';

export const EMBEDDINGS_FORMAT = 'coral-face-embeddings';
/** 2: each vector is of the crop and its mirror image together (version 1: the crop alone; rebuilt). */
export const EMBEDDINGS_FORMAT_VERSION = 2;

export interface EmbeddingCache {
  dimension: number | null;
  vectors: Map<string, Float32Array>;
}

export function cacheKey(personId: string, file: string, negative = false): string {
  return negative ? `${personId}/${NEGATIVES_DIR}/${file}` : `${personId}/${file}`;
}

/** Every key the index references: what a cache may keep. */
export function referencedKeys(index: GalleryIndex): Set<string> {
  const keys = new Set<string>();
  for (const person of index.people) {
    for (const crop of person.crops) keys.add(cacheKey(person.id, crop.file));
    for (const crop of person.negatives) keys.add(cacheKey(person.id, crop.file, true));
  }
  return keys;
}

export function cachePath(galleryDir: string, embedderId: string): string {
  const hash = createHash('sha256').update(embedderId).digest('hex').slice(0, 16);
  return path.join(galleryDir, EMBEDDINGS_DIR, `${slugify(embedderId)}-${hash}.json`);
}

function encodeVector(vector: Float32Array): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes.toString('base64');
}

function decodeVector(text: unknown, dimension: number): Float32Array | undefined {
  if (typeof text !== 'string') return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== dimension * 4) return undefined;
  const vector = new Float32Array(dimension);
  for (let i = 0; i < dimension; i++) vector[i] = bytes.readFloatLE(i * 4);
  return vector;
}

/** A missing, unreadable or foreign cache is treated as empty: it can always be rebuilt. */
export async function readEmbeddingCache(
  fs: GalleryFileSystem,
  file: string,
  embedderId?: string,
): Promise<EmbeddingCache & { embedderId?: string }> {
  const empty = { dimension: null, vectors: new Map<string, Float32Array>() };
  let raw: unknown;
  try {
    raw = JSON.parse((await fs.readFile(file)).toString('utf8'));
  } catch {
    return empty;
  }
  if (
    !isPlainObject(raw) ||
    raw.format !== EMBEDDINGS_FORMAT ||
    raw.version !== EMBEDDINGS_FORMAT_VERSION ||
    typeof raw.embedderId !== 'string' ||
    (embedderId !== undefined && raw.embedderId !== embedderId) ||
    typeof raw.dimension !== 'number' ||
    !Number.isInteger(raw.dimension) ||
    raw.dimension < 1 ||
    !isPlainObject(raw.embeddings)
  ) {
    return empty;
  }
  const dimension = raw.dimension;
  const vectors = new Map<string, Float32Array>();
  for (const [key, text] of Object.entries(raw.embeddings)) {
    const vector = decodeVector(text, dimension);
    if (vector) vectors.set(key, vector);
  }
  return { dimension, vectors, embedderId: raw.embedderId };
}

/** Writes only the vectors whose key is in `keep`, so a forgotten person leaves no trace in the file. */
export async function writeEmbeddingCache(
  fs: GalleryFileSystem,
  file: string,
  embedderId: string,
  cache: EmbeddingCache,
  keep: ReadonlySet<string>,
): Promise<void> {
  const embeddings: Record<string, string> = {};
  for (const [key, vector] of cache.vectors) if (keep.has(key)) embeddings[key] = encodeVector(vector);
  const document = {
    format: EMBEDDINGS_FORMAT,
    version: EMBEDDINGS_FORMAT_VERSION,
    embedderId,
    dimension: cache.dimension,
    embeddings,
  };
  await fs.makeDirectory(path.dirname(file));
  await writeAtomic(fs, file, Buffer.from(JSON.stringify(document) + '\n', 'utf8'));
}

/**
 * Rewrites every cache file of the gallery (every embedder's) without the
 * vectors the index no longer references: after a forget or a removed crop,
 * no embedding of that face stays on disk. Files it cannot read are left as
 * they are (they hold nothing it could recognise as ours).
 */
export async function purgeEmbeddingCaches(
  fs: GalleryFileSystem,
  galleryDir: string,
  index: GalleryIndex,
): Promise<number> {
  const keep = referencedKeys(index);
  const dir = path.join(galleryDir, EMBEDDINGS_DIR);
  let rewritten = 0;
  for (const name of await listDirectory(fs, dir)) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const file = path.join(dir, name);
    const cache = await readEmbeddingCache(fs, file);
    if (cache.embedderId === undefined) continue;
    if ([...cache.vectors.keys()].every((key) => keep.has(key))) continue;
    await writeEmbeddingCache(fs, file, cache.embedderId, cache, keep);
    rewritten++;
  }
  return rewritten;
}
