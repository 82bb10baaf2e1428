// Builds test/fake-edgetpu/fake_edgetpu.c into a libedgetpu.so.1 that tests
// hand to the runtime in place of Coral's library (see the .c file for the
// FAKE_EDGETPU_* environment contract).
import * as fs from 'fs';
import * as path from 'path';
import { buildSharedLibrary } from './c-library';

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

/** Compiles the fake libedgetpu (when its source changed) and returns the path of its libedgetpu.so.1. */
export function buildFakeEdgeTpu(): string {
  const source = path.join(findRepoRoot(), 'test', 'fake-edgetpu', 'fake_edgetpu.c');
  return buildSharedLibrary(source, path.join('fake-edgetpu', 'libedgetpu.so.1'), [
    '-O1',
    '-pthread',
    `-I${tfliteCcDeps().includeDir}`,
  ]);
}
