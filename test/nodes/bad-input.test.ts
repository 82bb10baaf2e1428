/**
 * Bad messages in real Node-RED: every node that reads a message gives a
 * clear, coded error (done(error): the log and Catch nodes see it, the status
 * says so) and loses nothing it could have handled. The probe of issue #9,
 * kept as tests.
 */
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { FrameRef } from '../../nodes/core/flow/messages';
import helper, { NODES, onTab, type TestNode } from '../helpers/node-red';
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
  return onTab([
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
      wires: [['aligned']],
    },
    { id: 'embed', type: 'edgetpu-embed', device: 'dev', wires: [['embedded']] },
    {
      id: 'classify',
      type: 'imprint-classify',
      gallery: 'gal',
      confirmFrames: '3',
      unknownFrames: '4',
      cooldown: '60',
      maxMissed: '1',
      perFrame: true,
      wires: [['visits'], ['classified']],
    },
    { id: 'enrolled', type: 'helper' },
    { id: 'aligned', type: 'helper' },
    { id: 'embedded', type: 'helper' },
    { id: 'visits', type: 'helper' },
    { id: 'classified', type: 'helper' },
  ]);
}

/** What a node reports: its outputs, its done(error)s (with their msg) and its statuses. */
class Watch {
  readonly outputs: any[] = [];
  readonly errors: { error: any; msg: any }[] = [];
  readonly statuses: string[] = [];
  constructor(node: TestNode, output: TestNode) {
    output.on('input', (msg) => this.outputs.push(msg));
    // The test helper spies on every node method and emits 'call:<method>' for each call.
    (node as any).on('call:error', (call: { args: any[] }) =>
      this.errors.push({ error: call.args[0], msg: call.args[1] }),
    );
    (node as any).on('call:status', (call: { args: any[] }) => this.statuses.push(String(call.args[0]?.text ?? '')));
  }

  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; outputs ${this.outputs.length}, errors: ${this.errors.map((e) => errorCode(e.error)).join(', ')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Node-RED hands done(error) to node.error as the error itself or as its message. */
function errorCode(error: any): string | undefined {
  return typeof error === 'object' && error ? error.code : undefined;
}

describe('nodes: bad messages get a clear error', function () {
  this.timeout(120000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-bad-input-'));

  before(() => new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve()))));
  after(async () => {
    await new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve())));
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  it('align: a wrong payload, a bad or expired frame reference and a named pipe each fail with their code', async () => {
    await helper.load(NODES, flow(path.join(tmp, 'gallery-align')));
    const align = helper.getNode('align');
    const watch = new Watch(align, helper.getNode('aligned'));
    const fifo = path.join(tmp, 'photo.jpg');
    execFileSync('mkfifo', [fifo]);
    const expired: FrameRef = {
      id: 'px-999999999',
      kind: 'frame',
      width: 640,
      height: 480,
      camera: 'door',
      seq: 1,
      timestamp: Date.now(),
    };
    const cases: [string, Record<string, unknown>, string][] = [
      ['a number', { payload: 42 }, 'ERR_INPUT'],
      ['an object', { payload: { image: 'x' } }, 'ERR_INPUT'],
      ['an empty string', { payload: '' }, 'ERR_INPUT'],
      ['an empty Buffer', { payload: Buffer.alloc(0) }, 'ERR_INPUT'],
      ['a Uint8Array', { payload: new Uint8Array(10) }, 'ERR_INPUT'],
      ['a frame that is not a reference', { frame: { camera: 'door' }, payload: 'x' }, 'ERR_INPUT'],
      ['an expired frame reference', { frame: expired, payload: expired }, 'ERR_PIXELS_EXPIRED'],
      ['a named pipe', { payload: fifo }, 'ERR_IMAGE_NOT_A_FILE'],
      ['not an image', { payload: Buffer.from('hello, not a photo') }, 'ERR_IMAGE_UNSUPPORTED'],
    ];
    for (const [label, msg, code] of cases) {
      const before = watch.errors.length;
      align.receive(msg);
      await watch.until(() => watch.errors.length > before, 5000, `an error for ${label}`);
      const { error } = watch.errors[before];
      assert.equal(errorCode(error), code, `${label}: ${error?.message ?? error}`);
      assert.doesNotMatch(String(error.message), /Cannot read properties|undefined/, label);
      assert.equal(
        watch.statuses.at(-1)?.length ? watch.statuses.at(-1)!.length <= 40 : false,
        true,
        `${label}: a short status`,
      );
    }
    assert.equal(watch.outputs.length, 0, 'no output for a message that could not be read');
    // The node still works.
    align.receive({ payload: photos('Tony_Blair')[0] });
    await watch.until(() => watch.outputs.length === 1, 30000, 'a face from a good photo');
    assert.ok(watch.outputs[0].faces.length >= 1);
  });

  it('align: 300 photos sent at once are each aligned or refused with ERR_QUEUE_FULL, none dropped unseen', async () => {
    await helper.load(NODES, flow(path.join(tmp, 'gallery-queue')));
    const align = helper.getNode('align');
    const watch = new Watch(align, helper.getNode('aligned'));
    const photo = fs.readFileSync(photos('Tony_Blair')[1]);
    for (let i = 0; i < 300; i++) align.receive({ payload: photo, topic: `photo-${i}` });
    await watch.until(() => watch.outputs.length + watch.errors.length === 300, 90000, 'every photo accounted for');
    const refused = watch.errors.filter((e) => errorCode(e.error) === 'ERR_QUEUE_FULL');
    assert.equal(refused.length, watch.errors.length, 'only queue-full errors');
    assert.ok(refused.length >= 150, `${refused.length} refused`);
    assert.ok(watch.outputs.length >= 100, `${watch.outputs.length} aligned`);
    // Each refused photo's error carries its own message, so a flow can retry exactly those.
    const topics = new Set([...watch.outputs.map((m) => m.topic), ...refused.map((e) => e.msg?.topic)]);
    assert.equal(topics.size, 300, 'every photo is either aligned or refused, by its own message');
    assert.match(refused[0].error.message, /queue full \(100 waiting\)/);
    assert.ok(
      watch.statuses.some((s) => /refused: queue full/.test(s)),
      `statuses: ${[...new Set(watch.statuses)].join(' | ')}`,
    );
    await new Promise((r) => setTimeout(r, 1200)); // the next status after the burst keeps the count in view
    align.receive({ payload: photo });
    await watch.until(() => watch.outputs.length + watch.errors.length === 301, 30000, 'one more photo');
    assert.match(watch.statuses.at(-1)!, new RegExp(`${refused.length} refused`));
  });

  it('enrol: a named pipe among the photos is refused at once (ERR_IMAGE_NOT_A_FILE), the real photos enrol', async () => {
    await helper.load(NODES, flow(path.join(tmp, 'gallery-enrol')));
    const enrolled = new Watch(helper.getNode('enrol'), helper.getNode('enrolled'));
    const fifo = path.join(tmp, 'enrol-pipe.jpg');
    execFileSync('mkfifo', [fifo]);
    helper.getNode('enrol').receive({
      payload: { action: 'enrol', name: 'Tony Blair', images: [fifo, ...photos('Tony_Blair').slice(0, 4)] },
    });
    await enrolled.until(() => enrolled.outputs.length === 1, 60000, 'the enrolment reply');
    const reply = enrolled.outputs[0].payload;
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.equal(reply.photos[0].accepted, false);
    assert.equal(reply.photos[0].reasons[0].code, 'ERR_IMAGE_NOT_A_FILE');
    assert.ok(reply.accepted >= 3);
  });

  it('embed: faces that are not faces, without a crop or with an expired crop get a coded error each; the good face is embedded', async () => {
    await helper.load(NODES, flow(path.join(tmp, 'gallery-embed')));
    const aligned = new Watch(helper.getNode('align'), helper.getNode('aligned'));
    helper.getNode('align').receive({ payload: photos('Tony_Blair')[2] });
    await aligned.until(() => aligned.outputs.length === 1, 30000, 'an aligned face');
    const good = aligned.outputs[0].faces[0];

    const embed = helper.getNode('embed');
    const watch = new Watch(embed, helper.getNode('embedded'));
    const expiredCrop = { ...good, crop: { ...good.crop, id: 'px-999999998' } };
    const frameAsCrop = { ...good, crop: { id: 'px-1', kind: 'frame', width: 640, height: 480 } };
    const faces = [{}, null, 42, 'face', { ...good, crop: undefined }, expiredCrop, frameAsCrop, good];
    embed.receive({ faces, payload: 'photo' });
    await watch.until(() => watch.outputs.length === 1 && watch.errors.length === 1, 30000, 'the output and one error');

    const out = watch.outputs[0];
    assert.equal(out.faces[7].embedding.length, 192, 'the good face is embedded');
    assert.ok(Math.abs(Math.hypot(...out.faces[7].embedding) - 1) < 1e-3);
    const { error } = watch.errors[0];
    assert.equal(error.code, 'ERR_BAD_FACES');
    assert.deepEqual(
      error.faces.map((p: any) => [p.index, p.code]),
      [
        [0, 'ERR_FACE_INVALID'],
        [1, 'ERR_FACE_INVALID'],
        [2, 'ERR_FACE_INVALID'],
        [3, 'ERR_FACE_INVALID'],
        [4, 'ERR_FACE_NO_CROP'],
        [5, 'ERR_PIXELS_EXPIRED'],
        [6, 'ERR_FACE_NO_CROP'],
      ],
    );
    assert.match(error.message, /^7 of 8 faces skipped: faces\[0\] has no box/);
    // Faces that are objects carry their own reason; none got an embedding.
    assert.equal(out.faces[5].error.code, 'ERR_PIXELS_EXPIRED');
    assert.equal(out.faces[4].error.code, 'ERR_FACE_NO_CROP');
    for (const i of [0, 4, 5, 6]) assert.equal(out.faces[i].embedding, undefined);
    assert.match(watch.statuses.at(-1)!, /7 of 8 faces skipped/);

    embed.receive({ payload: 'no faces' });
    await watch.until(() => watch.errors.length === 2, 5000, 'an error for a message without faces');
    assert.equal(watch.errors[1].error.code, 'ERR_INPUT');
  });

  it('classify: a NaN or wrong-length embedding never names a person; faces that are not objects are skipped with a coded error', async () => {
    await helper.load(NODES, flow(path.join(tmp, 'gallery-classify')));
    const classify = helper.getNode('classify');
    const watch = new Watch(classify, helper.getNode('classified'));
    const enrolled = new Watch(helper.getNode('enrol'), helper.getNode('enrolled'));
    helper
      .getNode('enrol')
      .receive({ payload: { action: 'enrol', name: 'Tony Blair', images: photos('Tony_Blair').slice(0, 4) } });
    await enrolled.until(() => enrolled.outputs.length === 1, 60000, 'the enrolment');
    assert.equal(enrolled.outputs[0].payload.ok, true, JSON.stringify(enrolled.outputs[0].payload));
    await watch.until(() => watch.statuses.includes('1 person known'), 30000, 'the classifier to pick the person up');

    // A real face of Tony Blair, embedded by the real pipeline.
    const align = new Watch(helper.getNode('align'), helper.getNode('aligned'));
    helper.getNode('align').receive({ payload: photos('Tony_Blair')[6] });
    await align.until(() => align.outputs.length === 1, 30000, 'an aligned face');
    const embedded = new Watch(helper.getNode('embed'), helper.getNode('embedded'));
    helper.getNode('embed').receive(align.outputs[0]);
    await embedded.until(() => embedded.outputs.length === 1, 30000, 'an embedded face');
    const good = embedded.outputs[0].faces[0];

    const box = good.box;
    const faces = [
      { box, embedding: new Array(192).fill(NaN), crop: good.crop },
      { box, embedding: good.embedding.slice(0, 128), crop: good.crop },
      { box, embedding: 'not numbers', crop: good.crop },
      { box, embedding: [...good.embedding.slice(0, 191), null], crop: good.crop },
      null,
      7,
      { embedding: good.embedding },
      good,
    ];
    classify.receive({ faces, topic: 'desk' });
    await watch.until(() => watch.outputs.length === 1 && watch.errors.length === 1, 30000, 'the output and one error');
    const out = watch.outputs[0];
    assert.equal(
      out.faces[7].identity.name,
      'Tony Blair',
      `the good face is still named: ${JSON.stringify(out.faces[7].identity)}`,
    );
    for (const i of [0, 1, 2, 3]) {
      assert.equal(out.faces[i].identity, undefined, `faces[${i}] named ${JSON.stringify(out.faces[i].identity)}`);
    }
    const { error } = watch.errors[0];
    assert.equal(error.code, 'ERR_BAD_FACES');
    assert.deepEqual(
      error.faces.map((p: any) => [p.index, p.code]),
      [
        [0, 'ERR_EMBEDDING_INVALID'],
        [1, 'ERR_EMBEDDING_LENGTH'],
        [2, 'ERR_EMBEDDING_INVALID'],
        [3, 'ERR_EMBEDDING_INVALID'],
        [4, 'ERR_FACE_INVALID'],
        [5, 'ERR_FACE_INVALID'],
        [6, 'ERR_FACE_INVALID'],
      ],
    );
    assert.equal(out.faces[1].error.code, 'ERR_EMBEDDING_LENGTH');
    assert.match(out.faces[1].error.message, /128 values, the gallery's model gives 192/);

    // A flow of NaN embeddings never confirms a visit for anyone.
    const visits = new Watch(classify, helper.getNode('visits'));
    for (let i = 0; i < 6; i++) {
      classify.receive({ faces: [{ box, embedding: new Array(192).fill(NaN) }], topic: 'hall' });
      await new Promise((r) => setTimeout(r, 30));
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      visits.outputs.filter((m) => m.payload.camera === 'hall' && m.payload.event === 'recognized'),
      [],
    );
  });
});
