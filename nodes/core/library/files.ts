/**
 * Small file helpers for the library's own files (settings, sidecar, visit crops): every write is
 * temp file + fsync + rename + directory fsync, so a crash leaves the old file or the new one,
 * never half of either.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

export const TEMP_SUFFIX = '.tmp';

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; their renames are as durable as they get.
    if (!['EINVAL', 'ENOTSUP', 'EISDIR'].includes((error as { code?: string }).code ?? '')) throw error;
  } finally {
    await handle.close();
  }
}

export async function writeFileAtomic(
  target: string,
  data: Uint8Array | string,
  options: { syncDir?: boolean } = {},
): Promise<void> {
  const dir = path.dirname(target);
  const temp = path.join(
    dir,
    `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`,
  );
  try {
    const handle = await fsp.open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temp, target);
  } catch (error) {
    await fsp.unlink(temp).catch(() => undefined);
    throw error;
  }
  if (options.syncDir !== false) await syncDirectory(dir);
}

export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Base64 of little-endian float32 values, the gallery's embedding encoding. */
export function encodeVector(vector: ArrayLike<number>): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i], i * 4);
  return bytes.toString('base64');
}

export function decodeVector(text: unknown): Float32Array | undefined {
  if (typeof text !== 'string' || text.length === 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0 || bytes.length % 4 !== 0) return undefined;
  const vector = new Float32Array(bytes.length / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = bytes.readFloatLE(i * 4);
  return vector.every(Number.isFinite) ? vector : undefined;
}
