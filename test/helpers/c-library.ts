// Compiles small C libraries that tests and benchmarks need (the fake
// libedgetpu, the benchmark's XNNPACK plugin) into a per-user, per-arch cache,
// only when the source is newer than the cached build. $CC picks the compiler
// (the arm64 tests set a cross compiler; default cc).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// Per user, so a shared /tmp owned by someone else cannot block or poison it;
// per arch, because the emulated arm64 tests share this machine's /tmp.
function cacheDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return path.join(os.tmpdir(), `coral-face-c-${uid}-${process.arch}`);
}

function mtimeMs(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * Builds `source` into `<cache>/<name>` with `cc -shared -fPIC <args>` and
 * returns its absolute path. `linkArgs` come after the source (libraries).
 */
export function buildSharedLibrary(source: string, name: string, args: string[], linkArgs: string[] = []): string {
  const output = path.join(cacheDir(), name);
  const sourceTime = mtimeMs(source);
  if (sourceTime === undefined) throw new Error(`C source missing: ${source}`);
  const builtTime = mtimeMs(output);
  if (builtTime !== undefined && builtTime >= sourceTime) return output;

  fs.mkdirSync(path.dirname(output), { recursive: true });
  // Compile to a unique name and rename into place, so a concurrent test
  // process never dlopens a half-written library.
  const temp = `${output}.${process.pid}.${Date.now()}.tmp`;
  const cc = process.env.CC || 'cc';
  const all = ['-shared', '-fPIC', ...args, '-o', temp, source, ...linkArgs];
  try {
    execFileSync(cc, all, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    fs.rmSync(temp, { force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`building ${name} failed: ${cc} ${all.join(' ')}\n${stderr}`, { cause: err });
  }
  fs.renameSync(temp, output);
  return output;
}
