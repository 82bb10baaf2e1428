// Builds test/fake-edgetpu/fake_edgetpu.c into a libedgetpu.so.1 that tests
// hand to the runtime in place of Coral's library (see the .c file for the
// FAKE_EDGETPU_* environment contract).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const PACKAGE_NAME = 'node-red-contrib-coral-face';

// Walks up instead of using a fixed "../.." because this file runs both from
// test/helpers (ts-node, editors) and from build/test/helpers (compiled).
export function findRepoRoot(start: string = __dirname): string {
  let dir = path.resolve(start);
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown };
        if (pkg.name === PACKAGE_NAME) return dir;
      } catch {
        // An unreadable package.json is not ours; keep walking.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no ${PACKAGE_NAME} package.json above ${start}`);
    dir = parent;
  }
}

export interface TfliteCcDeps {
  /** Holds tensorflow/lite/c/{c_api,common}.h (TFLite 2.9). */
  includeDir: string;
  /** Holds libtensorflowlite_c.so for this platform. */
  libDir: string;
}

// The headers and library shipped with tfjs-tflite-node, so C test programs
// compile without a system TFLite.
export function tfliteCcDeps(): TfliteCcDeps {
  const root = path.dirname(require.resolve('tfjs-tflite-node/package.json'));
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return {
    includeDir: path.join(root, 'cc_deps', 'include'),
    libDir: path.join(root, 'cc_deps', `${process.platform}_${arch}`),
  };
}

// Per user, so a shared /tmp owned by someone else cannot block or poison it.
function cacheDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return path.join(os.tmpdir(), `coral-face-fake-edgetpu-${uid}`);
}

function mtimeMs(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * Compiles the fake libedgetpu (only when the source is newer than the cached
 * build) and returns the absolute path of the resulting libedgetpu.so.1.
 */
export function buildFakeEdgeTpu(): string {
  const source = path.join(findRepoRoot(), 'test', 'fake-edgetpu', 'fake_edgetpu.c');
  const dir = cacheDir();
  const output = path.join(dir, 'libedgetpu.so.1');
  const sourceTime = mtimeMs(source);
  if (sourceTime === undefined) throw new Error(`fake libedgetpu source missing: ${source}`);
  const builtTime = mtimeMs(output);
  if (builtTime !== undefined && builtTime >= sourceTime) return output;

  fs.mkdirSync(dir, { recursive: true });
  // Compile to a unique name and rename into place, so a concurrent test
  // process never dlopens a half-written library.
  const temp = path.join(dir, `libedgetpu.so.1.${process.pid}.${Date.now()}.tmp`);
  const args = ['-shared', '-fPIC', '-O1', '-pthread', `-I${tfliteCcDeps().includeDir}`,
    '-o', temp, source];
  try {
    execFileSync('cc', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    fs.rmSync(temp, { force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`building fake libedgetpu failed: cc ${args.join(' ')}\n${stderr}`, { cause: err });
  }
  fs.renameSync(temp, output);
  return output;
}
