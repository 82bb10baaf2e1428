/**
 * The example flows: the files in examples/ are exactly what nodes/core/flows.ts
 * builds (the demo uses the same builder), each starts with a comment node,
 * and each deploys in Node-RED with every node created.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { demoFlow, exampleFlows, FlowNode } from '../../nodes/tools/flows';
import helper, { nodeModule, NODES } from '../helpers/node-red';

const EXAMPLES = path.resolve(__dirname, '..', '..', '..', 'examples');

describe('example flows', function () {
  this.timeout(60000);
  before(() => new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve()))));
  after(() => new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve()))));
  afterEach(() => helper.unload());

  const flows = exampleFlows();

  it('examples/ holds exactly the built flows', () => {
    const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(files, Object.keys(flows).map((n) => `${n}.json`).sort());
    for (const [name, flow] of Object.entries(flows)) {
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(EXAMPLES, `${name}.json`), 'utf8')), flow,
        `examples/${name}.json is stale: rebuild it from nodes/core/flows.ts`);
    }
  });

  const local = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-examples-'));
  const cases: [string, FlowNode[]][] = [...Object.entries(flows), ['demo', demoFlow(path.join(local, 'missing.mp4'), path.join(local, 'demo-gallery'))]];
  for (const [name, flow] of cases) {
    it(`${name}: starts with a comment node and deploys`, async () => {
      const tab = flow.find((n) => n.type === 'tab')!;
      const onTab = flow.filter((n) => n.z === tab.id);
      assert.equal(onTab[0].type, 'comment');
      // Never reach for the example camera addresses from a test: point cameras at a local (missing) file.
      const runnable = flow.map((n) => (n.type === 'camera-in' ? { ...n, url: path.join(local, 'missing.mp4') } : n))
        .map((n) => (n.type === 'face-gallery' ? { ...n, path: path.join(local, String(n.id)) } : n))
        .map((n) => (n.type === 'debug' || n.type === 'inject' || n.type === 'comment' ? { ...n, type: 'helper' } : n));
      await helper.load([nodeModule('camera-in'), ...NODES], runnable);
      for (const node of runnable.filter((n) => n.type !== 'tab')) assert.ok(helper.getNode(node.id), `${node.type} ${node.id} created`);
    });
  }
});
