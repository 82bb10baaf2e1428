/**
 * One writer at a time per gallery, across processes (Node-RED and the CLI on
 * the same folder, two CLI enrolments at once): an exclusive flock on
 * <gallery>/gallery.lock, held for the few milliseconds a change takes to
 * write. flock rather than a lock file whose existence is the lock: the
 * kernel releases it when the holder dies, however it dies, so a crash never
 * leaves a stale lock and no process has to guess whether another is alive.
 */
import { constants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { loadAddon } from '../../../native/addon';
import { errorCodeOf } from '../common/errors';
import { GalleryError, LOCK_FILE } from './format';
import { ioError } from './files';

export interface HeldLock {
  release(): Promise<void>;
}

const POLL_FIRST_MS = 5;
const POLL_MAX_MS = 100;
/** A change holds the lock for milliseconds; this long means a writer is stuck (or a disk is). */
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

async function openLockFile(dir: string): Promise<fsp.FileHandle> {
  const file = path.join(dir, LOCK_FILE);
  try {
    // O_APPEND|O_CREAT: never truncates, never needs the file to be empty; the content is not used.
    return await fsp.open(file, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND, 0o644);
  } catch (error) {
    if (errorCodeOf(error) === 'ENOENT') {
      throw new GalleryError('ERR_GALLERY_NOT_FOUND', `The gallery folder ${dir} does not exist (any more).`, {
        cause: error,
      });
    }
    throw ioError(error, `opening the lock file ${file}`);
  }
}

/** Takes the lock if it is free; null when another process (or another open file of this one) holds it. */
export async function tryLockGallery(dir: string): Promise<HeldLock | null> {
  const handle = await openLockFile(dir);
  let held = false;
  try {
    held = loadAddon().tryLockFile(handle.fd);
  } finally {
    if (!held) await handle.close();
  }
  if (!held) return null;
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      // Closing the file drops the flock too; unlock first so a waiter need not wait for the close.
      loadAddon().unlockFile(handle.fd);
      await handle.close();
    },
  };
}

/** Waits for the lock (polling: flock's blocking form would block a thread), or ERR_GALLERY_BUSY. */
export async function lockGallery(dir: string, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): Promise<HeldLock> {
  const deadline = Date.now() + timeoutMs;
  let wait = POLL_FIRST_MS;
  for (;;) {
    const lock = await tryLockGallery(dir);
    if (lock) return lock;
    if (Date.now() >= deadline) {
      throw new GalleryError(
        'ERR_GALLERY_BUSY',
        `Another process has been changing the gallery at ${dir} for over ${Math.round(timeoutMs / 1000)} s; ` +
          'nothing was changed. Try again; if it persists, look for a stuck coral-face or Node-RED process.',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(POLL_MAX_MS, wait * 2);
  }
}
