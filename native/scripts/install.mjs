// npm's install hook for this package.
//
// On a user's machine a prebuilt addon (native/prebuilds/<platform>-<arch>/)
// loads and nothing is built: no compiler is needed, and an install with
// --ignore-scripts works the same (the runtime finds the prebuilt addon by
// itself, native/addon.ts). Only where no prebuilt addon loads (another libc,
// a glibc older than the one it was built against) is the addon built from
// the shipped sources, if python3, make and a C++ compiler are there;
// otherwise the install fails with a message that says what to install.
//
// In the repository (a checkout with test/ and the devDependencies) it always
// builds from source, as a developer expects after editing native/src/.
//
// Force a source build anywhere: npm install --build-from-source, or
// CORAL_FACE_BUILD_FROM_SOURCE=1.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const packageRoot = join(nativeDir, '..');
const require = createRequire(import.meta.url);
const say = (line) => process.stderr.write(`coral-face: ${line}\n`);

function onPath(command) {
  if (command.includes('/')) return existsSync(command) ? command : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The addon node-gyp-build picks (a source build first, then the prebuilt one), and whether it loads here. */
function tryAddon() {
  const nodeGypBuild = require('node-gyp-build');
  let file;
  try {
    file = nodeGypBuild.path(nativeDir);
  } catch {
    return { ok: false, reason: `no prebuilt addon for ${process.platform}-${process.arch}` };
  }
  try {
    require(file);
    return { ok: true, file };
  } catch (error) {
    return { ok: false, reason: `${file} does not load here: ${String(error.message).split('\n')[0]}` };
  }
}

function glibcVersion() {
  return process.report?.getReport?.().header?.glibcVersionRuntime;
}

/** What a source build needs, and which of it is missing from PATH. */
function missingBuildTools() {
  const missing = [];
  if (!onPath(process.env.npm_config_python || process.env.PYTHON || 'python3')) missing.push('python3');
  if (!onPath('make')) missing.push('make');
  if (!(process.env.CXX ? onPath(process.env.CXX) : onPath('g++') || onPath('c++'))) missing.push('g++');
  return missing;
}

function nodeGypCommand() {
  // npm hands its own node-gyp to lifecycle scripts; a global one is the fallback.
  // Run by hand (node native/scripts/install.mjs): npm's own copy beside this node.
  for (const bundled of [
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
  ]) {
    if (bundled && existsSync(bundled)) return [process.execPath, bundled];
  }
  const global = onPath('node-gyp');
  return global ? [global] : undefined;
}

function buildFromSource() {
  const nodeGyp = nodeGypCommand();
  if (!nodeGyp) {
    say(
      'node-gyp was not found (npm normally provides it to install scripts): npm install -g node-gyp, then npm rebuild node-red-contrib-coral-face',
    );
    return 1;
  }
  const args = [...nodeGyp.slice(1), 'rebuild', '--directory', nativeDir];
  // The Node.js headers usually sit beside the binary (official tarballs,
  // NodeSource and Debian packages): use them instead of a download.
  const prefix = dirname(dirname(process.execPath));
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h')))
    args.push(`--nodedir=${prefix}`);
  const result = spawnSync(nodeGyp[0], args, { stdio: 'inherit', cwd: packageRoot });
  if (result.status !== 0) {
    say(
      `building the addon from source failed (node-gyp exit ${result.status ?? result.signal}); the output above says why`,
    );
    return 1;
  }
  const after = tryAddon();
  if (!after.ok) {
    say(`the addon built, but it does not load: ${after.reason}`);
    return 1;
  }
  say(`built the addon from source: ${after.file}`);
  return 0;
}

async function developerCheckout() {
  if (!existsSync(join(packageRoot, 'test')) || !existsSync(join(packageRoot, 'native', 'src', 'addon.cc')))
    return false;
  try {
    require.resolve('tfjs-tflite-node/package.json', { paths: [packageRoot] });
  } catch {
    return false;
  }
  // The TFLite files the build links come from the devDependency.
  const { vendorTflite } = await import('./tflite.mjs');
  vendorTflite();
  return true;
}

async function main() {
  const forced =
    process.env.CORAL_FACE_BUILD_FROM_SOURCE === '1' || process.env.npm_config_build_from_source === 'true';
  if (await developerCheckout()) return buildFromSource();
  if (!forced) {
    const addon = tryAddon();
    if (addon.ok) return 0;
    say(addon.reason);
  }
  if (!glibcVersion()) {
    say(
      "this system's C library is not glibc (Alpine uses musl): the TFLite library this package uses is a glibc build, " +
        'so the addon cannot work here. Use a Debian- or Ubuntu-based system or image.',
    );
    return 1;
  }
  const missing = missingBuildTools();
  if (missing.length) {
    say(
      `the prebuilt addons need Linux x64 or arm64 with glibc 2.34 or newer (this system: glibc ${glibcVersion()}). ` +
        `Building the addon from source needs python3, make and g++, and ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not installed.`,
    );
    say('Debian, Ubuntu, Raspberry Pi OS: sudo apt-get install python3 make g++');
    say('then, in the Node-RED user directory (usually ~/.node-red): npm rebuild node-red-contrib-coral-face');
    return 1;
  }
  say('building the addon from source (python3, make and g++ found)');
  return buildFromSource();
}

process.exitCode = await main();
