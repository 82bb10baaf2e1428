/**
 * The on-disk face gallery. Layout, format version 1:
 *
 *   <dir>/gallery.json            the index, and the commit point of every change
 *     { "format": "coral-face-gallery", "version": 1,
 *       "people": [{ "id", "name", "createdAt", "updatedAt",
 *                    "crops": [{ "file", "addedAt", "source"?, "quality"? }] }] }
 *   <dir>/people/<id>/<file>.png  aligned crops (112×112 RGB PNG): the source of truth
 *   <dir>/embeddings/<key>.json   cache of embeddings for one embedder id
 *     { "format": "coral-face-embeddings", "version": 1, "embedderId", "dimension",
 *       "embeddings": { "<id>/<file>": base64 of little-endian float32 } }
 *
 * - Ids are slugs ([a-z0-9-]) derived from the display name at creation, with a
 *   numeric suffix on collision, and never change: renaming only rewrites the
 *   index, so crops, caches and automations keyed by id stay valid.
 * - Paths are built only from ids and crop file names that passed a strict
 *   pattern, never from a raw name or from an unchecked index entry.
 * - Every file is written as temp file + fsync + rename + directory fsync.
 *   Crops are written before the index, and the index rename is the commit:
 *   after a crash the gallery holds exactly the operations whose index write
 *   completed. Files the index does not reference (left by a crash or a failed
 *   write) are ignored, and removed by cleanOrphans() once old enough that no
 *   other writer can still be about to commit them.
 * - `<key>` is a slug of the embedder id plus a hash, so any id maps to a safe
 *   file name. Caches of other embedders are kept (switching between the Edge
 *   TPU and CPU models is common) and pruned of forgotten crops when used.
 * - A newer "version" is refused, never rewritten.
 *
 * Mutations within one process go through a promise queue. Each one re-reads
 * the index first, which narrows (but does not close) the window in which two
 * processes writing the same gallery could lose an update.
 */
import { EventEmitter } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import sharp from '../media/vips';
import type { RgbImage } from '../media/image';

export const GALLERY_FORMAT = 'coral-face-gallery';
export const GALLERY_FORMAT_VERSION = 1;
export const EMBEDDINGS_FORMAT = 'coral-face-embeddings';
export const EMBEDDINGS_FORMAT_VERSION = 1;
export const MAX_NAME_LENGTH = 64;
/**
 * Unreferenced files younger than this are left alone by the cleanup at open:
 * another process may be between writing its crops and committing its index.
 */
export const ORPHAN_GRACE_MS = 10 * 60 * 1000;

const INDEX_FILE = 'gallery.json';
const PEOPLE_DIR = 'people';
const EMBEDDINGS_DIR = 'embeddings';
const MAX_SLUG_LENGTH = 40;
const ID_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const MAX_ID_LENGTH = 48;
const CROP_FILE_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}\.png$/;
const TEMP_FILE_PATTERN = /^\..+\.tmp$/;
/** Bounds how many decoded crops are held at once while filling the cache. */
const EMBED_BATCH_SIZE = 32;
/** Control characters, line/paragraph separators, lone surrogates, and bidi overrides (they let a name display as another). */
const FORBIDDEN_NAME_CHARS = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\u202A-\u202E\u2066-\u2069]/u;

export type GalleryErrorCode =
  | 'ERR_NAME_INVALID'
  | 'ERR_PERSON_EXISTS'
  | 'ERR_PERSON_NOT_FOUND'
  | 'ERR_CROP_NOT_FOUND'
  | 'ERR_CROPS_INVALID'
  | 'ERR_EMBEDDER_INVALID'
  | 'ERR_EMBEDDINGS_INVALID'
  | 'ERR_GALLERY_NOT_FOUND'
  | 'ERR_GALLERY_FORMAT'
  | 'ERR_GALLERY_VERSION'
  | 'ERR_GALLERY_IO'
  | 'ERR_NO_SPACE';

export class GalleryError extends Error {
  override readonly name = 'GalleryError';
  constructor(
    readonly code: GalleryErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface CropRecord {
  readonly file: string;
  readonly addedAt: string;
  readonly source?: string;
  readonly quality?: Readonly<Record<string, unknown>>;
}

export interface PersonRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly crops: readonly CropRecord[];
}

interface GalleryIndex {
  readonly format: typeof GALLERY_FORMAT;
  readonly version: number;
  readonly people: readonly PersonRecord[];
}

export interface NewCrop {
  image: RgbImage;
  source?: string;
  quality?: Record<string, unknown>;
}

export type EmbedFunction = (crops: RgbImage[]) => Promise<Float32Array[]>;

export interface GalleryChange {
  kind: 'add' | 'remove-crop' | 'forget' | 'rename';
  personId: string;
  name: string;
}

// ---------------------------------------------------------------- file system

export interface WritableFile {
  write(data: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface FileStatus {
  mtimeMs: number;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** The few file operations the gallery uses, injectable so tests can make writes fail. */
export interface GalleryFileSystem {
  /** Creates a new file; fails if it exists. */
  createFile(filePath: string): Promise<WritableFile>;
  /** Makes renames and creations inside the directory durable. */
  syncDirectory(dirPath: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(filePath: string): Promise<void>;
  /** Creates the directory and missing parents; no error if it exists. */
  makeDirectory(dirPath: string): Promise<void>;
  removeTree(dirPath: string): Promise<void>;
  readDirectory(dirPath: string): Promise<string[]>;
  readFile(filePath: string): Promise<Buffer>;
  lstat(filePath: string): Promise<FileStatus>;
}

export const nodeFileSystem: GalleryFileSystem = {
  async createFile(filePath) {
    const handle = await fsp.open(filePath, 'wx', 0o644);
    return {
      write: async (data) => {
        await handle.writeFile(data);
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  },
  async syncDirectory(dirPath) {
    const handle = await fsp.open(dirPath, 'r');
    try {
      await handle.sync();
    } catch (error) {
      // Some file systems cannot fsync a directory; their renames are as durable as they get.
      if (!['EINVAL', 'ENOTSUP', 'EISDIR'].includes(errorCode(error) ?? '')) throw error;
    } finally {
      await handle.close();
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (filePath) => fsp.unlink(filePath),
  async makeDirectory(dirPath) {
    await fsp.mkdir(dirPath, { recursive: true });
  },
  removeTree: (dirPath) => fsp.rm(dirPath, { recursive: true, force: true }),
  readDirectory: (dirPath) => fsp.readdir(dirPath),
  readFile: (filePath) => fsp.readFile(filePath),
  lstat: (filePath) => fsp.lstat(filePath),
};

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

// ---------------------------------------------------------------- names and ids

/** Trims and NFC-normalises a display name, or throws ERR_NAME_INVALID saying what is wrong. */
export function normalisePersonName(raw: unknown): string {
  if (typeof raw !== 'string') {
    throw new GalleryError('ERR_NAME_INVALID', 'A person name must be a string.');
  }
  const name = raw.normalize('NFC').trim();
  if (name.length === 0) {
    throw new GalleryError('ERR_NAME_INVALID', `A person name cannot be empty; use 1–${MAX_NAME_LENGTH} characters.`);
  }
  if ([...name].length > MAX_NAME_LENGTH) {
    throw new GalleryError(
      'ERR_NAME_INVALID',
      `The name '${name.slice(0, 20)}…' is longer than ${MAX_NAME_LENGTH} characters; use a shorter name.`,
    );
  }
  if (FORBIDDEN_NAME_CHARS.test(name)) {
    throw new GalleryError(
      'ERR_NAME_INVALID',
      'The name contains control, line-break or text-direction characters; use printable characters only.',
    );
  }
  return name;
}

/** Two names that differ only in case denote the same person. */
function nameKey(name: string): string {
  return name.normalize('NFC').trim().toLowerCase();
}

/** An ASCII slug of a name: accents dropped, anything else collapsed to '-'; "person" if nothing is left. */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, MAX_SLUG_LENGTH)
    .replace(/-+$/, '');
  return slug || 'person';
}

function uniqueId(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let suffix = 2; ; suffix++) {
    const candidate = `${base}-${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}

function isValidId(id: unknown): id is string {
  return typeof id === 'string' && id.length <= MAX_ID_LENGTH && ID_PATTERN.test(id);
}

function newCropFileName(taken: ReadonlySet<string>): string {
  for (;;) {
    const file = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.png`;
    if (!taken.has(file)) return file;
  }
}

function validateEmbedderId(embedderId: unknown): string {
  if (typeof embedderId !== 'string' || embedderId.length === 0 || embedderId.length > 200 || /\p{Cc}/u.test(embedderId)) {
    throw new GalleryError(
      'ERR_EMBEDDER_INVALID',
      'The embedder id must be a non-empty printable string of at most 200 characters (e.g. "mobilefacenet-edgetpu-v1").',
    );
  }
  return embedderId;
}

// ---------------------------------------------------------------- index parsing

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseIndex(text: string, indexPath: string): GalleryIndex {
  const corrupt = (detail: string): GalleryError =>
    new GalleryError(
      'ERR_GALLERY_FORMAT',
      `${indexPath} is not a valid coral-face gallery index (${detail}). ` +
        'Restore it from a backup, or move the folder aside and create a new gallery.',
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw corrupt(`not JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(raw) || raw.format !== GALLERY_FORMAT) throw corrupt(`"format" is not "${GALLERY_FORMAT}"`);
  const version = raw.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) throw corrupt('"version" is not a positive integer');
  if (version > GALLERY_FORMAT_VERSION) {
    throw new GalleryError(
      'ERR_GALLERY_VERSION',
      `${indexPath} was written by a newer coral-face (format version ${version}; this one reads up to ` +
        `${GALLERY_FORMAT_VERSION}). Upgrade node-red-contrib-coral-face to use it; the gallery was left untouched.`,
    );
  }
  if (!Array.isArray(raw.people)) throw corrupt('"people" is not a list');

  const ids = new Set<string>();
  const names = new Set<string>();
  const people = raw.people.map((entry: unknown, position: number): PersonRecord => {
    if (!isPlainObject(entry)) throw corrupt(`person ${position} is not an object`);
    if (!isValidId(entry.id)) throw corrupt(`person ${position} has an unsafe or malformed id`);
    const id = entry.id;
    if (ids.has(id)) throw corrupt(`id '${id}' appears twice`);
    ids.add(id);
    let name: string;
    try {
      name = normalisePersonName(entry.name);
    } catch (error) {
      throw corrupt(`person '${id}' has an invalid name: ${(error as Error).message}`);
    }
    if (names.has(nameKey(name))) throw corrupt(`name '${name}' appears twice`);
    names.add(nameKey(name));
    if (typeof entry.createdAt !== 'string' || typeof entry.updatedAt !== 'string') {
      throw corrupt(`person '${id}' lacks createdAt/updatedAt`);
    }
    if (!Array.isArray(entry.crops)) throw corrupt(`person '${id}' has no crop list`);
    const files = new Set<string>();
    const crops = entry.crops.map((crop: unknown): CropRecord => {
      if (!isPlainObject(crop) || typeof crop.file !== 'string' || !CROP_FILE_PATTERN.test(crop.file)) {
        throw corrupt(`person '${id}' has a crop with an unsafe or malformed file name`);
      }
      if (files.has(crop.file)) throw corrupt(`crop '${crop.file}' of '${id}' appears twice`);
      files.add(crop.file);
      if (typeof crop.addedAt !== 'string') throw corrupt(`crop '${crop.file}' of '${id}' lacks addedAt`);
      if (crop.source !== undefined && typeof crop.source !== 'string') throw corrupt(`crop '${crop.file}' has a non-string source`);
      if (crop.quality !== undefined && !isPlainObject(crop.quality)) throw corrupt(`crop '${crop.file}' has a non-object quality`);
      return {
        file: crop.file,
        addedAt: crop.addedAt,
        ...(crop.source !== undefined ? { source: crop.source } : {}),
        ...(crop.quality !== undefined ? { quality: crop.quality } : {}),
      };
    });
    return { id, name, createdAt: entry.createdAt, updatedAt: entry.updatedAt, crops };
  });
  return deepFreeze({ format: GALLERY_FORMAT, version: GALLERY_FORMAT_VERSION, people });
}

function serialiseIndex(index: GalleryIndex): Buffer {
  return Buffer.from(JSON.stringify(index, null, 2) + '\n', 'utf8');
}

function findPerson(index: GalleryIndex, nameOrId: string): PersonRecord | undefined {
  if (typeof nameOrId !== 'string') return undefined;
  // Names first: they are what people type; ids are the fallback for automations.
  const key = nameKey(nameOrId);
  return index.people.find((person) => nameKey(person.name) === key) ?? index.people.find((person) => person.id === nameOrId);
}

// ---------------------------------------------------------------- images

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

async function encodePng(image: RgbImage): Promise<Buffer> {
  const pixels = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return sharp(pixels, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

async function decodePng(bytes: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(bytes)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** JSON round trip: stores a detached copy and rejects what JSON cannot hold. */
function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

// ---------------------------------------------------------------- embeddings cache

interface EmbeddingCache {
  dimension: number | null;
  vectors: Map<string, Float32Array>;
}

function encodeVector(vector: Float32Array): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes.toString('base64');
}

function decodeVector(text: unknown, dimension: number): Float32Array | undefined {
  if (typeof text !== 'string') return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== dimension * 4) return undefined;
  const vector = new Float32Array(dimension);
  for (let i = 0; i < dimension; i++) vector[i] = bytes.readFloatLE(i * 4);
  return vector;
}

function cacheKey(personId: string, file: string): string {
  return `${personId}/${file}`;
}

// ---------------------------------------------------------------- gallery

export interface GalleryOpenOptions {
  /** Create an empty gallery if the folder or its index does not exist. */
  create?: boolean;
  /** Remove old unreferenced files at open (default true); failures are ignored. */
  cleanOrphans?: boolean;
  fileSystem?: GalleryFileSystem;
}

export class Gallery extends EventEmitter<{ change: [GalleryChange] }> {
  private index: GalleryIndex;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly fs: GalleryFileSystem,
    index: GalleryIndex,
  ) {
    super();
    this.index = index;
  }

  static async open(dir: string, options: GalleryOpenOptions = {}): Promise<Gallery> {
    const root = path.resolve(dir);
    const fs = options.fileSystem ?? nodeFileSystem;
    const indexPath = path.join(root, INDEX_FILE);
    let index: GalleryIndex;
    let text: string | undefined;
    try {
      text = (await fs.readFile(indexPath)).toString('utf8');
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw ioError(error, `reading ${indexPath}`);
    }
    if (text !== undefined) {
      index = parseIndex(text, indexPath);
    } else if (options.create) {
      index = deepFreeze({ format: GALLERY_FORMAT, version: GALLERY_FORMAT_VERSION, people: [] });
    } else {
      throw new GalleryError(
        'ERR_GALLERY_NOT_FOUND',
        `No gallery at ${root} (no ${INDEX_FILE}). Check the path, or open it with { create: true } to start one.`,
      );
    }
    const gallery = new Gallery(root, fs, index);
    if (text === undefined) {
      try {
        await fs.makeDirectory(path.join(root, PEOPLE_DIR));
        await fs.makeDirectory(path.join(root, EMBEDDINGS_DIR));
        await gallery.writeAtomic(indexPath, serialiseIndex(index));
        await fs.syncDirectory(path.dirname(root));
      } catch (error) {
        throw ioError(error, `creating a gallery at ${root}`);
      }
    }
    if (options.cleanOrphans !== false) {
      await gallery.cleanOrphans({ minAgeMs: ORPHAN_GRACE_MS }).catch(() => undefined);
    }
    return gallery;
  }

  listPeople(): readonly PersonRecord[] {
    return this.index.people;
  }

  /** Finds a person by display name (case-insensitive) or, failing that, by id. */
  getPerson(nameOrId: string): PersonRecord | undefined {
    return findPerson(this.index, nameOrId);
  }

  /** Re-reads the index from disk, picking up changes made by another process. */
  refresh(): Promise<void> {
    return this.serialise(async () => {
      await this.reloadIndex();
    });
  }

  /**
   * Stores crops for the named person (matched like getPerson), creating the
   * person if there is none. Either all crops are added or none.
   */
  async addCrops(name: string, crops: readonly NewCrop[]): Promise<PersonRecord> {
    const displayName = normalisePersonName(name);
    validateCrops(crops);
    // Encoding is CPU work with no shared state, so it runs before taking the queue.
    const pngs = await Promise.all(crops.map((crop) => encodePng(crop.image)));
    return this.serialise(async () => {
      const index = await this.reloadIndex();
      const existing = findPerson(index, displayName);
      const id = existing?.id ?? uniqueId(slugify(displayName), new Set(index.people.map((person) => person.id)));
      const personDir = this.personDir(id);
      const written: string[] = [];
      let createdDir = false;
      let next: GalleryIndex | undefined;
      try {
        createdDir = await this.ensurePlainDirectory(personDir);
        const taken = new Set(existing?.crops.map((crop) => crop.file));
        for (const png of pngs) {
          const file = newCropFileName(taken);
          taken.add(file);
          await this.writeAtomic(path.join(personDir, file), png, { syncDirectory: false });
          written.push(file);
        }
        await this.fs.syncDirectory(personDir);

        const now = new Date().toISOString();
        const newRecords: CropRecord[] = written.map((file, position) => {
          const { source, quality } = crops[position];
          return {
            file,
            addedAt: now,
            ...(source !== undefined ? { source } : {}),
            ...(quality !== undefined ? { quality: jsonCopy(quality) } : {}),
          };
        });
        const person: PersonRecord = existing
          ? { ...existing, updatedAt: now, crops: [...existing.crops, ...newRecords] }
          : { id, name: displayName, createdAt: now, updatedAt: now, crops: newRecords };
        next = {
          ...index,
          people: existing ? index.people.map((p) => (p.id === id ? person : p)) : [...index.people, person],
        };
        await this.commit(next);
      } catch (error) {
        if (next === undefined || this.index !== next) {
          // Not committed: take back what this call wrote so the folder is as before.
          for (const file of written) await this.fs.unlink(path.join(personDir, file)).catch(() => undefined);
          if (createdDir) await this.fs.removeTree(personDir).catch(() => undefined);
        }
        throw ioError(error, `adding ${crops.length} crop(s) for '${displayName}'`);
      }
      const stored = this.index.people.find((person) => person.id === id)!;
      this.emit('change', { kind: 'add', personId: id, name: stored.name });
      return stored;
    });
  }

  async removeCrop(nameOrId: string, file: string): Promise<PersonRecord> {
    return this.serialise(async () => {
      const index = await this.reloadIndex();
      const person = requirePerson(index, nameOrId);
      if (!person.crops.some((crop) => crop.file === file)) {
        throw new GalleryError(
          'ERR_CROP_NOT_FOUND',
          `'${person.name}' has no crop '${file}'; list their crops with getPerson() to see the file names.`,
        );
      }
      const updated: PersonRecord = {
        ...person,
        updatedAt: new Date().toISOString(),
        crops: person.crops.filter((crop) => crop.file !== file),
      };
      try {
        await this.commit({ ...index, people: index.people.map((p) => (p.id === person.id ? updated : p)) });
      } catch (error) {
        throw ioError(error, `removing crop '${file}' of '${person.name}'`);
      }
      // Already uncommitted from the index; if this fails the file is just an orphan.
      await this.fs.unlink(path.join(this.personDir(person.id), file)).catch(() => undefined);
      this.emit('change', { kind: 'remove-crop', personId: person.id, name: person.name });
      return this.index.people.find((p) => p.id === person.id)!;
    });
  }

  /** Removes a person and all their crops; returns the removed record. */
  async forget(nameOrId: string): Promise<PersonRecord> {
    return this.serialise(async () => {
      const index = await this.reloadIndex();
      const person = requirePerson(index, nameOrId);
      try {
        await this.commit({ ...index, people: index.people.filter((p) => p.id !== person.id) });
      } catch (error) {
        throw ioError(error, `forgetting '${person.name}'`);
      }
      await this.fs.removeTree(this.personDir(person.id)).catch(() => undefined);
      this.emit('change', { kind: 'forget', personId: person.id, name: person.name });
      return person;
    });
  }

  /** Changes a display name; the id stays. Refuses a name another person already has. */
  async rename(oldNameOrId: string, newName: string): Promise<PersonRecord> {
    const displayName = normalisePersonName(newName);
    return this.serialise(async () => {
      const index = await this.reloadIndex();
      const person = requirePerson(index, oldNameOrId);
      const holder = index.people.find((p) => nameKey(p.name) === nameKey(displayName));
      if (holder && holder.id !== person.id) {
        throw new GalleryError(
          'ERR_PERSON_EXISTS',
          `Cannot rename '${person.name}' to '${displayName}': that name belongs to another person (id '${holder.id}'). ` +
            'Pick another name, or forget that person first.',
        );
      }
      if (person.name === displayName) return person;
      const updated: PersonRecord = { ...person, name: displayName, updatedAt: new Date().toISOString() };
      try {
        await this.commit({ ...index, people: index.people.map((p) => (p.id === person.id ? updated : p)) });
      } catch (error) {
        throw ioError(error, `renaming '${person.name}'`);
      }
      this.emit('change', { kind: 'rename', personId: person.id, name: displayName });
      return this.index.people.find((p) => p.id === person.id)!;
    });
  }

  /** Decodes a person's crops, in the order they were added. */
  async loadCrops(nameOrId: string): Promise<RgbImage[]> {
    return this.serialise(async () => {
      const person = requirePerson(this.index, nameOrId);
      return Promise.all(person.crops.map((crop) => this.readCrop(person.id, crop.file)));
    });
  }

  /**
   * Embeddings of every crop, per person id, in crop order. Cached per
   * embedder id: only crops missing from the cache are decoded and embedded
   * (in batches), then the cache is saved atomically. Use a new embedder id
   * whenever the model or its preprocessing changes.
   */
  async embeddings(embedderId: string, embed: EmbedFunction): Promise<Map<string, Float32Array[]>> {
    validateEmbedderId(embedderId);
    return this.serialise(async () => {
      const index = this.index;
      const cachePath = this.embeddingCachePath(embedderId);
      const cache = await this.readEmbeddingCache(cachePath, embedderId);
      const missing: { personId: string; file: string }[] = [];
      for (const person of index.people) {
        for (const crop of person.crops) {
          if (!cache.vectors.has(cacheKey(person.id, crop.file))) missing.push({ personId: person.id, file: crop.file });
        }
      }
      const cacheWasStale = [...cache.vectors.keys()].some(
        (key) => !index.people.some((person) => person.crops.some((crop) => cacheKey(person.id, crop.file) === key)),
      );

      try {
        for (let start = 0; start < missing.length; start += EMBED_BATCH_SIZE) {
          const batch = missing.slice(start, start + EMBED_BATCH_SIZE);
          const images = await Promise.all(batch.map((item) => this.readCrop(item.personId, item.file)));
          const vectors = await embed(images);
          checkEmbeddings(vectors, batch.length, cache.dimension, embedderId);
          batch.forEach((item, position) => {
            cache.vectors.set(cacheKey(item.personId, item.file), Float32Array.from(vectors[position]));
          });
          cache.dimension = vectors[0].length;
        }
      } catch (error) {
        // Keep whatever was computed before the failure; the error is what matters to the caller.
        if (missing.length > 0) await this.writeEmbeddingCache(cachePath, embedderId, index, cache).catch(() => undefined);
        throw error instanceof GalleryError ? error : ioError(error, `computing embeddings with '${embedderId}'`);
      }
      if (missing.length > 0 || cacheWasStale) {
        try {
          await this.writeEmbeddingCache(cachePath, embedderId, index, cache);
        } catch (error) {
          throw ioError(error, `saving the embedding cache for '${embedderId}'`);
        }
      }

      const result = new Map<string, Float32Array[]>();
      for (const person of index.people) {
        result.set(
          person.id,
          person.crops.map((crop) => Float32Array.from(cache.vectors.get(cacheKey(person.id, crop.file))!)),
        );
      }
      return result;
    });
  }

  /**
   * Deletes files the index does not reference (crops and folders left by a
   * crash or failed write, temp files) that are at least minAgeMs old. Only
   * names this module could have written are touched. Returns the removed
   * paths, relative to the gallery folder.
   */
  async cleanOrphans(options: { minAgeMs?: number } = {}): Promise<string[]> {
    const minAgeMs = options.minAgeMs ?? ORPHAN_GRACE_MS;
    return this.serialise(async () => {
      const index = await this.reloadIndex();
      const removed: string[] = [];
      const now = Date.now();
      const oldEnough = async (entryPath: string): Promise<FileStatus | undefined> => {
        const status = await this.fs.lstat(entryPath).catch(() => undefined);
        return status && now - status.mtimeMs >= minAgeMs ? status : undefined;
      };
      const removeTempFiles = async (dirPath: string): Promise<void> => {
        for (const entry of await this.listDirectory(dirPath)) {
          if (TEMP_FILE_PATTERN.test(entry) && (await oldEnough(path.join(dirPath, entry)))) {
            await this.fs.unlink(path.join(dirPath, entry));
            removed.push(path.relative(this.dir, path.join(dirPath, entry)));
          }
        }
      };

      await removeTempFiles(this.dir);
      await removeTempFiles(path.join(this.dir, EMBEDDINGS_DIR));
      const peopleDir = path.join(this.dir, PEOPLE_DIR);
      for (const entry of await this.listDirectory(peopleDir)) {
        if (!isValidId(entry)) continue;
        const entryPath = path.join(peopleDir, entry);
        const person = index.people.find((p) => p.id === entry);
        if (!person) {
          const status = await oldEnough(entryPath);
          if (status?.isDirectory() && !status.isSymbolicLink()) {
            await this.fs.removeTree(entryPath);
            removed.push(path.relative(this.dir, entryPath));
          }
          continue;
        }
        const referenced = new Set(person.crops.map((crop) => crop.file));
        await removeTempFiles(entryPath);
        for (const file of await this.listDirectory(entryPath)) {
          if (CROP_FILE_PATTERN.test(file) && !referenced.has(file) && (await oldEnough(path.join(entryPath, file)))) {
            await this.fs.unlink(path.join(entryPath, file));
            removed.push(path.relative(this.dir, path.join(entryPath, file)));
          }
        }
      }
      return removed;
    });
  }

  // ---------------------------------------------------------------- internals

  private serialise<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private get indexPath(): string {
    return path.join(this.dir, INDEX_FILE);
  }

  private async reloadIndex(): Promise<GalleryIndex> {
    let text: string;
    try {
      text = (await this.fs.readFile(this.indexPath)).toString('utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        throw new GalleryError(
          'ERR_GALLERY_NOT_FOUND',
          `${this.indexPath} has disappeared; the gallery folder was moved or deleted. Reopen it from its new place.`,
        );
      }
      throw ioError(error, `reading ${this.indexPath}`);
    }
    this.index = parseIndex(text, this.indexPath);
    return this.index;
  }

  /** The index rename is the commit point; memory follows the disk only once it has happened. */
  private async commit(next: GalleryIndex): Promise<void> {
    const frozen = deepFreeze(next);
    await this.writeAtomic(this.indexPath, serialiseIndex(frozen), { syncDirectory: false });
    this.index = frozen;
    await this.fs.syncDirectory(this.dir);
  }

  private personDir(id: string): string {
    // Ids come from the validated index or from slugify(); check again so no path can leave the folder.
    if (!isValidId(id)) {
      throw new GalleryError('ERR_GALLERY_FORMAT', `Refusing to use '${id}' as a person id: not a safe slug.`);
    }
    const peopleDir = path.join(this.dir, PEOPLE_DIR);
    const dirPath = path.join(peopleDir, id);
    if (path.dirname(dirPath) !== peopleDir) {
      throw new GalleryError('ERR_GALLERY_FORMAT', `Refusing to use '${id}' as a person id: it leaves the gallery.`);
    }
    return dirPath;
  }

  /** Creates the folder if needed (returns whether it did); refuses symlinks that could point outside. */
  private async ensurePlainDirectory(dirPath: string): Promise<boolean> {
    const status = await this.fs.lstat(dirPath).catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    });
    if (status) {
      if (status.isSymbolicLink() || !status.isDirectory()) {
        throw new GalleryError(
          'ERR_GALLERY_IO',
          `${dirPath} is not a plain folder (a symlink or a file); move it out of the gallery and retry.`,
        );
      }
      return false;
    }
    await this.fs.makeDirectory(dirPath);
    await this.fs.syncDirectory(path.dirname(dirPath));
    return true;
  }

  private async listDirectory(dirPath: string): Promise<string[]> {
    try {
      return await this.fs.readDirectory(dirPath);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return [];
      throw error;
    }
  }

  /** Temp file in the same folder, fsync, rename over the target, then (by default) fsync the folder. */
  private async writeAtomic(target: string, data: Uint8Array, options: { syncDirectory?: boolean } = {}): Promise<void> {
    const dir = path.dirname(target);
    const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const file = await this.fs.createFile(temp);
      try {
        await file.write(data);
        await file.sync();
      } catch (error) {
        await file.close().catch(() => undefined);
        throw error;
      }
      await file.close();
      await this.fs.rename(temp, target);
    } catch (error) {
      await this.fs.unlink(temp).catch(() => undefined);
      throw error;
    }
    if (options.syncDirectory !== false) await this.fs.syncDirectory(dir);
  }

  private async readCrop(personId: string, file: string): Promise<RgbImage> {
    if (!CROP_FILE_PATTERN.test(file)) {
      throw new GalleryError('ERR_GALLERY_FORMAT', `Refusing to read crop '${file}': not a safe file name.`);
    }
    const cropPath = path.join(this.personDir(personId), file);
    let bytes: Buffer;
    try {
      bytes = await this.fs.readFile(cropPath);
    } catch (error) {
      throw ioError(error, `reading crop ${cropPath} (remove it with removeCrop() if it was deleted by hand)`);
    }
    try {
      return await decodePng(bytes);
    } catch (error) {
      throw new GalleryError(
        'ERR_GALLERY_FORMAT',
        `Crop ${cropPath} is not a readable PNG; remove it with removeCrop() and enrol a new photo.`,
        { cause: error },
      );
    }
  }

  private embeddingCachePath(embedderId: string): string {
    const hash = createHash('sha256').update(embedderId).digest('hex').slice(0, 16);
    return path.join(this.dir, EMBEDDINGS_DIR, `${slugify(embedderId)}-${hash}.json`);
  }

  /** A missing, unreadable or foreign cache is treated as empty: it can always be rebuilt. */
  private async readEmbeddingCache(cachePath: string, embedderId: string): Promise<EmbeddingCache> {
    const empty: EmbeddingCache = { dimension: null, vectors: new Map() };
    let raw: unknown;
    try {
      raw = JSON.parse((await this.fs.readFile(cachePath)).toString('utf8'));
    } catch {
      return empty;
    }
    if (
      !isPlainObject(raw) ||
      raw.format !== EMBEDDINGS_FORMAT ||
      raw.version !== EMBEDDINGS_FORMAT_VERSION ||
      raw.embedderId !== embedderId ||
      typeof raw.dimension !== 'number' ||
      !Number.isInteger(raw.dimension) ||
      raw.dimension < 1 ||
      !isPlainObject(raw.embeddings)
    ) {
      return empty;
    }
    const dimension = raw.dimension;
    const vectors = new Map<string, Float32Array>();
    for (const [key, text] of Object.entries(raw.embeddings)) {
      const vector = decodeVector(text, dimension);
      if (vector) vectors.set(key, vector);
    }
    return { dimension, vectors };
  }

  private async writeEmbeddingCache(
    cachePath: string,
    embedderId: string,
    index: GalleryIndex,
    cache: EmbeddingCache,
  ): Promise<void> {
    // Only crops still in the index are written, so forgotten people leave no trace here.
    const embeddings: Record<string, string> = {};
    for (const person of index.people) {
      for (const crop of person.crops) {
        const key = cacheKey(person.id, crop.file);
        const vector = cache.vectors.get(key);
        if (vector) embeddings[key] = encodeVector(vector);
      }
    }
    const document = {
      format: EMBEDDINGS_FORMAT,
      version: EMBEDDINGS_FORMAT_VERSION,
      embedderId,
      dimension: cache.dimension,
      embeddings,
    };
    await this.fs.makeDirectory(path.dirname(cachePath));
    await this.writeAtomic(cachePath, Buffer.from(JSON.stringify(document) + '\n', 'utf8'));
  }
}

function requirePerson(index: GalleryIndex, nameOrId: string): PersonRecord {
  const person = findPerson(index, nameOrId);
  if (!person) {
    throw new GalleryError(
      'ERR_PERSON_NOT_FOUND',
      `No person named '${String(nameOrId)}' (or with that id) in the gallery; check the spelling or list the people.`,
    );
  }
  return person;
}

function checkEmbeddings(vectors: unknown, expectedCount: number, dimension: number | null, embedderId: string): void {
  const fail = (detail: string): GalleryError =>
    new GalleryError('ERR_EMBEDDINGS_INVALID', `The embedder '${embedderId}' ${detail}.`);
  if (!Array.isArray(vectors) || vectors.length !== expectedCount) {
    throw fail(`returned ${Array.isArray(vectors) ? vectors.length : 'no list of'} embeddings for ${expectedCount} crops`);
  }
  const expectedDimension = dimension ?? (vectors[0] as Float32Array | undefined)?.length;
  for (const vector of vectors) {
    if (!(vector instanceof Float32Array) || vector.length === 0) throw fail('returned something other than a Float32Array');
    if (vector.length !== expectedDimension) {
      throw fail(
        `returned ${vector.length}-value embeddings where ${expectedDimension} were expected; ` +
          'if the model changed, give it a new embedder id',
      );
    }
    if (!vector.every(Number.isFinite)) throw fail('returned NaN or Infinity');
  }
}

/** Wraps a file-system failure in a GalleryError that says what was being done and what to do. */
function ioError(error: unknown, action: string): GalleryError {
  if (error instanceof GalleryError) return error;
  const code = errorCode(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new GalleryError(
      'ERR_NO_SPACE',
      `No space left on the device while ${action}; nothing was changed. Free some disk space and try again.`,
      { cause: error },
    );
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new GalleryError(
      'ERR_GALLERY_IO',
      `Permission denied while ${action} (${code}); make the gallery folder writable by this user.`,
      { cause: error },
    );
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new GalleryError('ERR_GALLERY_IO', `File error while ${action}: ${detail}`, { cause: error });
}
