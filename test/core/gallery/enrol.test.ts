/**
 * The enrolment bar on real photos: a stranger cannot join a person (by a
 * look-alike name, by a batch that agrees with itself, or at the door during
 * a walk-up), the same photo never counts twice, and bad input is reported
 * per photo.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DUPLICATE_MIN_COSINE, EnrolError, enrolCrops, enrolPerson } from '../../../nodes/core/gallery/enrol';
import { GalleryError } from '../../../nodes/core/gallery/format';
import { Gallery } from '../../../nodes/core/gallery/gallery';
import { Recognizer } from '../../../nodes/core/identify/recognizer';
import { decodeImage } from '../../../nodes/core/media/decode';
import { FacePipeline, mainFace } from '../../../nodes/core/pipeline';
import { FACES_DIR } from '../../models';

const photos = (person: string): string[] => {
  const dir = path.join(FACES_DIR, person);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => path.join(dir, f));
};

describe('enrolment bar (real photos)', function () {
  this.timeout(120_000);
  let pipeline: FacePipeline;
  let gallery: Gallery;

  before(async () => {
    pipeline = await FacePipeline.open({ embedder: { device: 'cpu' } });
  });
  after(() => pipeline.dispose());
  beforeEach(async () => {
    gallery = await Gallery.open(fs.mkdtempSync(path.join(os.tmpdir(), 'coral-enrol-')), { create: true });
    await enrolPerson(pipeline, gallery, 'Andre Agassi', photos('Andre_Agassi').slice(0, 5));
  });

  const tooFew = (accepted: number) => (e: unknown) => e instanceof EnrolError && e.result.accepted === accepted;

  it('a look-alike name is refused before anything is saved; "add" then needs the photos to be recognised as him', async () => {
    const stranger = photos('Andy_Roddick').slice(0, 8);
    await assert.rejects(
      enrolPerson(pipeline, gallery, 'andre_agassi', stranger),
      (e: GalleryError) => e.code === 'ERR_NAME_COLLISION' && /Andre Agassi/.test(e.message),
    );
    let report: EnrolError | undefined;
    await enrolPerson(pipeline, gallery, 'andre_agassi', stranger, { mode: 'add' }).catch(
      (e: EnrolError) => (report = e),
    );
    assert.ok(report instanceof EnrolError, 'nothing of the stranger was added');
    assert.equal(report.result.accepted, 0);
    assert.ok(
      report.result.photos.every(
        (p) => p.accepted || p.reasons.some((r) => r.code === 'not-this-person' || r.code !== 'outlier'),
      ),
    );
    assert.equal(gallery.getPerson('Andre Agassi')!.crops.length, 5);

    // And the stranger is still nobody.
    const recognizer = await Recognizer.open(gallery, pipeline.embedder);
    for (const file of photos('Andy_Roddick').slice(8)) {
      const image = await decodeImage(file);
      const { faces } = await pipeline.analyse(image);
      assert.equal(recognizer.identify(faces[0].embedding!).known, false, file);
    }
    recognizer.close();
  });

  it('more photos of the same person are added; a stranger among them is not', async () => {
    const intruder = photos('Andy_Roddick')[0];
    const result = await enrolPerson(pipeline, gallery, 'Andre Agassi', [
      ...photos('Andre_Agassi').slice(5, 9),
      intruder,
    ]);
    assert.ok(result.existing);
    assert.ok(result.accepted >= 3, `${result.accepted} of 4 genuine photos accepted`);
    const rejected = result.photos.find((p) => p.source === intruder)!;
    assert.equal(rejected.accepted, false);
    assert.equal(rejected.reasons.at(-1)!.code, 'not-this-person');
  });

  it('walk-up into a known person meets the same bar: the stranger at the door is not added', async () => {
    const crops = [];
    for (const file of photos('Tim_Henman').slice(0, 6)) {
      const image = await decodeImage(file);
      const { crop, quality } = pipeline.align(image, mainFace(await pipeline.detect(image), image)!);
      crops.push({ source: `door@${file}`, crop, quality });
    }
    await assert.rejects(enrolCrops(pipeline.embedder, gallery, 'Andre Agassi', crops), tooFew(0));
    assert.equal(gallery.getPerson('Andre Agassi')!.crops.length, 5);
  });

  it('one photo given five times, or an enrolment run again, counts once', async () => {
    const one = photos('Tim_Henman')[0];
    await assert.rejects(enrolPerson(pipeline, gallery, 'Tim', [one, one, one, one, one]), (e: EnrolError) => {
      assert.equal(e.result.accepted, 1);
      assert.equal(e.result.photos.filter((p) => p.reasons.some((r) => r.code === 'duplicate')).length, 4);
      return true;
    });
    const again = await enrolPerson(pipeline, gallery, 'Andre Agassi', photos('Andre_Agassi').slice(0, 5)).catch(
      (e: EnrolError) => e,
    );
    assert.ok(again instanceof EnrolError);
    assert.ok(again.result.photos.every((p) => p.reasons.some((r) => r.code === 'duplicate')));
    assert.equal(gallery.getPerson('Andre Agassi')!.crops.length, 5);
  });

  it('walk-up frames of a face that stands still all count; the same pixels, or a walk-up run again, count once', async () => {
    const image = await decodeImage(photos('Tony_Blair')[0]);
    const face = mainFace(await pipeline.detect(image), image)!;
    // Four frames of a still face: the keypoints move by a fraction of a pixel, as a detector's do.
    const frames = [0, 0.4, 0.8, 1.2].map((dx) => {
      const moved = { ...face, keypoints: face.keypoints.map((k) => ({ x: k.x + dx, y: k.y })) };
      return { source: `door@${dx}`, ...pipeline.align(image, moved) };
    });
    const vectors = await pipeline.embed(
      frames.map((f) => f.crop),
      { mirror: true },
    );
    const cosine = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + v * b[i], 0);
    assert.ok(cosine(vectors[0], vectors[1]) >= DUPLICATE_MIN_COSINE, 'close enough to pass for one photo re-encoded');
    const result = await enrolCrops(pipeline.embedder, gallery, 'Tony', [...frames, { ...frames[0], source: 'again' }]);
    assert.equal(result.accepted, 4);
    assert.deepEqual(
      result.photos.filter((p) => !p.accepted).map((p) => [p.source, p.reasons.at(-1)!.code]),
      [['again', 'duplicate']],
    );
    const rerun = await enrolCrops(pipeline.embedder, gallery, 'Tony', frames).catch((e: EnrolError) => e);
    assert.ok(rerun instanceof EnrolError);
    assert.ok(rerun.result.photos.every((p) => p.reasons.some((r) => r.code === 'duplicate')));
    assert.equal(gallery.getPerson('Tony')!.crops.length, 4);
  });

  it('photos of someone already enrolled do not make a new person (a second name for the same face)', async () => {
    const error = await enrolPerson(pipeline, gallery, 'Bob', photos('Andre_Agassi').slice(5, 9)).catch(
      (e: EnrolError) => e,
    );
    assert.ok(error instanceof EnrolError, 'nothing was saved');
    for (const photo of error.result.photos.filter((p) => !p.accepted)) {
      assert.equal(photo.reasons.at(-1)!.code, 'known-person');
      assert.match(photo.reasons.at(-1)!.message, /this is Andre Agassi/);
    }
    assert.ok(error.result.accepted <= 1, `${error.result.accepted} accepted`);
    assert.equal(gallery.getPerson('Bob'), undefined);
  });

  it('bad inputs are reported per photo and never crash the batch', async () => {
    const bad = [null, 42, { nope: true }, '/no/such/photo.jpg', Buffer.from('not an image')];
    const error = await enrolPerson(pipeline, gallery, 'Jennifer', [
      ...bad,
      ...photos('Jennifer_Garner').slice(0, 2),
    ]).catch((e: EnrolError) => e);
    assert.ok(error instanceof EnrolError);
    assert.deepEqual(
      error.result.photos.slice(0, 5).map((p) => p.reasons[0].code),
      ['ERR_IMAGE_INVALID', 'ERR_IMAGE_INVALID', 'ERR_IMAGE_INVALID', 'ERR_IMAGE_NOT_FOUND', 'ERR_IMAGE_UNSUPPORTED'],
    );
    assert.equal(error.result.accepted, 2);
  });
});
