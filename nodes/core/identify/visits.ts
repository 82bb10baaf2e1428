/**
 * Per-camera face tracks and per-visit decisions: turns per-frame faces into
 * the few events Home Assistant automations hang on ("Alice arrived", "a
 * stranger is at the door", "Alice left"), and keeps them right when the
 * evidence changes while the person is still in view.
 *
 * Tracking: greedy IoU matching, highest-IoU pairs first. A track ends when:
 * - it has not been matched for `maxMissedMs` (checked on every `update` and
 *   on `tick`, so a camera that stops sending frames still ends its tracks);
 * - the picture jumps: `update` is given a scene number (camera-in counts
 *   hard cuts, reconnects and restarts) different from the last one, so the
 *   faces after the cut never continue the tracks before it;
 * - a face matched to it by position has an embedding whose cosine to the
 *   track's mean embedding is below `cutCosine`: another person stands where
 *   the track was; the face starts a new track.
 *
 * Deciding (per track, re-done on every frame whose face has an embedding; a
 * face that failed the quality gate keeps its track alive but adds nothing):
 * - the evidence is the mean of the track's embeddings so far, classified by
 *   `identify` against the gallery as it is now. Averaging cancels a poor
 *   frame's noise, and using the current gallery means a person enrolled
 *   while in view (walk-up) is recognised on the same track;
 * - that reading must hold for `confirmFrames` frames in a row to decide a
 *   person, `unknownFrames` in a row to decide a stranger;
 * - a decided track is decided again whenever a different reading holds that
 *   long: an early `unknown` (poor first frames, not enrolled yet) becomes the
 *   person, a wrong name becomes the right one or `unknown`;
 * - each name is announced at most once per track: a reading that returns to
 *   a name the track was already decided as is not acted on, so an identity
 *   hovering at the threshold cannot flap alerts.
 *
 * Visits (HA users want one 'recognized' per real arrival and a matching
 * 'left', not a burst each time a track breaks because someone turned their
 * head):
 * - a person's decided tracks are grouped into a visit. The first one opens it
 *   and emits 'recognized'; a track decided as P while P's visit is open joins
 *   it silently;
 * - P's visit is open while any of its tracks is live, and in any case until
 *   `cooldownMs` after its 'recognized': a return within that time is the same
 *   visit, a later one a new visit with a new 'recognized';
 * - strangers cannot be told apart across tracks, so each stranger track is
 *   its own visit: one 'unknown' and one 'left' (name 'unknown') when it ends;
 * - every 'recognized' and 'unknown' is closed by exactly one 'left' with the
 *   same trackId and name. A person's visit closes at the end of its last
 *   track for visits longer than the cooldown, otherwise when the cooldown
 *   runs out (so it can no longer be merged). `lastSeen` says when the person
 *   was really last seen, `duration` = lastSeen - firstSeen over all tracks;
 * - when a track is decided again, what it announced is closed first: the
 *   stranger visit, or the person's visit if this track opened it and no
 *   other track holds it, closes at once with a 'left' that says
 *   `revisedTo` (the new name); then the new decision is announced as usual,
 *   with `revises` (the old name), or joins the person's open visit silently.
 *   So `unknown` → `left (revisedTo Alice)` → `recognized Alice (revises
 *   unknown)` → ... → `left Alice`, all with one trackId;
 * - a track that never decided emits nothing, not even 'left'.
 *
 * Time: timestamps are milliseconds on one clock shared by `update` and
 * `tick`; a timestamp earlier than one already seen is treated as the latest
 * seen, so a clock step backwards cannot resurrect or prolong anything.
 */
import { intersectionOverUnion, type Box } from '../media/image';
import { l2normalize, UNKNOWN } from './imprint';

/** What the recognizer says about an embedding (here: a track's mean embedding). */
export interface FrameIdentity {
  /** Person's name, or 'unknown'. Only read when `known` is true. */
  name: string;
  known: boolean;
  cosine: number;
  confidence: number;
}

/** Names an embedding against the gallery as it is now (Recognizer.identify). */
export type Identify = (embedding: Float32Array) => FrameIdentity;

export interface TrackedFace<C = unknown> {
  box: Box;
  /** The face's embedding; null or absent: the face was not embedded (failed the quality gate). */
  embedding?: ArrayLike<number> | null;
  crop?: C;
}

interface EventSnapshot<C> {
  trackId: string;
  /** Of the track's mean embedding, when it was decided. */
  cosine: number;
  confidence: number;
  /** When the (first) track of this visit started. */
  firstSeen: number;
  /** Box of the frame `crop` came from (so the two always agree). */
  box: Box;
  crop: C | undefined;
  /** The name this track was decided as before, when this event corrects it. */
  revises?: string;
}

/**
 * A person decided. box/crop come from the track's recent frame that looks
 * most like them (frames with a crop first).
 */
export interface RecognizedEvent<C = unknown> extends EventSnapshot<C> {
  type: 'recognized';
  name: string;
}

/** A stranger decided; box/crop from the track's recent frame with the largest face. */
export interface UnknownEvent<C = unknown> extends EventSnapshot<C> {
  type: 'unknown';
  name: typeof UNKNOWN;
}

export interface LeftEvent {
  type: 'left';
  /** Same trackId as the 'recognized' / 'unknown' event it closes. */
  trackId: string;
  /** Person's name, or 'unknown' for a stranger: the name of the event it closes. */
  name: string;
  firstSeen: number;
  lastSeen: number;
  /** lastSeen - firstSeen, in ms. */
  duration: number;
  /** Set when the visit closes because its track was decided again: the new name. */
  revisedTo?: string;
}

export type VisitEvent<C = unknown> = RecognizedEvent<C> | UnknownEvent<C> | LeftEvent;

export interface VisitTrackerOptions {
  /** Names a (mean) embedding against the current gallery. */
  identify: Identify;
  /** Prefix of track ids ('front_door' → 'front_door-17'). */
  camera?: string;
  /** Minimum IoU for a face to continue a track. Default 0.3. */
  iouThreshold?: number;
  /** A track not matched for this long ends. Default 1500 ms. */
  maxMissedMs?: number;
  /** Frames in a row the reading must name a person to decide them. Default 3. */
  confirmFrames?: number;
  /** Frames in a row the reading must say 'unknown' to decide a stranger. Default 5. */
  unknownFrames?: number;
  /** How long after a 'recognized' a return of the same person is merged into that visit. Default 60 000 ms. */
  cooldownMs?: number;
  /**
   * A face whose embedding has a cosine below this to its track's mean starts
   * a new track. Default 0.2: frames of one person in one stream sit far above
   * it (and even LFW photos of one person years apart mostly clear 0.3, the
   * enrolment outlier bar), different people mostly below.
   */
  cutCosine?: number;
}

/** A recent frame of a track, kept to pick the event's snapshot from. */
interface Sample<C> {
  unit: Float32Array;
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
  /** Sum of the unit embeddings of the track's frames (float64: many frames). */
  sum: Float64Array | null;
  frames: number;
  samples: Sample<C>[];
  /** The current reading's name (UNKNOWN or a person) and how many frames in a row it has held. */
  reading: string | null;
  streak: number;
  /** null until decided; UNKNOWN or a person's name afterwards. */
  decided: string | null;
  /** Every name this track has been decided as (each is announced at most once). */
  announced: Set<string>;
  visit: Visit | null;
}

const DEFAULTS = {
  iouThreshold: 0.3,
  maxMissedMs: 1500,
  confirmFrames: 3,
  unknownFrames: 5,
  cooldownMs: 60_000,
  cutCosine: 0.2,
};

/** Recent frames kept per track for the snapshot. */
const SAMPLES = 8;

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export class VisitTracker<C = unknown> {
  private readonly identify: Identify;
  private readonly camera: string | null;
  private readonly iouThreshold: number;
  private readonly maxMissedMs: number;
  private readonly confirmFrames: number;
  private readonly unknownFrames: number;
  private readonly cooldownMs: number;
  private readonly cutCosine: number;

  private nextId = 1;
  private clock = -Infinity;
  private scene: number | undefined;
  private tracks: Track<C>[] = [];
  /** Open visits by person name: at most one per person, removed on 'left'. */
  private readonly visits = new Map<string, Visit>();

  constructor(options: VisitTrackerOptions) {
    if (typeof options?.identify !== 'function') throw new TypeError('VisitTracker needs an identify function');
    const o = { ...DEFAULTS, ...stripUndefined(options) };
    requireNumber('iouThreshold', o.iouThreshold, o.iouThreshold > 0 && o.iouThreshold <= 1);
    requireNumber('maxMissedMs', o.maxMissedMs, o.maxMissedMs > 0);
    requireNumber('confirmFrames', o.confirmFrames, Number.isInteger(o.confirmFrames) && o.confirmFrames >= 1);
    requireNumber('unknownFrames', o.unknownFrames, Number.isInteger(o.unknownFrames) && o.unknownFrames >= 1);
    requireNumber('cooldownMs', o.cooldownMs, o.cooldownMs >= 0);
    requireNumber('cutCosine', o.cutCosine, o.cutCosine >= -1 && o.cutCosine <= 1);
    this.identify = options.identify;
    this.camera = options.camera ? options.camera : null;
    this.iouThreshold = o.iouThreshold;
    this.maxMissedMs = o.maxMissedMs;
    this.confirmFrames = o.confirmFrames;
    this.unknownFrames = o.unknownFrames;
    this.cooldownMs = o.cooldownMs;
    this.cutCosine = o.cutCosine;
  }

  /**
   * Feeds one processed frame; returns the events it caused, in order.
   * `scene` (optional) numbers the picture's continuous stretches: a change
   * ends every track before the faces are matched.
   */
  update(timestampMs: number, faces: readonly TrackedFace<C>[], scene?: number): VisitEvent<C>[] {
    const now = this.advance(timestampMs);
    const events: VisitEvent<C>[] = [];
    if (scene !== undefined) {
      if (this.scene !== undefined && scene !== this.scene) this.endTracks(() => true, events);
      this.scene = scene;
    }
    // Expire first, so a face arriving after its track's deadline starts a new
    // track instead of reviving one that already emitted 'left'.
    this.expire(now, events);

    const units = faces.map((f) => (f.embedding && f.embedding.length > 0 ? l2normalize(f.embedding) : null));
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
    const cut = new Set<Track<C>>();
    for (const p of pairs) {
      if (trackTaken.has(p.track) || trackOf[p.face] !== null) continue;
      trackTaken.add(p.track);
      const track = this.tracks[p.track];
      const unit = units[p.face];
      // Same place, another face: the old track is over, this face starts its own.
      if (unit && track.sum && dot(unit, l2normalize(track.sum)) < this.cutCosine) cut.add(track);
      else trackOf[p.face] = track;
    }
    if (cut.size > 0) this.endTracks((t) => cut.has(t), events);

    for (let f = 0; f < faces.length; f++) {
      const track = trackOf[f] ?? this.startTrack(now, faces[f].box);
      this.observe(track, now, faces[f], units[f], events);
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
    if (!Number.isFinite(timestampMs))
      throw new TypeError(`timestamp must be a finite number of ms, got ${timestampMs}`);
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
      sum: null,
      frames: 0,
      samples: [],
      reading: null,
      streak: 0,
      decided: null,
      announced: new Set(),
      visit: null,
    };
    this.tracks.push(track);
    return track;
  }

  private observe(
    track: Track<C>,
    now: number,
    face: TrackedFace<C>,
    unit: Float32Array | null,
    events: VisitEvent<C>[],
  ): void {
    // Copy: callers may reuse their box objects between frames.
    const box = { ...face.box };
    track.box = box;
    track.lastSeen = now;
    if (track.visit) track.visit.lastSeen = now;
    if (unit === null) return;

    track.sum ??= new Float64Array(unit.length);
    if (unit.length !== track.sum.length)
      throw new RangeError(`embedding has ${unit.length} values, the track holds ${track.sum.length}`);
    for (let i = 0; i < unit.length; i++) track.sum[i] += unit[i];
    track.frames++;
    track.samples.push({ unit, box, crop: face.crop });
    if (track.samples.length > SAMPLES) track.samples.shift();

    const mean = l2normalize(track.sum);
    const reading = this.identify(mean);
    const name = reading.known ? reading.name : UNKNOWN;
    if (name === track.reading) track.streak++;
    else {
      track.reading = name;
      track.streak = 1;
    }
    const needed = name === UNKNOWN ? this.unknownFrames : this.confirmFrames;
    if (track.streak < needed || name === track.decided || track.announced.has(name)) return;
    this.decide(track, name, reading, now, events);
  }

  private decide(track: Track<C>, name: string, reading: FrameIdentity, now: number, events: VisitEvent<C>[]): void {
    const previous = track.decided;
    if (previous !== null) this.leaveDecision(track, name, events);
    track.decided = name;
    track.announced.add(name);
    const revises = previous ?? undefined;
    if (name === UNKNOWN) {
      events.push({ type: 'unknown', name: UNKNOWN, ...this.snapshot(track, track.firstSeen, reading, name, revises) });
      return;
    }
    const open = this.visits.get(name);
    if (open) {
      open.liveTracks++;
      open.lastSeen = Math.max(open.lastSeen, track.lastSeen);
      track.visit = open;
      return;
    }
    const visit: Visit = {
      name,
      trackId: track.id,
      firstSeen: track.firstSeen,
      lastSeen: track.lastSeen,
      recognizedAt: now,
      liveTracks: 1,
    };
    this.visits.set(name, visit);
    track.visit = visit;
    events.push({ type: 'recognized', name, ...this.snapshot(track, track.firstSeen, reading, name, revises) });
  }

  /** Undoes a track's current decision before it takes another: closes what it alone announced. */
  private leaveDecision(track: Track<C>, revisedTo: string, events: VisitEvent<C>[]): void {
    if (track.decided === UNKNOWN) {
      events.push(this.left(track.id, UNKNOWN, track.firstSeen, track.lastSeen, revisedTo));
      return;
    }
    const visit = track.visit;
    track.visit = null;
    if (!visit) return;
    visit.liveTracks--;
    // Opened on this track's word alone: it was a mistake, close it now rather than after the cooldown.
    if (visit.liveTracks === 0 && visit.trackId === track.id) {
      this.visits.delete(visit.name);
      events.push(this.left(visit.trackId, visit.name, visit.firstSeen, visit.lastSeen, revisedTo));
    }
  }

  /**
   * The event's face: for a person the recent frame that looks most like them
   * (highest cosine to their weight), for a stranger the largest; frames with
   * a crop first.
   */
  private snapshot(
    track: Track<C>,
    firstSeen: number,
    reading: FrameIdentity,
    name: string,
    revises: string | undefined,
  ): EventSnapshot<C> {
    let best = track.samples[track.samples.length - 1];
    let bestScore = -Infinity;
    for (const sample of track.samples) {
      const score =
        (sample.crop !== undefined ? 10 : 0) +
        (name === UNKNOWN ? (sample.box.width * sample.box.height) / 1e9 : this.identify(sample.unit).cosine);
      if (score > bestScore) {
        best = sample;
        bestScore = score;
      }
    }
    return {
      trackId: track.id,
      cosine: reading.cosine,
      confidence: reading.confidence,
      firstSeen,
      box: best.box,
      crop: best.crop,
      ...(revises !== undefined ? { revises } : {}),
    };
  }

  private left(trackId: string, name: string, firstSeen: number, lastSeen: number, revisedTo?: string): LeftEvent {
    return {
      type: 'left',
      trackId,
      name,
      firstSeen,
      lastSeen,
      duration: lastSeen - firstSeen,
      ...(revisedTo !== undefined ? { revisedTo } : {}),
    };
  }

  /** Ends the tracks `ending` selects: a stranger's visit closes, a person's loses a track. */
  private endTracks(ending: (track: Track<C>) => boolean, events: VisitEvent<C>[]): void {
    const kept: Track<C>[] = [];
    for (const track of this.tracks) {
      if (!ending(track)) {
        kept.push(track);
        continue;
      }
      if (track.decided === UNKNOWN) events.push(this.left(track.id, UNKNOWN, track.firstSeen, track.lastSeen));
      else if (track.visit) track.visit.liveTracks--;
      track.samples.length = 0; // crops can be big
    }
    this.tracks = kept;
  }

  private expire(now: number, events: VisitEvent<C>[]): void {
    this.endTracks((track) => now - track.lastSeen >= this.maxMissedMs, events);
    for (const [name, visit] of this.visits) {
      if (visit.liveTracks > 0 || now - visit.recognizedAt < this.cooldownMs) continue;
      this.visits.delete(name);
      events.push(this.left(visit.trackId, name, visit.firstSeen, visit.lastSeen));
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
