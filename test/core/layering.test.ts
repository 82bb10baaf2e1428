/**
 * The layers: native <- nodes/core (the engine, framework-free) <- nodes/tools
 * (CLI, evaluation, flow builders) and the Node-RED adapters in nodes/<type>/.
 * The engine must stay usable without Node-RED (the CLI, the add-on, other
 * hosts), and must not reach up into the tools or the adapters.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const IMPORT = /(?:from\s+|require\(\s*|import\(\s*)['"]([^'"]+)['"]/g;
const importsOf = (file: string): string[] => [...fs.readFileSync(file, 'utf8').matchAll(IMPORT)].map((m) => m[1]);
const isNodeRed = (spec: string) => spec === 'node-red' || spec.startsWith('@node-red/');
const target = (file: string, spec: string) => path.relative(ROOT, path.resolve(path.dirname(file), spec));

describe('layering', () => {
  const core = sources(path.join(ROOT, 'nodes', 'core'));
  const tools = sources(path.join(ROOT, 'nodes', 'tools'));

  it('reads the engine in domain folders', () => {
    const folders = new Set(core.map((f) => path.relative(path.join(ROOT, 'nodes', 'core'), path.dirname(f))));
    for (const domain of [
      'media',
      'camera',
      'detect',
      'align',
      'embed',
      'identify',
      'gallery',
      'ha',
      'flow',
      'common',
    ]) {
      assert.ok(folders.has(domain), `nodes/core/${domain}/ exists`);
    }
    assert.ok(core.length > 25 && tools.length >= 3, 'the folders were read');
  });

  it('no file of nodes/core or nodes/tools imports node-red', () => {
    const offenders = [...core, ...tools]
      .filter((f) => importsOf(f).some(isNodeRed))
      .map((f) => path.relative(ROOT, f));
    assert.deepEqual(offenders, []);
  });

  it('nodes/core imports only itself, native/ and packages', () => {
    const offenders = core.flatMap((f) =>
      importsOf(f)
        .filter((spec) => spec.startsWith('.'))
        .map((spec) => target(f, spec))
        .filter((t) => !t.startsWith(path.join('nodes', 'core')) && !t.startsWith('native'))
        .map((t) => `${path.relative(ROOT, f)} -> ${t}`),
    );
    assert.deepEqual(offenders, []);
  });

  it('nodes/tools does not import the Node-RED adapters', () => {
    const offenders = tools.flatMap((f) =>
      importsOf(f)
        .filter((spec) => spec.startsWith('.'))
        .map((spec) => target(f, spec))
        .filter(
          (t) =>
            t.startsWith('nodes') &&
            !t.startsWith(path.join('nodes', 'core')) &&
            !t.startsWith(path.join('nodes', 'tools')),
        )
        .map((t) => `${path.relative(ROOT, f)} -> ${t}`),
    );
    assert.deepEqual(offenders, []);
  });
});
