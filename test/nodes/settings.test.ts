/** Every node's edit dialog offers the defaults of the one settings table (nodes/core/flow/settings.ts). */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { SETTINGS } from '../../nodes/core/flow/settings';
import { ConfigError, configNumber, numberSetting } from '../../nodes/kit';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** `field: { value: '5'` in the registerType defaults of a node's .html. */
function dialogDefaults(type: string): Map<string, string> {
  const html = fs.readFileSync(path.join(ROOT, 'nodes', type, `${type}.html`), 'utf8');
  return new Map([...html.matchAll(/^\s*(\w+):\s*\{\s*value:\s*'([^']*)'/gm)].map((m) => [m[1], m[2]]));
}

describe('node settings', () => {
  for (const [type, fields] of Object.entries(SETTINGS)) {
    it(`${type}: the dialog's defaults are the table's (blank where blank means the default)`, () => {
      const offered = dialogDefaults(type);
      for (const [field, rule] of Object.entries(fields)) {
        assert.ok(offered.has(field), `${type}.html has a field ${field}`);
        const value = offered.get(field)!;
        assert.ok(
          value === '' || Number(value) === rule.default,
          `${type}.${field}: dialog ${value}, table ${rule.default}`,
        );
        assert.ok(rule.min <= rule.default && rule.default <= rule.max, `${type}.${field} default within its range`);
      }
    });
  }

  it('numberSetting: blank gives the default, nonsense and out-of-range values are refused with the field name', () => {
    assert.equal(numberSetting('x', '', 7), 7);
    assert.equal(numberSetting('x', undefined, 7), 7);
    assert.equal(numberSetting('x', ' 2.5 ', 7, { min: 0, max: 3 }), 2.5);
    assert.throws(
      () => numberSetting('seconds', 'abc', 10),
      (e: Error) => e instanceof ConfigError && /seconds must be a number.*"abc"/.test(e.message),
    );
    assert.throws(
      () => numberSetting('seconds', -5, 10, { min: 1, max: 300 }),
      /seconds must be a number from 1 to 300 \(got -5\)/,
    );
    assert.throws(() => numberSetting('seconds', 1e10, 10, { min: 1, max: 300 }), /from 1 to 300/);
    assert.throws(() => numberSetting('frames', 2.5, 3, { integer: true }), /a whole number/);
    assert.throws(() => configNumber('face-gallery', 'threshold', '-1'), /threshold must be a number from 0 to 1/);
  });
});
