/**
 * A classifier's visit trackers, one per camera name (msg.frame.camera, or
 * msg.topic for messages without a frame), bounded in number and dropped
 * when idle. A flow whose topic changes with every message (a file name, a
 * message id) would otherwise make a tracker of each message and keep it
 * forever: 20,000 topics held 120 MB and kept 3 % of a core busy ticking
 * them.
 *
 * A tracker is dropped only when it holds nothing: no live track and no open
 * visit, so every visit has run to its end and sent its 'left'. Dropping a
 * tracker costs nothing but its track numbering, which starts again at 1
 * for that camera (as after a redeploy).
 * - Idle: empty and not used for `idleMs`: gone at the next tick.
 * - Bound: at `maxTrackers`, a new camera takes the place of the least
 *   recently used empty tracker; when every tracker holds an open track or
 *   visit, the new camera gets none (get() returns undefined) and the caller
 *   says so: cutting a visit short would lose its 'left'.
 */

/** What the registry needs of a tracker (VisitTracker has it). */
export interface RegisteredTracker<E> {
  tick(nowMs: number): E[];
  size(): { tracks: number; visits: number };
}

export interface TrackerRegistryOptions {
  /** Most trackers held at once. Default 1000: far more cameras than a home has. */
  maxTrackers?: number;
  /** An empty tracker unused for this long is dropped. Default 10 minutes. */
  idleMs?: number;
}

interface Entry<T> {
  tracker: T;
  lastUsed: number;
}

export const DEFAULT_MAX_TRACKERS = 1000;
export const DEFAULT_TRACKER_IDLE_MS = 10 * 60_000;

function isEmpty(tracker: RegisteredTracker<unknown>): boolean {
  const { tracks, visits } = tracker.size();
  return tracks === 0 && visits === 0;
}

export class TrackerRegistry<E, T extends RegisteredTracker<E> = RegisteredTracker<E>> {
  readonly maxTrackers: number;
  readonly idleMs: number;
  /** Map order is use order: least recently used first. */
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly create: (key: string) => T,
    options: TrackerRegistryOptions = {},
  ) {
    this.maxTrackers = options.maxTrackers ?? DEFAULT_MAX_TRACKERS;
    this.idleMs = options.idleMs ?? DEFAULT_TRACKER_IDLE_MS;
    if (!Number.isInteger(this.maxTrackers) || this.maxTrackers < 1)
      throw new RangeError(`maxTrackers must be a whole number of at least 1, got ${this.maxTrackers}`);
    if (!(this.idleMs >= 0)) throw new RangeError(`idleMs must be at least 0, got ${this.idleMs}`);
  }

  /** The tracker of `key`, created if need be; undefined when the bound is reached and no tracker can make room. */
  get(key: string, nowMs: number): T | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      entry.lastUsed = nowMs;
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry.tracker;
    }
    if (this.entries.size >= this.maxTrackers && !this.dropLeastRecentlyUsedEmpty()) return undefined;
    const tracker = this.create(key);
    this.entries.set(key, { tracker, lastUsed: nowMs });
    return tracker;
  }

  /**
   * Ticks the trackers that hold something (tracks end, visits close and
   * send 'left'), then drops the empty ones idle for idleMs. Returns the
   * events, by key.
   */
  tick(nowMs: number): { key: string; events: E[] }[] {
    const out: { key: string; events: E[] }[] = [];
    for (const [key, entry] of this.entries) {
      if (!isEmpty(entry.tracker)) {
        const events = entry.tracker.tick(nowMs);
        if (events.length) out.push({ key, events });
        if (!isEmpty(entry.tracker)) continue;
      }
      if (nowMs - entry.lastUsed >= this.idleMs) this.entries.delete(key);
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  private dropLeastRecentlyUsedEmpty(): boolean {
    for (const [key, entry] of this.entries) {
      if (isEmpty(entry.tracker)) {
        this.entries.delete(key);
        return true;
      }
    }
    return false;
  }
}
