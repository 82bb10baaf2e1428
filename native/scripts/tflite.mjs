// Vendors the TFLite 2.9 C library and its C API headers from
// tfjs-tflite-node's cc_deps/ (a devDependency) into the package:
//   native/prebuilds/linux-x64/libtensorflowlite_c.so    (+ NOTICE.md)
//   native/prebuilds/linux-arm64/libtensorflowlite_c.so  (+ NOTICE.md)
//   native/tflite/include/tensorflow/lite/c/*.h          (+ NOTICE.md)
// Only files are copied: tfjs-tflite-node's own build never runs for this.
// Every file is checked against the hash it had when we chose it, so a
// different library never slips in (libedgetpu 16.0 needs TFLite 2.9's ABI).
//
//   node native/scripts/tflite.mjs        vendors (only what is missing or different)
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NATIVE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const PEER = 'tfjs-tflite-node';
export const PEER_VERSION = '0.0.2';

/** Our platform folder (node-gyp-build's <platform>-<arch>) and the peer's cc_deps folder. */
export const PLATFORMS = {
  'linux-x64': { ccDeps: 'linux_amd64', sha256: 'dc89b4cd86d956516570bd483668e6dd98907f49901d0567dedc69a29a56b7f7' },
  'linux-arm64': { ccDeps: 'linux_arm64', sha256: 'ec0dee4fb3418e680d010248ac1e304d9656cc5c8de54caaf91d666712e2f633' },
};

const HEADERS = {
  'c_api.h': '7b4b0e05b9d82a9c9bdc75d83e5fb12c09686a3ee0f73e7686706ee5762faae5',
  'c_api_types.h': '1ad66312ea5f89471436b77d9395f747ee789a6a7afecacf0214ce0bfa16c4cd',
  'common.h': 'b19c1f2ae6fd049ed159fc857e4d0e214d72fe6c0a12e69739078c01a5a7e5be',
};

export const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

export function peerDir() {
  const require = createRequire(join(NATIVE_DIR, 'package.json'));
  let manifest;
  try {
    manifest = require.resolve(`${PEER}/package.json`);
  } catch {
    throw new Error(`${PEER} is not installed: it is a devDependency, run "npm install" in the repository first`);
  }
  const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
  if (version !== PEER_VERSION)
    throw new Error(`${PEER} ${version} found, ${PEER_VERSION} expected (its TFLite 2.9 library is pinned)`);
  return dirname(manifest);
}

function notice(what) {
  return `# TensorFlow Lite ${what}

From the npm package ${PEER} ${PEER_VERSION} (cc_deps/), which ships the
TensorFlow Lite 2.9 C library (https://github.com/tensorflow/tensorflow).
Copyright The TensorFlow Authors. Licensed under the Apache License 2.0:

${readFileSync(join(NATIVE_DIR, 'licenses', 'Apache-2.0.txt'), 'utf8')}`;
}

function copyChecked(from, to, expected) {
  const actual = sha256(from);
  if (actual !== expected) throw new Error(`${from}: sha256 ${actual}, expected ${expected}`);
  if (existsSync(to) && sha256(to) === expected) return false;
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  return true;
}

function writeIfChanged(file, text) {
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return;
  writeFileSync(file, text);
}

/** True when the vendored files are all there (an installed package, or a repository after vendoring). */
export function vendored() {
  return (
    Object.keys(PLATFORMS).every((p) => existsSync(join(NATIVE_DIR, 'prebuilds', p, 'libtensorflowlite_c.so'))) &&
    Object.keys(HEADERS).every((h) => existsSync(join(NATIVE_DIR, 'tflite', 'include', 'tensorflow', 'lite', 'c', h)))
  );
}

export function vendorTflite() {
  const peer = peerDir();
  const copied = [];
  for (const [platform, { ccDeps, sha256: expected }] of Object.entries(PLATFORMS)) {
    const to = join(NATIVE_DIR, 'prebuilds', platform, 'libtensorflowlite_c.so');
    if (copyChecked(join(peer, 'cc_deps', ccDeps, 'libtensorflowlite_c.so'), to, expected)) copied.push(to);
    writeIfChanged(join(NATIVE_DIR, 'prebuilds', platform, 'NOTICE.md'), notice(`C library (${platform})`));
  }
  for (const [header, expected] of Object.entries(HEADERS)) {
    const to = join(NATIVE_DIR, 'tflite', 'include', 'tensorflow', 'lite', 'c', header);
    if (copyChecked(join(peer, 'cc_deps', 'include', 'tensorflow', 'lite', 'c', header), to, expected)) copied.push(to);
  }
  writeIfChanged(join(NATIVE_DIR, 'tflite', 'NOTICE.md'), notice('C API headers'));
  return copied;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const copied = vendorTflite();
  console.log(copied.length ? `vendored ${copied.length} TFLite file(s)` : 'TFLite files already vendored');
}
