/**
 * The example flows: the files in examples/ are exactly what nodes/core/flows.ts
 * builds (the demo uses the same builder), each starts with a comment node,
 * and each deploys in Node-RED with every node created.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { demoFlow, exampleFlows, FlowNode, nodeBox, nodeLabel } from '../../nodes/tools/flows';
import helper, { nodeModule, NODES } from '../helpers/node-red';

const EXAMPLES = path.resolve(__dirname, '..', '..', '..', 'examples');

describe('example flows', function () {
  this.timeout(60000);
  before(() => new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve()))));
  after(() => new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve()))));
  afterEach(() => helper.unload());

  const flows = exampleFlows();

  it('examples/ holds exactly the built flows', () => {
    const files = fs
      .readdirSync(EXAMPLES)
      .filter((f) => f.endsWith('.json'))
      .sort();
    assert.deepEqual(
      files,
      Object.keys(flows)
        .map((n) => `${n}.json`)
        .sort(),
    );
    for (const [name, flow] of Object.entries(flows)) {
      assert.deepEqual(
        JSON.parse(fs.readFileSync(path.join(EXAMPLES, `${name}.json`), 'utf8')),
        flow,
        `examples/${name}.json is stale: rebuild it from nodes/core/flows.ts`,
      );
    }
  });

  const all: [string, FlowNode[]][] = [
    ...Object.entries(flows),
    ['demo', demoFlow('/tmp/demo.mp4', '/tmp/demo-gallery')],
  ];
  for (const [name, flow] of all) {
    it(`${name}: node boxes (estimated as the editor draws them) do not overlap and sit at positive coordinates`, () => {
      const onTab = flow.filter((n) => n.z !== undefined);
      assert.ok(onTab.length >= 5);
      const boxes = onTab.map((n) => ({ n, b: nodeBox(n) }));
      for (const { n, b } of boxes)
        assert.ok(b.left > 0 && b.top > 0, `${n.id} (${nodeLabel(n)}) at ${JSON.stringify(b)}`);
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const [a, c] = [boxes[i].b, boxes[j].b];
          const apart = a.right <= c.left || c.right <= a.left || a.bottom <= c.top || c.bottom <= a.top;
          assert.ok(
            apart,
            `${boxes[i].n.id} (${nodeLabel(boxes[i].n)}) overlaps ${boxes[j].n.id} (${nodeLabel(boxes[j].n)})`,
          );
        }
      }
    });

    it(`${name}: the debug sidebar gets visits only (per-frame output off)`, () => {
      const classify = flow.find((n) => n.type === 'imprint-classify');
      if (classify) assert.equal(classify.perFrame, false);
      for (const debug of flow.filter((n) => n.type === 'debug' && n.active)) {
        assert.ok(['visits', 'enrolment report', 'report'].includes(String(debug.name)), String(debug.name));
      }
    });
  }

  it('an example deployed unedited says "edit me" instead of retrying its documentation address', async () => {
    const flow = flows['recognise-rtsp-camera'];
    const camera = flow.find((n) => n.type === 'camera-in')!;
    assert.match(String(camera.url), /^rtsp:\/\/192\.0\.2\./);
    await helper.load(
      [nodeModule('camera-in')],
      [
        { id: 't', type: 'tab' },
        { ...camera, z: 't', wires: [[], []] },
      ],
    );
    const warnings = (helper as any)
      .log()
      .args.map((a: any[]) => a[0])
      .filter((e: any) => e.level === 30 && e.id === camera.id);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0].msg, /an example address\): open this node and set your camera's URL/);
    assert.equal(helper.getNode(camera.id).source, undefined, 'no ffmpeg started');
  });

  const local = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-examples-'));
  const cases: [string, FlowNode[]][] = [
    ...Object.entries(flows),
    ['demo', demoFlow(path.join(local, 'missing.mp4'), path.join(local, 'demo-gallery'))],
  ];
  for (const [name, flow] of cases) {
    it(`${name}: starts with a comment node and deploys`, async () => {
      const tab = flow.find((n) => n.type === 'tab')!;
      const onTab = flow.filter((n) => n.z === tab.id);
      assert.equal(onTab[0].type, 'comment');
      // Never reach for the example camera addresses from a test: point cameras at a local (missing) file.
      const runnable = flow
        .map((n) => (n.type === 'camera-in' ? { ...n, url: path.join(local, 'missing.mp4') } : n))
        .map((n) => (n.type === 'face-gallery' ? { ...n, path: path.join(local, String(n.id)) } : n))
        .map((n) => (n.type === 'debug' || n.type === 'inject' || n.type === 'comment' ? { ...n, type: 'helper' } : n));
      await helper.load([nodeModule('camera-in'), ...NODES], runnable);
      for (const node of runnable.filter((n) => n.type !== 'tab'))
        assert.ok(helper.getNode(node.id), `${node.type} ${node.id} created`);
    });
  }
});
