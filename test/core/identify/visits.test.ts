/**
 * The visit tracker on synthetic embeddings, decided by a real ImprintedHead
 * (the same open-set rule the nodes use): people are random unit vectors,
 * frames are noisy copies of them. test/nodes/visits-demo.test.ts replays the
 * demo clip and real photos through it.
 */
import { strict as assert } from 'node:assert';
import { intersectionOverUnion, type Box } from '../../../nodes/core/media/image';
import { ImprintedHead, l2normalize } from '../../../nodes/core/identify/imprint';
import {
  VisitTracker,
  type FrameIdentity,
  type LeftEvent,
  type RecognizedEvent,
  type TrackedFace,
  type UnknownEvent,
  type VisitEvent,
  type VisitTrackerOptions,
} from '../../../nodes/core/identify/visits';

const FRAME_MS = 100; // 10 fps
const DIM = 64;

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** People as unit vectors, a gallery head over some of them, and noisy frames of anyone. */
class World {
  readonly random: () => number;
  readonly head = new ImprintedHead();
  private readonly faces = new Map<string, Float32Array>();
  constructor(seed = 1) {
    this.random = prng(seed);
  }
  vector(): Float32Array {
    // Sum of uniforms: near-Gaussian, so random vectors are near-orthogonal in 64 dimensions.
    return l2normalize(Array.from({ length: DIM }, () => this.random() + this.random() + this.random() - 1.5));
  }
  face(name: string): Float32Array {
    let v = this.faces.get(name);
    if (!v) this.faces.set(name, (v = this.vector()));
    return v;
  }
  enrol(name: string): void {
    this.head.add(name, this.face(name));
  }
  /** A frame of `name`: its vector plus noise of relative size `noise`. */
  frame(name: string, noise = 0.3): Float32Array {
    const v = this.face(name);
    const n = this.vector();
    return l2normalize(Array.from(v, (x, i) => x + noise * n[i]));
  }
  readonly identify = (embedding: Float32Array): FrameIdentity => {
    const c = this.head.classify(embedding);
    return { name: c.personId ?? 'unknown', known: c.personId !== null, cosine: c.cosine, confidence: c.confidence };
  };
  tracker(options: Omit<VisitTrackerOptions, 'identify'> = {}): VisitTracker<Crop> {
    return new VisitTracker<Crop>({ identify: this.identify, ...options });
  }
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
  scene?: (i: number) => number,
): VisitEvent<Crop>[] {
  const events: VisitEvent<Crop>[] = [];
  for (let i = 0; i < frames; i++) events.push(...tracker.update(start + i * FRAME_MS, face(i), scene?.(i)));
  return events;
}

const recognized = (events: VisitEvent<Crop>[]) =>
  events.filter((e): e is RecognizedEvent<Crop> => e.type === 'recognized');
const unknowns = (events: VisitEvent<Crop>[]) => events.filter((e): e is UnknownEvent<Crop> => e.type === 'unknown');
const lefts = (events: VisitEvent<Crop>[]) => events.filter((e): e is LeftEvent => e.type === 'left');
const summary = (events: VisitEvent<Crop>[]) =>
  events.map((e) => {
    const extra = e.type === 'left' ? (e.revisedTo ? ` ->${e.revisedTo}` : '') : e.revises ? ` <-${e.revises}` : '';
    return `${e.type} ${e.name} ${e.trackId}${extra}`;
  });

describe('core/identify/visits', () => {
  it('computes IoU, with degenerate boxes never matching', () => {
    assert.equal(intersectionOverUnion(box(0), box(0)), 1);
    assert.equal(intersectionOverUnion(box(0), box(200)), 0);
    assert.ok(Math.abs(intersectionOverUnion(box(0), box(50)) - 1 / 3) < 1e-12);
    assert.equal(intersectionOverUnion({ x: 0, y: 0, width: 0, height: 0 }, { x: 0, y: 0, width: 0, height: 0 }), 0);
  });

  it('follows a person walking across as one track and recognizes them once', () => {
    const world = new World();
    world.enrol('Alice');
    world.enrol('Bob');
    const tracker = world.tracker({ camera: 'front_door' });
    const events = feed(tracker, 0, 10, (i) => [
      { box: box(20 + i * 15), embedding: world.frame('Alice'), crop: `crop-${i}` },
    ]);
    assert.deepEqual(summary(events), ['recognized Alice front_door-1']);
    const [r] = recognized(events);
    assert.equal(r.firstSeen, 0);
    assert.equal(r.revises, undefined);
    // Decided on the third frame: the snapshot is one of the three frames seen, with its own box.
    const frame = Number(r.crop!.split('-')[1]);
    assert.ok(frame <= 2, r.crop);
    assert.deepEqual(r.box, box(20 + frame * 15));
    assert.ok(r.cosine > 0.8 && r.confidence > 0.9, JSON.stringify(r));
    assert.deepEqual(tracker.size(), { tracks: 1, visits: 1 });

    // Long enough after 'recognized' that the cooldown is over: 'left' follows the track's end.
    assert.deepEqual(tracker.tick(61_000), [
      { type: 'left', trackId: 'front_door-1', name: 'Alice', firstSeen: 0, lastSeen: 900, duration: 900 },
    ]);
    assert.deepEqual(tracker.size(), { tracks: 0, visits: 0 });
  });

  it('numbers tracks without a prefix when no camera is given', () => {
    const world = new World();
    world.enrol('Alice');
    const events = feed(world.tracker(), 0, 3, () => [{ box: box(0), embedding: world.frame('Alice') }]);
    assert.equal(recognized(events)[0].trackId, '1');
    assert.equal(recognized(events)[0].crop, undefined);
  });

  it('decides on the mean of the frames: noisy frames that each miss still add up to the person', () => {
    const world = new World(7);
    for (const name of ['Alice', 'Bob', 'Carol']) world.enrol(name);
    // At this noise a single frame is mostly below the threshold...
    const frames = Array.from({ length: 30 }, () => world.frame('Alice', 2.2));
    const singleHits = frames.filter((f) => world.identify(f).known).length;
    assert.ok(singleHits < 10, `single frames named: ${singleHits} of 30`);
    // ...but their mean is Alice, and never anyone else.
    const events = feed(world.tracker({ cutCosine: -1 }), 0, frames.length, (i) => [
      { box: box(100 + i), embedding: frames[i] },
    ]);
    const names = new Set(recognized(events).map((e) => e.name));
    assert.deepEqual([...names], ['Alice']);
    assert.equal(events[events.length - 1].type, 'recognized');
  });

  it('reports a stranger once, after 5 frames in a row, and its left right away', () => {
    const world = new World();
    world.enrol('Alice');
    const tracker = world.tracker({ camera: 'porch' });
    assert.equal(feed(tracker, 0, 4, () => [{ box: box(100), embedding: world.frame('Zed') }]).length, 0);
    const events = feed(tracker, 400, 4, (i) => [{ box: box(100), embedding: world.frame('Zed'), crop: `c${i}` }]);
    assert.deepEqual(summary(events), ['unknown unknown porch-1']);
    assert.ok(unknowns(events)[0].crop!.startsWith('c'));
    // Strangers are not held by the cooldown.
    assert.deepEqual(tracker.tick(700 + 1500), [
      { type: 'left', trackId: 'porch-1', name: 'unknown', firstSeen: 0, lastSeen: 700, duration: 700 },
    ]);
  });

  it('corrects a stranger decision when the frames get better (poor first frames): unknown, left, recognized on one track', () => {
    const world = new World(3);
    for (const name of ['Alice', 'Bob']) world.enrol(name);
    // Eight poor frames, then sharp ones. Blur, darkness or motion pull every poor frame the same way
    // (consistent with each other, below the threshold for Alice), so their mean is no better.
    const blur = world.vector();
    const poor = Array.from({ length: 8 }, () =>
      l2normalize(Array.from(world.frame('Alice', 0.2), (x, i) => 0.4 * x + 0.9 * blur[i])),
    );
    assert.ok(poor.every((p) => !world.identify(p).known));
    const tracker = world.tracker({ camera: 'door', cooldownMs: 1000 });
    const events = feed(tracker, 0, 40, (i) => [
      { box: box(200), embedding: i < poor.length ? poor[i] : world.frame('Alice', 0.2), crop: `f${i}` },
    ]);
    assert.deepEqual(summary(events), [
      'unknown unknown door-1',
      'left unknown door-1 ->Alice',
      'recognized Alice door-1 <-unknown',
    ]);
    const left = lefts(events)[0];
    assert.equal(left.firstSeen, 0);
    // The snapshot comes from the frames that convinced it.
    assert.ok(Number(recognized(events)[0].crop!.slice(1)) >= poor.length);
    assert.deepEqual(summary(tracker.tick(40 * FRAME_MS + 2000)), ['left Alice door-1']);
  });

  it('recognizes a person enrolled while in view on the same track, in the same visit', () => {
    const world = new World(5);
    world.enrol('Alice');
    const tracker = world.tracker({ camera: 'hall' });
    const before = feed(tracker, 0, 20, () => [{ box: box(300), embedding: world.frame('Sam') }]);
    assert.deepEqual(summary(before), ['unknown unknown hall-1']);
    world.enrol('Sam'); // walk-up enrolment finishes
    const after = feed(tracker, 2000, 5, () => [{ box: box(300), embedding: world.frame('Sam') }]);
    assert.deepEqual(summary(after), ['left unknown hall-1 ->Sam', 'recognized Sam hall-1 <-unknown']);
    assert.equal(recognized(after)[0].firstSeen, 0);
  });

  it('corrects a wrong name to the right one, closing the wrong visit at once', () => {
    const world = new World(11);
    world.enrol('Alice');
    world.enrol('Bob');
    const a = world.face('Alice');
    const b = world.face('Bob');
    // Bob's first frames, half turned away, look more like Alice; then he faces the camera.
    const lookalike = l2normalize(Array.from(a, (x, i) => 0.8 * x + 0.6 * b[i]));
    const tracker = world.tracker({ cooldownMs: 60_000 });
    const events = feed(tracker, 0, 20, (i) => [
      { box: box(0), embedding: i < 3 ? lookalike : world.frame('Bob', 0.2) },
    ]);
    assert.deepEqual(summary(events), ['recognized Alice 1', 'left Alice 1 ->Bob', 'recognized Bob 1 <-Alice']);
    // Alice's wrong visit is gone (no left after the cooldown); Bob's closes normally.
    assert.deepEqual(summary(tracker.tick(70_000)), ['left Bob 1']);
  });

  it('announces each name at most once per track: a reading that wavers cannot flap alerts', () => {
    // A scripted reading: 10 frames unknown, 10 Alice, 10 unknown, 10 Alice...
    let frame = 0;
    const tracker = new VisitTracker<Crop>({
      identify: () =>
        Math.floor(frame / 10) % 2 === 0
          ? { name: 'unknown', known: false, cosine: 0.3, confidence: 0.5 }
          : { name: 'Alice', known: true, cosine: 0.6, confidence: 0.9 },
      cooldownMs: 0,
    });
    const events: VisitEvent<Crop>[] = [];
    const unit = l2normalize(Array.from({ length: DIM }, (_, i) => (i === 0 ? 1 : 0)));
    for (frame = 0; frame < 60; frame++)
      events.push(...tracker.update(frame * FRAME_MS, [{ box: box(0), embedding: unit }]));
    events.push(...tracker.tick(100_000));
    assert.deepEqual(summary(events), [
      'unknown unknown 1',
      'left unknown 1 ->Alice',
      'recognized Alice 1 <-unknown',
      'left Alice 1',
    ]);
  });

  it('starts a new track when another face takes the same spot (the embedding no longer matches)', () => {
    const world = new World(13);
    world.enrol('Alice');
    const tracker = world.tracker({ cooldownMs: 0 });
    // A hard cut with no scene number: Alice, then a stranger exactly where she was.
    const events = feed(tracker, 0, 20, (i) => [{ box: box(0), embedding: world.frame(i < 10 ? 'Alice' : 'Zed') }]);
    assert.deepEqual(summary(events), ['recognized Alice 1', 'left Alice 1', 'unknown unknown 2']);
  });

  it('ends every track when the scene number changes, before matching the new frame', () => {
    const world = new World(17);
    world.enrol('Alice');
    const tracker = world.tracker({ cooldownMs: 10_000 });
    // Same person, same place, but the picture cut (e.g. the stream reconnected): a new track, merged into her visit.
    const events = feed(
      tracker,
      0,
      20,
      () => [{ box: box(0), embedding: world.frame('Alice') }],
      (i) => (i < 10 ? 1 : 2),
    );
    assert.deepEqual(summary(events), ['recognized Alice 1']);
    assert.equal(tracker.size().tracks, 1);
    const strangers = world.tracker();
    const cut = feed(
      strangers,
      0,
      20,
      () => [{ box: box(0), embedding: world.frame('Zed') }],
      (i) => (i < 10 ? 1 : 2),
    );
    // A stranger cannot be merged: the cut closes the first stranger visit, the second is its own.
    assert.deepEqual(summary(cut), ['unknown unknown 1', 'left unknown 1', 'unknown unknown 2']);
  });

  it('tracks two people at once and gives each track the right name', () => {
    const world = new World(19);
    world.enrol('Alice');
    world.enrol('Bob');
    const tracker = world.tracker({ camera: 'hall' });
    const events = feed(tracker, 0, 12, (i) => [
      { box: box(600 - i * 10, 300), embedding: world.frame('Bob'), crop: `bob-${i}` },
      { box: box(50 + i * 10, 100), embedding: world.frame('Alice'), crop: `alice-${i}` },
    ]);
    const byName = new Map(recognized(events).map((e) => [e.name, e]));
    assert.equal(recognized(events).length, 2);
    assert.equal(byName.get('Bob')!.trackId, 'hall-1'); // first face in the first frame
    assert.equal(byName.get('Alice')!.trackId, 'hall-2');
    assert.ok(byName.get('Alice')!.crop!.startsWith('alice-') && byName.get('Bob')!.crop!.startsWith('bob-'));
    assert.ok(byName.get('Alice')!.box.y === 100 && byName.get('Bob')!.box.y === 300);
    const out = tracker.tick(61_000);
    assert.deepEqual(
      lefts(out)
        .map((e) => [e.name, e.trackId])
        .sort(),
      [
        ['Alice', 'hall-2'],
        ['Bob', 'hall-1'],
      ],
    );
  });

  it('recognizes a person again when they come back after the cooldown, and merges a return within it', () => {
    const world = new World(23);
    world.enrol('Alice');
    const tracker = world.tracker({ cooldownMs: 60_000 });
    assert.equal(recognized(feed(tracker, 0, 10, () => [{ box: box(0), embedding: world.frame('Alice') }])).length, 1);
    // The track ended at 900 + 1500, but the 'left' of a short visit waits out the cooldown.
    assert.deepEqual(tracker.tick(5_000), []);
    // Back at 20 s: the same visit.
    assert.deepEqual(
      feed(tracker, 20_000, 10, () => [{ box: box(400), embedding: world.frame('Alice') }]),
      [],
    );
    assert.deepEqual(tracker.tick(60_200), [
      { type: 'left', trackId: '1', name: 'Alice', firstSeen: 0, lastSeen: 20_900, duration: 20_900 },
    ]);
    const second = feed(tracker, 70_000, 10, () => [{ box: box(0), embedding: world.frame('Alice') }]);
    assert.deepEqual(summary(second), ['recognized Alice 3']);
    assert.equal(recognized(second)[0].firstSeen, 70_000);
  });

  it('keeps a track alive through quality-failed faces without letting them count', () => {
    const world = new World(29);
    world.enrol('Alice');
    const tracker = world.tracker();
    // 2 Alice frames, then 3 s (twice maxMissedMs) without embeddings, then one more.
    const events = feed(tracker, 0, 33, (i) => [
      { box: box(i), embedding: i < 2 || i === 32 ? world.frame('Alice') : null },
    ]);
    assert.deepEqual(summary(events), ['recognized Alice 1']);
    assert.equal(recognized(events)[0].firstSeen, 0);
    const quiet = world.tracker();
    assert.deepEqual(
      feed(quiet, 0, 50, () => [{ box: box(0) }]),
      [],
    );
    assert.deepEqual(quiet.tick(100_000), []);
  });

  it('rejects invalid options and timestamps', () => {
    const world = new World();
    assert.throws(() => new VisitTracker({} as VisitTrackerOptions), TypeError);
    assert.throws(() => world.tracker({ confirmFrames: 0 }), RangeError);
    assert.throws(() => world.tracker({ iouThreshold: 0 }), RangeError);
    assert.throws(() => world.tracker({ cutCosine: 2 }), RangeError);
    assert.throws(() => world.tracker().update(Number.NaN, []), TypeError);
  });

  it('stays bounded over 20k frames of people and strangers coming, going and being enrolled, every announcement closed once', () => {
    const world = new World(12345);
    const random = world.random;
    const people = Array.from({ length: 8 }, (_, i) => `person-${i}`);
    for (const p of people.slice(0, 6)) world.enrol(p);
    interface Actor {
      name: string;
      x: number;
      y: number;
      vx: number;
      until: number;
    }
    let actors: Actor[] = [];
    const tracker = world.tracker({ camera: 'soak', cooldownMs: 30_000 });
    let maxTracks = 0;
    let maxVisits = 0;
    const open = new Map<string, number>(); // trackId + name → announcements not yet closed
    let announced = 0;
    const count = (events: VisitEvent<Crop>[]) => {
      for (const e of events) {
        const key = `${e.trackId} ${e.name}`;
        if (e.type === 'left') {
          assert.equal(open.get(key), 1, `left without an open ${key}`);
          open.delete(key);
        } else {
          assert.ok(!open.has(key), `announced twice: ${key}`);
          open.set(key, 1);
          announced++;
        }
      }
    };
    const FRAMES = 20_000;
    for (let f = 0; f < FRAMES; f++) {
      const now = f * FRAME_MS;
      if (f === FRAMES / 2) {
        world.enrol('person-6');
        world.enrol('person-7');
      }
      actors = actors.filter((a) => a.until > now);
      if (actors.length < 3 && random() < 0.01) {
        actors.push({
          name: random() < 0.2 ? `stranger-${f}` : people[Math.floor(random() * people.length)],
          x: random() * 1500,
          y: random() * 800,
          vx: random() * 6 - 3,
          until: now + 1_000 + random() * 60_000,
        });
      }
      const faces: TrackedFace<Crop>[] = actors.map((a) => {
        a.x += a.vx;
        const r = random();
        return {
          box: box(a.x, a.y, 120),
          embedding: r < 0.15 ? null : world.frame(a.name, r < 0.3 ? 1.2 : 0.3),
          crop: `frame-${f}`,
        };
      });
      count(tracker.update(now, faces, Math.floor(f / 8_000)));
      const s = tracker.size();
      maxTracks = Math.max(maxTracks, s.tracks);
      maxVisits = Math.max(maxVisits, s.visits);
    }
    count(tracker.tick(FRAMES * FRAME_MS + 100_000));
    assert.ok(maxTracks <= 12, `max tracks ${maxTracks}`);
    assert.ok(maxVisits <= people.length, `max visits ${maxVisits}`);
    assert.deepEqual(tracker.size(), { tracks: 0, visits: 0 });
    assert.equal(open.size, 0, [...open.keys()].join(', '));
    assert.ok(announced > 50, `announced ${announced}`);
  });
});
