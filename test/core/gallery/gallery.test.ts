import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Gallery, type GalleryChange } from '../../../nodes/core/gallery/gallery';
import { nodeFileSystem, type GalleryFileSystem } from '../../../nodes/core/gallery/files';
import { GalleryError, slugify, type GalleryErrorCode } from '../../../nodes/core/gallery/format';
import type { RgbImage } from '../../../nodes/core/media/image';

function crop(seed: number, size = 112): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 97) & 0xff;
  return { width: size, height: size, data };
}

async function expectGalleryError(promise: Promise<unknown>, code: GalleryErrorCode): Promise<GalleryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GalleryError, `expected a GalleryError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

/** Every file under dir with its bytes, to compare a gallery before and after a failed operation. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  async function walk(current: string): Promise<void> {
    for (const entry of await fsp.readdir(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      const relative = path.relative(dir, full);
      if (entry.isDirectory()) {
        files.set(relative + '/', '');
        await walk(full);
      } else {
        files.set(relative, (await fsp.readFile(full)).toString('base64'));
      }
    }
  }
  await walk(dir);
  return files;
}

describe('gallery', function () {
  let tempRoot: string;
  let dir: string;

  beforeEach(async () => {
    tempRoot = await fsp.mkdtemp(path.join(os.tmpdir(), 'coral-gallery-'));
    dir = path.join(tempRoot, 'gallery');
  });

  afterEach(async () => {
    await fsp.rm(tempRoot, { recursive: true, force: true });
  });

  describe('round trip', () => {
    it('creates, adds, renames, forgets and reopens', async () => {
      await expectGalleryError(Gallery.open(dir), 'ERR_GALLERY_NOT_FOUND');
      const gallery = await Gallery.open(dir, { create: true });
      assert.deepEqual(gallery.listPeople(), []);

      const alice = await gallery.addCrops('  Alice  ', [
        { image: crop(1), source: 'camera/front', quality: { sharpness: 0.8 } },
        { image: crop(2) },
      ]);
      assert.equal(alice.id, 'alice');
      assert.equal(alice.name, 'Alice');
      assert.equal(alice.crops.length, 2);
      assert.equal(alice.crops[0].source, 'camera/front');
      assert.deepEqual(alice.crops[0].quality, { sharpness: 0.8 });

      // A name that only resembles Alice's is never silently taken for her: 'add' says so explicitly.
      await expectGalleryError(gallery.addCrops('alice', [{ image: crop(3) }]), 'ERR_NAME_COLLISION');
      const more = await gallery.addCrops('alice', [{ image: crop(3) }], { mode: 'add' });
      assert.equal(more.id, 'alice');
      assert.equal(more.crops.length, 3);
      await gallery.addCrops('Bob', [{ image: crop(4) }]);

      const renamed = await gallery.rename('Alice', 'Alicia');
      assert.equal(renamed.id, 'alice', 'ids stay stable across renames');
      assert.equal(gallery.getPerson('Alicia')?.id, 'alice');
      assert.equal(gallery.getPerson('alice')?.name, 'Alicia', 'lookup by id still works');
      assert.equal(gallery.getPerson('Alice'), undefined, 'the old name is gone');

      const pixels = await gallery.loadCrops('Alicia');
      assert.equal(pixels.length, 3);
      assert.deepEqual([pixels[0].width, pixels[0].height], [112, 112]);
      assert.deepEqual(Buffer.from(pixels[2].data), Buffer.from(crop(3).data), 'PNG is lossless');

      const forgotten = await gallery.forget('bob');
      assert.equal(forgotten.name, 'Bob');
      await expectGalleryError(gallery.forget('Bob'), 'ERR_PERSON_NOT_FOUND');
      await assert.rejects(fsp.stat(path.join(dir, 'people', 'bob')));

      const removed = await gallery.removeCrop('Alicia', more.crops[1].file);
      assert.equal(removed.crops.length, 2);
      await expectGalleryError(gallery.removeCrop('Alicia', more.crops[1].file), 'ERR_CROP_NOT_FOUND');
      await assert.rejects(fsp.stat(path.join(dir, 'people', 'alice', more.crops[1].file)));

      const reopened = await Gallery.open(dir);
      assert.deepEqual(reopened.listPeople(), gallery.listPeople());
      const index = JSON.parse(await fsp.readFile(path.join(dir, 'gallery.json'), 'utf8'));
      assert.equal(index.format, 'coral-face-gallery');
      assert.equal(index.version, 2);
      assert.deepEqual(
        index.people.map((p: { id: string; name: string }) => [p.id, p.name]),
        [['alice', 'Alicia']],
      );
      assert.deepEqual(
        (await reopened.loadCrops('alice')).map((image) => Buffer.from(image.data)),
        [crop(1), crop(3)].map((image) => Buffer.from(image.data)),
      );
    });

    it('refuses to rename onto an existing name or one easily taken for it, but allows a change of case', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }]);
      await gallery.addCrops('Bob', [{ image: crop(2) }]);
      const error = await expectGalleryError(gallery.rename('Alice', 'Bob'), 'ERR_PERSON_EXISTS');
      assert.match(error.message, /another name/);
      await expectGalleryError(gallery.rename('Alice', 'bob'), 'ERR_NAME_COLLISION');
      await expectGalleryError(gallery.rename('Alice', 'Bób!'), 'ERR_NAME_COLLISION');
      assert.equal(gallery.getPerson('Alice')?.name, 'Alice');
      assert.equal((await gallery.rename('bob', 'BOB')).name, 'BOB');
      await expectGalleryError(gallery.rename('Nobody', 'Carol'), 'ERR_PERSON_NOT_FOUND');
    });

    it('serialises concurrent enrolments without losing any', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      const changes: GalleryChange[] = [];
      gallery.on('change', (change) => changes.push(change));
      await Promise.all(
        Array.from({ length: 8 }, (_, i) => gallery.addCrops(i % 2 ? 'Shared' : `Person ${i}`, [{ image: crop(i) }])),
      );
      const reopened = await Gallery.open(dir);
      assert.equal(reopened.listPeople().length, 5);
      assert.equal(reopened.getPerson('Shared')?.crops.length, 4);
      assert.equal(changes.length, 8);
      assert.ok(changes.every((change) => change.kind === 'add'));
    });

    it('rejects invalid crops', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await expectGalleryError(gallery.addCrops('Alice', []), 'ERR_CROPS_INVALID');
      await expectGalleryError(
        gallery.addCrops('Alice', [{ image: { width: 2, height: 2, data: new Uint8Array(5) } }]),
        'ERR_CROPS_INVALID',
      );
      assert.deepEqual(gallery.listPeople(), []);
    });
  });

  describe('names and ids', () => {
    it('rejects empty, too long and control-character names', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      for (const bad of ['', '   ', 'x'.repeat(65), 'Eve\u0000', 'Eve\nMallory', 'a\u202Eb']) {
        await expectGalleryError(gallery.addCrops(bad, [{ image: crop(1) }]), 'ERR_NAME_INVALID');
      }
      // 64 code points are fine, even if they take more UTF-16 units.
      const long = await gallery.addCrops('😀'.repeat(64), [{ image: crop(1) }]);
      assert.equal(long.id, 'person');
      assert.deepEqual(gallery.listPeople().length, 1);
    });

    it('derives safe ids: "../../etc" stays inside the gallery', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      const person = await gallery.addCrops('../../etc', [{ image: crop(1) }]);
      assert.equal(person.id, 'etc');
      assert.equal(person.name, '../../etc');
      await fsp.stat(path.join(dir, 'people', 'etc', person.crops[0].file));
      assert.deepEqual((await fsp.readdir(tempRoot)).sort(), ['gallery']);
      assert.equal(gallery.getPerson('../../etc')?.id, 'etc');
      await expectGalleryError(gallery.loadCrops('../../passwd'), 'ERR_PERSON_NOT_FOUND');
    });

    it('slugs accents, unicode and collisions', async () => {
      assert.equal(slugify('José Ñúñez'), 'jose-nunez');
      assert.equal(slugify('李小龙'), 'person');
      assert.equal(slugify('--A  b--'), 'a-b');
      const gallery = await Gallery.open(dir, { create: true });
      const first = await gallery.addCrops('Anne-Marie', [{ image: crop(1) }]);
      await expectGalleryError(gallery.addCrops('Anne Marie', [{ image: crop(2) }]), 'ERR_NAME_COLLISION');
      const second = await gallery.addCrops('Anne Marie', [{ image: crop(2) }], { mode: 'new' });
      const third = await gallery.addCrops('anne_marie!', [{ image: crop(3) }], { mode: 'new' });
      await expectGalleryError(
        gallery.addCrops('Anne Marie', [{ image: crop(4) }], { mode: 'new' }),
        'ERR_PERSON_EXISTS',
      );
      await expectGalleryError(
        gallery.addCrops('ANNE MARIE', [{ image: crop(4) }], { mode: 'add' }),
        'ERR_NAME_COLLISION',
      );
      assert.deepEqual([first.id, second.id, third.id], ['anne-marie', 'anne-marie-2', 'anne-marie-3']);
      assert.equal(gallery.getPerson('Anne Marie')?.id, 'anne-marie-2');
    });

    it('refuses an index whose ids or file names would escape the folder', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }]);
      const indexPath = path.join(dir, 'gallery.json');
      const good = JSON.parse(await fsp.readFile(indexPath, 'utf8'));

      const badId = structuredClone(good);
      badId.people[0].id = '../../etc';
      await fsp.writeFile(indexPath, JSON.stringify(badId));
      await expectGalleryError(Gallery.open(dir), 'ERR_GALLERY_FORMAT');

      const badFile = structuredClone(good);
      badFile.people[0].crops[0].file = '../../../passwd.png';
      await fsp.writeFile(indexPath, JSON.stringify(badFile));
      await expectGalleryError(Gallery.open(dir), 'ERR_GALLERY_FORMAT');

      await fsp.writeFile(indexPath, '{ not json');
      await expectGalleryError(Gallery.open(dir), 'ERR_GALLERY_FORMAT');
    });
  });

  describe('format version', () => {
    it('refuses a newer version and leaves it untouched', async () => {
      await Gallery.open(dir, { create: true });
      const indexPath = path.join(dir, 'gallery.json');
      const newer = JSON.stringify({ format: 'coral-face-gallery', version: 3, people: [], somethingNew: true });
      await fsp.writeFile(indexPath, newer);
      const error = await expectGalleryError(Gallery.open(dir, { create: true }), 'ERR_GALLERY_VERSION');
      assert.match(error.message, /newer/);
      assert.match(error.message, /Upgrade/);
      assert.equal(await fsp.readFile(indexPath, 'utf8'), newer);
    });

    it('makes an already-open gallery refuse to write over a newer index', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      const indexPath = path.join(dir, 'gallery.json');
      const newer = JSON.stringify({ format: 'coral-face-gallery', version: 7, people: [] });
      await fsp.writeFile(indexPath, newer);
      await expectGalleryError(gallery.addCrops('Alice', [{ image: crop(1) }]), 'ERR_GALLERY_VERSION');
      assert.equal(await fsp.readFile(indexPath, 'utf8'), newer);
    });
  });

  describe('embeddings cache', () => {
    /** A fake embedder: the mean of each colour channel, tagged with a per-model offset. */
    function counter(offset: number) {
      const calls: number[] = [];
      const embed = async (crops: RgbImage[]): Promise<Float32Array[]> => {
        calls.push(crops.length);
        return crops.map((image) => {
          const sums = [0, 0, 0];
          for (let i = 0; i < image.data.length; i++) sums[i % 3] += image.data[i];
          return Float32Array.from(sums.map((sum) => sum / (image.width * image.height) + offset));
        });
      };
      return { embed, calls, total: () => calls.reduce((a, b) => a + b, 0) };
    }

    it('computes once, reuses, computes only new crops, and rebuilds for another embedder', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }, { image: crop(2) }]);
      await gallery.addCrops('Bob', [{ image: crop(3) }]);

      const modelA = counter(0);
      const first = await gallery.embeddings('mobilefacenet/cpu v1', modelA.embed);
      assert.equal(modelA.total(), 3);
      assert.deepEqual([...first.keys()], ['alice', 'bob']);
      assert.equal(first.get('alice')!.length, 2);

      const again = await gallery.embeddings('mobilefacenet/cpu v1', modelA.embed);
      assert.equal(modelA.total(), 3, 'nothing recomputed');
      assert.deepEqual(again, first);

      // A new gallery object reads the cache from disk.
      const reopened = await Gallery.open(dir);
      const fromDisk = await reopened.embeddings('mobilefacenet/cpu v1', modelA.embed);
      assert.equal(modelA.total(), 3);
      assert.deepEqual(fromDisk, first);

      await reopened.addCrops('Bob', [{ image: crop(4) }]);
      await reopened.embeddings('mobilefacenet/cpu v1', modelA.embed);
      assert.equal(modelA.total(), 4, 'only the new crop');

      const modelB = counter(100);
      const other = await reopened.embeddings('mobilefacenet-edgetpu', modelB.embed);
      assert.equal(modelB.total(), 4, 'a different embedder id computes everything');
      assert.ok(other.get('alice')![0][0] > 100);

      // Forgetting prunes the cache; the other embedder's cache is kept.
      await reopened.forget('Bob');
      const afterForget = await reopened.embeddings('mobilefacenet/cpu v1', modelA.embed);
      assert.deepEqual([...afterForget.keys()], ['alice']);
      assert.equal(modelA.total(), 4);
      const cacheFiles = await fsp.readdir(path.join(dir, 'embeddings'));
      assert.equal(cacheFiles.length, 2);
      assert.ok(
        cacheFiles.every((file) => /^[a-z0-9-]+\.json$/.test(file)),
        cacheFiles.join(),
      );
      const cache = JSON.parse(
        await fsp.readFile(
          path.join(
            dir,
            'embeddings',
            cacheFiles.find((f) => f.startsWith('mobilefacenet-cpu'))!,
          ),
          'utf8',
        ),
      );
      assert.equal(cache.embedderId, 'mobilefacenet/cpu v1');
      assert.deepEqual(
        Object.keys(cache.embeddings).map((key) => key.split('/')[0]),
        ['alice', 'alice'],
      );
    });

    it('rejects an embedder that returns the wrong count or dimension, and a corrupt cache is rebuilt', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }, { image: crop(2) }]);
      await expectGalleryError(
        gallery.embeddings('m', async () => [new Float32Array(4)]),
        'ERR_EMBEDDINGS_INVALID',
      );
      await expectGalleryError(
        gallery.embeddings('m', async () => [new Float32Array(4), new Float32Array(5)]),
        'ERR_EMBEDDINGS_INVALID',
      );
      await expectGalleryError(
        gallery.embeddings('', async () => []),
        'ERR_EMBEDDER_INVALID',
      );

      const model = counter(0);
      await gallery.embeddings('m', model.embed);
      const [cacheFile] = await fsp.readdir(path.join(dir, 'embeddings'));
      await fsp.writeFile(path.join(dir, 'embeddings', cacheFile), 'garbage');
      await gallery.embeddings('m', model.embed);
      assert.equal(model.total(), 4);
    });
  });

  describe('nothing deleted because it looked missing', () => {
    it('leaves files it did not write alone, and takes back only a change known to have failed', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      const alice = await gallery.addCrops('Alice', [{ image: crop(1) }]);
      await fsp.writeFile(path.join(dir, 'people', 'alice', 'zzz-stray.png'), 'x');
      await fsp.mkdir(path.join(dir, 'people', 'ghost'));
      await fsp.writeFile(path.join(dir, 'people', 'ghost', 'a.png'), 'x');
      await fsp.writeFile(path.join(dir, 'people', 'README.txt'), 'not ours to delete');
      // What a change killed half-way leaves: its intent, a crop it wrote, a temp file.
      await fsp.writeFile(
        path.join(dir, 'pending', 'k1-crashed.json'),
        JSON.stringify({ op: 'add', personId: 'alice', files: ['zz-halfway.png'], negative: false, createdDir: false }),
      );
      await fsp.writeFile(path.join(dir, 'people', 'alice', 'zz-halfway.png'), 'x');
      await fsp.writeFile(path.join(dir, 'people', 'alice', '.zz-next.png.1.ab.tmp'), 'x');

      const reopened = await Gallery.open(dir);
      assert.deepEqual(reopened.listPeople(), [alice]);
      await reopened.addCrops('Bob', [{ image: crop(2) }]);
      assert.deepEqual(
        (await fsp.readdir(path.join(dir, 'people', 'alice'))).sort(),
        [alice.crops[0].file, 'person.json', 'zzz-stray.png'].sort(),
        'only the crashed change was taken back',
      );
      assert.deepEqual((await fsp.readdir(path.join(dir, 'people'))).sort(), ['README.txt', 'alice', 'bob', 'ghost']);
      assert.deepEqual(await fsp.readdir(path.join(dir, 'pending')), []);
      assert.equal((await reopened.loadCrops('Alice')).length, 1);
    });

    it('an old index restored from a backup does not cost the people added since', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }]);
      const backup = await fsp.readFile(path.join(dir, 'gallery.json'));
      await gallery.addCrops('Bob', [{ image: crop(2) }, { image: crop(3) }]);
      await fsp.writeFile(path.join(dir, 'gallery.json'), backup);
      const reopened = await Gallery.open(dir, { create: true });
      await reopened.addCrops('Carol', [{ image: crop(4) }]);
      assert.equal((await fsp.readdir(path.join(dir, 'people', 'bob'))).filter((f) => f.endsWith('.png')).length, 2);
    });
  });

  describe('a missing or damaged index', () => {
    async function enrolThree(): Promise<Gallery> {
      const gallery = await Gallery.open(dir, { create: true });
      for (const [n, name] of ['Alice', 'Bob', 'Carol'].entries()) {
        await gallery.addCrops(
          name,
          Array.from({ length: 5 }, (_, i) => ({ image: crop(n * 10 + i), source: `${name}-${i}.jpg` })),
        );
      }
      await gallery.rename('Bob', 'Robert');
      await gallery.setIgnored('Carol', true);
      await gallery.addCrops('Alice', [{ image: crop(99) }], { negative: true });
      return gallery;
    }
    const pngs = async () => {
      let count = 0;
      for (const id of await fsp.readdir(path.join(dir, 'people'))) {
        count += (await fsp.readdir(path.join(dir, 'people', id))).filter((f) => f.endsWith('.png')).length;
      }
      return count;
    };

    it('a missing gallery.json is rebuilt from the folders, not taken for an empty gallery (no photo lost)', async () => {
      const before = (await enrolThree()).listPeople();
      assert.equal(await pngs(), 15);
      for (const options of [{}, { create: true }]) {
        await fsp.rename(path.join(dir, 'gallery.json'), path.join(tempRoot, 'moved-away.json'));
        const recovered = await Gallery.open(dir, options);
        assert.ok(recovered.recovery, 'says it rebuilt the index');
        assert.match(recovered.recovery.reason, /missing/);
        assert.deepEqual(
          recovered
            .listPeople()
            .map((p) => [p.id, p.name, p.ignored ?? false, p.crops.map((c) => c.file), p.negatives.length]),
          before.map((p) => [p.id, p.name, p.ignored ?? false, p.crops.map((c) => c.file), p.negatives.length]),
        );
        assert.equal(recovered.getPerson('Robert')?.crops[0].source, 'Bob-0.jpg', 'details come back from person.json');
      }
      assert.equal(await pngs(), 15, 'every crop is still there');
      assert.ok(
        JSON.parse(await fsp.readFile(path.join(dir, 'gallery.json'), 'utf8')).people.length === 3,
        'the rebuilt index was saved',
      );
      const reopened = await Gallery.open(dir);
      assert.equal(reopened.recovery, null);
    });

    it('rebuilds a folder without person.json (a gallery from before it existed) with the id as the name', async () => {
      await enrolThree();
      await fsp.rm(path.join(dir, 'gallery.json'));
      await fsp.rm(path.join(dir, 'people', 'alice', 'person.json'));
      const recovered = await Gallery.open(dir);
      assert.equal(recovered.getPerson('alice')?.crops.length, 5);
      assert.equal(recovered.getPerson('alice')?.negatives.length, 1);
    });

    it('an index that disappears under an open gallery is rebuilt at the next change', async () => {
      const gallery = await enrolThree();
      await fsp.rm(path.join(dir, 'gallery.json'));
      await gallery.addCrops('Dave', [{ image: crop(50) }]);
      assert.deepEqual(
        (await Gallery.open(dir))
          .listPeople()
          .map((p) => p.name)
          .sort(),
        ['Alice', 'Carol', 'Dave', 'Robert'],
      );
      assert.equal(await pngs(), 16);
    });

    it('a damaged gallery.json is refused with what to do, and `repair` rebuilds it keeping the damaged file', async () => {
      const before = (await enrolThree()).listPeople();
      await fsp.writeFile(path.join(dir, 'gallery.json'), '{"format": "coral-face-gallery", "version": 2, "peop');
      const refused = await expectGalleryError(Gallery.open(dir, { create: true }), 'ERR_GALLERY_FORMAT');
      assert.match(refused.message, /coral-face repair/);
      assert.equal(await pngs(), 15);
      const report = await Gallery.repair(dir);
      assert.equal(report.people, 3);
      assert.ok(report.damagedIndex && (await fsp.readFile(report.damagedIndex, 'utf8')).endsWith('"peop'));
      assert.deepEqual(
        (await Gallery.open(dir)).listPeople().map((p) => p.name),
        before.map((p) => p.name),
      );
      await assert.rejects(Gallery.repair(dir), /nothing to repair/);
    });

    it('reading commands never create a gallery: a mistyped folder is an error, not an empty gallery', async () => {
      await expectGalleryError(Gallery.open(path.join(tempRoot, 'galery')), 'ERR_GALLERY_NOT_FOUND');
      await assert.rejects(fsp.stat(path.join(tempRoot, 'galery')));
    });
  });

  describe('forgetting', () => {
    it('removes every trace at once: crops, folder, and the embeddings in every cache', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }, { image: crop(2) }]);
      await gallery.addCrops('Bob', [{ image: crop(3) }]);
      const embed = (offset: number) => async (crops: RgbImage[]) =>
        crops.map((c) => Float32Array.from([c.data[0] + offset, c.data[1], 1]));
      await gallery.embeddings('cpu-model', embed(0));
      await gallery.embeddings('edgetpu-model', embed(1));
      await gallery.forget('Alice');
      await assert.rejects(fsp.stat(path.join(dir, 'people', 'alice')));
      for (const file of await fsp.readdir(path.join(dir, 'embeddings'))) {
        const keys = Object.keys(JSON.parse(await fsp.readFile(path.join(dir, 'embeddings', file), 'utf8')).embeddings);
        assert.deepEqual(
          keys.map((k) => k.split('/')[0]),
          ['bob'],
          `${file} holds nothing of Alice`,
        );
      }
    });

    it('a forget interrupted after its commit is finished at the next open', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }]);
      await gallery.embeddings('m', async (crops) => crops.map(() => Float32Array.from([1, 2, 3])));
      // The state a kill right after the commit leaves: the intent, an index without her, her folder and cache entry.
      const index = JSON.parse(await fsp.readFile(path.join(dir, 'gallery.json'), 'utf8'));
      await fsp.writeFile(
        path.join(dir, 'pending', 'k2.json'),
        JSON.stringify({ op: 'forget', personId: 'alice', files: [], negative: false, createdDir: false }),
      );
      await fsp.writeFile(path.join(dir, 'gallery.json'), JSON.stringify({ ...index, people: [] }));
      await Gallery.open(dir);
      await assert.rejects(fsp.stat(path.join(dir, 'people', 'alice')));
      const [cacheFile] = await fsp.readdir(path.join(dir, 'embeddings'));
      assert.deepEqual(JSON.parse(await fsp.readFile(path.join(dir, 'embeddings', cacheFile), 'utf8')).embeddings, {});
    });
  });

  describe('the same photo twice', () => {
    it('stores a crop once, however often it is given', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      const once = await gallery.addCrops(
        'Alice',
        Array.from({ length: 5 }, () => ({ image: crop(7) })),
      );
      assert.equal(once.crops.length, 1);
      const again = await gallery.addCrops('Alice', [{ image: crop(7) }, { image: crop(8) }]);
      assert.equal(again.crops.length, 2);
      assert.equal((await gallery.addCrops('Alice', [{ image: crop(8) }])).crops.length, 2);
    });
  });

  describe('corrections, ignored people, export and import', () => {
    it('keeps negatives and the ignored flag, exports and imports a person, and a second import adds nothing', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }, { image: crop(2) }]);
      await gallery.addCrops('Alice', [{ image: crop(3) }], { negative: true });
      await expectGalleryError(
        gallery.addCrops('Nobody', [{ image: crop(3) }], { negative: true }),
        'ERR_PERSON_NOT_FOUND',
      );
      await gallery.addCrops('Postman', [{ image: crop(4) }]);
      await gallery.setIgnored('Postman', true);
      const negatives = await gallery.negativeEmbeddings('m', async (crops) =>
        crops.map((c) => Float32Array.from([c.data[0], 1])),
      );
      assert.deepEqual([...negatives.keys()], ['alice']);
      assert.deepEqual(
        (await gallery.loadCrops('Alice', { negatives: true })).map((c) => Buffer.from(c.data)),
        [Buffer.from(crop(3).data)],
      );

      const exported = JSON.parse(JSON.stringify(await gallery.exportPeople()));
      const other = await Gallery.open(path.join(tempRoot, 'other'), { create: true });
      const first = await other.importPeople(exported);
      assert.deepEqual(
        first.people.map((p) => [p.name, p.added]),
        [
          ['Alice', 2],
          ['Postman', 1],
        ],
      );
      assert.equal(other.getPerson('Postman')?.ignored, true);
      assert.equal(other.getPerson('Alice')?.negatives.length, 1);
      const second = await other.importPeople(exported);
      assert.deepEqual(
        second.skipped.map((s) => s.name),
        ['Alice', 'Postman'],
      );
      const merged = await other.importPeople(exported, { onCollision: 'add' });
      assert.deepEqual(
        merged.people.map((p) => p.added),
        [0, 0],
        'crops already there are not stored twice',
      );
      await expectGalleryError(other.importPeople({ format: 'something-else' }), 'ERR_IMPORT_INVALID');
      await expectGalleryError(
        other.importPeople({ ...exported, people: [{ name: 'X', crops: [{ png: 'bm90IGEgcG5n' }] }] }),
        'ERR_IMPORT_INVALID',
      );
    });
  });

  describe('other processes', () => {
    it("a watching gallery sees another process's change within a second", async () => {
      const watching = await Gallery.open(dir, { create: true, watch: { intervalMs: 50 } });
      const changes: GalleryChange[] = [];
      watching.on('change', (change) => changes.push(change));
      const other = await Gallery.open(dir);
      await other.addCrops('Alice', [{ image: crop(1) }]);
      const deadline = Date.now() + 1000;
      while (!watching.getPerson('Alice') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      watching.close();
      assert.equal(watching.getPerson('Alice')?.crops.length, 1);
      assert.deepEqual(
        changes.map((c) => c.kind),
        ['external'],
      );
    });
  });

  describe('disk full (ENOSPC)', () => {
    /** The real file system, except that writes matching `failWhen` fail as a full disk would. */
    function fullDisk(failWhen: (filePath: string) => boolean): GalleryFileSystem & { full: boolean } {
      const layer = {
        ...nodeFileSystem,
        full: true,
        async createFile(filePath: string) {
          const file = await nodeFileSystem.createFile(filePath);
          if (!layer.full || !failWhen(filePath)) return file;
          return {
            ...file,
            write: async () => {
              throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
            },
          };
        },
      };
      return layer;
    }

    it('a failing crop write leaves the gallery unchanged and says what to do', async () => {
      let cropWrites = 0;
      const fs = fullDisk((filePath) => filePath.includes(`${path.sep}people${path.sep}`) && ++cropWrites === 2);
      fs.full = false;
      const gallery = await Gallery.open(dir, { create: true, fileSystem: fs });
      await gallery.addCrops('Alice', [{ image: crop(1) }]);
      const before = await snapshot(dir);
      const people = gallery.listPeople();

      fs.full = true;
      cropWrites = 0;
      const newPerson = await expectGalleryError(
        gallery.addCrops('Bob', [{ image: crop(2) }, { image: crop(3) }, { image: crop(4) }]),
        'ERR_NO_SPACE',
      );
      assert.match(newPerson.message, /No space left.*Free some disk space/);
      assert.equal(cropWrites, 2, 'failed on the second crop, after one had been written');
      assert.deepEqual(await snapshot(dir), before);
      assert.deepEqual(gallery.listPeople(), people);

      cropWrites = 0;
      await expectGalleryError(gallery.addCrops('Alice', [{ image: crop(5) }, { image: crop(6) }]), 'ERR_NO_SPACE');
      assert.deepEqual(await snapshot(dir), before);
      assert.deepEqual((await Gallery.open(dir)).listPeople(), people);
    });

    it('a failing index write (the commit) leaves the gallery unchanged, and it works once space is back', async () => {
      const fs = fullDisk((filePath) => path.basename(filePath).startsWith('.gallery.json.'));
      fs.full = false;
      const gallery = await Gallery.open(dir, { create: true, fileSystem: fs });
      await gallery.addCrops('Alice', [{ image: crop(1) }]);
      const before = await snapshot(dir);

      fs.full = true;
      await expectGalleryError(gallery.addCrops('Bob', [{ image: crop(2) }]), 'ERR_NO_SPACE');
      await expectGalleryError(gallery.addCrops('Alice', [{ image: crop(3) }]), 'ERR_NO_SPACE');
      await expectGalleryError(gallery.rename('Alice', 'Alicia'), 'ERR_NO_SPACE');
      await expectGalleryError(gallery.forget('Alice'), 'ERR_NO_SPACE');
      assert.deepEqual(await snapshot(dir), before);
      assert.equal(gallery.getPerson('Alice')?.crops.length, 1);

      fs.full = false;
      await gallery.addCrops('Bob', [{ image: crop(2) }]);
      assert.deepEqual(
        (await Gallery.open(dir)).listPeople().map((p) => p.name),
        ['Alice', 'Bob'],
      );
    });
  });

  describe('read-only and full disks (a real tmpfs; needs root to mount)', function () {
    let mountPoint: string;
    const sh = (command: string) => execFileSync('sh', ['-c', command], { stdio: 'pipe' });
    const fakeEmbed = async (crops: RgbImage[]) => crops.map((c) => Float32Array.from([c.data[0], c.data[1], 1]));

    beforeEach(function () {
      mountPoint = path.join(tempRoot, 'mnt');
      try {
        sh(`mkdir -p '${mountPoint}' && mount -t tmpfs -o size=4m tmpfs '${mountPoint}'`);
      } catch {
        this.skip(); // not root, or no mount in this sandbox: the injected-failure tests above still run
      }
      dir = path.join(mountPoint, 'gallery');
    });

    afterEach(() => {
      try {
        sh(`umount '${mountPoint}'`);
      } catch {
        // not mounted
      }
    });

    it('recognition works from a read-only gallery; changes fail with ERR_GALLERY_READ_ONLY and change nothing', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }, { image: crop(2) }]);
      sh(`mount -o remount,ro '${mountPoint}'`);
      const before = await snapshot(dir);
      const readOnly = await Gallery.open(dir, { create: true });
      const warnings: string[] = [];
      readOnly.on('warning', (w) => warnings.push(w));
      const vectors = await readOnly.embeddings('m', fakeEmbed);
      assert.equal(vectors.get('alice')?.length, 2);
      assert.match(warnings.join('\n'), /not saved.*read-only/s);
      const refused = await expectGalleryError(readOnly.addCrops('Bob', [{ image: crop(3) }]), 'ERR_GALLERY_READ_ONLY');
      assert.match(refused.message, /read-only.*Recognition works/);
      await expectGalleryError(readOnly.forget('Alice'), 'ERR_GALLERY_READ_ONLY');
      await expectGalleryError(readOnly.rename('Alice', 'Alicia'), 'ERR_GALLERY_READ_ONLY');
      await expectGalleryError(Gallery.open(path.join(mountPoint, 'new'), { create: true }), 'ERR_GALLERY_READ_ONLY');
      assert.deepEqual(await snapshot(dir), before);
    });

    it('a full disk: recognition works, a change fails with ERR_NO_SPACE and changes nothing, and works once space is back', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }]);
      sh(`dd if=/dev/zero of='${mountPoint}/filler' bs=64k 2>/dev/null || true`);
      const before = await snapshot(dir);
      const warnings: string[] = [];
      gallery.on('warning', (w) => warnings.push(w));
      assert.equal((await gallery.embeddings('m', fakeEmbed)).get('alice')?.length, 1);
      assert.match(warnings.join('\n'), /not saved.*No space/s);
      await expectGalleryError(gallery.addCrops('Bob', [{ image: crop(5) }, { image: crop(6) }]), 'ERR_NO_SPACE');
      await expectGalleryError(gallery.forget('Alice'), 'ERR_NO_SPACE');
      assert.deepEqual(await snapshot(dir), before);
      await fsp.rm(path.join(mountPoint, 'filler'));
      await gallery.addCrops('Bob', [{ image: crop(5) }]);
      assert.deepEqual(
        (await Gallery.open(dir)).listPeople().map((p) => p.name),
        ['Alice', 'Bob'],
      );
    });
  });

  describe('crash safety', function () {
    this.timeout(120_000);
    const childScript = path.join(__dirname, 'gallery-crash-child.js');
    let children: ChildProcess[] = [];

    afterEach(() => {
      for (const c of children) c.kill('SIGKILL');
      children = [];
    });

    interface Report {
      op: 'ready' | 'begin' | 'done';
      kind?: 'add' | 'grow' | 'rename' | 'forget';
      name?: string;
      to?: string;
      id?: string;
      files?: string[];
    }

    /** Runs the child until a random moment after it is ready, SIGKILLs it and returns what it reported. */
    function runAndKill(run: number, delayMs: number): Promise<Report[]> {
      return new Promise((resolve, reject) => {
        const reports: Report[] = [];
        let buffered = '';
        let stderr = '';
        const current = spawn(process.execPath, [childScript, 'crash', dir, String(run)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(current);
        current.stdout.setEncoding('utf8');
        current.stdout.on('data', (chunk: string) => {
          buffered += chunk;
          let newline: number;
          while ((newline = buffered.indexOf('\n')) >= 0) {
            const report = JSON.parse(buffered.slice(0, newline)) as Report;
            buffered = buffered.slice(newline + 1);
            reports.push(report);
            if (report.op === 'ready') setTimeout(() => current.kill('SIGKILL'), delayMs);
          }
        });
        current.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        current.on('error', reject);
        current.on('close', (code, signal) => {
          if (signal !== 'SIGKILL') reject(new Error(`child exited on its own (${code}): ${stderr}`));
          else resolve(reports);
        });
      });
    }

    it('keeps every completed add, grow, rename and forget across 30 SIGKILLs, every 4th with the index lost too', async function () {
      const model = new Map<string, { id: string; files: Set<string> }>();
      const forgotten = new Set<string>();
      let completed = 0;
      for (let run = 1; run <= 30; run++) {
        const delayMs = Math.floor(Math.random() * 400);
        const reports = await runAndKill(run, delayMs);
        let inFlight: Report | undefined;
        for (const report of reports) {
          if (report.op === 'begin') inFlight = report;
          if (report.op !== 'done') continue;
          inFlight = undefined;
          completed++;
          if (report.kind === 'add') model.set(report.name!, { id: report.id!, files: new Set(report.files) });
          if (report.kind === 'grow') for (const file of report.files!) model.get(report.name!)!.files.add(file);
          if (report.kind === 'rename') {
            model.set(report.to!, model.get(report.name!)!);
            model.delete(report.name!);
          }
          if (report.kind === 'forget') {
            model.delete(report.name!);
            forgotten.add(report.id!);
          }
        }
        const indexLost = run % 4 === 0;
        if (indexLost) await fsp.rm(path.join(dir, 'gallery.json'), { force: true });
        const where = `run ${run} (kill after ${delayMs} ms${indexLost ? ', index lost' : ''}, in flight: ${JSON.stringify(inFlight)})`;

        const gallery = await Gallery.open(dir);
        // The change in flight at the kill happened whole or not at all; adopt what it did.
        if (inFlight?.kind === 'add') {
          const person = gallery.getPerson(inFlight.name!);
          if (person) {
            assert.ok(indexLost ? person.crops.length >= 1 : person.crops.length === 2, `${where}: a half add`);
            model.set(person.name, { id: person.id, files: new Set(person.crops.map((c) => c.file)) });
          }
        } else if (inFlight?.kind === 'grow') {
          const person = gallery.getPerson(inFlight.name!)!;
          assert.ok(person.crops.length - model.get(inFlight.name!)!.files.size <= 1, where);
          for (const c of person.crops) model.get(inFlight.name!)!.files.add(c.file);
        } else if (inFlight?.kind === 'rename') {
          const renamed = gallery.listPeople().some((p) => p.name === inFlight.to);
          assert.notEqual(
            renamed,
            gallery.listPeople().some((p) => p.name === inFlight.name),
            `${where}: exactly one of the names`,
          );
          if (renamed) {
            model.set(inFlight.to!, model.get(inFlight.name!)!);
            model.delete(inFlight.name!);
          }
        } else if (inFlight?.kind === 'forget') {
          if (!gallery.getPerson(inFlight.id!)) {
            model.delete(inFlight.name!);
            forgotten.add(inFlight.id!);
          }
        }
        assert.deepEqual(
          gallery
            .listPeople()
            .map((p) => p.name)
            .sort(),
          [...model.keys()].sort(),
          `${where}: the people`,
        );
        for (const [name, expected] of model) {
          const person = gallery.getPerson(name)!;
          assert.equal(person.id, expected.id, where);
          assert.deepEqual(new Set(person.crops.map((c) => c.file)), expected.files, `${where}: crops of ${name}`);
          // The folder holds exactly what the index references: nothing torn, nothing left over.
          const onDisk = (await fsp.readdir(path.join(dir, 'people', person.id))).sort();
          assert.deepEqual(
            onDisk,
            [...person.crops.map((c) => c.file), 'person.json'].sort(),
            `${where}: folder of ${name}`,
          );
        }
        for (const id of forgotten)
          await assert.rejects(fsp.stat(path.join(dir, 'people', id)), `${where}: ${id} was forgotten`);
        for (const person of gallery.listPeople().filter((p) => p.name.startsWith(`Run ${run} `))) {
          for (const image of await gallery.loadCrops(person.id)) assert.equal(image.data.length, 112 * 112 * 3);
        }
      }
      assert.ok(completed >= 30, `only ${completed} changes completed across 30 runs`);
    });

    it('two processes writing one gallery at once lose nothing (6 trials of 2 x 8 enrolments)', async function () {
      const write = (galleryDir: string, prefix: string) =>
        new Promise<void>((resolve, reject) => {
          let stderr = '';
          const current = spawn(process.execPath, [childScript, 'write', galleryDir, prefix, '8'], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          children.push(current);
          current.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
          current.on('close', (code) =>
            code === 0 ? resolve() : reject(new Error(`writer ${prefix} failed: ${stderr}`)),
          );
        });
      for (let trial = 0; trial < 6; trial++) {
        const galleryDir = path.join(tempRoot, `shared-${trial}`);
        await Promise.all([write(galleryDir, 'North'), write(galleryDir, 'South')]);
        const names = (await Gallery.open(galleryDir)).listPeople().map((p) => p.name);
        assert.equal(names.length, 16, `trial ${trial}: ${names.length} of 16 people: ${names.join(', ')}`);
      }
    });
  });
});
