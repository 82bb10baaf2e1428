/**
 * The classifier's trackers per camera: bounded in number, dropped when idle,
 * and never at the cost of a visit (its 'left' always comes).
 */
import { strict as assert } from 'assert';
import { RepeatedWarning } from '../../../nodes/core/common/repeated-warning';
import { TrackerRegistry } from '../../../nodes/core/identify/tracker-registry';
import { VisitEvent, VisitTracker, type TrackedFace } from '../../../nodes/core/identify/visits';

const box = { x: 10, y: 10, width: 80, height: 80 };
// Alice's face and a stranger's, as embeddings the tracker names through `identify`.
const stranger: TrackedFace = { box, embedding: [0, 1, 0] };
const alice: TrackedFace = { box, embedding: [1, 0, 0] };
const identify = (embedding: Float32Array) =>
  embedding[0] > 0.5
    ? { name: 'Alice', known: true, cosine: 0.8, confidence: 0.9 }
    : { name: 'unknown', known: false, cosine: 0.1, confidence: 0.1 };

function registry(options: { maxTrackers?: number; idleMs?: number } = {}) {
  const created: string[] = [];
  const r = new TrackerRegistry<VisitEvent, VisitTracker>((camera) => {
    created.push(camera);
    return new VisitTracker({
      camera,
      identify,
      confirmFrames: 3,
      unknownFrames: 5,
      maxMissedMs: 1000,
      cooldownMs: 60_000,
    });
  }, options);
  return { r, created };
}

describe('core/identify: tracker registry', () => {
  it('20,000 distinct topics: never more trackers than the bound, none left once idle', () => {
    const { r } = registry({ maxTrackers: 500, idleMs: 5000 });
    let now = 1_000_000;
    let most = 0;
    for (let i = 0; i < 20_000; i++) {
      now += 5; // 200 photos a second, each track lives 1 s
      // A photo per topic: one face, one vote, no visit (a track needs more votes to confirm).
      const tracker = r.get(`photo-${i}.jpg`, now);
      assert.ok(tracker, `topic ${i} got a tracker`);
      tracker.update(now, [stranger]);
      if (i % 250 === 0) r.tick(now);
      most = Math.max(most, r.size);
    }
    assert.ok(most <= 500, `at most ${most}`);
    r.tick(now + 1000); // tracks end
    assert.ok(r.size > 0);
    r.tick(now + 5000); // and idle trackers go
    assert.equal(r.size, 0);
  });

  it('a tracker with an open visit is never dropped: its left comes; a new camera waits for room', () => {
    const { r } = registry({ maxTrackers: 2, idleMs: 0 });
    const events: VisitEvent[] = [];
    let now = 0;
    for (const camera of ['door', 'hall']) {
      for (let i = 0; i < 3; i++) events.push(...r.get(camera, (now += 100))!.update(now, [alice]));
    }
    assert.deepEqual(
      events.map((e) => e.type),
      ['recognized', 'recognized'],
    );
    // Both hold Alice's open visit (60 s cooldown): a third camera gets no tracker.
    assert.equal(r.get('garden', (now += 100)), undefined);
    const left: string[] = [];
    for (const t of [now + 5000, now + 30_000])
      for (const { key, events: e } of r.tick(t)) left.push(...e.map((v) => `${key}:${v.type}`));
    assert.equal(left.length, 0, `no visit cut short: ${left.join(', ')}`);
    assert.equal(r.size, 2);
    // The cooldown runs out: each visit sends its left, then the trackers may go.
    for (const { key, events: e } of r.tick(now + 61_000)) left.push(...e.map((v) => `${key}:${v.type}`));
    assert.deepEqual(left.sort(), ['door:left', 'hall:left']);
    assert.ok(r.get('garden', now + 61_001), 'room for the new camera');
  });

  it('at the bound, a new camera takes the place of the least recently used empty tracker', () => {
    const { r, created } = registry({ maxTrackers: 3, idleMs: 3_600_000 });
    r.get('a', 1);
    r.get('b', 2);
    r.get('c', 3);
    r.get('a', 4); // a is used again: b is now the least recently used
    r.get('d', 5);
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((k) => r.has(k)),
      [true, false, true, true],
    );
    assert.deepEqual(created, ['a', 'b', 'c', 'd']);
  });

  it('idle: an empty tracker goes after idleMs without frames, a camera that keeps sending stays', () => {
    const { r } = registry({ maxTrackers: 10, idleMs: 10_000 });
    r.get('quiet', 0)!.update(0, []);
    for (let t = 0; t <= 20_000; t += 500) {
      r.get('busy', t)!.update(t, []); // frames with nobody in view
      r.tick(t);
      if (t < 10_000) assert.ok(r.has('quiet'), `quiet still there at ${t}`);
    }
    assert.equal(r.has('quiet'), false);
    assert.equal(r.has('busy'), true);
  });

  it('a repeated warning: the first at once, then once per interval with the count held back; a new one at once', () => {
    const w = new RepeatedWarning(60_000);
    assert.deepEqual(w.next('wrong password', 0), { repeats: 0 });
    assert.equal(w.next('wrong password', 30_000), null);
    assert.equal(w.next('wrong password', 59_999), null);
    assert.deepEqual(w.next('wrong password', 60_000), { repeats: 2 });
    assert.deepEqual(w.next('unreachable', 60_001), { repeats: 0 });
    w.reset();
    assert.deepEqual(w.next('unreachable', 60_002), { repeats: 0 });
  });
});
