/**
 * Recent visits (imprint-classify's `recognized` / `unknown` / `ignored` decisions) on disk beside
 * the gallery, for the face library's "Recent faces" and "Unknown people":
 *
 *   <gallery>/library/visits/<segment>.jsonl   one JSON line per visit, or per change to visits
 *   <gallery>/library/visits/crops/<id>.jpg    the visit's face crop (none with keepImages off)
 *
 * - Appending is the commit: the crop is written (temp + fsync + rename) before its line, and a
 *   line is one write of a few hundred bytes followed by an fsync. A crash can only tear the last
 *   line of a segment, which the loader skips; a crop without a line is an orphan, removed at open.
 * - Changes to stored visits (deleted, relabelled by the library) are lines too ({"op": ...}), so
 *   nothing is ever rewritten in place.
 * - Bounded by count and age (both configurable): pruning drops records from memory at once and
 *   removes whole segments (and the crops of the dropped records) in the background. The loader
 *   applies the same bounds, so a pruned record never comes back.
 * - All I/O is asynchronous and serialised through one queue; nothing here blocks the event loop
 *   for longer than parsing one segment (at most SEGMENT_RECORDS lines).
 * - Everything is kept in memory (about 1 KB per visit with its embedding), newest last, so a page
 *   of 10,000 visits filters as fast as one of 10.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Box } from '../media/image';
import { decodeVector, encodeVector, isPlainObject, syncDirectory, TEMP_SUFFIX, writeFileAtomic } from './files';

export type VisitKind = 'recognized' | 'unknown' | 'ignored';

export interface VisitInput {
  time: number;
  camera: string;
  kind: VisitKind;
  /** The person's display name, or "unknown". */
  name: string;
  personId: string | null;
  /** For an unknown: below-threshold, ambiguous, vetoed, no-people. */
  reason: string | null;
  /** The closest person (also for an unknown). */
  closest: string | null;
  cosine: number;
  /** Best cosine minus the runner-up's; null with fewer than two people. */
  margin: number | null;
  trackId: string;
  box?: Box;
  quality?: { sharpness?: number; yawDeg?: number };
  embedding?: Float32Array;
  /** JPEG bytes of the face crop. */
  crop?: Buffer;
}

export interface VisitRecord extends Omit<VisitInput, 'crop' | 'embedding'> {
  id: string;
  hasCrop: boolean;
  embedding: Float32Array | null;
  /** Set by the library: "named Bob", "not Alice", … (the visit itself stays as it was decided). */
  label?: string;
  /** A recognised visit corrected with "not <name>": treated as a stranger from then on. */
  corrected?: boolean;
  /** Handled: named, or ignored as someone (no longer offered among the unknown people). */
  resolved?: boolean;
  /** The id of the person the visit was named as (so forgetting them removes it too). */
  resolvedAs?: string;
}

export interface LabelOptions {
  corrected?: boolean;
  resolved?: boolean;
  resolvedAs?: string;
}

export interface VisitStoreOptions {
  maxVisits: number;
  maxAgeDays: number;
  keepImages: boolean;
}

export const DEFAULT_VISIT_STORE_OPTIONS: VisitStoreOptions = { maxVisits: 10_000, maxAgeDays: 30, keepImages: true };
export const VISIT_STORE_LIMITS = { maxVisits: [10, 1_000_000], maxAgeDays: [0.01, 3650] } as const;

export interface VisitQuery {
  camera?: string;
  /** A person's display name, or "unknown" / "ignored" for those kinds. */
  person?: string;
  kind?: VisitKind;
  /** Only visits older than this id (the previous page's last id). */
  before?: string;
  limit?: number;
}

export interface VisitPage {
  visits: VisitRecord[];
  total: number;
  /** Pass as `before` for the next page; null on the last page. */
  next: string | null;
}

const SEGMENT_RECORDS = 1000;
const ID_PATTERN = /^[0-9a-z]{8,11}-[0-9a-f]{8}$/;
const SEGMENT_PATTERN = /^seg-[0-9a-z]+-[0-9a-f]{6}\.jsonl$/;
const DAY_MS = 86_400_000;

type Line =
  | ({ op?: undefined } & Record<string, unknown>)
  | { op: 'delete'; ids: string[] }
  | ({ op: 'label'; ids: string[]; label: string } & LabelOptions)
  | { op: 'nocrop'; ids: string[] };

export class VisitStore {
  private records: VisitRecord[] = [];
  private byId = new Map<string, VisitRecord>();
  /** Segment file → ids of the visits it holds. */
  private segments: { file: string; ids: Set<string> }[] = [];
  private current: { file: string; lines: number } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private listeners = new Set<(record: VisitRecord) => void>();
  private removedListeners = new Set<(ids: string[]) => void>();
  private labelListeners = new Set<(record: VisitRecord) => void>();

  private constructor(
    readonly dir: string,
    private options: VisitStoreOptions,
  ) {}

  static async open(dir: string, options: Partial<VisitStoreOptions> = {}): Promise<VisitStore> {
    const store = new VisitStore(dir, checkOptions({ ...DEFAULT_VISIT_STORE_OPTIONS, ...options }));
    await fsp.mkdir(path.join(dir, 'crops'), { recursive: true });
    await store.load();
    return store;
  }

  get settings(): VisitStoreOptions {
    return { ...this.options };
  }

  get size(): number {
    return this.records.length;
  }

  /** Every stored visit, oldest first (a copy of the list; records are shared). */
  all(): readonly VisitRecord[] {
    return this.records.slice();
  }

  get(id: string): VisitRecord | undefined {
    return this.byId.get(id);
  }

  onAdded(listener: (record: VisitRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onRemoved(listener: (ids: string[]) => void): () => void {
    this.removedListeners.add(listener);
    return () => this.removedListeners.delete(listener);
  }

  /** Stores one visit; resolves once it is on disk. */
  add(input: VisitInput): Promise<VisitRecord> {
    return this.serialise(async () => {
      const id = newId(input.time);
      const keepCrop = this.options.keepImages && Buffer.isBuffer(input.crop) && input.crop.length > 0;
      if (keepCrop) await writeFileAtomic(this.cropPath(id), input.crop!, { syncDir: false });
      const { crop: _crop, embedding, ...rest } = input;
      const record: VisitRecord = {
        ...rest,
        id,
        hasCrop: keepCrop,
        embedding: embedding ? Float32Array.from(embedding) : null,
      };
      await this.append(
        { ...rest, id, hasCrop: keepCrop, ...(embedding ? { embedding: encodeVector(embedding) } : {}) },
        id,
      );
      this.insert(record);
      for (const listener of this.listeners) listener(record);
      await this.prune();
      return record;
    });
  }

  query(query: VisitQuery = {}): VisitPage {
    const limit = Math.max(1, Math.min(500, Math.floor(query.limit ?? 50)));
    let start = this.records.length - 1;
    if (query.before) {
      const before = this.byId.get(query.before);
      // An id that was pruned meanwhile: continue from where it would be.
      start = before ? this.records.indexOf(before) - 1 : this.lastIndexBefore(query.before);
    }
    const visits: VisitRecord[] = [];
    let total = 0;
    const matches = (r: VisitRecord) =>
      (!query.camera || r.camera === query.camera) &&
      (!query.kind || kindOf(r) === query.kind) &&
      (!query.person ||
        r.name === query.person ||
        (query.person === 'unknown' && kindOf(r) === 'unknown') ||
        (query.person === 'ignored' && r.kind === 'ignored'));
    for (const r of this.records) if (matches(r)) total++;
    let i = start;
    for (; i >= 0 && visits.length < limit; i--) if (matches(this.records[i])) visits.push(this.records[i]);
    let more = false;
    for (; i >= 0; i--)
      if (matches(this.records[i])) {
        more = true;
        break;
      }
    return { visits, total, next: more && visits.length > 0 ? visits[visits.length - 1].id : null };
  }

  cameras(): string[] {
    return [...new Set(this.records.map((r) => r.camera))].sort();
  }

  async readCrop(id: string): Promise<Buffer | undefined> {
    const record = this.byId.get(id);
    if (!record?.hasCrop) return undefined;
    return fsp.readFile(this.cropPath(id)).catch(() => undefined);
  }

  /** Deletes visits and their crops (a cluster deleted, a person forgotten). */
  delete(ids: readonly string[]): Promise<number> {
    return this.serialise(async () => {
      const present = ids.filter((id) => this.byId.has(id));
      if (present.length === 0) return 0;
      await this.append({ op: 'delete', ids: present }, null);
      this.drop(present);
      await Promise.all(present.map((id) => fsp.unlink(this.cropPath(id)).catch(() => undefined)));
      return present.length;
    });
  }

  /** Marks visits as handled by the library ("named Bob", "not Alice"); the decision itself stays. */
  label(ids: readonly string[], label: string, options: LabelOptions = {}): Promise<VisitRecord[]> {
    return this.serialise(async () => {
      const present = ids.filter((id) => this.byId.has(id));
      if (present.length === 0) return [];
      const flags = {
        ...(options.corrected ? { corrected: true } : {}),
        ...(options.resolved ? { resolved: true } : {}),
        ...(options.resolvedAs ? { resolvedAs: options.resolvedAs } : {}),
      };
      await this.append({ op: 'label', ids: present, label, ...flags }, null);
      const records = present.map((id) => this.byId.get(id)!);
      for (const record of records) applyLabel(record, label, flags);
      for (const listener of this.labelListeners) for (const record of records) listener(record);
      return records;
    });
  }

  onLabelled(listener: (record: VisitRecord) => void): () => void {
    this.labelListeners.add(listener);
    return () => this.labelListeners.delete(listener);
  }

  /** New bounds or privacy setting; keepImages off deletes every stored crop. */
  configure(options: Partial<VisitStoreOptions>): Promise<VisitStoreOptions> {
    const next = checkOptions({ ...this.options, ...options });
    return this.serialise(async () => {
      const droppingImages = this.options.keepImages && !next.keepImages;
      this.options = next;
      if (droppingImages) {
        const withCrops = this.records.filter((r) => r.hasCrop);
        for (const record of withCrops) record.hasCrop = false;
        await this.append({ op: 'nocrop', ids: withCrops.map((r) => r.id) }, null);
        await fsp.rm(path.join(this.dir, 'crops'), { recursive: true, force: true });
        await fsp.mkdir(path.join(this.dir, 'crops'), { recursive: true });
      }
      await this.prune();
      return this.settings;
    });
  }

  /** Waits for every queued write. */
  flush(): Promise<void> {
    return this.serialise(async () => undefined);
  }

  // ---------------------------------------------------------------- internals

  private cropPath(id: string): string {
    if (!ID_PATTERN.test(id)) throw new Error(`not a visit id: ${id}`);
    return path.join(this.dir, 'crops', `${id}.jpg`);
  }

  private serialise<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private insert(record: VisitRecord): void {
    // Visits arrive in time order almost always; a late one is placed where it belongs.
    let i = this.records.length;
    while (i > 0 && this.records[i - 1].time > record.time) i--;
    this.records.splice(i, 0, record);
    this.byId.set(record.id, record);
  }

  private lastIndexBefore(id: string): number {
    let i = this.records.length - 1;
    while (i >= 0 && this.records[i].id >= id) i--;
    return i;
  }

  private drop(ids: readonly string[]): void {
    const gone = new Set(ids);
    this.records = this.records.filter((r) => !gone.has(r.id));
    for (const id of ids) this.byId.delete(id);
    for (const segment of this.segments) for (const id of ids) segment.ids.delete(id);
    for (const listener of this.removedListeners) listener([...ids]);
  }

  private async append(line: Line, recordId: string | null): Promise<void> {
    if (!this.current || this.current.lines >= SEGMENT_RECORDS) {
      const file = `seg-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}.jsonl`;
      this.current = { file, lines: 0 };
      this.segments.push({ file, ids: new Set() });
    }
    const handle = await fsp.open(path.join(this.dir, this.current.file), 'a', 0o644);
    try {
      await handle.write(JSON.stringify(line) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (this.current.lines === 0) await syncDirectory(this.dir);
    this.current.lines++;
    if (recordId) this.segments[this.segments.length - 1].ids.add(recordId);
  }

  /** Applies the bounds: oldest first, by age and count. */
  private async prune(): Promise<void> {
    const oldest = Date.now() - this.options.maxAgeDays * DAY_MS;
    let cut = 0;
    while (
      cut < this.records.length &&
      (this.records.length - cut > this.options.maxVisits || this.records[cut].time < oldest)
    )
      cut++;
    if (cut > 0) {
      const dropped = this.records.slice(0, cut).map((r) => r.id);
      this.drop(dropped);
      // Crops of dropped visits go now; segments once nothing in them is kept.
      for (const id of dropped) await fsp.unlink(this.cropPath(id)).catch(() => undefined);
    }
    const current = this.current?.file;
    const empty = this.segments.filter((s) => s.ids.size === 0 && s.file !== current);
    for (const segment of empty) await fsp.unlink(path.join(this.dir, segment.file)).catch(() => undefined);
    if (empty.length > 0) this.segments = this.segments.filter((s) => !empty.includes(s));
  }

  private async load(): Promise<void> {
    const names = (await fsp.readdir(this.dir)).filter((f) => SEGMENT_PATTERN.test(f)).sort(bySegmentTime);
    for (const file of names) {
      const text = await fsp.readFile(path.join(this.dir, file), 'utf8');
      const segment = { file, ids: new Set<string>() };
      for (const raw of text.split('\n')) {
        if (!raw) continue;
        let line: unknown;
        try {
          line = JSON.parse(raw);
        } catch {
          continue; // a line torn by a crash
        }
        this.applyLine(line, segment.ids);
      }
      this.segments.push(segment);
      await new Promise((resolve) => setImmediate(resolve)); // one segment at a time: the event loop breathes
    }
    this.records.sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : 1));
    // Temp files and crops no record points at (a crash between crop and line) are removed.
    const crops = path.join(this.dir, 'crops');
    for (const file of await fsp.readdir(crops)) {
      const id = file.replace(/\.jpg$/, '');
      if (file.endsWith(TEMP_SUFFIX) || !this.byId.get(id)?.hasCrop)
        await fsp.unlink(path.join(crops, file)).catch(() => undefined);
    }
    await this.prune();
  }

  private applyLine(line: unknown, segmentIds: Set<string>): void {
    if (!isPlainObject(line)) return;
    if (line.op === 'delete' && Array.isArray(line.ids)) {
      for (const id of line.ids) this.removeLoaded(String(id));
      return;
    }
    if (line.op === 'nocrop' && Array.isArray(line.ids)) {
      for (const id of line.ids) {
        const record = this.byId.get(String(id));
        if (record) record.hasCrop = false;
      }
      return;
    }
    if (line.op === 'label' && Array.isArray(line.ids) && typeof line.label === 'string') {
      for (const id of line.ids) {
        const record = this.byId.get(String(id));
        if (record) {
          applyLabel(record, line.label, {
            corrected: line.corrected === true,
            resolved: line.resolved === true,
            ...(typeof line.resolvedAs === 'string' ? { resolvedAs: line.resolvedAs } : {}),
          });
        }
      }
      return;
    }
    const record = parseRecord(line);
    if (!record || this.byId.has(record.id)) return;
    this.records.push(record);
    this.byId.set(record.id, record);
    segmentIds.add(record.id);
  }

  private removeLoaded(id: string): void {
    const record = this.byId.get(id);
    if (!record) return;
    this.byId.delete(id);
    const i = this.records.indexOf(record);
    if (i >= 0) this.records.splice(i, 1);
  }
}

/** What a visit counts as now: a corrected recognition is a stranger. */
export function kindOf(record: VisitRecord): VisitKind {
  return record.corrected ? 'unknown' : record.kind;
}

function applyLabel(record: VisitRecord, label: string, options: LabelOptions): void {
  record.label = label;
  if (options.corrected) record.corrected = true;
  if (options.resolved) record.resolved = true;
  if (options.resolvedAs) record.resolvedAs = options.resolvedAs;
}

function newId(time: number): string {
  return `${Math.max(0, Math.floor(time)).toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
}

function bySegmentTime(a: string, b: string): number {
  const time = (name: string) => parseInt(name.split('-')[1], 36);
  return time(a) - time(b) || (a < b ? -1 : 1);
}

function parseRecord(line: Record<string, unknown>): VisitRecord | undefined {
  const { id, time, camera, kind, name, cosine, trackId } = line;
  if (
    typeof id !== 'string' ||
    !ID_PATTERN.test(id) ||
    typeof time !== 'number' ||
    typeof camera !== 'string' ||
    (kind !== 'recognized' && kind !== 'unknown' && kind !== 'ignored') ||
    typeof name !== 'string' ||
    typeof cosine !== 'number' ||
    typeof trackId !== 'string'
  )
    return undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    id,
    time,
    camera,
    kind,
    name,
    cosine,
    trackId,
    personId: str(line.personId),
    reason: str(line.reason),
    closest: str(line.closest),
    margin: typeof line.margin === 'number' ? line.margin : null,
    ...(isPlainObject(line.box) ? { box: line.box as unknown as Box } : {}),
    ...(isPlainObject(line.quality) ? { quality: line.quality } : {}),
    hasCrop: line.hasCrop === true,
    embedding: decodeVector(line.embedding) ?? null,
  };
}

function checkOptions(options: VisitStoreOptions): VisitStoreOptions {
  const [minVisits, maxVisits] = VISIT_STORE_LIMITS.maxVisits;
  const [minAge, maxAge] = VISIT_STORE_LIMITS.maxAgeDays;
  if (!Number.isInteger(options.maxVisits) || options.maxVisits < minVisits || options.maxVisits > maxVisits) {
    throw new RangeError(
      `maxVisits must be a whole number from ${minVisits} to ${maxVisits} (got ${options.maxVisits})`,
    );
  }
  if (typeof options.maxAgeDays !== 'number' || !(options.maxAgeDays >= minAge && options.maxAgeDays <= maxAge)) {
    throw new RangeError(`maxAgeDays must be a number from ${minAge} to ${maxAge} (got ${options.maxAgeDays})`);
  }
  if (typeof options.keepImages !== 'boolean') throw new RangeError('keepImages must be true or false');
  return { ...options };
}
