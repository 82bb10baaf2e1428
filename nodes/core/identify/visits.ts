/**
 * Per-camera face tracks and per-visit decisions: turns per-frame
 * identifications into the few events Home Assistant automations hang on
 * ("Alice arrived", "a stranger is at the door", "Alice left").
 *
 * Tracking: greedy IoU matching, highest-IoU pairs first. A track ends when it
 * has not been matched for `maxMissedMs`; that is checked on every `update`
 * and on `tick`, so a camera that stops sending frames still ends its tracks.
 *
 * Voting (per track; a frame whose identity is null, i.e. the face failed the
 * quality gate, keeps the track alive but does not vote):
 * - confirmed as person P once P has at least `confirmFrames` votes and at
 *   least `minVoteShare` (60%) of the track's non-null votes, so a flickering
 *   identity cannot confirm;
 * - confirmed as a stranger once "unknown" has at least `unknownFrames` votes
 *   and the same share, and no person has been confirmed first.
 * - First confirmation wins: a confirmed track never switches name (nor from
 *   stranger to person); later votes are ignored.
 *
 * Visits and cooldown (the semantics chosen; HA users want one 'recognized'
 * per real arrival and a matching 'left', not a burst each time a track
 * fragments because someone turned their head):
 * - A person's confirmed tracks are grouped into a visit. The first track
 *   opens it and emits 'recognized'. A track confirmed as P while P's visit is
 *   open joins it silently (no second 'recognized').
 * - P's visit is open while any of its tracks is live, and in any case until
 *   `cooldownMs` after its 'recognized'. So a person who leaves and is
 *   re-confirmed within `cooldownMs` of their 'recognized' is merged into the
 *   same visit; after that, a return is a new visit with a new 'recognized'.
 * - 'left' is emitted once per visit, when it closes: at the end of its last
 *   track for visits longer than the cooldown, otherwise when the cooldown
 *   runs out (a short visit's 'left' is held back until it can no longer be
 *   merged, so recognized/left always pair up). It carries the trackId of the
 *   'recognized' event, `lastSeen` (when the person was really last seen) and
 *   `duration` = lastSeen - firstSeen over all merged tracks.
 * - Strangers cannot be told apart across tracks, so they are never merged:
 *   each stranger track emits one 'unknown' and, when it ends, one 'left'
 *   (name 'unknown') immediately. Throttling stranger alerts is left to HA.
 * - A track that never confirmed emits nothing, not even 'left'.
 *
 * Time: timestamps are milliseconds on one clock shared by `update` and
 * `tick`; a timestamp earlier than one already seen is treated as the latest
 * seen, so a clock step backwards cannot resurrect or prolong anything.
 */
import { intersectionOverUnion, type Box } from '../media/image';
import { UNKNOWN } from './imprint';

/** What the recognizer said about one face in one frame. */
export interface FrameIdentity {
  /** Person's name, or 'unknown'. Only read when `known` is true. */
  name: string;
  known: boolean;
  cosine: number;
  confidence: number;
}

export interface TrackedFace<C = unknown> {
  box: Box;
  /** null: the face was not embedded (failed the quality gate). */
  identity: FrameIdentity | null;
  crop?: C;
}

interface EventSnapshot<C> {
  trackId: string;
  cosine: number;
  confidence: number;
  /** When the (first) track of this visit started. */
  firstSeen: number;
  /** Box of the frame `crop` came from (so the two always agree). */
  box: Box;
  crop: C | undefined;
}

/**
 * A person confirmed. cosine/confidence/box/crop come from the frame of the
 * track with the highest cosine for that person (frames with a crop first).
 */
export interface RecognizedEvent<C = unknown> extends EventSnapshot<C> {
  type: 'recognized';
  name: string;
}

/**
 * A stranger confirmed. Cosines to the gallery say nothing about image
 * quality here, so the snapshot is the frame with the largest face.
 */
export interface UnknownEvent<C = unknown> extends EventSnapshot<C> {
  type: 'unknown';
  name: typeof UNKNOWN;
}

export interface LeftEvent {
  type: 'left';
  /** Same trackId as the 'recognized' / 'unknown' event it closes. */
  trackId: string;
  /** Person's name, or 'unknown' for a stranger. */
  name: string;
  firstSeen: number;
  lastSeen: number;
  /** lastSeen - firstSeen, in ms. */
  duration: number;
}

export type VisitEvent<C = unknown> = RecognizedEvent<C> | UnknownEvent<C> | LeftEvent;

export interface VisitTrackerOptions {
  /** Prefix of track ids ('front_door' → 'front_door-17'). */
  camera?: string;
  /** Minimum IoU for a face to continue a track. Default 0.3. */
  iouThreshold?: number;
  /** A track not matched for this long ends. Default 1500 ms. */
  maxMissedMs?: number;
  /** Votes a person needs to be confirmed. Default 3. */
  confirmFrames?: number;
  /** 'unknown' votes a stranger needs to be confirmed. Default 5. */
  unknownFrames?: number;
  /** Share of the non-null votes the winner must hold. Default 0.6; must be > 0.5 so at most one candidate qualifies. */
  minVoteShare?: number;
  /** How long after a 'recognized' a return of the same person is merged into that visit. Default 60 000 ms. */
  cooldownMs?: number;
}

/** Best frame seen for one candidate name within a track. */
interface Sample<C> {
  hasCrop: boolean;
  /** cosine for a person, face area for a stranger. */
  score: number;
  cosine: number;
  confidence: number;
  box: Box;
  crop: C | undefined;
}

interface Visit {
  name: string;
  trackId: string;
  firstSeen: number;
  lastSeen: number;
  recognizedAt: number;
  liveTracks: number;
}

interface Track<C> {
  id: string;
  box: Box;
  firstSeen: number;
  lastSeen: number;
  personVotes: Map<string, number>;
  unknownVotes: number;
  nonNullVotes: number;
  /** Best frame per person name; cleared once confirmed (no longer needed). */
  personBest: Map<string, Sample<C>>;
  strangerBest: Sample<C> | null;
  /** null until confirmed; UNKNOWN or a person's name afterwards. */
  confirmed: string | null;
  visit: Visit | null;
}

const DEFAULTS = {
  iouThreshold: 0.3,
  maxMissedMs: 1500,
  confirmFrames: 3,
  unknownFrames: 5,
  minVoteShare: 0.6,
  cooldownMs: 60_000,
};

// Vote shares are compared as floats (0.6 * 5 etc.); a tiny slack keeps an
// exact 60% from failing on rounding.
const SHARE_EPSILON = 1e-9;

function better<C>(candidate: Sample<C>, current: Sample<C> | null | undefined): boolean {
  if (!current) return true;
  if (candidate.hasCrop !== current.hasCrop) return candidate.hasCrop;
  return candidate.score > current.score;
}

export class VisitTracker<C = unknown> {
  private readonly camera: string | null;
  private readonly iouThreshold: number;
  private readonly maxMissedMs: number;
  private readonly confirmFrames: number;
  private readonly unknownFrames: number;
  private readonly minVoteShare: number;
  private readonly cooldownMs: number;

  private nextId = 1;
  private clock = -Infinity;
  private readonly tracks: Track<C>[] = [];
  /** Open visits by person name: at most one per person, removed on 'left'. */
  private readonly visits = new Map<string, Visit>();

  constructor(options: VisitTrackerOptions = {}) {
    const o = { ...DEFAULTS, ...stripUndefined(options) };
    requireNumber('iouThreshold', o.iouThreshold, o.iouThreshold > 0 && o.iouThreshold <= 1);
    requireNumber('maxMissedMs', o.maxMissedMs, o.maxMissedMs > 0);
    requireNumber('confirmFrames', o.confirmFrames, Number.isInteger(o.confirmFrames) && o.confirmFrames >= 1);
    requireNumber('unknownFrames', o.unknownFrames, Number.isInteger(o.unknownFrames) && o.unknownFrames >= 1);
    requireNumber('minVoteShare', o.minVoteShare, o.minVoteShare > 0.5 && o.minVoteShare <= 1);
    requireNumber('cooldownMs', o.cooldownMs, o.cooldownMs >= 0);
    this.camera = options.camera ? options.camera : null;
    this.iouThreshold = o.iouThreshold;
    this.maxMissedMs = o.maxMissedMs;
    this.confirmFrames = o.confirmFrames;
    this.unknownFrames = o.unknownFrames;
    this.minVoteShare = o.minVoteShare;
    this.cooldownMs = o.cooldownMs;
  }

  /** Feeds one processed frame; returns the events it caused, in order. */
  update(timestampMs: number, faces: readonly TrackedFace<C>[]): VisitEvent<C>[] {
    const now = this.advance(timestampMs);
    const events: VisitEvent<C>[] = [];
    // Expire first, so a face arriving after its track's deadline starts a new
    // track instead of reviving one that already emitted 'left'.
    this.expire(now, events);

    const pairs: { iou: number; track: number; face: number }[] = [];
    for (let t = 0; t < this.tracks.length; t++) {
      for (let f = 0; f < faces.length; f++) {
        const iou = intersectionOverUnion(this.tracks[t].box, faces[f].box);
        if (iou >= this.iouThreshold) pairs.push({ iou, track: t, face: f });
      }
    }
    // Array sort is stable, so equal IoUs resolve by track age, then face order.
    pairs.sort((a, b) => b.iou - a.iou);
    const trackOf: (Track<C> | null)[] = faces.map(() => null);
    const trackTaken = new Set<number>();
    for (const p of pairs) {
      if (trackTaken.has(p.track) || trackOf[p.face] !== null) continue;
      trackTaken.add(p.track);
      trackOf[p.face] = this.tracks[p.track];
    }

    for (let f = 0; f < faces.length; f++) {
      const track = trackOf[f] ?? this.startTrack(now, faces[f].box);
      this.observe(track, now, faces[f], events);
    }
    return events;
  }

  /** Ends tracks (and closes visits) whose time is up without a new frame. */
  tick(nowMs: number): VisitEvent<C>[] {
    const events: VisitEvent<C>[] = [];
    this.expire(this.advance(nowMs), events);
    return events;
  }

  /** Internal sizes, for tests and diagnostics: live tracks and open visits. */
  size(): { tracks: number; visits: number } {
    return { tracks: this.tracks.length, visits: this.visits.size };
  }

  private advance(timestampMs: number): number {
    if (!Number.isFinite(timestampMs)) throw new TypeError(`timestamp must be a finite number of ms, got ${timestampMs}`);
    this.clock = Math.max(this.clock, timestampMs);
    return this.clock;
  }

  private startTrack(now: number, box: Box): Track<C> {
    const n = this.nextId++;
    const track: Track<C> = {
      id: this.camera === null ? String(n) : `${this.camera}-${n}`,
      box,
      firstSeen: now,
      lastSeen: now,
      personVotes: new Map(),
      unknownVotes: 0,
      nonNullVotes: 0,
      personBest: new Map(),
      strangerBest: null,
      confirmed: null,
      visit: null,
    };
    this.tracks.push(track);
    return track;
  }

  private observe(track: Track<C>, now: number, face: TrackedFace<C>, events: VisitEvent<C>[]): void {
    // Copy: callers may reuse their box objects between frames.
    const box = { ...face.box };
    track.box = box;
    track.lastSeen = now;
    if (track.visit) track.visit.lastSeen = now;
    const id = face.identity;
    if (id === null || track.confirmed !== null) return;

    track.nonNullVotes++;
    const hasCrop = face.crop !== undefined;
    if (id.known) {
      track.personVotes.set(id.name, (track.personVotes.get(id.name) ?? 0) + 1);
      const sample: Sample<C> = { hasCrop, score: id.cosine, cosine: id.cosine, confidence: id.confidence, box, crop: face.crop };
      if (better(sample, track.personBest.get(id.name))) track.personBest.set(id.name, sample);
    } else {
      track.unknownVotes++;
      const sample: Sample<C> = { hasCrop, score: box.width * box.height, cosine: id.cosine, confidence: id.confidence, box, crop: face.crop };
      if (better(sample, track.strangerBest)) track.strangerBest = sample;
    }
    this.decide(track, now, events);
  }

  private decide(track: Track<C>, now: number, events: VisitEvent<C>[]): void {
    const needed = this.minVoteShare * track.nonNullVotes - SHARE_EPSILON;
    let leader: string | null = null;
    let leaderVotes = 0;
    for (const [name, votes] of track.personVotes) {
      if (votes > leaderVotes) { leader = name; leaderVotes = votes; }
    }
    if (leader !== null && leaderVotes >= this.confirmFrames && leaderVotes >= needed) {
      this.confirmPerson(track, leader, now, events);
    } else if (track.unknownVotes >= this.unknownFrames && track.unknownVotes >= needed) {
      const best = track.strangerBest!; // set by every unknown vote
      track.confirmed = UNKNOWN;
      events.push({ type: 'unknown', name: UNKNOWN, ...this.snapshot(track, best) });
      this.release(track);
    }
  }

  private confirmPerson(track: Track<C>, name: string, now: number, events: VisitEvent<C>[]): void {
    const best = track.personBest.get(name)!; // set by every vote for name
    track.confirmed = name;
    const open = this.visits.get(name);
    if (open) {
      open.liveTracks++;
      open.lastSeen = Math.max(open.lastSeen, track.lastSeen);
      track.visit = open;
    } else {
      const visit: Visit = { name, trackId: track.id, firstSeen: track.firstSeen, lastSeen: track.lastSeen, recognizedAt: now, liveTracks: 1 };
      this.visits.set(name, visit);
      track.visit = visit;
      events.push({ type: 'recognized', name, ...this.snapshot(track, best) });
    }
    this.release(track);
  }

  private snapshot(track: Track<C>, best: Sample<C>): EventSnapshot<C> {
    return { trackId: track.id, cosine: best.cosine, confidence: best.confidence, firstSeen: track.firstSeen, box: best.box, crop: best.crop };
  }

  /** A confirmed track no longer votes: drop what voting needed (crops can be big). */
  private release(track: Track<C>): void {
    track.personVotes.clear();
    track.personBest.clear();
    track.strangerBest = null;
  }

  private expire(now: number, events: VisitEvent<C>[]): void {
    let kept = 0;
    for (const track of this.tracks) {
      if (now - track.lastSeen < this.maxMissedMs) {
        this.tracks[kept++] = track;
        continue;
      }
      if (track.confirmed === UNKNOWN) {
        events.push({
          type: 'left', trackId: track.id, name: UNKNOWN,
          firstSeen: track.firstSeen, lastSeen: track.lastSeen, duration: track.lastSeen - track.firstSeen,
        });
      } else if (track.visit) {
        track.visit.liveTracks--;
      }
    }
    this.tracks.length = kept;

    for (const [name, visit] of this.visits) {
      if (visit.liveTracks > 0 || now - visit.recognizedAt < this.cooldownMs) continue;
      this.visits.delete(name);
      events.push({
        type: 'left', trackId: visit.trackId, name,
        firstSeen: visit.firstSeen, lastSeen: visit.lastSeen, duration: visit.lastSeen - visit.firstSeen,
      });
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function requireNumber(name: string, value: number, ok: boolean): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok) {
    throw new RangeError(`VisitTracker option ${name} is out of range: ${value}`);
  }
}
