/**
 * The file operations the gallery uses, behind an interface so tests can make
 * writes fail (a full disk, a read-only mount), and the one way the gallery
 * writes a file: temp file + fsync + rename (+ directory fsync).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { errorCodeOf } from '../common/errors';
import { GalleryError } from './format';

export interface WritableFile {
  write(data: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface FileStatus {
  mtimeMs: number;
  size: number;
  ino: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

export interface GalleryFileSystem {
  /** Creates a new file; fails if it exists. */
  createFile(filePath: string): Promise<WritableFile>;
  /** Makes renames and creations inside the directory durable. */
  syncDirectory(dirPath: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(filePath: string): Promise<void>;
  /** Creates the directory and missing parents; no error if it exists. */
  makeDirectory(dirPath: string): Promise<void>;
  removeTree(dirPath: string): Promise<void>;
  readDirectory(dirPath: string): Promise<string[]>;
  readFile(filePath: string): Promise<Buffer>;
  lstat(filePath: string): Promise<FileStatus>;
}

export const nodeFileSystem: GalleryFileSystem = {
  async createFile(filePath) {
    const handle = await fsp.open(filePath, 'wx', 0o644);
    return {
      write: async (data) => {
        await handle.writeFile(data);
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  },
  async syncDirectory(dirPath) {
    const handle = await fsp.open(dirPath, 'r');
    try {
      await handle.sync();
    } catch (error) {
      // Some file systems cannot fsync a directory; their renames are as durable as they get.
      if (!['EINVAL', 'ENOTSUP', 'EISDIR'].includes(errorCodeOf(error) ?? '')) throw error;
    } finally {
      await handle.close();
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (filePath) => fsp.unlink(filePath),
  async makeDirectory(dirPath) {
    await fsp.mkdir(dirPath, { recursive: true });
  },
  removeTree: (dirPath) => fsp.rm(dirPath, { recursive: true, force: true }),
  readDirectory: (dirPath) => fsp.readdir(dirPath),
  readFile: (filePath) => fsp.readFile(filePath),
  lstat: (filePath) => fsp.lstat(filePath),
};

/** Temp files the gallery writes: `.<target>.<pid>.<random>.tmp`, beside their target. */
export const TEMP_FILE_PATTERN = /^\..+\.tmp$/;

/** Temp file in the same folder, fsync, rename over the target, then (by default) fsync the folder. */
export async function writeAtomic(
  fs: GalleryFileSystem,
  target: string,
  data: Uint8Array,
  options: { syncDirectory?: boolean } = {},
): Promise<void> {
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const file = await fs.createFile(temp);
    try {
      await file.write(data);
      await file.sync();
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
    await file.close();
    await fs.rename(temp, target);
  } catch (error) {
    await fs.unlink(temp).catch(() => undefined);
    throw error;
  }
  if (options.syncDirectory !== false) await fs.syncDirectory(dir);
}

export async function listDirectory(fs: GalleryFileSystem, dirPath: string): Promise<string[]> {
  try {
    return await fs.readDirectory(dirPath);
  } catch (error) {
    if (errorCodeOf(error) === 'ENOENT' || errorCodeOf(error) === 'ENOTDIR') return [];
    throw error;
  }
}

export function isReadOnlyError(error: unknown): boolean {
  return errorCodeOf(error) === 'EROFS';
}

/** Wraps a file-system failure in a GalleryError that says what was being done and what to do. */
export function ioError(error: unknown, action: string): GalleryError {
  if (error instanceof GalleryError) return error;
  const code = errorCodeOf(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new GalleryError(
      'ERR_NO_SPACE',
      `No space left on the device while ${action}; nothing was changed. Free some disk space and try again.`,
      { cause: error },
    );
  }
  if (code === 'EROFS') {
    return new GalleryError(
      'ERR_GALLERY_READ_ONLY',
      `The gallery is on a read-only file system (while ${action}); nothing was changed. Recognition works from ` +
        'a read-only gallery; to change it, mount the folder read-write.',
      { cause: error },
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new GalleryError(
      'ERR_GALLERY_IO',
      `Permission denied while ${action} (${code}); nothing was changed. Make the gallery folder writable by this user.`,
      { cause: error },
    );
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new GalleryError('ERR_GALLERY_IO', `File error while ${action}: ${detail}`, { cause: error });
}
