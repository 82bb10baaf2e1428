import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  Gallery,
  GalleryError,
  nodeFileSystem,
  slugify,
  type GalleryChange,
  type GalleryErrorCode,
  type GalleryFileSystem,
} from '../../../nodes/core/gallery/gallery';
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

      // Same person, matched case-insensitively: crops are appended.
      const more = await gallery.addCrops('alice', [{ image: crop(3) }]);
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
      assert.equal(index.version, 1);
      assert.deepEqual(
        index.people.map((p: { id: string; name: string }) => [p.id, p.name]),
        [['alice', 'Alicia']],
      );
      assert.deepEqual(
        (await reopened.loadCrops('alice')).map((image) => Buffer.from(image.data)),
        [crop(1), crop(3)].map((image) => Buffer.from(image.data)),
      );
    });

    it('refuses to rename onto an existing name, but allows a change of case', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      await gallery.addCrops('Alice', [{ image: crop(1) }]);
      await gallery.addCrops('Bob', [{ image: crop(2) }]);
      const error = await expectGalleryError(gallery.rename('Alice', 'bob'), 'ERR_PERSON_EXISTS');
      assert.match(error.message, /another name/);
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
      const second = await gallery.addCrops('Anne Marie', [{ image: crop(2) }]);
      const third = await gallery.addCrops('anne_marie!', [{ image: crop(3) }]);
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
      const newer = JSON.stringify({ format: 'coral-face-gallery', version: 2, people: [], somethingNew: true });
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
      assert.ok(cacheFiles.every((file) => /^[a-z0-9-]+\.json$/.test(file)), cacheFiles.join());
      const cache = JSON.parse(
        await fsp.readFile(path.join(dir, 'embeddings', cacheFiles.find((f) => f.startsWith('mobilefacenet-cpu'))!), 'utf8'),
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
      await expectGalleryError(gallery.embeddings('m', async () => [new Float32Array(4)]), 'ERR_EMBEDDINGS_INVALID');
      await expectGalleryError(
        gallery.embeddings('m', async () => [new Float32Array(4), new Float32Array(5)]),
        'ERR_EMBEDDINGS_INVALID',
      );
      await expectGalleryError(gallery.embeddings('', async () => []), 'ERR_EMBEDDER_INVALID');

      const model = counter(0);
      await gallery.embeddings('m', model.embed);
      const [cacheFile] = await fsp.readdir(path.join(dir, 'embeddings'));
      await fsp.writeFile(path.join(dir, 'embeddings', cacheFile), 'garbage');
      await gallery.embeddings('m', model.embed);
      assert.equal(model.total(), 4);
    });
  });

  describe('orphans', () => {
    it('ignores unreferenced files and cleans them once old enough', async () => {
      const gallery = await Gallery.open(dir, { create: true });
      const alice = await gallery.addCrops('Alice', [{ image: crop(1) }]);
      await fsp.writeFile(path.join(dir, 'people', 'alice', 'zzz-orphan.png'), 'x');
      await fsp.writeFile(path.join(dir, 'people', 'alice', '.gallery.json.1.ab.tmp'), 'x');
      await fsp.mkdir(path.join(dir, 'people', 'ghost'));
      await fsp.writeFile(path.join(dir, 'people', 'ghost', 'a.png'), 'x');
      await fsp.writeFile(path.join(dir, '.gallery.json.99.cd.tmp'), 'x');
      await fsp.writeFile(path.join(dir, 'people', 'README.txt'), 'not ours to delete');

      const reopened = await Gallery.open(dir);
      assert.deepEqual(reopened.listPeople(), [alice]);
      assert.deepEqual(await reopened.cleanOrphans(), [], 'young orphans are left for a grace period');
      const removed = await reopened.cleanOrphans({ minAgeMs: 0 });
      assert.deepEqual(removed.sort(), [
        '.gallery.json.99.cd.tmp',
        'people/alice/.gallery.json.1.ab.tmp',
        'people/alice/zzz-orphan.png',
        'people/ghost',
      ]);
      assert.deepEqual((await fsp.readdir(path.join(dir, 'people'))).sort(), ['README.txt', 'alice']);
      assert.equal((await reopened.loadCrops('Alice')).length, 1);
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

  describe('crash safety', function () {
    this.timeout(60_000);
    const childScript = path.join(__dirname, 'gallery-crash-child.js');
    let child: ChildProcess | undefined;

    afterEach(() => {
      child?.kill('SIGKILL');
    });

    interface Report {
      op: string;
      name?: string;
      files?: string[];
    }

    /** Runs the child until a random moment after it is ready, SIGKILLs it and returns what it reported. */
    function runAndKill(run: number, delayMs: number): Promise<Report[]> {
      return new Promise((resolve, reject) => {
        const reports: Report[] = [];
        let buffered = '';
        let stderr = '';
        child = spawn(process.execPath, [childScript, dir, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
        const current = child;
        current.stdout!.setEncoding('utf8');
        current.stdout!.on('data', (chunk: string) => {
          buffered += chunk;
          let newline: number;
          while ((newline = buffered.indexOf('\n')) >= 0) {
            const report = JSON.parse(buffered.slice(0, newline)) as Report;
            buffered = buffered.slice(newline + 1);
            reports.push(report);
            if (report.op === 'ready') setTimeout(() => current.kill('SIGKILL'), delayMs);
          }
        });
        current.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        current.on('error', reject);
        current.on('close', (code, signal) => {
          if (signal !== 'SIGKILL') reject(new Error(`child exited on its own (${code}): ${stderr}`));
          else resolve(reports);
        });
      });
    }

    it('keeps every reported enrolment across 20 SIGKILLs at random moments', async function () {
      const started = Date.now();
      const expected = new Map<string, Set<string>>();
      let totalReported = 0;
      let unreportedCommits = 0;
      let orphansRemoved = 0;
      for (let run = 1; run <= 20; run++) {
        const delayMs = Math.floor(Math.random() * 300);
        const reports = await runAndKill(run, delayMs);
        for (const report of reports) {
          if (report.op !== 'add') continue;
          totalReported++;
          const files = expected.get(report.name!) ?? new Set<string>();
          for (const file of report.files!) files.add(file);
          expected.set(report.name!, files);
        }

        const gallery = await Gallery.open(dir);
        const unreported = new Map<string, string>();
        for (const [name, files] of expected) {
          const person = gallery.getPerson(name);
          assert.ok(person, `run ${run} (kill after ${delayMs} ms): '${name}' was reported but is missing`);
          const stored = new Set(person.crops.map((c) => c.file));
          for (const file of files) assert.ok(stored.has(file), `run ${run}: crop ${file} of '${name}' is missing`);
        }
        for (const person of gallery.listPeople()) {
          for (const c of person.crops) {
            if (!expected.get(person.name)?.has(c.file)) unreported.set(`${person.id}/${c.file}`, c.addedAt);
          }
        }
        // At most the one operation in flight at the kill can be committed without its report.
        unreportedCommits += new Set(unreported.values()).size;
        assert.ok(new Set(unreported.values()).size <= 1, `run ${run}: ${[...unreported.keys()].join(', ')}`);
        for (const [key] of unreported) {
          const [personId, file] = key.split('/');
          const name = gallery.listPeople().find((p) => p.id === personId)!.name;
          expected.set(name, (expected.get(name) ?? new Set<string>()).add(file));
        }

        // Every committed crop of this run decodes, i.e. no torn PNG was committed.
        for (const person of gallery.listPeople().filter((p) => p.name.startsWith(`Run ${run} `))) {
          for (const image of await gallery.loadCrops(person.id)) assert.equal(image.data.length, 112 * 112 * 3);
        }
        if (run % 5 === 0) orphansRemoved += (await gallery.cleanOrphans({ minAgeMs: 0 })).length;
      }

      const gallery = await Gallery.open(dir);
      orphansRemoved += (await gallery.cleanOrphans({ minAgeMs: 0 })).length;
      // After cleanup, the folder holds exactly what the index references.
      for (const person of gallery.listPeople()) {
        const onDisk = (await fsp.readdir(path.join(dir, 'people', person.id))).sort();
        assert.deepEqual(onDisk, person.crops.map((c) => c.file).sort());
      }
      assert.deepEqual(
        (await fsp.readdir(path.join(dir, 'people'))).sort(),
        gallery.listPeople().map((p) => p.id).sort(),
      );
      if (process.env.CRASH_STATS) console.log({ totalReported, unreportedCommits, orphansRemoved });
      assert.ok(totalReported >= 20, `only ${totalReported} enrolments reported across 20 runs`);
      assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
    });
  });
});
