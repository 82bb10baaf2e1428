/**
 * The recognition nodes in a real Node-RED 4.1 (node-red-node-test-helper):
 * enrol people by message, then frames through align -> edgetpu-embed ->
 * imprint-classify give one `recognized` per visit with the right name, and
 * `unknown` for a stranger.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import * as v8 from 'v8';
import { decodeImage } from '../../nodes/core/media/decode';
import { DEFAULT_THRESHOLD } from '../../nodes/core/identify/imprint';
import type { FrameRef, VisitPayload } from '../../nodes/core/flow/messages';
import { pixels } from '../../nodes/core/media/pixel-store';
import { FacePipeline, mainFace } from '../../nodes/core/pipeline';
import { shippedModels } from '../../native';
import helper, { NODES, onTab } from '../helpers/node-red';
import { FACES_DIR } from '../models';

const photos = (person: string): string[] => {
  const dir = path.join(FACES_DIR, person);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => path.join(dir, f));
};

function flow(galleryDir: string) {
  const nodes: Record<string, unknown>[] = [
    { id: 'dev', type: 'edgetpu-device', device: 'auto', performance: 'high', model: '', threads: '' },
    { id: 'gal', type: 'face-gallery', path: galleryDir, threshold: '', margin: '', device: 'dev' },
    { id: 'enrol', type: 'enrol', gallery: 'gal', minPhotos: '3', walkupSeconds: '2', wires: [['enrolled']] },
    {
      id: 'align',
      type: 'align',
      detector: 'short',
      minFaceSize: '',
      minScore: '',
      maxFaces: '',
      tiles: false,
      wires: [['embed', 'tap1', 'tap2']],
    },
    { id: 'embed', type: 'edgetpu-embed', device: 'dev', wires: [['classify']] },
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
    { id: 'enrolled', type: 'helper' },
    { id: 'visits', type: 'helper' },
    { id: 'frames', type: 'helper' },
    { id: 'tap1', type: 'helper' },
    { id: 'tap2', type: 'helper' },
  ];
  return onTab(nodes);
}

function next(node: { on(e: 'input', f: (msg: any) => void): void }): Promise<any> {
  return new Promise((resolve) => node.on('input', resolve));
}

function collect(node: { on(e: 'input', f: (msg: any) => void): void }): any[] {
  const messages: any[] = [];
  node.on('input', (msg) => messages.push(msg));
  return messages;
}

/** Sends a photo as a camera frame of `camera`, `count` times, `gapMs` apart, as camera-in would. */
async function sendFrames(
  file: string,
  camera: string,
  count: number,
  gapMs: number,
  target: { receive(m: unknown): void },
) {
  const image = await decodeImage(file);
  for (let i = 0; i < count; i++) {
    const ref = pixels.put(image, 'frame');
    const frame: FrameRef = { ...ref, kind: 'frame', camera, seq: i, timestamp: Date.now() };
    target.receive({ frame, payload: frame, topic: camera });
    await new Promise((r) => setTimeout(r, gapMs));
  }
}

describe('nodes: enrol and recognise in Node-RED', function () {
  this.timeout(120000);
  const galleryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-nodes-'));
  const people = ['Jackie_Chan', 'Meryl_Streep', 'Roger_Federer'];

  before(() => new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve()))));
  after(() => new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve()))));
  afterEach(() => helper.unload());

  it('enrols by message, then recognises each person once per visit and a stranger as unknown', async () => {
    await helper.load(NODES, flow(galleryDir));
    const enrol = helper.getNode('enrol');
    const enrolled = helper.getNode('enrolled');
    for (const person of people) {
      const reply = next(enrolled);
      enrol.receive({
        payload: { action: 'enrol', name: person.replace('_', ' '), images: photos(person).slice(0, 5) },
      });
      const { payload } = await reply;
      assert.equal(payload.ok, true, JSON.stringify(payload));
      assert.ok(payload.accepted >= 4);
    }
    const listed = next(enrolled);
    enrol.receive({ payload: { action: 'list' } });
    assert.deepEqual((await listed).payload.people.map((p: any) => p.name).sort(), [
      'Jackie Chan',
      'Meryl Streep',
      'Roger Federer',
    ]);

    const visits = collect(helper.getNode('visits'));
    const frames = collect(helper.getNode('frames'));
    const align = helper.getNode('align');
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    // Each person walks up to the front door: 10 frames of a held-out photo.
    // (Latest frame wins: while the first inference warms up, some are dropped.)
    for (const person of people) {
      await sendFrames(photos(person)[7], 'front_door', 10, 150, align);
      await new Promise((r) => setTimeout(r, 1500)); // gone: the track ends
    }
    const stranger = path.join(FACES_DIR, '_unknown', fs.readdirSync(path.join(FACES_DIR, '_unknown')).sort()[3]);
    await sendFrames(stranger, 'front_door', 10, 150, align);
    await new Promise((r) => setTimeout(r, 1500));
    loop.disable();

    const recognized = visits.filter((m) => m.payload.event === 'recognized').map((m) => m.payload as VisitPayload);
    assert.deepEqual(
      recognized.map((v) => v.name),
      ['Jackie Chan', 'Meryl Streep', 'Roger Federer'],
    );
    for (const v of recognized) {
      assert.equal(v.camera, 'front_door');
      assert.ok(v.cosine! >= DEFAULT_THRESHOLD);
      assert.match(v.trackId, /^front_door-\d+$/);
    }
    const recognizedMsg = visits.find((m) => m.payload.event === 'recognized');
    assert.equal(recognizedMsg.topic, 'front_door/recognized');
    assert.ok(
      Buffer.isBuffer(recognizedMsg.image) && recognizedMsg.image[0] === 0xff && recognizedMsg.image[1] === 0xd8,
      'JPEG face crop',
    );
    const unknown = visits.filter((m) => m.payload.event === 'unknown');
    assert.equal(unknown.length, 1);
    assert.equal(unknown[0].payload.name, 'unknown');
    // Per-frame results carry identities.
    assert.ok(frames.length >= 20);
    assert.ok(frames.some((m) => m.faces[0]?.identity?.name === 'Meryl Streep'));
    // Inference never held the event loop (p99; the max is asserted where nothing else runs, in camera.test.ts).
    assert.ok(loop.percentile(99) / 1e6 < 30, `event loop p99 ${loop.percentile(99) / 1e6} ms`);
  });

  it('passes frames and crops by reference: a message clones in microseconds whatever the frame size', async () => {
    await helper.load(NODES, flow(galleryDir));
    const tap1 = helper.getNode('tap1');
    const tap2 = helper.getNode('tap2');
    const got = Promise.all([next(tap1), next(tap2)]);
    await sendFrames(photos('Tony_Blair')[0], 'desk', 1, 0, helper.getNode('align'));
    const [a, b] = await got;
    assert.notEqual(a, b, 'Node-RED cloned the message for the second wire');
    assert.equal(a.faces[0].crop.id, b.faces[0].crop.id, 'both refer to the same pixels');
    const serialized = v8.serialize(a).length;
    assert.ok(serialized < 4096, `message is ${serialized} bytes`);
    assert.equal(pixels.get(a.faces[0].crop).data.length, 112 * 112 * 3);
  });

  it('a classifier picks up forget and enrol without a redeploy; bad commands get a clear error', async () => {
    await helper.load(NODES, flow(galleryDir));
    const enrol = helper.getNode('enrol');
    const enrolled = helper.getNode('enrolled');
    const frames = collect(helper.getNode('frames'));
    const align = helper.getNode('align');
    await sendFrames(photos('Meryl_Streep')[9], 'desk', 2, 150, align);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(frames.at(-1).faces[0].identity.name, 'Meryl Streep');

    const forgotten = next(enrolled);
    enrol.receive({ payload: { action: 'forget', name: 'Meryl Streep' } });
    assert.equal((await forgotten).payload.ok, true);
    await new Promise((r) => setTimeout(r, 500));
    await sendFrames(photos('Meryl_Streep')[9], 'desk', 2, 150, align);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(frames.at(-1).faces[0].identity.name, 'unknown');

    const bad = next(enrolled);
    enrol.receive({ payload: { action: 'enrol', name: 'X', images: [path.join(galleryDir, 'missing.jpg')] } });
    const reply = (await bad).payload;
    assert.equal(reply.ok, false);
    assert.equal(reply.error.code, 'ERR_TOO_FEW_PHOTOS');
    assert.equal(reply.photos[0].reasons[0].code, 'ERR_IMAGE_NOT_FOUND');
    const unknownAction = next(enrolled);
    enrol.receive({ payload: { action: 'frobnicate' } });
    assert.equal((await unknownAction).payload.error.code, 'ERR_BAD_COMMAND');
  });

  it('walk-up enrolment takes the next seconds of a camera and reports frames', async () => {
    await helper.load(NODES, flow(galleryDir));
    const enrol = helper.getNode('enrol');
    const enrolled = helper.getNode('enrolled');
    const reply = next(enrolled);
    enrol.receive({ payload: { action: 'walkup', name: 'Tiger', camera: 'hall', seconds: 5 } });
    const align = helper.getNode('align');
    // Tiger walks past the hall camera: his photos, a few frames each.
    for (const file of photos('Tiger_Woods').slice(0, 5)) await sendFrames(file, 'hall', 3, 250, align);
    const { payload } = await reply;
    assert.equal(payload.ok, true, JSON.stringify(payload));
    assert.ok(payload.frames >= 8);
    assert.ok(payload.accepted >= 3);
    const listed = next(enrolled);
    enrol.receive({ payload: { action: 'list' } });
    assert.ok((await listed).payload.people.some((p: any) => p.name === 'Tiger'));
  });

  it('walk-up refuses a group of comparable faces, with the reason, and saves nothing', async () => {
    await helper.load(NODES, flow(galleryDir));
    const enrol = helper.getNode('enrol');
    const enrolled = helper.getNode('enrolled');
    const reply = next(enrolled);
    enrol.receive({ payload: { action: 'walkup', name: 'Crowd', camera: 'hall', seconds: 3 } });
    // The near-range detector of this flow finds two faces of similar size in this one (the others' are too small for it).
    const group = path.join(FACES_DIR, '_group', 'five-faces.jpg');
    await sendFrames(group, 'hall', 12, 150, helper.getNode('align'));
    const { payload } = await reply;
    assert.equal(payload.ok, false, JSON.stringify(payload));
    assert.equal(payload.error.code, 'ERR_WALKUP_CROWDED');
    assert.match(payload.error.message, /faces of similar size/);
    assert.ok(payload.crowdedFrames > 0 && payload.frames >= payload.crowdedFrames);
    const listed = next(enrolled);
    enrol.receive({ payload: { action: 'list' } });
    assert.ok(!(await listed).payload.people.some((p: any) => p.name === 'Crowd'));
  });

  it("careful pass: a photo and a face's first frames align on the mesh and embed with the mirror image, later frames fast", async () => {
    const nodes = (carefulFrames: string) =>
      onTab([
        { id: 'dev', type: 'edgetpu-device', device: 'cpu', performance: 'high', model: '', threads: '' },
        { id: 'align', type: 'align', detector: 'short', carefulFrames, wires: [['embed']] },
        { id: 'embed', type: 'edgetpu-embed', device: 'dev', reuseMs: '0', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]);
    const file = photos('Tony_Blair')[2];
    const image = await decodeImage(file);
    const pipeline = await FacePipeline.open({ embedder: { device: 'cpu' } });
    try {
      const face = mainFace(await pipeline.detect(image), image)!;
      const careful = await pipeline.embedCarefully(image, face);
      const [fast] = await pipeline.embed([pipeline.align(image, face).crop]);
      const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i], 0);

      await helper.load(NODES, nodes(''));
      const align = helper.getNode('align');
      const out = helper.getNode('out');
      const photo = next(out);
      align.receive({ payload: file });
      const [photoFace] = (await photo).faces;
      assert.equal(photoFace.careful, true);
      assert.equal(photoFace.alignedOn, 'mesh');
      assert.ok(cosine(photoFace.embedding, careful) > 0.9999, 'the photo is embedded as embedCarefully does it');

      // One frame at a time, each after the last one's result, stamped 100 ms apart (careful passes are
      // 200 ms apart at least): careful, fast, careful, ... 3 careful (the default), then fast.
      const seen: { careful: boolean; alignedOn: string; embedding: number[] }[] = [];
      const start = Date.now();
      for (let i = 0; i < 12; i++) {
        const result = next(out);
        const frame: FrameRef = {
          ...pixels.put(image, 'frame'),
          kind: 'frame',
          camera: 'door',
          seq: i,
          timestamp: start + i * 100,
        };
        align.receive({ frame });
        seen.push((await result).faces[0]);
      }
      const expected = [true, false, true, false, true, false, false, false, false, false, false, false];
      assert.deepEqual(
        seen.map((f) => f.careful),
        expected,
      );
      assert.deepEqual(
        seen.map((f) => f.alignedOn),
        expected.map((c) => (c ? 'mesh' : 'keypoints')),
      );
      assert.ok(cosine(seen[0].embedding, careful) > 0.9999);
      assert.ok(cosine(seen[11].embedding, fast) > 0.9999, 'a later frame: BlazeFace keypoints, one inference');
      assert.ok(cosine(careful, fast) < 0.999, 'the two passes differ, so the test can tell them apart');
      // A new scene (a cut, a reconnect) makes the face new again.
      const cut = next(out);
      align.receive({
        frame: {
          ...pixels.put(image, 'frame'),
          kind: 'frame',
          camera: 'door',
          seq: 12,
          timestamp: start + 1250,
          scene: 2,
        },
      });
      assert.equal((await cut).faces[0].careful, true);

      await helper.unload();
      await helper.load(NODES, nodes('0'));
      const off = next(helper.getNode('out'));
      helper.getNode('align').receive({ payload: file });
      const [plain] = (await off).faces;
      assert.equal(plain.careful, false);
      assert.equal(plain.alignedOn, 'keypoints');
      assert.ok(cosine(plain.embedding, fast) > 0.9999, 'Careful frames 0: photos take the fast pass too');
    } finally {
      await pipeline.dispose();
    }
  });

  it('an align node whose face mesh model failed to open does not close the one another align node opened since', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'a', type: 'align', detector: 'short', wires: [['outA']] },
        { id: 'b', type: 'align', detector: 'short', wires: [['outB']] },
        { id: 'outA', type: 'helper' },
        { id: 'outB', type: 'helper' },
      ]),
    );
    const photo = photos('Tony_Blair')[2];
    const model = shippedModels.faceLandmark;
    const away = `${model}.away`;
    fs.renameSync(model, away);
    try {
      const a = next(helper.getNode('outA'));
      helper.getNode('a').receive({ payload: photo });
      assert.equal((await a).faces[0].alignedOn, 'keypoints', 'no mesh model: BlazeFace keypoints');
    } finally {
      fs.renameSync(away, model);
    }
    const b = next(helper.getNode('outB'));
    helper.getNode('b').receive({ payload: photo });
    assert.equal((await b).faces[0].alignedOn, 'mesh');
    await (helper.getNode('a') as unknown as { close(removed: boolean): Promise<void> }).close(true);
    const again = next(helper.getNode('outB'));
    helper.getNode('b').receive({ payload: photo });
    assert.equal((await again).faces[0].alignedOn, 'mesh', "b's face mesh model is still open");
  });
});
