import { strict as assert } from 'node:assert';
import { intersectionOverUnion, type Box } from '../../../nodes/core/media/image';
import {
  VisitTracker,
  type FrameIdentity,
  type LeftEvent,
  type RecognizedEvent,
  type TrackedFace,
  type UnknownEvent,
  type VisitEvent,
} from '../../../nodes/core/identify/visits';

const FRAME_MS = 100; // 10 fps

function person(name: string, cosine = 0.7): FrameIdentity {
  return { name, known: true, cosine, confidence: 0.9 };
}
function stranger(cosine = 0.2): FrameIdentity {
  return { name: 'unknown', known: false, cosine, confidence: 0.1 };
}
function box(x: number, y = 100, size = 100): Box {
  return { x, y, width: size, height: size };
}

type Crop = string;

/** Feeds frames at 10 fps from `start`; `face(i)` gives frame i's faces. Returns all events. */
function feed(
  tracker: VisitTracker<Crop>,
  start: number,
  frames: number,
  face: (i: number) => TrackedFace<Crop>[],
): VisitEvent<Crop>[] {
  const events: VisitEvent<Crop>[] = [];
  for (let i = 0; i < frames; i++) events.push(...tracker.update(start + i * FRAME_MS, face(i)));
  return events;
}

const recognized = (events: VisitEvent<Crop>[]) => events.filter((e): e is RecognizedEvent<Crop> => e.type === 'recognized');
const unknowns = (events: VisitEvent<Crop>[]) => events.filter((e): e is UnknownEvent<Crop> => e.type === 'unknown');
const lefts = (events: VisitEvent<Crop>[]) => events.filter((e): e is LeftEvent => e.type === 'left');

describe('core/tracker', () => {
  it('computes IoU, with degenerate boxes never matching', () => {
    assert.equal(intersectionOverUnion(box(0), box(0)), 1);
    assert.equal(intersectionOverUnion(box(0), box(200)), 0);
    assert.ok(Math.abs(intersectionOverUnion(box(0), box(50)) - 1 / 3) < 1e-12);
    assert.equal(intersectionOverUnion({ x: 0, y: 0, width: 0, height: 0 }, { x: 0, y: 0, width: 0, height: 0 }), 0);
  });

  it('follows a person walking across as one track and recognizes them once', () => {
    const tracker = new VisitTracker<Crop>({ camera: 'front_door' });
    const cosines = [0.6, 0.65, 0.62, 0.8, 0.7, 0.75, 0.66, 0.7, 0.71, 0.69];
    const events = feed(tracker, 0, 10, (i) => [
      { box: box(20 + i * 15), identity: person('Alice', cosines[i]), crop: `crop-${i}` },
    ]);
    const [r, ...more] = recognized(events);
    assert.equal(more.length, 0);
    assert.equal(r.name, 'Alice');
    assert.equal(r.trackId, 'front_door-1');
    assert.equal(r.firstSeen, 0);
    // Confirmed on the third frame: best of what had been seen by then.
    assert.equal(r.cosine, 0.65);
    assert.equal(r.crop, 'crop-1');
    assert.deepEqual(r.box, box(35));
    assert.equal(events.indexOf(r), 0);
    assert.deepEqual(tracker.size(), { tracks: 1, visits: 1 });

    // Long enough after 'recognized' that the cooldown is over: 'left' follows the track's end.
    assert.deepEqual(tracker.tick(61_000), [
      { type: 'left', trackId: 'front_door-1', name: 'Alice', firstSeen: 0, lastSeen: 900, duration: 900 },
    ]);
    assert.deepEqual(tracker.size(), { tracks: 0, visits: 0 });
  });

  it('numbers tracks without a prefix when no camera is given', () => {
    const tracker = new VisitTracker<Crop>();
    const events = feed(tracker, 0, 3, () => [{ box: box(0), identity: person('Alice') }]);
    assert.equal(recognized(events)[0].trackId, '1');
    assert.equal(recognized(events)[0].crop, undefined);
  });

  it('confirms one person through flicker (1 wrong frame in 5) and never the flicker', () => {
    for (const wrong of [person('Bob'), stranger()]) {
      const tracker = new VisitTracker<Crop>();
      const events = feed(tracker, 0, 40, (i) => [{ box: box(100 + i), identity: i % 5 === 2 ? wrong : person('Alice') }]);
      assert.deepEqual(events.map((e) => [e.type, e.name]), [['recognized', 'Alice']]);
    }
  });

  it('does not confirm a flicker where no name holds 60% of the votes', () => {
    const tracker = new VisitTracker<Crop>();
    const names = ['Alice', 'Bob', 'Carol'];
    const events = feed(tracker, 0, 40, (i) => [{ box: box(100), identity: person(names[i % 3]) }]);
    assert.deepEqual(events, []);
    // Never confirmed: ending it emits no 'left' either.
    assert.deepEqual(tracker.tick(10_000), []);
    assert.deepEqual(tracker.size(), { tracks: 0, visits: 0 });
  });

  it('confirms at exactly the 60% boundary (3 of 5), not below it (2 of 4)', () => {
    const tracker = new VisitTracker<Crop>();
    const ids = [person('Alice'), person('Bob'), person('Alice'), person('Bob')];
    assert.deepEqual(feed(tracker, 0, 4, (i) => [{ box: box(0), identity: ids[i] }]), []);
    assert.deepEqual(tracker.update(400, [{ box: box(0), identity: person('Alice') }]).map((e) => e.type === 'recognized' && e.name), ['Alice']);
  });

  it('reports a stranger once, with the largest face, and its left right away', () => {
    const tracker = new VisitTracker<Crop>({ camera: 'porch' });
    const sizes = [80, 90, 120, 100, 95, 90, 90, 90];
    const events = feed(tracker, 0, 8, (i) => [{ box: box(100, 100, sizes[i]), identity: stranger(0.1 + i / 100), crop: `c${i}` }]);
    const [u, ...more] = unknowns(events);
    assert.equal(more.length, 0);
    assert.equal(recognized(events).length, 0);
    assert.equal(u.name, 'unknown');
    assert.equal(u.trackId, 'porch-1');
    assert.equal(events.indexOf(u), 0);
    assert.equal(u.crop, 'c2');
    assert.equal(u.cosine, 0.1 + 2 / 100);
    // Confirmed on the fifth unknown vote, not earlier.
    assert.equal(unknowns(feed(new VisitTracker<Crop>(), 0, 4, () => [{ box: box(0), identity: stranger() }])).length, 0);
    // Strangers are not held by the cooldown.
    assert.deepEqual(tracker.tick(700 + 1500), [
      { type: 'left', trackId: 'porch-1', name: 'unknown', firstSeen: 0, lastSeen: 700, duration: 700 },
    ]);
  });

  it('prefers a known person who reaches confirmation before the stranger count does', () => {
    const tracker = new VisitTracker<Crop>();
    // U U A A A: Alice has 3 of 5 votes (60%) before 'unknown' reaches 5.
    const ids = [stranger(), stranger(), person('Alice'), person('Alice'), person('Alice'), stranger(), stranger(), stranger()];
    const events = feed(tracker, 0, ids.length, (i) => [{ box: box(0), identity: ids[i] }]);
    assert.deepEqual(events.map((e) => e.type), ['recognized']);
  });

  it('tracks two people at once and gives each track the right name', () => {
    const tracker = new VisitTracker<Crop>({ camera: 'hall' });
    // Alice walks right from the left, Bob walks left from the right; they never overlap.
    const events = feed(tracker, 0, 12, (i) => [
      { box: box(600 - i * 10, 300), identity: person('Bob', 0.6 + i / 100), crop: `bob-${i}` },
      { box: box(50 + i * 10, 100), identity: person('Alice', 0.7 + i / 100), crop: `alice-${i}` },
    ]);
    const byName = new Map(recognized(events).map((e) => [e.name, e]));
    assert.equal(recognized(events).length, 2);
    const alice = byName.get('Alice')!;
    const bob = byName.get('Bob')!;
    assert.notEqual(alice.trackId, bob.trackId);
    assert.equal(bob.trackId, 'hall-1'); // first face in the first frame
    assert.equal(alice.trackId, 'hall-2');
    assert.equal(alice.crop, 'alice-2');
    assert.equal(bob.crop, 'bob-2');
    assert.ok(alice.box.y === 100 && bob.box.y === 300);

    const out = tracker.tick(61_000);
    assert.deepEqual(lefts(out).map((e) => [e.name, e.trackId]).sort(), [['Alice', 'hall-2'], ['Bob', 'hall-1']]);
  });

  it('recognizes a person again when they come back after the cooldown', () => {
    const tracker = new VisitTracker<Crop>({ cooldownMs: 60_000 });
    const first = feed(tracker, 0, 10, () => [{ box: box(0), identity: person('Alice') }]);
    assert.equal(recognized(first).length, 1);
    // The track ended at 900 + 1500, but the 'left' of a short visit waits out the cooldown.
    assert.deepEqual(tracker.tick(5_000), []);
    const left = tracker.tick(60_200);
    assert.deepEqual(left, [{ type: 'left', trackId: '1', name: 'Alice', firstSeen: 0, lastSeen: 900, duration: 900 }]);

    const second = feed(tracker, 70_000, 10, () => [{ box: box(0), identity: person('Alice') }]);
    assert.deepEqual(second.map((e) => e.type), ['recognized']);
    assert.equal(recognized(second)[0].trackId, '2');
    assert.equal(recognized(second)[0].firstSeen, 70_000);
  });

  it('merges a return within the cooldown: no second recognized, one left at the end of the last track', () => {
    const tracker = new VisitTracker<Crop>({ cooldownMs: 60_000 });
    const events: VisitEvent<Crop>[] = [];
    events.push(...feed(tracker, 0, 10, () => [{ box: box(0), identity: person('Alice') }]));
    events.push(...tracker.tick(5_000)); // first track over
    assert.equal(tracker.size().tracks, 0);
    // Back at 20 s, somewhere else in the frame, and still there at 69.9 s, past the cooldown.
    events.push(...feed(tracker, 20_000, 500, () => [{ box: box(400), identity: person('Alice') }]));
    assert.deepEqual(events.map((e) => e.type), ['recognized']);
    // A visit longer than the cooldown: 'left' comes as soon as its last track ends.
    assert.deepEqual(tracker.tick(69_900 + 1_499), []);
    assert.deepEqual(tracker.tick(69_900 + 1_500), [
      { type: 'left', trackId: '1', name: 'Alice', firstSeen: 0, lastSeen: 69_900, duration: 69_900 },
    ]);
    assert.deepEqual(tracker.size(), { tracks: 0, visits: 0 });
  });

  it('merges a track split (box jump) while the first track is still alive', () => {
    const tracker = new VisitTracker<Crop>({ cooldownMs: 1_000 });
    const events = feed(tracker, 0, 100, (i) => [{ box: box(i < 50 ? 0 : 500), identity: person('Alice') }]);
    // The second track is confirmed long after the cooldown but while the visit is open.
    assert.deepEqual(events.map((e) => e.type), ['recognized']);
    assert.deepEqual(tracker.tick(20_000), [
      { type: 'left', trackId: '1', name: 'Alice', firstSeen: 0, lastSeen: 9_900, duration: 9_900 },
    ]);
  });

  it('keeps the first confirmation when the identity later switches', () => {
    const tracker = new VisitTracker<Crop>({ cooldownMs: 0 });
    const events = feed(tracker, 0, 40, (i) => [{ box: box(0), identity: person(i < 3 ? 'Alice' : 'Bob') }]);
    events.push(...tracker.tick(10_000));
    assert.deepEqual(events.map((e) => [e.type, e.name]), [['recognized', 'Alice'], ['left', 'Alice']]);
  });

  it('ends tracks on tick when frames stop', () => {
    const tracker = new VisitTracker<Crop>({ cooldownMs: 500 });
    feed(tracker, 0, 10, () => [{ box: box(0), identity: person('Alice') }]);
    assert.deepEqual(tracker.tick(900 + 1_499), []);
    assert.equal(tracker.size().tracks, 1);
    assert.deepEqual(tracker.tick(900 + 1_500).map((e) => e.type), ['left']);
    assert.deepEqual(tracker.size(), { tracks: 0, visits: 0 });
    // A clock stepping back does not bring anything back.
    assert.deepEqual(tracker.tick(0), []);
  });

  it('keeps a track alive through quality-failed faces without letting them vote', () => {
    const tracker = new VisitTracker<Crop>();
    // 2 Alice votes, then 3 s (twice maxMissedMs) of null identities, then one more vote.
    const ids: (FrameIdentity | null)[] = [person('Alice'), person('Alice'), ...Array<null>(30).fill(null), person('Alice')];
    const events = feed(tracker, 0, ids.length, (i) => [{ box: box(i), identity: ids[i] }]);
    assert.deepEqual(events.map((e) => e.type), ['recognized']);
    const r = recognized(events)[0];
    assert.equal(r.trackId, '1'); // the same track all along
    assert.equal(r.firstSeen, 0);

    // Null-only tracks never confirm and never emit.
    const quiet = new VisitTracker<Crop>();
    assert.deepEqual(feed(quiet, 0, 50, () => [{ box: box(0), identity: null }]), []);
    assert.deepEqual(quiet.tick(100_000), []);
  });

  it('rejects invalid options and timestamps', () => {
    assert.throws(() => new VisitTracker({ minVoteShare: 0.5 }), RangeError);
    assert.throws(() => new VisitTracker({ confirmFrames: 0 }), RangeError);
    assert.throws(() => new VisitTracker({ iouThreshold: 0 }), RangeError);
    assert.throws(() => new VisitTracker().update(Number.NaN, []), TypeError);
  });

  it('stays bounded over 100k frames of people and strangers coming and going', () => {
    // Deterministic PRNG (mulberry32) so a failure reproduces.
    let seed = 12345;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const people = Array.from({ length: 8 }, (_, i) => `person-${i}`);
    interface Actor { name: string | null; x: number; y: number; vx: number; until: number }
    let actors: Actor[] = [];
    const tracker = new VisitTracker<Crop>({ camera: 'soak', cooldownMs: 30_000 });
    let maxTracks = 0;
    let maxVisits = 0;
    const counts = { recognized: 0, unknown: 0, leftPerson: 0, leftStranger: 0 };
    const count = (events: VisitEvent<Crop>[]) => {
      for (const e of events) {
        if (e.type === 'recognized') counts.recognized++;
        else if (e.type === 'unknown') counts.unknown++;
        else if (e.name === 'unknown') counts.leftStranger++;
        else counts.leftPerson++;
      }
    };

    const FRAMES = 100_000;
    for (let f = 0; f < FRAMES; f++) {
      const now = f * FRAME_MS;
      actors = actors.filter((a) => a.until > now);
      // Mostly one or two faces, sometimes an empty scene for a while.
      if (actors.length < 3 && random() < 0.01) {
        actors.push({
          name: random() < 0.8 ? people[Math.floor(random() * people.length)] : null,
          x: random() * 1500, y: random() * 800, vx: random() * 6 - 3,
          until: now + 1_000 + random() * 60_000,
        });
      }
      const faces: TrackedFace<Crop>[] = actors.map((a) => {
        a.x += a.vx;
        const r = random();
        const identity = r < 0.15 ? null
          : r < 0.25 ? person(people[Math.floor(random() * people.length)]) // flicker
            : a.name === null ? stranger() : person(a.name);
        return { box: box(a.x, a.y, 120), identity, crop: `frame-${f}` };
      });
      count(tracker.update(now, faces));
      const s = tracker.size();
      maxTracks = Math.max(maxTracks, s.tracks);
      maxVisits = Math.max(maxVisits, s.visits);
    }
    count(tracker.tick(FRAMES * FRAME_MS + 100_000));

    // Tracks: at most the actors in view plus a few fragments awaiting expiry; visits: at most one per person.
    assert.ok(maxTracks <= 12, `max tracks ${maxTracks}`);
    assert.ok(maxVisits <= people.length, `max visits ${maxVisits}`);
    assert.deepEqual(tracker.size(), { tracks: 0, visits: 0 });
    assert.ok(counts.recognized > 50 && counts.unknown > 10, JSON.stringify(counts));
    // Every confirmation was closed by exactly one 'left'.
    assert.equal(counts.leftPerson, counts.recognized);
    assert.equal(counts.leftStranger, counts.unknown);
  });
});
