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
if (existsSync(join(root, 'icons'))) cpSync(join(root, 'icons'), join(target, 'icons'), { recursive: true });
