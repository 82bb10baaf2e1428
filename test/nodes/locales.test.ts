/**
 * What the nodes show users: status texts short enough to read under a node
 * (Node-RED draws them there; nodes/kit.ts cuts anything longer), and no
 * English handed to Node-RED without going through the node's message
 * catalog (RED._), so every such text is in nodes/<type>/locales/.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { MAX_STATUS_LENGTH } from '../../nodes/kit';

const NODES_DIR = path.resolve(__dirname, '..', '..', '..', 'nodes');
// The node types package.json registers (the face library is a plugin: its page has no node status or catalog).
const PACKAGE = JSON.parse(fs.readFileSync(path.join(NODES_DIR, '..', 'package.json'), 'utf8')) as {
  'node-red': { nodes: Record<string, string> };
};
const TYPES = Object.keys(PACKAGE['node-red'].nodes);

/** Typical values for each placeholder a status text uses; free text (an error message) counts as empty, the status cuts it. */
const SAMPLES: Record<string, string> = {
  name: 'Alice Smith',
  camera: 'front_door',
  count: '12',
  ms: '35',
  dropped: '0',
  fps: '5.0',
  backend: 'CPU int8, TPU restarting',
  model: 'int8',
  device: 'usb:0',
  cameras: '3',
  people: '12',
  seconds: '30',
  broker: 'homeassistant.local:1883',
  action: 'rename',
  detector: 'short',
  message: '',
  error: '',
  refused: '3',
  max: '1000',
};

function statusTexts(type: string): [string, string][] {
  const catalog = JSON.parse(fs.readFileSync(path.join(NODES_DIR, type, 'locales', 'en-US', `${type}.json`), 'utf8'));
  const status = catalog[type]?.status as Record<string, string> | undefined;
  return Object.entries(status ?? {});
}

describe('nodes: what users read', () => {
  it('reads every node', () => {
    assert.ok(TYPES.length >= 8, TYPES.join(', '));
  });

  for (const type of TYPES) {
    it(`${type}: each status text fits under the node (${MAX_STATUS_LENGTH} characters) with typical values`, () => {
      for (const [key, text] of statusTexts(type)) {
        const shown = text.replace(/__([a-zA-Z0-9_]+)__/g, (_all, name: string) => {
          assert.ok(name in SAMPLES, `${type}.status.${key}: add a typical value for __${name}__ to this test`);
          return SAMPLES[name];
        });
        assert.ok(shown.length <= MAX_STATUS_LENGTH, `${type}.status.${key} runs to ${shown.length}: "${shown}"`);
      }
    });

    it(`${type}: status, log and error texts come from the catalog`, () => {
      const source = fs.readFileSync(path.join(NODES_DIR, type, `${type}.ts`), 'utf8');
      // A literal where a user reads it: the status text, a log/warn/error line, an HTTP error, a thrown message.
      const literal = String.raw`(?:'[^']*[a-z]{2}[^']*'|` + '`' + String.raw`[^$` + '`' + String.raw`]*[a-z]{2})`;
      const patterns = [
        new RegExp(String.raw`showStatus\([^,]+,\s*'[a-z]+',\s*${literal}`, 'g'),
        new RegExp(String.raw`\b(?:node|this)\.(?:warn|error|log)\(\s*${literal}`, 'g'),
        new RegExp(String.raw`json\(\{\s*error:\s*${literal}`, 'g'),
        new RegExp(String.raw`new (?:Error|ConfigError|CodedError)\((?:'[A-Z_]+',\s*)?${literal}`, 'g'),
      ];
      const found = patterns.flatMap((re) => [...source.matchAll(re)].map((m) => m[0]));
      assert.deepEqual(found, [], `${type}.ts shows English that bypasses RED._`);
    });
  }

  it('the check for English bites', () => {
    const re = new RegExp(
      String.raw`\b(?:node|this)\.(?:warn|error|log)\(\s*(?:'[^']*[a-z]{2}[^']*'|` +
        '`' +
        String.raw`[^$` +
        '`' +
        String.raw`]*[a-z]{2})`,
    );
    assert.ok(re.test("node.warn('backend changed')"));
    assert.ok(re.test('this.log(`embedder ${id}`)'));
    assert.ok(!re.test("node.warn(RED._('x.warn.backend'))"));
  });
});
