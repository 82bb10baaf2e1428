/** The engine in nodes/core must stay usable without Node-RED (the CLI, the add-on, other hosts). */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';

describe('nodes/core is framework-free', () => {
  it('no file in nodes/core imports node-red', () => {
    const dir = path.resolve(__dirname, '..', '..', '..', 'nodes', 'core');
    const offenders = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))
      .filter((f) => /from\s+['"](node-red|@node-red\/[^'"]+)['"]|require\(\s*['"](node-red|@node-red\/[^'"]+)['"]\s*\)/
        .test(fs.readFileSync(path.join(dir, f), 'utf8')));
    assert.deepEqual(offenders, []);
    assert.ok(fs.readdirSync(dir).length > 10, 'the folder was read');
  });
});
