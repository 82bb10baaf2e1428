/**
 * imprint-classify with a topic per message (a flow that names each photo's
 * camera after its file): trackers stay bounded, idle CPU stays flat, and the
 * bound, when reached, says so. The probe of issue #9: 20,000 topics kept
 * 3 % of a core busy at idle and grew RSS by 120 MB.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import helper, { NODES, onTab } from '../helpers/node-red';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The test helper's spies record every call of every node method, messages included: not Node-RED's memory. */
const harness = (helper as unknown as { _sandbox: { resetHistory(): void } })._sandbox;

function heapAfterGc(): number {
  harness.resetHistory();
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** CPU time this process spends over `ms` of wall time, as a share of one core. */
async function cpuShare(ms: number): Promise<number> {
  const start = process.cpuUsage();
  const t0 = performance.now();
  await sleep(ms);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / (performance.now() - t0);
}

function unitVector(seed: number): number[] {
  const v = Array.from({ length: 192 }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

describe('nodes: imprint-classify with a topic per message', function () {
  this.timeout(180000);
  const galleryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-topics-'));

  before(() => new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve()))));
  after(async () => {
    await new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve())));
    fs.rmSync(galleryDir, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  it('20,000 distinct topics: memory and idle CPU stay bounded; the bound warns once, every face is still named', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'dev', type: 'edgetpu-device', device: 'auto', performance: 'high', model: '', threads: '' },
        { id: 'gal', type: 'face-gallery', path: galleryDir, threshold: '', margin: '', device: 'dev' },
        {
          id: 'classify',
          type: 'imprint-classify',
          gallery: 'gal',
          confirmFrames: '3',
          unknownFrames: '4',
          cooldown: '60',
          maxMissed: '1',
          perFrame: true,
          wires: [['visits'], ['frames']],
        },
        { id: 'visits', type: 'helper' },
        { id: 'frames', type: 'helper' },
      ]),
    );
    const classify = helper.getNode('classify');
    const warnings: string[] = [];
    (classify as any).on('call:warn', (call: { args: unknown[] }) => warnings.push(String(call.args[0])));
    let named = 0;
    helper.getNode('frames').on('input', (msg: any) => {
      if (msg.faces[0]?.identity) named++;
    });
    // The recognizer opens with the gallery: wait for the first answer.
    classify.receive({
      topic: 'warm-up',
      faces: [{ box: { x: 0, y: 0, width: 50, height: 50 }, embedding: unitVector(0) }],
    });
    const deadline = Date.now() + 60000;
    while (named < 1 && Date.now() < deadline) await sleep(50);
    assert.equal(named, 1, 'the classifier answers');

    await sleep(2000);
    const idleBefore = await cpuShare(4000);
    const heapBefore = heapAfterGc();
    const rssBefore = process.memoryUsage().rss;

    const topics = 20_000;
    for (let i = 0; i < topics; i += 500) {
      for (let j = i; j < i + 500; j++) {
        classify.receive({
          topic: `photos/IMG_${j}.jpg`,
          faces: [{ box: { x: 10, y: 10, width: 100, height: 100 }, embedding: unitVector(j + 1) }],
        });
      }
      await new Promise((r) => setImmediate(r));
      harness.resetHistory();
    }
    while (named < topics + 1 && Date.now() < deadline + 60000) await sleep(50);
    assert.equal(named, topics + 1, 'every face was named (tracked or not)');

    await sleep(3000); // every track ends (maxMissed 1 s)
    const heapAfter = heapAfterGc();
    const rssAfter = process.memoryUsage().rss;
    const idleAfter = await cpuShare(4000);
    const figures =
      `heap ${(heapBefore / 2 ** 20).toFixed(1)} → ${(heapAfter / 2 ** 20).toFixed(1)} MB, rss ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MB, ` +
      `idle CPU ${(idleBefore * 100).toFixed(2)} % → ${(idleAfter * 100).toFixed(2)} % of a core`;
    console.log(`      ${figures}`);
    assert.ok(heapAfter - heapBefore < 4 * 2 ** 20, figures);
    assert.ok(idleAfter - idleBefore < 0.01, figures);
    // 20,000 photos in a few seconds keep more than 1000 tracks alive at once: the bound is reached, and said.
    assert.ok(warnings.length >= 1 && warnings.length <= 3, `${warnings.length} warnings`);
    assert.match(warnings[0], /1000 cameras are tracked at once.*photos\/IMG_\d+\.jpg.*named but not tracked/);
  });
});
