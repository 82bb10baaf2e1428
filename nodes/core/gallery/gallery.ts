/**
 * The on-disk face gallery: the people a camera should know, their aligned
 * face crops, and the cached embeddings of those crops.
 *
 *   <dir>/gallery.json                 the index, and the commit point of every change (format.ts)
 *   <dir>/people/<id>/<file>.png       aligned crops (112×112 RGB PNG)
 *   <dir>/people/<id>/negatives/*.png  faces that are not this person (corrections)
 *   <dir>/people/<id>/person.json      the person's record: with the crops, enough to rebuild a lost index
 *   <dir>/embeddings/<key>.json        cached embeddings per embedder (embedding-cache.ts)
 *   <dir>/pending/<op>.json            what a change in progress is about to write or delete
 *   <dir>/gallery.lock                 the writers' lock (lock.ts)
 *
 * What it promises, and how:
 * - A change is all or nothing. Crops are written first, the index is
 *   renamed over the old one last (the commit); every file is written as temp
 *   file + fsync + rename. After a crash the gallery holds exactly the changes
 *   whose index write completed.
 * - Nothing is deleted because it looked missing. The only files ever deleted
 *   are those a change has said (in pending/) it is about to write or delete:
 *   the crops of a change that failed or crashed before its commit, and the
 *   crops, folder and cached embeddings of a person forgotten (or a crop
 *   removed) once that commit is done. A crop without an index entry and
 *   without a pending change is left where it is.
 * - The folders are the source of truth. A missing gallery.json with person
 *   folders beside it is rebuilt from them (person.json and the crops that
 *   are there), never taken for an empty gallery. A damaged one is refused
 *   with a clear error until `repair` rebuilds it (keeping the damaged file).
 * - One writer at a time across processes (an flock, lock.ts); each change
 *   re-reads the index under the lock, so Node-RED and the CLI on one folder
 *   never lose each other's updates, and a gallery opened with `watch` sees
 *   changes made by other processes within a couple of seconds.
 * - Recognition needs no write access: the embedding cache is an
 *   optimisation, and failing to save it is a warning, not an error.
 * - Forgetting removes every trace of a person at once: crops, folder, and
 *   their embeddings in every embedder's cache.
 * - Ids are slugs derived from the display name at creation, never change
 *   (renaming rewrites the index), and paths are built only from ids and crop
 *   names that passed a strict pattern.
 */
import { EventEmitter } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { errorCodeOf } from '../common/errors';
import type { RgbImage } from '../media/image';
import type { EmbedOptions } from '../embed/embedder';
import sharp from '../media/vips';
import {
  cacheKey,
  cachePath,
  purgeEmbeddingCaches,
  readEmbeddingCache,
  referencedKeys,
  writeEmbeddingCache,
} from './embedding-cache';
import {
  ioError,
  isReadOnlyError,
  listDirectory,
  nodeFileSystem,
  TEMP_FILE_PATTERN,
  writeAtomic,
  type FileStatus,
  type GalleryFileSystem,
} from './files';
import {
  CROP_FILE_PATTERN,
  deepFreeze,
  EMBEDDINGS_DIR,
  EMPTY_INDEX,
  findPerson,
  GALLERY_FORMAT,
  GALLERY_FORMAT_VERSION,
  GalleryError,
  INDEX_FILE,
  isPlainObject,
  isValidId,
  matchName,
  nameCollisionError,
  NEGATIVES_DIR,
  normalisePersonName,
  parseIndex,
  parsePerson,
  PEOPLE_DIR,
  PENDING_DIR,
  PERSON_FILE,
  serialiseIndex,
  serialisePerson,
  slugify,
  uniqueId,
  type CropRecord,
  type GalleryIndex,
  type PersonRecord,
} from './format';
import { DEFAULT_LOCK_TIMEOUT_MS, lockGallery, tryLockGallery, type HeldLock } from './lock';

/** Bounds how many decoded crops are held at once while filling the cache. */
const EMBED_BATCH_SIZE = 32;
const EXPORT_FORMAT = 'coral-face-export';
const EXPORT_FORMAT_VERSION = 1;
const DEFAULT_WATCH_INTERVAL_MS = 2000;

export interface NewCrop {
  image: RgbImage;
  source?: string;
  quality?: Record<string, unknown>;
}

export type EmbedFunction = (crops: RgbImage[], options?: EmbedOptions) => Promise<Float32Array[]>;

export interface GalleryChange {
  kind: 'add' | 'negative' | 'remove-crop' | 'forget' | 'rename' | 'ignore' | 'external';
  /** null for 'external' (another process changed the gallery: anyone may have changed). */
  personId: string | null;
  name: string | null;
}

/**
 * How a name given to addCrops finds its person:
 * - 'auto' (default): the person with exactly this name; a name that only
 *   resembles someone's (case, accents, punctuation: "andre_agassi" for
 *   "Andre Agassi") is refused, so it can never silently mean them; else a
 *   new person.
 * - 'add': add to the person the name finds, exactly or by resemblance.
 * - 'new': a new person, even when a similar name exists (never the same name).
 */
export type AddMode = 'auto' | 'add' | 'new';

export interface AddOptions {
  mode?: AddMode;
  /** Add to the person with this id (who must exist), whatever `name` says: for callers that hold an id. */
  personId?: string;
  /** Store the crops as faces that are *not* this person (who must exist). */
  negative?: boolean;
}

export interface RecoveryReport {
  /** Why the index was rebuilt. */
  reason: string;
  people: number;
  crops: number;
  /** Whether the rebuilt index could be saved (false on a read-only gallery: it is rebuilt at every open). */
  saved: boolean;
  /** Where a damaged index was kept, when there was one. */
  damagedIndex?: string;
}

export interface GalleryOpenOptions {
  /** Create an empty gallery if the folder holds none (no index, no person folders). */
  create?: boolean;
  /** Poll the index for changes made by other processes and emit 'change' (kind 'external'). */
  watch?: boolean | { intervalMs: number };
  /** How long a change waits for another process's change to finish (default 30 s). */
  lockTimeoutMs?: number;
  fileSystem?: GalleryFileSystem;
}

export interface GalleryExport {
  format: typeof EXPORT_FORMAT;
  version: number;
  exportedAt: string;
  people: ExportedPerson[];
}

interface ExportedCrop {
  /** The aligned crop as a base64 PNG. */
  png: string;
  addedAt: string;
  source?: string;
  quality?: Record<string, unknown>;
}

interface ExportedPerson {
  name: string;
  ignored?: boolean;
  createdAt: string;
  crops: ExportedCrop[];
  negatives: ExportedCrop[];
}

export interface ImportResult {
  /** `merged`: the photos went to a person who was already there. */
  people: { name: string; id: string; added: number; duplicates: number; merged: boolean }[];
  skipped: { name: string; reason: string }[];
}

/** What pending/<op>.json says a change is about to do. */
interface Intent {
  /** 'update': only person.json needs rewriting (rename, ignore). */
  op: 'add' | 'remove-crop' | 'forget' | 'update';
  personId: string;
  files: string[];
  negative: boolean;
  createdDir: boolean;
}

interface EncodedCrop {
  png: Buffer;
  sha256: string;
  source?: string;
  quality?: Record<string, unknown>;
}

// ---------------------------------------------------------------- crops

function validateCrops(crops: readonly NewCrop[]): void {
  if (!Array.isArray(crops) || crops.length === 0) {
    throw new GalleryError('ERR_CROPS_INVALID', 'No crops given; pass at least one aligned face crop.');
  }
  crops.forEach((crop: NewCrop, position) => {
    const image = crop?.image;
    const validSize =
      image && Number.isInteger(image.width) && Number.isInteger(image.height) && image.width > 0 && image.height > 0;
    if (!validSize || !(image.data instanceof Uint8Array) || image.data.length !== image.width * image.height * 3) {
      throw new GalleryError(
        'ERR_CROPS_INVALID',
        `Crop ${position} is not an RGB image (need width, height and width*height*3 bytes of data).`,
      );
    }
    if (crop.source !== undefined && typeof crop.source !== 'string') {
      throw new GalleryError('ERR_CROPS_INVALID', `Crop ${position} has a source that is not a string.`);
    }
    if (crop.quality !== undefined && !isPlainObject(crop.quality)) {
      throw new GalleryError('ERR_CROPS_INVALID', `Crop ${position} has a quality that is not a plain object.`);
    }
  });
}

/** SHA-256 of a crop's size and RGB pixels: equal for the same face crop however it was encoded. */
export function cropDigest(image: RgbImage): string {
  return createHash('sha256').update(`${image.width}x${image.height}:`).update(image.data).digest('hex');
}

async function encodePng(image: RgbImage): Promise<Buffer> {
  const pixels = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return sharp(pixels, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png()
    .toBuffer();
}

async function decodePng(bytes: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(bytes, { limitInputPixels: 4096 * 4096 })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

function newCropFileName(taken: ReadonlySet<string>): string {
  for (;;) {
    const file = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.png`;
    if (!taken.has(file)) return file;
  }
}

/** JSON round trip: stores a detached copy and rejects what JSON cannot hold. */
function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function validateEmbedderId(embedderId: unknown): string {
  if (
    typeof embedderId !== 'string' ||
    embedderId.length === 0 ||
    embedderId.length > 200 ||
    /\p{Cc}/u.test(embedderId)
  ) {
    throw new GalleryError(
      'ERR_EMBEDDER_INVALID',
      'The embedder id must be a non-empty printable string of at most 200 characters (e.g. "mobilefacenet-edgetpu-v1").',
    );
  }
  return embedderId;
}

function checkEmbeddings(vectors: unknown, expectedCount: number, dimension: number | null, embedderId: string): void {
  const fail = (detail: string): GalleryError =>
    new GalleryError('ERR_EMBEDDINGS_INVALID', `The embedder '${embedderId}' ${detail}.`);
  if (!Array.isArray(vectors) || vectors.length !== expectedCount) {
    throw fail(
      `returned ${Array.isArray(vectors) ? vectors.length : 'no list of'} embeddings for ${expectedCount} crops`,
    );
  }
  const expectedDimension = dimension ?? (vectors[0] as Float32Array | undefined)?.length;
  for (const vector of vectors) {
    if (!(vector instanceof Float32Array) || vector.length === 0)
      throw fail('returned something other than a Float32Array');
    if (vector.length !== expectedDimension) {
      throw fail(
        `returned ${vector.length}-value embeddings where ${expectedDimension} were expected; ` +
          'if the model changed, give it a new embedder id',
      );
    }
    if (!vector.every(Number.isFinite)) throw fail('returned NaN or Infinity');
  }
}

function requirePerson(index: GalleryIndex, nameOrId: string): PersonRecord {
  const person = findPerson(index, nameOrId);
  if (!person) {
    const { similar } = matchName(index, String(nameOrId));
    const hint =
      similar.length > 1
        ? ` Several people have a similar name (${similar.map((p) => `'${p.name}'`).join(', ')}): give the exact name.`
        : ' Check the spelling or list the people.';
    throw new GalleryError(
      'ERR_PERSON_NOT_FOUND',
      `No person named '${String(nameOrId)}' (or with that id) in the gallery.${hint}`,
    );
  }
  return person;
}

function requirePersonId(index: GalleryIndex, id: string): PersonRecord {
  const person = index.people.find((p) => p.id === id);
  if (!person)
    throw new GalleryError('ERR_PERSON_NOT_FOUND', `No person with id '${id}' in the gallery (forgotten meanwhile?).`);
  return person;
}

function statKey(status: FileStatus | undefined): string {
  return status ? `${status.ino}:${status.size}:${status.mtimeMs}` : 'missing';
}

// ---------------------------------------------------------------- the gallery

export class Gallery extends EventEmitter<{ change: [GalleryChange]; warning: [string] }> {
  private index: GalleryIndex;
  private queue: Promise<unknown> = Promise.resolve();
  private watchTimer: NodeJS.Timeout | null = null;
  private lastSeenIndex = '';
  /** Set when the index had to be rebuilt from the folders at open. */
  recovery: RecoveryReport | null = null;

  private constructor(
    readonly dir: string,
    private readonly fs: GalleryFileSystem,
    index: GalleryIndex,
    private readonly lockTimeoutMs: number,
  ) {
    super();
    this.index = index;
  }

  /**
   * Opens the gallery in `dir`. A folder with no index but person folders is
   * rebuilt from them (see `recovery`); one with neither is a new gallery
   * only when `create` is set, else ERR_GALLERY_NOT_FOUND. Changes that a
   * crash interrupted are finished or rolled back here.
   */
  static async open(dir: string, options: GalleryOpenOptions = {}): Promise<Gallery> {
    const root = path.resolve(dir);
    const fs = options.fileSystem ?? nodeFileSystem;
    const gallery = new Gallery(root, fs, EMPTY_INDEX, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
    const text = await gallery.readIndexText();
    if (text !== undefined) {
      gallery.index = parseIndex(text, gallery.indexPath);
    } else if (await gallery.hasPersonFolders()) {
      await gallery.recover('the index (gallery.json) was missing');
    } else if (options.create) {
      await gallery.create();
    } else {
      throw new GalleryError(
        'ERR_GALLERY_NOT_FOUND',
        `No gallery at ${root} (no ${INDEX_FILE} and no person folders). Check the path (--gallery), or enrol someone ` +
          'to start a gallery there.',
      );
    }
    await gallery.finishInterrupted();
    if (options.watch)
      gallery.watch(typeof options.watch === 'object' ? options.watch.intervalMs : DEFAULT_WATCH_INTERVAL_MS);
    return gallery;
  }

  /**
   * Rebuilds the index from the person folders: for a damaged gallery.json
   * (kept beside it as gallery.json.damaged-<time>) or a missing one.
   * Nothing else is changed or deleted.
   */
  static async repair(dir: string, options: { fileSystem?: GalleryFileSystem } = {}): Promise<RecoveryReport> {
    const root = path.resolve(dir);
    const fs = options.fileSystem ?? nodeFileSystem;
    const gallery = new Gallery(root, fs, EMPTY_INDEX, DEFAULT_LOCK_TIMEOUT_MS);
    const lock = await gallery.acquireLock('repairing the gallery');
    try {
      const text = await gallery.readIndexText();
      let damagedIndex: string | undefined;
      let reason = 'the index (gallery.json) was missing';
      if (text !== undefined) {
        try {
          parseIndex(text, gallery.indexPath);
          throw new GalleryError(
            'ERR_GALLERY_FORMAT',
            `${gallery.indexPath} is not damaged: there is nothing to repair.`,
          );
        } catch (error) {
          if (
            !(error instanceof GalleryError) ||
            error.code !== 'ERR_GALLERY_FORMAT' ||
            /nothing to repair/.test(error.message)
          )
            throw error;
        }
        damagedIndex = `${gallery.indexPath}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        await fs.rename(gallery.indexPath, damagedIndex).catch((error: unknown) => {
          throw ioError(error, `keeping the damaged index as ${damagedIndex}`);
        });
        reason = 'the index (gallery.json) was damaged';
      }
      const rebuilt = await gallery.rebuildFromFolders();
      await gallery.commit(rebuilt.index).catch((error: unknown) => {
        throw ioError(error, 'saving the rebuilt index');
      });
      return {
        reason,
        people: rebuilt.index.people.length,
        crops: rebuilt.crops,
        saved: true,
        ...(damagedIndex ? { damagedIndex } : {}),
      };
    } finally {
      await lock.release();
    }
  }

  listPeople(): readonly PersonRecord[] {
    return this.index.people;
  }

  /** Finds a person by exact display name, else by a unique similar name, else by id. */
  getPerson(nameOrId: string): PersonRecord | undefined {
    return findPerson(this.index, nameOrId);
  }

  /** The person with exactly this name, and the others whose names resemble it. */
  matchName(name: string): { exact?: PersonRecord; similar: PersonRecord[] } {
    return matchName(this.index, name);
  }

  /** Re-reads the index from disk, picking up changes made by another process. */
  refresh(): Promise<void> {
    return this.serialise(async () => {
      await this.reloadIndex();
    });
  }

  /**
   * Stores crops for the person `name` finds (see AddMode), creating the
   * person if the mode says so. Either all crops are added or none. A crop
   * whose pixels are already stored for that person is not stored again.
   */
  async addCrops(name: string, crops: readonly NewCrop[], options: AddOptions = {}): Promise<PersonRecord> {
    const displayName = normalisePersonName(name);
    validateCrops(crops);
    const negative = options.negative ?? false;
    const mode = negative ? 'add' : (options.mode ?? 'auto');
    // Encoding is CPU work with no shared state, so it runs before taking the queue.
    const encoded: EncodedCrop[] = await Promise.all(
      crops.map(async (crop) => ({
        png: await encodePng(crop.image),
        sha256: cropDigest(crop.image),
        source: crop.source,
        quality: crop.quality,
      })),
    );
    return this.mutate(`adding ${crops.length} crop(s) for '${displayName}'`, async (index) => {
      const existing =
        options.personId !== undefined
          ? requirePersonId(index, options.personId)
          : this.resolveTarget(index, displayName, mode);
      const list = existing ? (negative ? existing.negatives : existing.crops) : [];
      const known = new Set(list.map((crop) => crop.sha256).filter(Boolean));
      const fresh = encoded.filter((crop) => !known.has(crop.sha256) && (known.add(crop.sha256), true));
      if (existing && fresh.length === 0) return existing;

      const id = existing?.id ?? uniqueId(slugify(displayName), new Set(index.people.map((person) => person.id)));
      const folder = negative ? path.join(this.personDir(id), NEGATIVES_DIR) : this.personDir(id);
      const taken = new Set([...(existing?.crops ?? []), ...(existing?.negatives ?? [])].map((crop) => crop.file));
      const files = fresh.map(() => {
        const file = newCropFileName(taken);
        taken.add(file);
        return file;
      });
      const createdDir = !(await this.exists(this.personDir(id)));
      const intent = await this.writeIntent({ op: 'add', personId: id, files, negative, createdDir });
      let committed = false;
      try {
        await this.ensurePlainDirectory(this.personDir(id));
        if (negative) await this.ensurePlainDirectory(folder);
        for (const [position, crop] of fresh.entries()) {
          await writeAtomic(this.fs, path.join(folder, files[position]), crop.png, { syncDirectory: false });
        }
        await this.fs.syncDirectory(folder);

        const now = new Date().toISOString();
        const records: CropRecord[] = fresh.map((crop, position) => ({
          file: files[position],
          addedAt: now,
          ...(crop.source !== undefined ? { source: crop.source } : {}),
          ...(crop.quality !== undefined ? { quality: jsonCopy(crop.quality) } : {}),
          sha256: crop.sha256,
        }));
        const person: PersonRecord = existing
          ? {
              ...existing,
              updatedAt: now,
              ...(negative
                ? { negatives: [...existing.negatives, ...records] }
                : { crops: [...existing.crops, ...records] }),
            }
          : { id, name: displayName, createdAt: now, updatedAt: now, crops: records, negatives: [] };
        await this.commit({
          ...index,
          people: existing ? index.people.map((p) => (p.id === id ? person : p)) : [...index.people, person],
        });
        committed = true;
      } finally {
        if (!committed) {
          // Known to have failed: take back what this change wrote, so the folder is as before.
          for (const file of files) await this.fs.unlink(path.join(folder, file)).catch(() => undefined);
          if (createdDir) await this.fs.removeTree(this.personDir(id)).catch(() => undefined);
          await this.fs.unlink(intent).catch(() => undefined);
        }
      }
      await this.afterCommit(intent, id);
      const stored = this.index.people.find((person) => person.id === id)!;
      this.emit('change', { kind: negative ? 'negative' : 'add', personId: id, name: stored.name });
      return stored;
    });
  }

  async removeCrop(nameOrId: string, file: string, options: { negative?: boolean } = {}): Promise<PersonRecord> {
    const negative = options.negative ?? false;
    return this.mutate(`removing crop '${file}'`, async (index) => {
      const person = requirePerson(index, nameOrId);
      const list = negative ? person.negatives : person.crops;
      if (!CROP_FILE_PATTERN.test(String(file)) || !list.some((crop) => crop.file === file)) {
        throw new GalleryError(
          'ERR_CROP_NOT_FOUND',
          `'${person.name}' has no ${negative ? 'negative ' : ''}crop '${file}'; list their crops to see the file names.`,
        );
      }
      const intent = await this.writeIntent({
        op: 'remove-crop',
        personId: person.id,
        files: [file],
        negative,
        createdDir: false,
      });
      const remaining = list.filter((crop) => crop.file !== file);
      const updated: PersonRecord = {
        ...person,
        updatedAt: new Date().toISOString(),
        ...(negative ? { negatives: remaining } : { crops: remaining }),
      };
      await this.commitOrRollBack(intent, {
        ...index,
        people: index.people.map((p) => (p.id === person.id ? updated : p)),
      });
      await this.afterCommit(intent, person.id);
      this.emit('change', { kind: 'remove-crop', personId: person.id, name: person.name });
      return this.index.people.find((p) => p.id === person.id)!;
    });
  }

  /** Removes a person and every trace of them (crops, folder, cached embeddings); returns the removed record. */
  async forget(nameOrId: string): Promise<PersonRecord> {
    return this.mutate(`forgetting '${String(nameOrId)}'`, async (index) => {
      const person = requirePerson(index, nameOrId);
      const intent = await this.writeIntent({
        op: 'forget',
        personId: person.id,
        files: [],
        negative: false,
        createdDir: false,
      });
      await this.commitOrRollBack(intent, { ...index, people: index.people.filter((p) => p.id !== person.id) });
      await this.afterCommit(intent, person.id);
      this.emit('change', { kind: 'forget', personId: person.id, name: person.name });
      return person;
    });
  }

  /** Changes a display name; the id stays. Refuses a name another person has, or one easily taken for theirs. */
  async rename(oldNameOrId: string, newName: string): Promise<PersonRecord> {
    const displayName = normalisePersonName(newName);
    return this.mutate(`renaming '${String(oldNameOrId)}'`, async (index) => {
      const person = requirePerson(index, oldNameOrId);
      const { exact, similar } = matchName(index, displayName);
      const clash = [exact, ...similar].find((holder) => holder && holder.id !== person.id);
      if (clash) {
        const same = clash.name === displayName;
        throw new GalleryError(
          same ? 'ERR_PERSON_EXISTS' : 'ERR_NAME_COLLISION',
          `Cannot rename '${person.name}' to '${displayName}': ${same ? 'that name belongs to' : 'it is easily taken for the name of'} ` +
            `another person ('${clash.name}', id '${clash.id}'). Pick another name, or forget that person first.`,
        );
      }
      if (person.name === displayName) return person;
      const updated: PersonRecord = { ...person, name: displayName, updatedAt: new Date().toISOString() };
      await this.commitUpdate(index, updated);
      this.emit('change', { kind: 'rename', personId: person.id, name: displayName });
      return this.index.people.find((p) => p.id === person.id)!;
    });
  }

  /** Marks a person as a known-but-silent class (recognised, reported as "ignored"), or back. */
  async setIgnored(nameOrId: string, ignored: boolean): Promise<PersonRecord> {
    return this.mutate(`changing '${String(nameOrId)}'`, async (index) => {
      const person = requirePerson(index, nameOrId);
      if ((person.ignored ?? false) === ignored) return person;
      const { ignored: _was, ...rest } = person;
      const updated: PersonRecord = {
        ...rest,
        ...(ignored ? { ignored: true } : {}),
        updatedAt: new Date().toISOString(),
      };
      await this.commitUpdate(index, updated);
      this.emit('change', { kind: 'ignore', personId: person.id, name: person.name });
      return this.index.people.find((p) => p.id === person.id)!;
    });
  }

  /** Decodes a person's crops (or negatives), in the order they were added. */
  async loadCrops(nameOrId: string, options: { negatives?: boolean } = {}): Promise<RgbImage[]> {
    return this.serialise(async () => {
      const person = requirePerson(this.index, nameOrId);
      const list = options.negatives ? person.negatives : person.crops;
      return Promise.all(list.map((crop) => this.readCrop(person.id, crop.file, options.negatives ?? false)));
    });
  }

  /** One crop's PNG bytes, as stored (for the face library page). */
  async cropPng(nameOrId: string, file: string, options: { negative?: boolean } = {}): Promise<Buffer> {
    const person = requirePerson(this.index, nameOrId);
    const list = options.negative ? person.negatives : person.crops;
    if (!list.some((crop) => crop.file === file)) {
      throw new GalleryError('ERR_CROP_NOT_FOUND', `'${person.name}' has no crop '${file}'.`);
    }
    return this.fs.readFile(this.cropPath(person.id, file, options.negative ?? false)).catch((error: unknown) => {
      throw ioError(error, `reading crop '${file}' of '${person.name}'`);
    });
  }

  /**
   * Embeddings of every crop, per person id, in crop order. Cached per
   * embedder id: only crops missing from the cache are decoded and embedded
   * (in batches). Saving the cache is best effort (a read-only or full disk,
   * or another process writing the gallery, only costs a recomputation
   * later); it says so with a 'warning' event. Use a new embedder id whenever
   * the model or its preprocessing changes. Each crop is embedded with its
   * mirror image (EmbedOptions.mirror): a gallery crop is embedded once and
   * then weighs in every decision.
   */
  async embeddings(embedderId: string, embed: EmbedFunction): Promise<Map<string, Float32Array[]>> {
    return (await this.allEmbeddings(embedderId, embed)).crops;
  }

  /** Embeddings of every person's negative crops ("not this person"), per person id; people without any are absent. */
  async negativeEmbeddings(embedderId: string, embed: EmbedFunction): Promise<Map<string, Float32Array[]>> {
    return (await this.allEmbeddings(embedderId, embed)).negatives;
  }

  /** The people (all, or those named) as one self-contained document: crops as PNG, no embeddings. */
  async exportPeople(nameOrIds?: readonly string[]): Promise<GalleryExport> {
    return this.serialise(async () => {
      const people = nameOrIds ? nameOrIds.map((n) => requirePerson(this.index, n)) : [...this.index.people];
      const exportCrops = async (person: PersonRecord, negative: boolean): Promise<ExportedCrop[]> =>
        Promise.all(
          (negative ? person.negatives : person.crops).map(async (crop) => ({
            png: (await this.fs.readFile(this.cropPath(person.id, crop.file, negative))).toString('base64'),
            addedAt: crop.addedAt,
            ...(crop.source !== undefined ? { source: crop.source } : {}),
            ...(crop.quality !== undefined ? { quality: jsonCopy(crop.quality) } : {}),
          })),
        );
      return {
        format: EXPORT_FORMAT,
        version: EXPORT_FORMAT_VERSION,
        exportedAt: new Date().toISOString(),
        people: await Promise.all(
          people.map(async (person) => ({
            name: person.name,
            ...(person.ignored ? { ignored: true } : {}),
            createdAt: person.createdAt,
            crops: await exportCrops(person, false),
            negatives: await exportCrops(person, true),
          })),
        ),
      };
    });
  }

  /**
   * Adds the people of an export. A name that is someone's exactly, or
   * resembles it, is resolved by `onCollision`: 'skip' (default), 'add' to
   * that person, or 'new' person. Each person is one atomic change; crops
   * already stored are not stored twice, so importing the same file again
   * changes nothing.
   */
  async importPeople(document: unknown, options: { onCollision?: 'skip' | 'add' | 'new' } = {}): Promise<ImportResult> {
    const people = await parseExport(document);
    const result: ImportResult = { people: [], skipped: [] };
    for (const person of people) {
      const { exact, similar } = this.matchName(person.name);
      const collides = exact !== undefined || similar.length > 0;
      const onCollision = options.onCollision ?? 'skip';
      if (collides && onCollision === 'skip') {
        result.skipped.push({
          name: person.name,
          reason: `a person named '${(exact ?? similar[0]).name}' is already in the gallery`,
        });
        continue;
      }
      const mode: AddMode = collides && onCollision !== 'skip' ? onCollision : 'new';
      const before =
        collides && mode === 'add' ? (exact ?? (similar.length === 1 ? similar[0] : undefined)) : undefined;
      const countBefore = before ? before.crops.length : 0;
      let stored = person.crops.length > 0 ? await this.addCrops(person.name, person.crops, { mode }) : undefined;
      if (!stored) {
        result.skipped.push({ name: person.name, reason: 'no crops' });
        continue;
      }
      if (person.negatives.length > 0)
        stored = await this.addCrops(stored.name, person.negatives, { negative: true, mode: 'add' });
      if (person.ignored) stored = await this.setIgnored(stored.id, true);
      const added = stored.crops.length - countBefore;
      result.people.push({
        name: stored.name,
        id: stored.id,
        added,
        duplicates: person.crops.length - added,
        merged: before !== undefined,
      });
    }
    return result;
  }

  /** Stops watching for changes by other processes. */
  close(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = null;
  }

  // ---------------------------------------------------------------- internals

  private serialise<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** A change: in this process's queue, under the cross-process lock, on a fresh index. */
  private mutate<T>(action: string, body: (index: GalleryIndex) => Promise<T>): Promise<T> {
    return this.serialise(async () => {
      const lock = await this.acquireLock(action);
      try {
        const index = await this.reloadIndex({ locked: true });
        await this.finishPendingChanges(index);
        if (index.version < GALLERY_FORMAT_VERSION) {
          // An index from before person.json: give every folder its description, then the index its new version.
          for (const person of index.people) await this.writePersonFile(person.id);
          await this.commit(index);
        }
        return await body(this.index);
      } catch (error) {
        throw ioError(error, action);
      } finally {
        await lock.release();
      }
    });
  }

  private async acquireLock(action: string): Promise<HeldLock> {
    try {
      return await lockGallery(this.dir, this.lockTimeoutMs);
    } catch (error) {
      throw ioError(error, action);
    }
  }

  private get indexPath(): string {
    return path.join(this.dir, INDEX_FILE);
  }

  private personDir(id: string): string {
    // Ids come from the validated index or from slugify(); check again so no path can leave the folder.
    if (!isValidId(id))
      throw new GalleryError('ERR_GALLERY_FORMAT', `Refusing to use '${id}' as a person id: not a safe slug.`);
    const peopleDir = path.join(this.dir, PEOPLE_DIR);
    const dirPath = path.join(peopleDir, id);
    if (path.dirname(dirPath) !== peopleDir) {
      throw new GalleryError('ERR_GALLERY_FORMAT', `Refusing to use '${id}' as a person id: it leaves the gallery.`);
    }
    return dirPath;
  }

  private cropPath(personId: string, file: string, negative: boolean): string {
    if (!CROP_FILE_PATTERN.test(file))
      throw new GalleryError('ERR_GALLERY_FORMAT', `Refusing to use crop '${file}': not a safe file name.`);
    return negative
      ? path.join(this.personDir(personId), NEGATIVES_DIR, file)
      : path.join(this.personDir(personId), file);
  }

  private resolveTarget(index: GalleryIndex, name: string, mode: AddMode): PersonRecord | undefined {
    const { exact, similar } = matchName(index, name);
    const names = (people: PersonRecord[]) => people.map((p) => `'${p.name}'`).join(', ');
    if (mode === 'new') {
      if (exact) {
        throw new GalleryError(
          'ERR_PERSON_EXISTS',
          `'${name}' is already in the gallery; give the new person another name, or add to '${name}'.`,
        );
      }
      return undefined;
    }
    if (exact) return exact;
    if (mode === 'add') {
      if (similar.length === 1) return similar[0];
      if (similar.length > 1) {
        throw new GalleryError(
          'ERR_NAME_COLLISION',
          `'${name}' resembles several people (${names(similar)}); give the exact name.`,
        );
      }
      throw new GalleryError(
        'ERR_PERSON_NOT_FOUND',
        `No person named '${name}' in the gallery to add to; check the spelling or list the people.`,
      );
    }
    if (similar.length > 0) throw nameCollisionError(name, similar);
    return undefined;
  }

  private async readIndexText(): Promise<string | undefined> {
    try {
      return (await this.fs.readFile(this.indexPath)).toString('utf8');
    } catch (error) {
      if (errorCodeOf(error) === 'ENOENT') return undefined;
      throw ioError(error, `reading ${this.indexPath}`);
    }
  }

  private async exists(target: string): Promise<boolean> {
    return (await this.fs.lstat(target).catch(() => undefined)) !== undefined;
  }

  private async hasPersonFolders(): Promise<boolean> {
    for (const entry of await listDirectory(this.fs, path.join(this.dir, PEOPLE_DIR))) {
      if (!isValidId(entry)) continue;
      const files = await listDirectory(this.fs, path.join(this.dir, PEOPLE_DIR, entry));
      if (files.some((file) => CROP_FILE_PATTERN.test(file) || file === PERSON_FILE || file === NEGATIVES_DIR))
        return true;
    }
    return false;
  }

  /**
   * Re-reads the index. One that has gone missing while person folders are
   * there is rebuilt from them (and saved, when this is a change holding the
   * lock), never taken for an empty gallery.
   */
  private async reloadIndex(options: { locked?: boolean } = {}): Promise<GalleryIndex> {
    const text = await this.readIndexText();
    if (text !== undefined) {
      this.index = parseIndex(text, this.indexPath);
    } else if (await this.hasPersonFolders()) {
      const rebuilt = await this.rebuildFromFolders();
      this.index = rebuilt.index;
      let saved = false;
      if (options.locked) {
        await this.commit(rebuilt.index);
        saved = true;
      }
      this.recovery = {
        reason: 'the index (gallery.json) went missing',
        people: rebuilt.index.people.length,
        crops: rebuilt.crops,
        saved,
      };
      this.emit(
        'warning',
        `${this.indexPath} was missing: rebuilt from the person folders (${rebuilt.index.people.length} people).`,
      );
    } else if (this.index.people.length > 0 || !(await this.exists(this.dir))) {
      throw new GalleryError(
        'ERR_GALLERY_NOT_FOUND',
        `${this.indexPath} and the person folders have disappeared; the gallery folder was moved or deleted. Reopen it from its new place.`,
      );
    }
    return this.index;
  }

  /** The index rename is the commit point; memory follows the disk only once it has happened. */
  private async commit(next: GalleryIndex): Promise<void> {
    const frozen: GalleryIndex = deepFreeze({ ...next, format: GALLERY_FORMAT, version: GALLERY_FORMAT_VERSION });
    await writeAtomic(this.fs, this.indexPath, serialiseIndex(frozen), { syncDirectory: false });
    this.index = frozen;
    this.lastSeenIndex = serialiseIndex(frozen).toString('utf8');
    await this.fs.syncDirectory(this.dir);
  }

  /** A change of one person's record alone (rename, ignore): the index, then their person.json. */
  private async commitUpdate(index: GalleryIndex, updated: PersonRecord): Promise<void> {
    const intent = await this.writeIntent({
      op: 'update',
      personId: updated.id,
      files: [],
      negative: false,
      createdDir: false,
    });
    await this.commitOrRollBack(intent, {
      ...index,
      people: index.people.map((p) => (p.id === updated.id ? updated : p)),
    });
    await this.afterCommit(intent, updated.id);
  }

  private async commitOrRollBack(intent: string, next: GalleryIndex): Promise<void> {
    try {
      await this.commit(next);
    } catch (error) {
      await this.fs.unlink(intent).catch(() => undefined);
      throw error;
    }
  }

  /** A new, empty gallery: folders, then the index (under the lock, in case another process creates it too). */
  private async create(): Promise<void> {
    try {
      await this.fs.makeDirectory(this.dir);
    } catch (error) {
      throw ioError(await explainMissingParent(this.dir, error), `creating the gallery folder ${this.dir}`);
    }
    const lock = await this.acquireLock(`creating a gallery at ${this.dir}`);
    try {
      const text = await this.readIndexText();
      if (text !== undefined) {
        this.index = parseIndex(text, this.indexPath);
        return;
      }
      await this.fs.makeDirectory(path.join(this.dir, PEOPLE_DIR));
      await this.fs.makeDirectory(path.join(this.dir, EMBEDDINGS_DIR));
      await this.commit(EMPTY_INDEX);
      await this.fs.syncDirectory(path.dirname(this.dir));
    } catch (error) {
      throw ioError(error, `creating a gallery at ${this.dir}`);
    } finally {
      await lock.release();
    }
  }

  /** Rebuilds a missing index from the folders; saves it when the gallery is writable. */
  private async recover(reason: string): Promise<void> {
    let lock: HeldLock | null = null;
    try {
      lock = await lockGallery(this.dir, this.lockTimeoutMs);
    } catch (error) {
      if (!isReadOnlyError((error as { cause?: unknown }).cause) && errorCodeOf(error) !== 'ERR_GALLERY_READ_ONLY')
        throw ioError(error, 'recovering the gallery');
    }
    try {
      const text = lock ? await this.readIndexText() : undefined;
      if (text !== undefined) {
        // Another process rebuilt it first.
        this.index = parseIndex(text, this.indexPath);
        return;
      }
      const rebuilt = await this.rebuildFromFolders();
      this.index = rebuilt.index;
      let saved = false;
      if (lock) {
        try {
          await this.commit(rebuilt.index);
          saved = true;
        } catch (error) {
          this.emit('warning', `could not save the rebuilt index: ${(error as Error).message}`);
        }
      }
      this.recovery = { reason, people: rebuilt.index.people.length, crops: rebuilt.crops, saved };
    } finally {
      await lock?.release();
    }
  }

  /**
   * The index the folders describe: each person folder with its person.json
   * (name, dates, crop details) and the crops actually there. A crop file
   * without a record still counts (it was being added, or its record was
   * lost); a record without a file does not. Folders without crops are left
   * out (and left alone).
   */
  private async rebuildFromFolders(): Promise<{ index: GalleryIndex; crops: number }> {
    const people: PersonRecord[] = [];
    const names = new Set<string>();
    let crops = 0;
    const entries = (await listDirectory(this.fs, path.join(this.dir, PEOPLE_DIR))).filter(isValidId).sort();
    for (const id of entries) {
      const dir = this.personDir(id);
      const status = await this.fs.lstat(dir).catch(() => undefined);
      if (!status?.isDirectory() || status.isSymbolicLink()) continue;
      let described: PersonRecord | undefined;
      try {
        described = parsePerson(
          JSON.parse((await this.fs.readFile(path.join(dir, PERSON_FILE))).toString('utf8')),
          `person ${id}`,
          (d) => new Error(d),
        );
        if (described.id !== id) described = undefined;
      } catch {
        described = undefined;
      }
      const collect = async (folder: string, records: readonly CropRecord[]): Promise<CropRecord[]> => {
        const present: { file: string; mtimeMs: number }[] = [];
        for (const file of await listDirectory(this.fs, folder)) {
          if (!CROP_FILE_PATTERN.test(file)) continue;
          const fileStatus = await this.fs.lstat(path.join(folder, file)).catch(() => undefined);
          if (fileStatus?.isFile()) present.push({ file, mtimeMs: fileStatus.mtimeMs });
        }
        const byFile = new Map(records.map((record) => [record.file, record]));
        const known = records.filter((record) => present.some((p) => p.file === record.file));
        const extra = present
          .filter((p) => !byFile.has(p.file))
          .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.file < b.file ? -1 : 1))
          .map((p) => ({ file: p.file, addedAt: new Date(p.mtimeMs).toISOString(), source: 'recovered' }));
        return [...known, ...extra];
      };
      const positives = await collect(dir, described?.crops ?? []);
      const negatives = await collect(path.join(dir, NEGATIVES_DIR), described?.negatives ?? []);
      if (positives.length === 0 && negatives.length === 0) continue;
      let name = described?.name ?? id;
      if (names.has(name)) name = `${name} (${id})`;
      names.add(name);
      const oldest = [...positives, ...negatives].map((c) => c.addedAt).sort()[0] ?? new Date().toISOString();
      people.push({
        id,
        name,
        createdAt: described?.createdAt ?? oldest,
        updatedAt: described?.updatedAt ?? new Date().toISOString(),
        ...(described?.ignored ? { ignored: true } : {}),
        crops: positives,
        negatives,
      });
      crops += positives.length + negatives.length;
    }
    return { index: deepFreeze({ format: GALLERY_FORMAT, version: GALLERY_FORMAT_VERSION, people }), crops };
  }

  /** Records what a change is about to write or delete, before it touches anything. */
  private async writeIntent(intent: Intent): Promise<string> {
    const dir = path.join(this.dir, PENDING_DIR);
    await this.fs.makeDirectory(dir);
    const file = path.join(dir, `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.json`);
    await writeAtomic(this.fs, file, Buffer.from(JSON.stringify(intent) + '\n', 'utf8'));
    return file;
  }

  /** After the commit: the deletions the change promised, person.json, then the intent goes. */
  private async afterCommit(intentFile: string, personId: string): Promise<void> {
    try {
      await this.completeIntent(
        JSON.parse((await this.fs.readFile(intentFile)).toString('utf8')) as Intent,
        this.index,
      );
      await this.fs.unlink(intentFile);
    } catch (error) {
      // Committed already: what is left is finished by the next change or open.
      this.emit('warning', `could not finish cleaning up after a change to '${personId}': ${(error as Error).message}`);
    }
  }

  /**
   * Brings the folders in line with the index for one recorded change: files
   * of an add that never committed go, so do the crops and folder of a
   * committed forget (and their cached embeddings); person.json is rewritten.
   */
  private async completeIntent(intent: Intent, index: GalleryIndex): Promise<void> {
    if (!isValidId(intent.personId) || !Array.isArray(intent.files)) return;
    const person = index.people.find((p) => p.id === intent.personId);
    const files = intent.files.filter((file) => typeof file === 'string' && CROP_FILE_PATTERN.test(file));
    if (intent.op === 'forget') {
      if (person) return; // the forget never committed: the person stays
      await this.fs.removeTree(this.personDir(intent.personId));
      await purgeEmbeddingCaches(this.fs, this.dir, index);
      return;
    }
    if (intent.op === 'update') {
      if (person) await this.writePersonFile(person.id);
      return;
    }
    const referenced = new Set((intent.negative ? person?.negatives : person?.crops)?.map((crop) => crop.file) ?? []);
    for (const file of files) {
      if (referenced.has(file)) continue;
      await this.fs.unlink(this.cropPath(intent.personId, file, intent.negative)).catch((error: unknown) => {
        if (errorCodeOf(error) !== 'ENOENT') throw error;
      });
    }
    if (intent.op === 'remove-crop') await purgeEmbeddingCaches(this.fs, this.dir, index);
    if (!person && intent.createdDir) {
      // An add of a new person that never committed: its folder goes if it holds nothing else.
      const left = await listDirectory(this.fs, this.personDir(intent.personId));
      if (left.every((entry) => TEMP_FILE_PATTERN.test(entry) || entry === NEGATIVES_DIR || entry === PERSON_FILE)) {
        const negativesLeft = await listDirectory(this.fs, path.join(this.personDir(intent.personId), NEGATIVES_DIR));
        if (negativesLeft.length === 0) await this.fs.removeTree(this.personDir(intent.personId));
      }
    }
    if (person) await this.writePersonFile(person.id);
  }

  /** Finishes the changes a crash interrupted (pending/), and removes their temp files. Holding the lock. */
  private async finishPendingChanges(index: GalleryIndex): Promise<void> {
    const pendingDir = path.join(this.dir, PENDING_DIR);
    for (const name of await listDirectory(this.fs, pendingDir)) {
      const file = path.join(pendingDir, name);
      if (TEMP_FILE_PATTERN.test(name)) {
        await this.fs.unlink(file).catch(() => undefined);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      let intent: Intent;
      try {
        intent = JSON.parse((await this.fs.readFile(file)).toString('utf8')) as Intent;
      } catch {
        // A torn intent cannot have been followed by any write: writing it was the change's first step.
        await this.fs.unlink(file).catch(() => undefined);
        continue;
      }
      await this.completeIntent(intent, index);
      await this.fs.unlink(file);
    }
    // Temp files can only be left by a writer that died: every write happens under the lock we hold.
    const folders = [this.dir, path.join(this.dir, EMBEDDINGS_DIR)];
    for (const person of index.people)
      folders.push(this.personDir(person.id), path.join(this.personDir(person.id), NEGATIVES_DIR));
    for (const folder of folders) {
      for (const entry of await listDirectory(this.fs, folder)) {
        if (TEMP_FILE_PATTERN.test(entry)) await this.fs.unlink(path.join(folder, entry)).catch(() => undefined);
      }
    }
  }

  /** At open: if a crash left changes half done, finish them now (when the gallery is writable and free). */
  private async finishInterrupted(): Promise<void> {
    const pending = (await listDirectory(this.fs, path.join(this.dir, PENDING_DIR))).length > 0;
    if (!pending) return;
    let lock: HeldLock | null = null;
    try {
      lock = await tryLockGallery(this.dir);
      if (!lock) return; // a writer is at work; it finishes them itself
      const index = await this.reloadIndex({ locked: true });
      await this.finishPendingChanges(index);
    } catch (error) {
      this.emit('warning', `could not finish interrupted changes: ${(error as Error).message}`);
    } finally {
      await lock?.release();
    }
  }

  private async writePersonFile(personId: string): Promise<void> {
    const person = this.index.people.find((p) => p.id === personId);
    if (!person) return;
    try {
      await writeAtomic(this.fs, path.join(this.personDir(personId), PERSON_FILE), serialisePerson(person));
    } catch (error) {
      // The index holds the truth; person.json only helps rebuild a lost index.
      this.emit('warning', `could not update ${PERSON_FILE} of '${person.name}': ${(error as Error).message}`);
    }
  }

  /** Creates the folder if needed; refuses symlinks that could point outside. */
  private async ensurePlainDirectory(dirPath: string): Promise<void> {
    const status = await this.fs.lstat(dirPath).catch((error: unknown) => {
      if (errorCodeOf(error) === 'ENOENT') return undefined;
      throw error;
    });
    if (status) {
      if (status.isSymbolicLink() || !status.isDirectory()) {
        throw new GalleryError(
          'ERR_GALLERY_IO',
          `${dirPath} is not a plain folder (a symlink or a file); move it out of the gallery and retry.`,
        );
      }
      return;
    }
    await this.fs.makeDirectory(dirPath);
    await this.fs.syncDirectory(path.dirname(dirPath));
  }

  private async readCrop(personId: string, file: string, negative: boolean): Promise<RgbImage> {
    const cropFile = this.cropPath(personId, file, negative);
    let bytes: Buffer;
    try {
      bytes = await this.fs.readFile(cropFile);
    } catch (error) {
      throw ioError(error, `reading crop ${cropFile} (remove it with removeCrop() if it was deleted by hand)`);
    }
    try {
      return await decodePng(bytes);
    } catch (error) {
      throw new GalleryError(
        'ERR_GALLERY_FORMAT',
        `Crop ${cropFile} is not a readable PNG; remove it and enrol a new photo.`,
        { cause: error },
      );
    }
  }

  private async allEmbeddings(
    embedderId: string,
    embed: EmbedFunction,
  ): Promise<{ crops: Map<string, Float32Array[]>; negatives: Map<string, Float32Array[]> }> {
    validateEmbedderId(embedderId);
    return this.serialise(async () => {
      const index = this.index;
      const file = cachePath(this.dir, embedderId);
      const cache = await readEmbeddingCache(this.fs, file, embedderId);
      const keep = referencedKeys(index);
      const missing: { personId: string; file: string; negative: boolean }[] = [];
      for (const person of index.people) {
        for (const [negative, list] of [
          [false, person.crops],
          [true, person.negatives],
        ] as const) {
          for (const crop of list)
            if (!cache.vectors.has(cacheKey(person.id, crop.file, negative)))
              missing.push({ personId: person.id, file: crop.file, negative });
        }
      }
      const stale = [...cache.vectors.keys()].some((key) => !keep.has(key));
      let failure: Error | undefined;
      try {
        for (let start = 0; start < missing.length; start += EMBED_BATCH_SIZE) {
          const batch = missing.slice(start, start + EMBED_BATCH_SIZE);
          const images = await Promise.all(batch.map((item) => this.readCrop(item.personId, item.file, item.negative)));
          const vectors = await embed(images, { mirror: true });
          checkEmbeddings(vectors, batch.length, cache.dimension, embedderId);
          batch.forEach((item, position) =>
            cache.vectors.set(cacheKey(item.personId, item.file, item.negative), Float32Array.from(vectors[position])),
          );
          cache.dimension = vectors[0].length;
        }
      } catch (error) {
        failure = error instanceof GalleryError ? error : ioError(error, `computing embeddings with '${embedderId}'`);
      }
      // Keep whatever was computed, even before a failure; the failure is what matters to the caller.
      if (missing.length > 0 || stale) await this.saveCache(file, embedderId, cache, keep);
      if (failure) throw failure;

      const crops = new Map<string, Float32Array[]>();
      const negatives = new Map<string, Float32Array[]>();
      for (const person of index.people) {
        crops.set(
          person.id,
          person.crops.map((crop) => Float32Array.from(cache.vectors.get(cacheKey(person.id, crop.file))!)),
        );
        if (person.negatives.length > 0) {
          negatives.set(
            person.id,
            person.negatives.map((crop) => Float32Array.from(cache.vectors.get(cacheKey(person.id, crop.file, true))!)),
          );
        }
      }
      return { crops, negatives };
    });
  }

  /** Best effort: only when no writer holds the gallery, and never an error. */
  private async saveCache(
    file: string,
    embedderId: string,
    cache: Awaited<ReturnType<typeof readEmbeddingCache>>,
    keep: ReadonlySet<string>,
  ): Promise<void> {
    let lock: HeldLock | null = null;
    try {
      lock = await tryLockGallery(this.dir);
      if (!lock) return;
      await writeEmbeddingCache(this.fs, file, embedderId, cache, keep);
    } catch (error) {
      this.emit(
        'warning',
        `the embedding cache was not saved (${ioError(error, 'saving the embedding cache').message}); recognition is not affected`,
      );
    } finally {
      await lock?.release().catch(() => undefined);
    }
  }

  /** Polls the index; a change made by another process reloads it and emits 'change' (kind 'external'). */
  private watch(intervalMs: number): void {
    this.lastSeenIndex = serialiseIndex(this.index).toString('utf8');
    let lastStat = '';
    let busy = false;
    this.watchTimer = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        const status = await this.fs.lstat(this.indexPath).catch(() => undefined);
        const key = statKey(status);
        if (key === lastStat) return;
        lastStat = key;
        await this.serialise(async () => {
          const before = this.lastSeenIndex;
          await this.reloadIndex();
          const now = serialiseIndex(this.index).toString('utf8');
          this.lastSeenIndex = now;
          if (now !== before) this.emit('change', { kind: 'external', personId: null, name: null });
        });
      })()
        .catch((error: unknown) => this.emit('warning', `watching ${this.indexPath}: ${(error as Error).message}`))
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    this.watchTimer.unref();
  }
}

/**
 * A recursive mkdir on a read-only (or unwritable) file system fails with
 * ENOENT, which would send the user looking for a missing folder: ask the
 * nearest existing ancestor why instead.
 */
async function explainMissingParent(dir: string, error: unknown): Promise<unknown> {
  if (errorCodeOf(error) !== 'ENOENT') return error;
  let ancestor = path.dirname(dir);
  while (
    ancestor !== path.dirname(ancestor) &&
    !(await fsp.stat(ancestor).then(
      () => true,
      () => false,
    ))
  )
    ancestor = path.dirname(ancestor);
  return fsp.access(ancestor, fsConstants.W_OK).then(
    () => error,
    (reason: unknown) => reason,
  );
}

/** Checks an export document and decodes its crops; anything malformed is refused before anything is written. */
async function parseExport(
  document: unknown,
): Promise<{ name: string; ignored: boolean; crops: NewCrop[]; negatives: NewCrop[] }[]> {
  const invalid = (detail: string) =>
    new GalleryError('ERR_IMPORT_INVALID', `Cannot import this file: ${detail}. Nothing was imported.`);
  if (!isPlainObject(document) || document.format !== EXPORT_FORMAT)
    throw invalid(`it is not a coral-face export (its "format" is not "${EXPORT_FORMAT}")`);
  if (typeof document.version !== 'number' || document.version > EXPORT_FORMAT_VERSION)
    throw invalid('an unknown version');
  if (!Array.isArray(document.people)) throw invalid('"people" is not a list');
  const decodeList = async (raw: unknown, who: string, what: string): Promise<NewCrop[]> => {
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) throw invalid(`the ${what}s of ${who} are not a list`);
    return Promise.all(
      raw.map(async (crop: unknown, position: number) => {
        if (!isPlainObject(crop) || typeof crop.png !== 'string')
          throw invalid(`${who}: ${what} ${position + 1} has no PNG`);
        let image: RgbImage;
        try {
          image = await decodePng(Buffer.from(crop.png, 'base64'));
        } catch {
          throw invalid(`${who}: ${what} ${position + 1} is not a readable PNG`);
        }
        if (image.width !== image.height || image.width < 32 || image.width > 1024) {
          throw invalid(`${who}: ${what} ${position + 1} is ${image.width}x${image.height}, not an aligned face crop`);
        }
        return {
          image,
          ...(typeof crop.source === 'string' ? { source: crop.source } : {}),
          ...(isPlainObject(crop.quality) ? { quality: crop.quality } : {}),
        };
      }),
    );
  };
  const people: { name: string; ignored: boolean; crops: NewCrop[]; negatives: NewCrop[] }[] = [];
  for (const entry of document.people as unknown[]) {
    if (!isPlainObject(entry)) throw invalid('a person is not an object');
    let name: string;
    try {
      name = normalisePersonName(entry.name);
    } catch (error) {
      throw invalid((error as Error).message);
    }
    if (people.some((other) => other.name === name)) throw invalid(`'${name}' appears twice`);
    people.push({
      name,
      ignored: entry.ignored === true,
      crops: await decodeList(entry.crops, name, 'photo'),
      negatives: await decodeList(entry.negatives, name, 'negative example'),
    });
  }
  if (people.length === 0) throw invalid('it holds no people');
  return people;
}
