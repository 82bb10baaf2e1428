/** The visit store on a real disk: paging, bounds, crash leftovers, changes as lines, privacy. */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { VisitStore, type VisitInput } from '../../../nodes/core/library/visit-store';

const DAY = 86_400_000;

function visit(time: number, overrides: Partial<VisitInput> = {}): VisitInput {
  return {
    time,
    camera: 'door',
    kind: 'unknown',
    name: 'unknown',
    personId: null,
    reason: 'below-threshold',
    closest: 'Alice',
    cosine: 0.3,
    margin: 0.1,
    trackId: `door-${time}`,
    embedding: Float32Array.from({ length: 8 }, (_, i) => Math.sin(time + i)),
    crop: Buffer.from(`jpeg ${time}`),
    ...overrides,
  };
}

describe('library: visit store', function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-visits-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('pages newest first with filters, and reopens to the same visits with their embeddings and crops', async () => {
    const store = await VisitStore.open(dir);
    const now = Date.now();
    for (let i = 0; i < 30; i++) {
      await store.add(
        visit(
          now - (30 - i) * 1000,
          i % 3 === 0
            ? { kind: 'recognized', name: 'Alice', personId: 'alice', camera: i % 2 ? 'door' : 'yard' }
            : { camera: i % 2 ? 'door' : 'yard' },
        ),
      );
    }
    const first = store.query({ limit: 7 });
    assert.equal(first.total, 30);
    assert.equal(first.visits.length, 7);
    assert.ok(
      first.visits.every((v, i) => i === 0 || v.time < first.visits[i - 1].time),
      'newest first',
    );
    const seen = new Set(first.visits.map((v) => v.id));
    let next = first.next;
    while (next) {
      const page = store.query({ limit: 7, before: next });
      for (const v of page.visits) {
        assert.ok(!seen.has(v.id), 'no visit twice');
        seen.add(v.id);
      }
      next = page.next;
    }
    assert.equal(seen.size, 30);
    assert.equal(store.query({ person: 'Alice' }).total, 10);
    assert.equal(
      store.query({ camera: 'yard', kind: 'unknown' }).visits.every((v) => v.camera === 'yard' && v.kind === 'unknown'),
      true,
    );

    const reopened = await VisitStore.open(dir);
    assert.deepEqual(
      reopened.all().map((v) => v.id),
      store.all().map((v) => v.id),
    );
    const one = reopened.all()[5];
    assert.deepEqual([...one.embedding!], [...store.get(one.id)!.embedding!]);
    assert.equal((await reopened.readCrop(one.id))!.toString(), `jpeg ${one.time}`);
  });

  it('keeps at most maxVisits and nothing older than maxAgeDays, on disk too', async () => {
    const store = await VisitStore.open(dir, { maxVisits: 12, maxAgeDays: 2 });
    const now = Date.now();
    await store.add(visit(now - 3 * DAY)); // too old at once
    for (let i = 0; i < 25; i++) await store.add(visit(now - 1000 + i));
    assert.equal(store.size, 12);
    assert.ok(store.all().every((v) => v.time >= now - 1000 + 13));
    const crops = fs.readdirSync(path.join(dir, 'crops'));
    assert.equal(crops.length, 12, 'crops of pruned visits are deleted');
    const reopened = await VisitStore.open(dir, { maxVisits: 12, maxAgeDays: 2 });
    assert.deepEqual(
      reopened.all().map((v) => v.id),
      store.all().map((v) => v.id),
      'a pruned visit never comes back',
    );
    // Tighter bounds apply at once.
    await reopened.configure({ maxVisits: 10 });
    assert.equal(reopened.size, 10);
    assert.equal(fs.readdirSync(path.join(dir, 'crops')).length, 10);
  });

  it('skips a line torn by a crash and removes crops no line points at', async () => {
    const store = await VisitStore.open(dir);
    const a = await store.add(visit(Date.now() - 2000));
    await store.add(visit(Date.now() - 1000));
    const segment = fs.readdirSync(dir).find((f) => f.endsWith('.jsonl'))!;
    // The process died while writing a line, after writing that visit's crop.
    fs.appendFileSync(path.join(dir, segment), '{"id":"0000000zz-00000000","time":1,"cam');
    fs.writeFileSync(path.join(dir, 'crops', '0000000zz-00000000.jpg'), 'orphan');
    fs.writeFileSync(path.join(dir, 'crops', '.x.jpg.123.abcd.tmp'), 'temp');
    const reopened = await VisitStore.open(dir);
    assert.equal(reopened.size, 2);
    assert.ok(reopened.get(a.id));
    assert.deepEqual(
      fs.readdirSync(path.join(dir, 'crops')).sort(),
      reopened
        .all()
        .map((v) => `${v.id}.jpg`)
        .sort(),
    );
    // And it goes on appending after the torn line.
    await reopened.add(visit(Date.now()));
    assert.equal((await VisitStore.open(dir)).size, 3);
  });

  it('records deletions and labels as lines that survive a reopen', async () => {
    const store = await VisitStore.open(dir);
    const a = await store.add(visit(Date.now() - 3000));
    const b = await store.add(visit(Date.now() - 2000, { kind: 'recognized', name: 'Alice', personId: 'alice' }));
    const c = await store.add(visit(Date.now() - 1000));
    await store.delete([a.id]);
    await store.label([b.id], 'not Alice', { corrected: true });
    await store.label([c.id], 'named Bob', { resolved: true });
    assert.equal(fs.existsSync(path.join(dir, 'crops', `${a.id}.jpg`)), false);
    const reopened = await VisitStore.open(dir);
    assert.equal(reopened.get(a.id), undefined);
    assert.equal(reopened.get(b.id)!.corrected, true);
    assert.equal(reopened.query({ kind: 'unknown' }).total, 2, 'a corrected recognition counts as unknown');
    assert.equal(reopened.get(c.id)!.resolved, true);
    assert.equal(reopened.get(c.id)!.label, 'named Bob');
  });

  it('with face images off stores no crop, and turning them off deletes every stored crop', async () => {
    const store = await VisitStore.open(dir);
    const kept = await store.add(visit(Date.now() - 1000));
    assert.equal(kept.hasCrop, true);
    await store.configure({ keepImages: false });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'crops')), []);
    const none = await store.add(visit(Date.now()));
    assert.equal(none.hasCrop, false);
    assert.ok(none.embedding, 'the embedding is still kept (clustering works without images)');
    assert.equal(await store.readCrop(kept.id), undefined);
    const reopened = await VisitStore.open(dir, { keepImages: false });
    assert.ok(reopened.all().every((v) => !v.hasCrop));
  });

  it('refuses bounds out of range with the allowed range', async () => {
    await assert.rejects(VisitStore.open(dir, { maxVisits: 0 }), /maxVisits must be a whole number from 10/);
    const store = await VisitStore.open(dir);
    assert.throws(() => store.configure({ maxAgeDays: -1 }), /maxAgeDays must be a number from/);
  });
});
