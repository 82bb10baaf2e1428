/**
 * "Not <name>" corrections on real dev photos: a stranger wrongly accepted as X (a threshold set low
 * enough that they are) is rejected as X once one of their crops is a negative example of X, while
 * X's own held-out photos still match, and the recognizer follows the correction without a restart.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Gallery } from '../../../nodes/core/gallery/gallery';
import { Recognizer } from '../../../nodes/core/identify/recognizer';
import { GalleryExtras } from '../../../nodes/core/library/gallery-extras';
import { cosine, disposeSharedPipeline, Face, facesOf, identities, mean, sharedPipeline } from './faces';

describe('library: "not <name>" corrections veto a wrong match', function () {
  this.timeout(300000);
  let dir: string;
  let x: Face[];
  let stranger: Face[];
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-veto-'));
    const all = identities();
    x = await facesOf(all[0], 9);
    // The stranger: the identity whose photos score highest against X's enrolment photos.
    const weight = mean(x.slice(0, 5).map((f) => f.embedding));
    let best = { score: -1, faces: [] as Face[] };
    for (const identity of all.slice(1, 7)) {
      const faces = await facesOf(identity, 6);
      if (faces.length < 5) continue;
      const score = faces.reduce((s, f) => s + cosine(f.embedding, weight), 0) / faces.length;
      if (score > best.score) best = { score, faces };
    }
    stranger = best.faces;
  });
  after(async () => {
    await disposeSharedPipeline();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rejects the stranger as X after one correction, keeps X matching, and follows it live', async () => {
    const pipeline = await sharedPipeline();
    const gallery = await Gallery.open(dir, { create: true });
    await gallery.addCrops(
      'X',
      x.slice(0, 5).map((f) => ({ image: f.crop })),
    );
    const extras = new GalleryExtras(gallery);
    // Low enough that the stranger's photos are accepted as X: the mistake to correct.
    const weight = mean(x.slice(0, 5).map((f) => f.embedding));
    const strangerScores = stranger.map((f) => cosine(f.embedding, weight)).sort((a, b) => a - b);
    const threshold = strangerScores[0] - 0.01;
    const recognizer = await Recognizer.open(gallery, pipeline.embedder, { threshold, margin: 0 });
    const reloaded = () => new Promise((resolve) => recognizer.once('reload', resolve));

    const probes = stranger.slice(1);
    assert.ok(
      probes.every((f) => recognizer.identify(f.embedding).name === 'X'),
      'before: the stranger is taken for X',
    );
    const ownHeldOut = x.slice(5);
    assert.ok(ownHeldOut.length >= 3, 'enough held-out photos of X');
    assert.ok(ownHeldOut.every((f) => recognizer.identify(f.embedding).name === 'X'));

    const reload = reloaded();
    await extras.addNegatives(gallery.getPerson('X')!.id, [{ image: stranger[0].crop, source: 'test' }]);
    await reload;

    const after = probes.map((f) => recognizer.identify(f.embedding));
    const vetoed = after.filter((id) => id.unknownReason === 'vetoed').length;
    assert.ok(after.every((id) => id.name !== 'X' || id.unknownReason === null));
    assert.ok(
      vetoed / probes.length >= 0.8,
      `after: ${vetoed} of ${probes.length} of the stranger's other photos vetoed`,
    );
    for (const f of ownHeldOut) {
      const id = recognizer.identify(f.embedding);
      assert.equal(
        id.name,
        'X',
        `X's own photo ${path.basename(f.file)} still matches (cosine ${id.cosine.toFixed(3)})`,
      );
    }
    // The exact crop that was corrected is never X again.
    assert.equal(recognizer.identify(stranger[0].embedding).unknownReason, 'vetoed');

    // Taking the correction back restores the old behaviour (the veto is the only change).
    const back = reloaded();
    await extras.removeNegative(
      gallery.getPerson('X')!.id,
      extras.extrasOf(gallery.getPerson('X')!.id).negatives[0].file,
    );
    await back;
    assert.equal(recognizer.identify(probes[0].embedding).name, 'X');
    recognizer.close();
  });

  it('reports an ignored person as ignored, recognised by name', async () => {
    const pipeline = await sharedPipeline();
    const gallery = await Gallery.open(dir, { create: true });
    const extras = new GalleryExtras(gallery);
    const recognizer = await Recognizer.open(gallery, pipeline.embedder, {});
    const id = gallery.getPerson('X')!.id;
    assert.equal(recognizer.identify(x[6].embedding).ignored, false);
    const reload = new Promise((resolve) => recognizer.once('reload', resolve));
    await extras.setIgnored(id, true);
    await reload;
    const result = recognizer.identify(x[6].embedding);
    assert.equal(result.name, 'X');
    assert.equal(result.ignored, true);
    assert.equal(recognizer.isIgnoredName('X'), true);
    // Kept across a reopen: the flag is on disk.
    assert.deepEqual([...new GalleryExtras(await Gallery.open(dir)).ignoredIds()], [id]);
    recognizer.close();
  });
});
