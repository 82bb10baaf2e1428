// Runs before npm pack and npm publish (then npm runs "prepare", which is
// "npm run build"): makes the prebuilt addons again if the native sources
// changed since they were made, and removes the package's build output, so
// that nothing left over from an older tree (a renamed or deleted source)
// reaches the tarball. What the tarball takes is listed in package.json
// "files": build/native, build/nodes and build/models (built by the package's
// own tsconfig.json, which does not see test/), the prebuilt addons, the
// addon's sources for a build where none fits, examples and README.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { prebuild, staleReason } from './prebuild.mjs';
import { NATIVE_DIR } from './tflite.mjs';

// npm prints `npm pack --json`'s JSON on stdout after this script's own output: everything said here goes to
// stderr, or the JSON a packaging script reads (native/scripts/addon-context.mjs) is no longer JSON.
console.log = console.error;
const reason = staleReason();
if (reason) {
  console.error(`prebuilt addons: ${reason}; making them (npm run prebuilds)`);
  prebuild();
}
const build = join(NATIVE_DIR, '..', 'build');
for (const part of ['native', 'nodes', 'models', 'package.tsbuildinfo', 'test.tsbuildinfo']) {
  rmSync(join(build, part), { recursive: true, force: true });
}
