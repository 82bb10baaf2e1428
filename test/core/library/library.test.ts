/**
 * The face library of one gallery with real parts: a real Gallery on disk, the real pipeline, real
 * dev photos as camera visits. Naming a stranger group, "not X", forget, uploads with a bad file,
 * export/import and the health figures, each checked on what ends up in the gallery and on disk.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Gallery } from '../../../nodes/core/gallery/gallery';
import { Recognizer } from '../../../nodes/core/identify/recognizer';
import { FaceLibrary, LibraryError } from '../../../nodes/core/library/library';
import { GalleryExtras } from '../../../nodes/core/library/gallery-extras';
import { galleryHealth } from '../../../nodes/core/library/health';
import { disposeSharedPipeline, Face, facesOf, identities, photosOf, sharedPipeline } from './faces';

describe('library: the face library of a gallery', function () {
  this.timeout(300000);
  let dir: string;
  let gallery: Gallery;
  let library: FaceLibrary;
  let recognizer: Recognizer;
  let carol: Face[];
  let dave: Face[];
  const applied: unknown[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-library-'));
    const pipeline = await sharedPipeline();
    gallery = await Gallery.open(dir, { create: true });
    const extras = new GalleryExtras(gallery);
    recognizer = await Recognizer.open(gallery, pipeline.embedder, {});
    library = await FaceLibrary.open(dir, extras, {
      gallery: async () => gallery,
      embedder: async () => pipeline.embedder,
      pipeline: async () => pipeline,
      recognition: async () => ({ threshold: recognizer.threshold, margin: recognizer.margin }),
      applyRecognition: async (options) => {
        applied.push(options);
      },
    });
    [carol, dave] = await Promise.all([facesOf(identities()[20], 6), facesOf(identities()[21], 6)]);
  });
  after(async () => {
    recognizer.close();
    library.close();
    await disposeSharedPipeline();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function see(face: Face, time: number) {
    const id = recognizer.identify(face.embedding);
    return library.record({
      time,
      camera: 'door',
      kind: id.ignored ? 'ignored' : id.known ? 'recognized' : 'unknown',
      name: id.name,
      personId: id.personId,
      reason: id.unknownReason,
      closest: id.closest,
      cosine: id.cosine,
      margin: null,
      trackId: `door-${time}`,
      quality: { sharpness: face.sharpness, yawDeg: face.yawDeg },
      embedding: face.embedding,
      crop: face.crop,
    });
  }

  it('groups two strangers apart, names one as a new person, and the next visit is recognised', async () => {
    let t = Date.now() - 60_000;
    for (let i = 0; i < 5; i++) {
      await see(carol[i], t++);
      await see(dave[i], t++);
    }
    const clusters = library.listClusters();
    assert.equal(clusters.length, 2, JSON.stringify(clusters.map((c) => c.visits)));
    const carolCluster = clusters.find((c) => c.crops.includes(library.store.all()[0].id))!;
    assert.equal(carolCluster.visits, 5);

    const named = await library.nameCluster(carolCluster.id, 'Carol', 'new');
    assert.equal(named.person?.name, 'Carol');
    assert.equal(named.accepted + named.rejected, 5);
    assert.ok(named.accepted >= 3, JSON.stringify(named.crops));
    assert.equal(gallery.getPerson('Carol')!.crops.length, named.accepted);
    assert.equal(library.listClusters().length, 1, 'the named group is no longer offered');
    await new Promise((resolve) => setTimeout(resolve, 200)); // the recognizer reloads on the gallery change
    await recognizer.reload();
    const next = await see(carol[5], t);
    assert.equal(next.kind, 'recognized');
    assert.equal(next.name, 'Carol');
  });

  it('refuses to join an existing person unless asked, and an unknown group id', async () => {
    const [daveCluster] = library.listClusters();
    await assert.rejects(
      library.nameCluster(daveCluster.id, 'carol', 'new'),
      (e: LibraryError) => e.code === 'ERR_CONFLICT' && /already in the gallery/.test(e.message),
    );
    await assert.rejects(
      library.nameCluster(daveCluster.id, 'Nobody', 'existing'),
      (e: LibraryError) => e.code === 'ERR_NOT_FOUND',
    );
    await assert.rejects(library.nameCluster('nope', 'X', 'new'), (e: LibraryError) => e.code === 'ERR_NOT_FOUND');
  });

  it('"not Carol" on a recognised visit makes it a stranger again and a negative example of Carol', async () => {
    const recognised = library.store.all().find((v) => v.kind === 'recognized')!;
    const result = await library.correct(recognised.id);
    assert.equal(result.person, 'Carol');
    assert.ok(result.cluster, 'offered among the unknown people');
    assert.equal(library.store.get(recognised.id)!.corrected, true);
    assert.equal(
      new GalleryExtras(await Gallery.open(dir)).extrasOf(gallery.getPerson('Carol')!.id).negatives.length,
      1,
    );
    await assert.rejects(library.correct(recognised.id), (e: LibraryError) => e.code === 'ERR_BAD_REQUEST');
  });

  it('uploads photos with a bad file among them: a report per file, the good ones enrolled', async () => {
    const files = photosOf(identities()[22])
      .slice(0, 4)
      .map((f) => ({ name: path.basename(f), bytes: fs.readFileSync(f) }));
    files.splice(2, 0, { name: 'broken.jpg', bytes: Buffer.from('this is not a JPEG') });
    const result = await library.upload('Erin', 'new', files);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.photos.length, 5);
    assert.equal(result.photos[2].file, 'broken.jpg');
    assert.equal(result.photos[2].accepted, false);
    assert.match(result.photos[2].reasons[0].code, /^ERR_IMAGE_/);
    assert.match(result.photos[2].reasons[0].message, /broken\.jpg/);
    assert.equal(gallery.getPerson('Erin')!.crops.length, result.photos.filter((p) => p.accepted).length);
    const none = await library.upload('Fay', 'new', [{ name: 'a.txt', bytes: Buffer.from('x') }]);
    assert.equal(none.ok, false);
    assert.equal(gallery.getPerson('Fay'), undefined, 'nothing saved');
  });

  it('exports and imports people as one file; a bad file changes nothing', async () => {
    const bytes = await library.exportPeople();
    const doc = JSON.parse(bytes.toString());
    assert.deepEqual(doc.people.map((p: { name: string }) => p.name).sort(), ['Carol', 'Erin']);
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-import-'));
    try {
      const target = await Gallery.open(other, { create: true });
      const { importPeople } = await import('../../../nodes/core/library/transfer');
      const results = await importPeople(target, bytes);
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['created', 'created'],
      );
      assert.equal(target.getPerson('Carol')!.crops.length, gallery.getPerson('Carol')!.crops.length);
      const extras = new GalleryExtras(await Gallery.open(other));
      assert.equal(
        extras.extrasOf(target.getPerson('Carol')!.id).negatives.length,
        1,
        'the "not Carol" example comes along',
      );
      assert.deepEqual(
        (await importPeople(target, bytes)).map((r) => r.outcome),
        ['skipped', 'skipped'],
      );
      const broken = JSON.stringify({
        ...doc,
        people: [doc.people[0], { ...doc.people[1], name: 'Gus', crops: [{ png: 'AAAA' }] }],
      });
      await assert.rejects(importPeople(target, Buffer.from(broken)), /Gus: photo 1 is not a readable PNG/);
      assert.equal(target.getPerson('Gus'), undefined);
      await assert.rejects(importPeople(target, Buffer.from('{"format":"x"}')), /not a coral-face export/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('forgets a person with every visit recognised as them', async () => {
    await see(carol[4], Date.now());
    const before = library.store
      .all()
      .filter((v) => (v.personId === 'carol' && !v.corrected) || v.resolvedAs === 'carol').length;
    assert.ok(before >= 6, `${before} visits recognised or named as Carol`);
    const result = await library.forget('Carol');
    assert.equal(result.visits, before);
    assert.equal(
      library.store.all().filter((v) => v.resolvedAs === 'carol').length,
      0,
      'the visits named Carol go too (they are her face)',
    );
    assert.equal(gallery.getPerson('Carol'), undefined);
    assert.equal(fs.existsSync(path.join(dir, 'library', 'negatives', 'carol')), false);
    assert.equal(library.store.all().filter((v) => v.personId === 'carol' && !v.corrected).length, 0);
  });

  it('health: leave-one-out scores per photo and a suggested threshold from the strangers seen', async () => {
    const health = await library.health();
    const erin = health.people.find((p) => p.name === 'Erin')!;
    assert.equal(erin.photos.length, gallery.getPerson('Erin')!.crops.length);
    assert.ok(erin.photos.every((p) => typeof p.cosine === 'number' && p.cosine > 0.3));
    assert.equal(erin.top1Rate, 1);
    assert.equal(health.threshold, recognizer.threshold);
    // Too few strangers here for a suggestion: it says why instead of guessing.
    assert.equal(health.suggestion, null);
    assert.match(health.basis, /needs at least/);
    await library.updateSettings({ recognition: { threshold: 0.55 } });
    assert.deepEqual(applied.at(-1), { threshold: 0.55 });
    await assert.rejects(
      library.updateSettings({ recognition: { threshold: 2 } }),
      /threshold must be a number from 0 to 1/,
    );
    await assert.rejects(library.updateSettings({ visits: { maxVisits: 'lots' } }), /maxVisits must be a whole number/);
  });

  it('health: leave-one-out equals scoring against the other photos, and the suggestion keeps strangers out', () => {
    // Synthetic unit vectors with a known answer: two tight people, strangers spread around.
    const rng = (seed: number) => () => (seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5;
    const r = rng(7);
    const around = (centre: number[], spread: number) => Float32Array.from(centre.map((c) => c + spread * r()));
    const a = Array.from({ length: 16 }, () => r());
    const b = Array.from({ length: 16 }, () => r());
    const people = [
      { id: 'a', name: 'A', files: ['1', '2', '3', '4'], embeddings: [0, 1, 2, 3].map(() => around(a, 0.3)) },
      { id: 'b', name: 'B', files: ['1', '2', '3'], embeddings: [0, 1, 2].map(() => around(b, 0.3)) },
    ];
    const strangers = Array.from({ length: 80 }, () => Float32Array.from({ length: 16 }, () => r()));
    const health = galleryHealth(people, strangers);
    const unit = (v: ArrayLike<number>) => {
      const n = Math.hypot(...Array.from(v));
      return Array.from(v, (x) => x / n);
    };
    const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i], 0);
    const rest = people[0].embeddings
      .slice(1)
      .map(unit)
      .reduce((s, v) => s.map((x, i) => x + v[i]));
    assert.ok(Math.abs(health.people[0].photos[0].cosine! - dot(unit(people[0].embeddings[0]), unit(rest))) < 1e-5);
    assert.ok(health.suggestion, health.basis);
    const fpirAt = health.curve.find((c) => c.threshold === health.suggestion!.threshold)!.fpir;
    assert.ok(fpirAt <= 0.01, `FPIR at the suggestion: ${fpirAt}`);
    assert.ok(
      health.curve.every((c, i) => i === 0 || c.fpir <= health.curve[i - 1].fpir),
      'FPIR falls as the threshold rises',
    );
  });
});
