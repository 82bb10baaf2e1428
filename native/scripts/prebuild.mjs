// Makes the prebuilt addons the package ships (npm run prebuilds):
//   native/prebuilds/linux-x64/coral_face_native.napi.glibc.node
//   native/prebuilds/linux-arm64/coral_face_native.napi.glibc.node
// each beside the TFLite 2.9 C library it links (vendored by tflite.mjs), and
// native/prebuilds/manifest.json (hashes, the glibc each needs, the inputs).
//
// Built with Debian's toolchain: gcc for x64, the aarch64-linux-gnu cross
// compiler (apt-get install g++-aarch64-linux-gnu) for arm64, against
// N-API 8, so one file serves every Node.js from 18 on. Each build runs in a
// scratch copy of native/ (the developer's native/build stays as it is), and
// every path that could reach the binary is mapped to a fixed name
// (-ffile-prefix-map), so the same inputs give the same bytes in any checkout.
//
//   node native/scripts/prebuild.mjs [linux-x64|linux-arm64 ...]   build (default: both)
//   node native/scripts/prebuild.mjs --verify                      rebuild elsewhere, compare with the manifest
//   node native/scripts/prebuild.mjs --check                       exit 1 unless the manifest matches the sources
//   node native/scripts/prebuild.mjs --if-stale                    build only when --check would fail
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { NATIVE_DIR, PLATFORMS, sha256, vendorTflite } from './tflite.mjs';

export const ADDON_FILE = 'coral_face_native.napi.glibc.node';
const MANIFEST = join(NATIVE_DIR, 'prebuilds', 'manifest.json');
const repoRoot = join(NATIVE_DIR, '..');
const require = createRequire(join(repoRoot, 'package.json'));

const TOOLCHAINS = {
  'linux-x64': { arch: 'x64', cc: 'gcc', cxx: 'g++', elfMachine: 62, apt: 'g++' },
  'linux-arm64': {
    arch: 'arm64',
    cc: 'aarch64-linux-gnu-gcc',
    cxx: 'aarch64-linux-gnu-g++',
    elfMachine: 183,
    apt: 'g++-aarch64-linux-gnu',
  },
};

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(
      `${command} ${args.join(' ')} failed (exit ${result.status}):\n${result.stdout ?? ''}${result.stderr ?? ''}`,
    );
  return result.stdout ?? '';
}

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(dirname(process.execPath)),
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ];
  const found = candidates.find((file) => file && existsSync(file));
  if (!found) throw new Error('node-gyp not found: run this through npm (npm run prebuilds), which provides it');
  return found;
}

/** Everything a build reads, hashed: when this changes, the prebuilt addons are stale. */
export function inputsDigest() {
  const hash = createHash('sha256');
  const files = [
    'binding.gyp',
    ...readdirSync(join(NATIVE_DIR, 'src'))
      .sort()
      .map((f) => join('src', f)),
  ];
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(join(NATIVE_DIR, file)));
  hash.update(
    `node-addon-api ${JSON.parse(readFileSync(require.resolve('node-addon-api/package.json'), 'utf8')).version}\0`,
  );
  for (const { sha256: lib } of Object.values(PLATFORMS)) hash.update(lib);
  return hash.digest('hex');
}

/** The newest GLIBC_2.N symbol version the binary asks for (its .gnu.version_r names them). */
function glibcNeeded(file) {
  const text = readFileSync(file).toString('latin1');
  let newest = 0;
  for (const match of text.matchAll(/GLIBC_2\.(\d+)/g)) newest = Math.max(newest, Number(match[1]));
  return `2.${newest}`;
}

function toolchainVersion(command) {
  return run(command, ['--version']).split('\n')[0];
}

/** Builds one platform in a scratch copy of native/ under `scratchRoot`; returns the .node path. */
function buildPlatform(platform, scratchRoot) {
  const tool = TOOLCHAINS[platform];
  for (const command of [tool.cc, tool.cxx]) {
    if (spawnSync(command, ['--version']).status !== 0)
      throw new Error(`${command} is missing: apt-get install -y ${tool.apt}`);
  }
  const scratch = join(scratchRoot, platform);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(join(scratch, 'prebuilds', platform), { recursive: true });
  copyFileSync(join(NATIVE_DIR, 'binding.gyp'), join(scratch, 'binding.gyp'));
  cpSync(join(NATIVE_DIR, 'src'), join(scratch, 'src'), { recursive: true });
  cpSync(join(NATIVE_DIR, 'tflite'), join(scratch, 'tflite'), { recursive: true });
  copyFileSync(
    join(NATIVE_DIR, 'prebuilds', platform, 'libtensorflowlite_c.so'),
    join(scratch, 'prebuilds', platform, 'libtensorflowlite_c.so'),
  );

  const nodeModules = join(repoRoot, 'node_modules');
  const prefixMap = `-ffile-prefix-map=${scratch}=native -ffile-prefix-map=${nodeModules}=node_modules`;
  const prefix = dirname(dirname(process.execPath));
  const args = [nodeGyp(), 'rebuild', '--directory', scratch, `--arch=${tool.arch}`, '--jobs=2'];
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  run(process.execPath, args, {
    cwd: scratch,
    env: {
      ...process.env,
      // binding.gyp asks node for node-addon-api's include dir from the scratch folder.
      NODE_PATH: nodeModules,
      CC: tool.cc,
      CXX: tool.cxx,
      LINK: tool.cxx,
      CFLAGS: prefixMap,
      CXXFLAGS: prefixMap,
      SOURCE_DATE_EPOCH: '0',
    },
  });
  const built = join(scratch, 'build', 'Release', 'coral_face_native.node');
  const machine = readFileSync(built).readUInt16LE(18);
  if (machine !== tool.elfMachine)
    throw new Error(`${built}: ELF machine ${machine}, expected ${tool.elfMachine} for ${platform}`);
  return built;
}

function readManifest() {
  try {
    return JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Why the shipped prebuilt addons do not match the sources, or undefined when they do. */
export function staleReason() {
  const manifest = readManifest();
  if (!manifest) return 'no native/prebuilds/manifest.json';
  if (manifest.inputs !== inputsDigest()) return 'the native sources changed since the prebuilt addons were made';
  for (const platform of Object.keys(TOOLCHAINS)) {
    const entry = manifest.platforms?.[platform];
    const file = join(NATIVE_DIR, 'prebuilds', platform, ADDON_FILE);
    if (!entry || !existsSync(file)) return `no prebuilt addon for ${platform}`;
    if (sha256(file) !== entry.sha256) return `${relative(repoRoot, file)} differs from the manifest`;
    const lib = join(NATIVE_DIR, 'prebuilds', platform, 'libtensorflowlite_c.so');
    if (!existsSync(lib) || sha256(lib) !== PLATFORMS[platform].sha256)
      return `the TFLite library for ${platform} is missing or different`;
  }
  return undefined;
}

export function prebuild(platforms = Object.keys(TOOLCHAINS)) {
  vendorTflite();
  const scratchRoot = mkdtempSync(join(tmpdir(), 'coral-face-prebuild-'));
  const manifest = readManifest() ?? {};
  const inputs = inputsDigest();
  const next = { inputs, platforms: manifest.inputs === inputs ? { ...manifest.platforms } : {} };
  try {
    for (const platform of platforms) {
      const started = Date.now();
      const built = buildPlatform(platform, scratchRoot);
      const target = join(NATIVE_DIR, 'prebuilds', platform, ADDON_FILE);
      copyFileSync(built, `${target}.tmp`);
      renameSync(`${target}.tmp`, target);
      next.platforms[platform] = {
        file: `${platform}/${ADDON_FILE}`,
        sha256: sha256(target),
        bytes: readFileSync(target).length,
        glibc: glibcNeeded(target),
        tflite: {
          file: `${platform}/libtensorflowlite_c.so`,
          sha256: PLATFORMS[platform].sha256,
          glibc: glibcNeeded(join(NATIVE_DIR, 'prebuilds', platform, 'libtensorflowlite_c.so')),
        },
        compiler: toolchainVersion(TOOLCHAINS[platform].cxx),
      };
      console.log(
        `${platform}: ${relative(repoRoot, target)} (${next.platforms[platform].sha256.slice(0, 16)}, needs glibc ${next.platforms[platform].glibc}) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
    }
  } finally {
    rmSync(scratchRoot, { recursive: true, force: true });
  }
  next.platforms = Object.fromEntries(Object.entries(next.platforms).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(MANIFEST, `${JSON.stringify(next, null, 2)}\n`);
  return next;
}

/** Rebuilds every platform in another scratch folder and compares the bytes with the manifest. */
export function verify() {
  const manifest = readManifest();
  if (!manifest) throw new Error('no manifest: run npm run prebuilds first');
  if (manifest.inputs !== inputsDigest())
    throw new Error('the manifest is for other sources: run npm run prebuilds first');
  const scratchRoot = mkdtempSync(join(tmpdir(), 'coral-face-verify-'));
  const problems = [];
  try {
    for (const [platform, entry] of Object.entries(manifest.platforms)) {
      const again = sha256(buildPlatform(platform, join(scratchRoot, 'elsewhere')));
      if (again === entry.sha256) console.log(`${platform}: rebuilt elsewhere, same bytes (${again.slice(0, 16)})`);
      else problems.push(`${platform}: rebuilt as ${again}, manifest has ${entry.sha256}`);
    }
  } finally {
    rmSync(scratchRoot, { recursive: true, force: true });
  }
  if (problems.length) throw new Error(`not reproducible:\n${problems.join('\n')}`);
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  try {
    if (args.includes('--verify')) verify();
    else if (args.includes('--if-stale')) {
      const reason = staleReason();
      if (reason) {
        console.log(`prebuilt addons: ${reason}; making them`);
        prebuild();
      }
    } else if (args.includes('--check')) {
      const reason = staleReason();
      if (reason) {
        console.error(`prebuilt addons are stale: ${reason} (npm run prebuilds)`);
        process.exitCode = 1;
      } else console.log('prebuilt addons match the sources');
    } else {
      const unknown = args.filter((a) => !TOOLCHAINS[a]);
      if (unknown.length)
        throw new Error(`unknown platform ${unknown.join(', ')}: ${Object.keys(TOOLCHAINS).join(', ')}`);
      prebuild(args.length ? args : undefined);
    }
  } catch (error) {
    console.error(error.message);
    process.exitCode = 1;
  }
}
