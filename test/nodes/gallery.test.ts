/**
 * The face-gallery config node in a real Node-RED, as an unlucky user meets
 * it: a gallery whose index went missing keeps every photo; a gallery that
 * fails to open recovers by itself once fixed (no redeploy); an enrolment
 * made by another process (the CLI) reaches the running flow.
 */
import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Gallery } from '../../nodes/core/gallery/gallery';
import type { RgbImage } from '../../nodes/core/media/image';
import helper, { NODES, onTab } from '../helpers/node-red';

function crop(seed: number): RgbImage {
  const data = new Uint8Array(112 * 112 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 97) & 0xff;
  return { width: 112, height: 112, data };
}

function flow(galleryDir: string) {
  return onTab([
    { id: 'dev', type: 'edgetpu-device', device: 'cpu', performance: 'high', model: '', threads: '' },
    { id: 'gal', type: 'face-gallery', path: galleryDir, threshold: '', margin: '', device: 'dev' },
    { id: 'enrol', type: 'enrol', gallery: 'gal', minPhotos: '3', walkupSeconds: '2', wires: [['out']] },
    { id: 'out', type: 'helper' },
  ]);
}

async function list(): Promise<{ ok: boolean; people?: { name: string; photos: number }[]; error?: { code: string } }> {
  const reply = new Promise<any>((resolve) => helper.getNode('out').on('input', resolve));
  helper.getNode('enrol').receive({ payload: { action: 'list' } });
  return (await reply).payload;
}

async function until<T>(probe: () => Promise<T>, ok: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('nodes: face-gallery when things go wrong', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve()))));
  after(() => new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve()))));
  beforeEach(async () => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'coral-gallery-node-')), 'gallery');
    const gallery = await Gallery.open(dir, { create: true });
    for (const [n, name] of ['Alice', 'Bob', 'Carol'].entries()) {
      await gallery.addCrops(
        name,
        Array.from({ length: 5 }, (_, i) => ({ image: crop(n * 10 + i) })),
      );
    }
  });
  afterEach(() => helper.unload());

  it('a gallery whose gallery.json went missing starts with every person and photo (rebuilt, never emptied)', async () => {
    fs.rmSync(path.join(dir, 'gallery.json'));
    await helper.load(NODES, flow(dir));
    const { people } = await list();
    assert.deepEqual(
      people!.map((p) => [p.name, p.photos]),
      [
        ['Alice', 5],
        ['Bob', 5],
        ['Carol', 5],
      ],
    );
    const files = fs
      .readdirSync(path.join(dir, 'people'))
      .flatMap((id) => fs.readdirSync(path.join(dir, 'people', id)).filter((f) => f.endsWith('.png')));
    assert.equal(files.length, 15);
  });

  it('a gallery that fails to open comes back by itself once fixed, without a redeploy', async () => {
    const index = fs.readFileSync(path.join(dir, 'gallery.json'));
    fs.writeFileSync(path.join(dir, 'gallery.json'), '{"damaged');
    await helper.load(NODES, flow(dir));
    const failed = await list();
    assert.equal(failed.ok, false);
    assert.equal(failed.error!.code, 'ERR_GALLERY_FORMAT');
    fs.writeFileSync(path.join(dir, 'gallery.json'), index);
    const back = await until(list, (reply) => reply.ok, 15_000);
    assert.equal(back.ok, true, JSON.stringify(back));
    assert.equal(back.people!.length, 3);
  });

  it('an enrolment made by another process (the CLI) reaches the running flow within seconds', async () => {
    await helper.load(NODES, flow(dir));
    assert.equal((await list()).people!.length, 3);
    const child = path.join(__dirname, '..', 'core', 'gallery', 'gallery-crash-child.js');
    await new Promise<void>((resolve, reject) => {
      spawn(process.execPath, [child, 'write', dir, 'Visitor', '1'], { stdio: 'ignore' }).on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`writer exited ${code}`)),
      );
    });
    const seen = await until(list, (reply) => reply.people?.some((p) => p.name === 'Visitor 0') ?? false, 10_000);
    assert.ok(
      seen.people!.some((p) => p.name === 'Visitor 0'),
      JSON.stringify(seen),
    );
  });
});
