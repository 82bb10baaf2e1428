// Makes the Home Assistant app's build context complete (npm run addon:context):
// packs this package (npm pack: the prebuilt addons, a clean build) into
// addon/node-red-contrib-coral-face.tgz, the one file addon/Dockerfile takes
// from outside addon/. The image installs exactly this tarball, so the app
// runs the package it was built with, never a version from the registry.
//
// The tarball is not committed on the development branch (.gitignore): a
// release commits it where Home Assistant reads the app repository from (see
// addon/DOCS.md, "Installing"). The versions must agree: config.yaml's
// version is the package's (test/addon/image.test.ts checks the files; the
// Dockerfile refuses a tarball of another version at build time).
//
//   node native/scripts/addon-context.mjs
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ADDON_TARBALL = 'node-red-contrib-coral-face.tgz';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function addonVersion() {
  const match = /^version:\s*"?([^"\s]+)"?\s*$/m.exec(readFileSync(join(root, 'addon', 'config.yaml'), 'utf8'));
  if (!match) throw new Error('addon/config.yaml has no version line');
  return match[1];
}

export function makeAddonContext() {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const wanted = addonVersion();
  if (wanted !== version)
    throw new Error(`addon/config.yaml has version ${wanted}, package.json ${version}: bump them together`);
  const out = mkdtempSync(join(tmpdir(), 'coral-face-pack-'));
  try {
    const packed = spawnSync('npm', ['pack', '--pack-destination', out, '--json'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (packed.status !== 0) throw new Error(`npm pack failed (exit ${packed.status})`);
    const [file] = readdirSync(out).filter((f) => f.endsWith('.tgz'));
    if (!file) throw new Error(`npm pack wrote no tarball into ${out}`);
    const target = join(root, 'addon', ADDON_TARBALL);
    // Copied, then renamed within addon/: /tmp may be another file system.
    copyFileSync(join(out, file), `${target}.tmp`);
    renameSync(`${target}.tmp`, target);
    return { target, version, ...JSON.parse(packed.stdout)[0] };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const made = makeAddonContext();
    console.log(
      `addon/${ADDON_TARBALL}: node-red-contrib-coral-face ${made.version}, ${made.entryCount} files, ` +
        `${(made.size / 1e6).toFixed(1)} MB packed, ${(made.unpackedSize / 1e6).toFixed(1)} MB unpacked`,
    );
  } catch (error) {
    console.error(error.message);
    process.exitCode = 1;
  }
}
