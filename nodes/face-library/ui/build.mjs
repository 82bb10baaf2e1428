// Bundles the face library page (Preact + uPlot, see README "Face library") into
// build/nodes/face-library/ui/: index.html, app.js, app.css. esbuild: one small, fast, dependency-free
// bundler that reads TSX and CSS itself, so the page needs no other build tool; everything the page
// uses is in the bundle (no CDN, nothing fetched at run time).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', '..', '..', 'build', 'nodes', 'face-library', 'ui');
mkdirSync(out, { recursive: true });
// esbuild strips types without checking them: the page is type-checked here (DOM lib, Preact JSX).
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const check = spawnSync(process.execPath, [tsc, '-p', here], { stdio: 'inherit' });
if (check.status !== 0) process.exit(check.status ?? 1);
await build({
  entryPoints: { app: join(here, 'app.tsx') },
  outdir: out,
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'eof',
  logLevel: 'warning',
});
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
