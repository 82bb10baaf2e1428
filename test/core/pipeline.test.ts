/** The engine end to end on real photos: detection on frames, the main face, embeddings, enrolment and live updates. */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeImage } from '../../nodes/core/media/decode';
import { mirrorImage } from '../../nodes/core/media/image';
import { TfliteEmbedder } from '../../nodes/core/embed/embedder';
import { EnrolError, enrolPerson } from '../../nodes/core/gallery/enrol';
import { Gallery } from '../../nodes/core/gallery/gallery';
import { FacePipeline, mainFace, openDetector } from '../../nodes/core/pipeline';
import { Recognizer } from '../../nodes/core/identify/recognizer';
import { DEFAULT_THRESHOLD, l2normalize } from '../../nodes/core/identify/imprint';
import { groupFrame } from '../helpers/frames';
import { FACES_DIR } from '../models';

const photos = (person: string): string[] => {
  const dir = path.join(FACES_DIR, person);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => path.join(dir, f));
};
const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));

describe('pipeline: detection on camera frames', function () {
  this.timeout(60000);

  it('full-range finds all 5 faces (about 70-120 px) in a 1280x720 frame; short-range alone does not', async () => {
    const frame = await groupFrame('five-people.jpg');
    const full = await openDetector({ variant: 'full' });
    const found = await full.detector.detect(frame);
    await full.runtime.dispose();
    assert.equal(found.length, 5);
    for (const face of found) {
      assert.ok(face.box.width > 50 && face.box.width < 130, JSON.stringify(face.box));
      assert.ok(face.box.x >= -10 && face.box.x + face.box.width <= 1290, 'box in frame coordinates');
    }
    // Distinct faces: no two boxes overlap much.
    for (let i = 0; i < found.length; i++)
      for (let j = i + 1; j < found.length; j++) {
        const a = found[i].box;
        const b = found[j].box;
        const overlap = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
        assert.ok(overlap < Math.min(a.width, b.width) / 2);
      }
    const short = await openDetector({ variant: 'short' });
    const nearOnly = await short.detector.detect(frame);
    await short.runtime.dispose();
    assert.ok(nearOnly.length < 5, `short-range found ${nearOnly.length}`);
  });
});

describe('pipeline: faces in photos', function () {
  this.timeout(120000);
  let pipeline: FacePipeline;
  before(async () => {
    pipeline = await FacePipeline.open();
  });
  after(async () => {
    await pipeline.dispose();
  });

  it('picks the subject, not a bystander cut by the frame edge', async () => {
    const image = await decodeImage(path.join(FACES_DIR, 'Silvio_Berlusconi', 'Silvio_Berlusconi_0030.jpg'));
    const faces = await pipeline.detect(image);
    assert.ok(faces.length >= 2, 'the photo has a bystander');
    const largest = faces.reduce((a, b) => (a.box.width * a.box.height > b.box.width * b.box.height ? a : b));
    const main = mainFace(faces, image)!;
    assert.notEqual(main, largest, 'the bystander box is the largest');
    const cx = main.box.x + main.box.width / 2;
    assert.ok(Math.abs(cx - 125) < 40, `main face centre ${cx}`);
  });

  it('analyse gives aligned 112x112 crops, quality and unit-length embeddings', async () => {
    const image = await decodeImage(photos('Serena_Williams')[0]);
    const { faces, timings } = await pipeline.analyse(image);
    assert.equal(faces.length, 1);
    const [face] = faces;
    assert.equal(face.crop.width, 112);
    assert.equal(face.crop.height, 112);
    assert.equal(face.quality.ok, true, JSON.stringify(face.quality.reasons));
    assert.ok(Math.abs(norm(face.embedding!) - 1) < 1e-5);
    assert.equal(face.embedding!.length, 192);
    for (const stage of ['detect', 'align', 'embed'] as const) assert.ok(timings[stage] >= 0);
  });

  it('embeds a crop the same way whatever else is in the batch', async () => {
    const crops = [];
    for (const file of [photos('Tony_Blair')[0], photos('Tiger_Woods')[0], photos('Hans_Blix')[0]]) {
      const image = await decodeImage(file);
      crops.push(pipeline.align(image, mainFace(await pipeline.detect(image), image)!).crop);
    }
    const together = await pipeline.embed(crops);
    for (let i = 0; i < crops.length; i++) {
      const [alone] = await pipeline.embed([crops[i]]);
      assert.ok(cosine(alone, together[i]) > 0.99999, `crop ${i}`);
    }
    // Different people are far apart, the same person close.
    const [again] = await pipeline.embed([
      pipeline.align(
        await decodeImage(photos('Tony_Blair')[3]),
        mainFace(await pipeline.detect(await decodeImage(photos('Tony_Blair')[3])), { width: 250, height: 250 })!,
      ).crop,
    ]);
    assert.ok(cosine(together[0], again) > 0.5);
    assert.ok(cosine(together[0], together[1]) < 0.4);
  });

  it('runs one face per inference on the CPU; a fixed batch of 2 pads and agrees; the mirror image is per crop', async () => {
    const crops = [];
    for (const file of [photos('Tony_Blair')[1], photos('Tiger_Woods')[1], photos('Hans_Blix')[1]]) {
      const image = await decodeImage(file);
      crops.push(pipeline.align(image, mainFace(await pipeline.detect(image), image)!).crop);
    }
    const single = await TfliteEmbedder.open({ device: 'cpu' });
    // Without the load-time rewrites the model keeps its fixed batch of 2.
    const fixed = await TfliteEmbedder.open({ device: 'cpu', rewrite: false });
    try {
      assert.equal(single.inference.inputs[0].shape[0], 1);
      assert.equal(fixed.inference.inputs[0].shape[0], 2);
      assert.equal(single.id, fixed.id, 'same model, same preprocessing: the gallery cache is shared');
      assert.match(single.id, /-s$/);
      const [a, b] = [await single.embed(crops), await fixed.embed(crops)];
      // Mirror the middle crop only; on the padded fixed batch, every crop.
      const some = await single.embed(crops, { mirror: [false, true, false] });
      const all = await fixed.embed(crops, { mirror: true });
      const flipped = await single.embed(crops.map(mirrorImage));
      for (let i = 0; i < crops.length; i++) {
        assert.ok(cosine(a[i], b[i]) > 0.99999, `crop ${i}: batch 1 and padded batch 2 agree`);
        const c = cosine(a[i], flipped[i]);
        assert.ok(c > 0.7 && c < 0.9999, `crop ${i}: the mirror image's embedding is close but not the same (${c})`);
        // With the mirror: the normalised sum of the two unit embeddings.
        const sum = l2normalize(a[i].map((v, k) => v + flipped[i][k]));
        assert.ok(cosine(all[i], sum) > 0.99999, `crop ${i}: mirrored = normalised sum of crop and mirror image`);
        assert.ok(cosine(some[i], i === 1 ? sum : a[i]) > 0.99999, `crop ${i}: the per-crop choice is followed`);
        assert.ok(Math.abs(Math.hypot(...all[i]) - 1) < 1e-5, 'normalised');
      }
    } finally {
      await Promise.all([single.dispose(), fixed.dispose()]);
    }
  });

  it('enrols, rejects an outlier photo, and a recognizer follows gallery changes without reopening', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-pipeline-'));
    const gallery = await Gallery.open(dir, { create: true });
    const recognizer = await Recognizer.open(gallery, pipeline.embedder);
    assert.deepEqual(recognizer.people(), []);
    const probe = await decodeImage(photos('Jennifer_Garner')[8]);
    const embedProbe = async () => (await pipeline.analyse(probe)).faces[0].embedding!;
    assert.equal(recognizer.identify(await embedProbe()).name, 'unknown');

    const reloaded = new Promise((resolve) => recognizer.once('reload', resolve));
    const intruder = photos('Vladimir_Putin')[0];
    const result = await enrolPerson(pipeline, gallery, 'Jennifer', [
      ...photos('Jennifer_Garner').slice(0, 5),
      intruder,
    ]);
    assert.equal(result.accepted, 5);
    const rejected = result.photos.find((p) => p.source === intruder)!;
    assert.equal(rejected.accepted, false);
    assert.equal(rejected.reasons[0].code, 'outlier');
    await reloaded;
    const identity = recognizer.identify(await embedProbe());
    assert.equal(identity.name, 'Jennifer');
    assert.ok(identity.cosine >= DEFAULT_THRESHOLD && identity.confidence > 0.5);

    await assert.rejects(
      enrolPerson(pipeline, gallery, 'Nobody', [photos('Tim_Henman')[0]]),
      (e: EnrolError) =>
        e.code === 'ERR_TOO_FEW_PHOTOS' &&
        e.result.accepted === 1 &&
        /1 usable photo\(s\) of 1, 3 needed/.test(e.message),
    );

    const forgotten = new Promise((resolve) => recognizer.once('reload', resolve));
    await gallery.forget('Jennifer');
    await forgotten;
    assert.equal(recognizer.identify(await embedProbe()).name, 'unknown');
    recognizer.close();
  });
});
