// Lays out the build for Node-RED: it looks for each node's .html, locales/
// and icons/ next to the registered .js file, and tsc only emits the .js.
import { cpSync, existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'nodes');
const target = join(root, 'build', 'nodes');

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name === 'locales') cpSync(path, join(target, relative(source, path)), { recursive: true });
      else walk(path);
    } else if (name.endsWith('.html')) {
      cpSync(path, join(target, relative(source, path)));
    }
  }
}

walk(source);

// Node-RED looks for icons in an icons/ folder beside each registered .js
// (dirname of the package.json "node-red.nodes" entry, see
// @node-red/registry localfilesystem.js), not at the package root: every
// node folder (nodes/T with a T.html) gets a copy of the shared icons.
const icons = join(root, 'icons');
if (existsSync(icons)) {
  for (const name of readdirSync(source)) {
    if (existsSync(join(source, name, `${name}.html`))) {
      cpSync(icons, join(target, name, 'icons'), { recursive: true });
    }
  }
}
