/**
 * Which ffmpeg binary to run, and what it is: discovery (option, $FFMPEG_PATH,
 * PATH, the optional npm package), its major version (option names changed in
 * 5.0), and how options are handed to fluent-ffmpeg.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export type FfmpegSource = 'option' | 'env' | 'system' | 'npm';

export interface ResolvedFfmpeg {
  path: string;
  source: FfmpegSource;
}

export function isExecutable(file: string): boolean {
  try {
    return fs.statSync(file).isFile() && (fs.accessSync(file, fs.constants.X_OK), true);
  } catch {
    return false;
  }
}

/** chmod u+x, best effort (a read-only install stays as it is). */
function makeExecutable(file: string): void {
  try {
    fs.chmodSync(file, fs.statSync(file).mode | 0o100);
  } catch {
    // not ours to change: the lookup goes on without it
  }
}

/**
 * Which ffmpeg to run: options.ffmpegPath, else $FFMPEG_PATH, else `ffmpeg` on
 * PATH, else the binary of the optional npm package @ffmpeg-installer/ffmpeg.
 * A path given explicitly (option or env) that is not executable is an error
 * rather than silently falling through: the user asked for that binary.
 */
export function resolveFfmpeg(options: { ffmpegPath?: string } = {}): ResolvedFfmpeg {
  if (options.ffmpegPath) {
    if (!isExecutable(options.ffmpegPath))
      throw new Error(`ffmpeg path "${options.ffmpegPath}" is not an executable file`);
    return { path: options.ffmpegPath, source: 'option' };
  }
  const fromEnv = process.env.FFMPEG_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`FFMPEG_PATH "${fromEnv}" is not an executable file`);
    return { path: fromEnv, source: 'env' };
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'ffmpeg');
    if (isExecutable(candidate)) return { path: candidate, source: 'system' };
  }
  try {
    // Optional dependency: a static ffmpeg for hosts without one (e.g. Home Assistant OS add-ons).
    // A synchronous require, since it may be missing and this lookup is synchronous.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const installer = require('@ffmpeg-installer/ffmpeg') as { path?: unknown };
    if (typeof installer.path === 'string') {
      // Its postinstall script makes the binary executable; an install that skipped scripts
      // (--ignore-scripts, or an npm 11 allowScripts that does not cover it) leaves it not.
      if (!isExecutable(installer.path)) makeExecutable(installer.path);
      if (isExecutable(installer.path)) return { path: installer.path, source: 'npm' };
    }
  } catch {
    // not installed: fall through to the error below
  }
  throw new Error(
    'ffmpeg not found: install it (e.g. `apt install ffmpeg`), set FFMPEG_PATH or the ffmpeg path option, ' +
      'or `npm install @ffmpeg-installer/ffmpeg`',
  );
}

const majorVersions = new Map<string, Promise<number>>();

/**
 * ffmpeg's major version, because the RTSP I/O timeout option changed meaning:
 * in 4.x `-timeout` made RTSP *listen* as a server (`-stimeout` was the socket
 * timeout); from 5.0 `-timeout` is the socket timeout and `-stimeout` is gone.
 * Unparseable versions (git builds: "N-12345-g...") are taken as current.
 * Asked asynchronously, once per binary: a synchronous spawn here held
 * Node-RED's event loop at the first deploy.
 */
export function ffmpegMajorVersion(binary: string): Promise<number> {
  let known = majorVersions.get(binary);
  if (!known) {
    known = new Promise<number>((resolve) => {
      execFile(binary, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 }, (_error, stdout) => {
        const match = /ffmpeg version n?(\d+)\./.exec(stdout ?? '');
        resolve(match ? Number(match[1]) : 99);
      });
    });
    majorVersions.set(binary, known);
  }
  return known;
}

/**
 * Adds options to fluent-ffmpeg as separate arguments: given an array, it
 * splits any element with exactly one space in two, which would break a value
 * such as a filter expression or a path containing a space. (A lone option is
 * still split that way; ours never contain spaces.)
 */
export function addOptions(add: (...options: string[]) => unknown, options: string[]): void {
  if (options.length > 0) add(...options);
}
