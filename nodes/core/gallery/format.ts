/**
 * The gallery's records and their on-disk form: the index (gallery.json), the
 * per-person description (people/<id>/person.json), names and ids.
 *
 * Index, format version 2 (version 1 is read, and upgraded by the next write):
 *
 *   { "format": "coral-face-gallery", "version": 2,
 *     "people": [{ "id", "name", "createdAt", "updatedAt", "ignored"?,
 *                  "crops":     [{ "file", "addedAt", "source"?, "quality"?, "sha256"? }],
 *                  "negatives": [ the same ] }] }
 *
 * `negatives` are crops of faces that are *not* this person (a correction:
 * "this is not Alice"); `ignored` marks a known-but-silent class (the postman).
 * A newer version is refused, never rewritten: an older coral-face would drop
 * what it does not know.
 */
import { CodedError } from '../common/errors';
import { looseNameKey } from './name-key';

export { looseNameKey };

export const GALLERY_FORMAT = 'coral-face-gallery' as const;
export const GALLERY_FORMAT_VERSION = 2;
export const PERSON_FORMAT = 'coral-face-person';
export const MAX_NAME_LENGTH = 64;

export const INDEX_FILE = 'gallery.json';
export const PEOPLE_DIR = 'people';
export const NEGATIVES_DIR = 'negatives';
export const PERSON_FILE = 'person.json';
export const EMBEDDINGS_DIR = 'embeddings';
export const PENDING_DIR = 'pending';
export const LOCK_FILE = 'gallery.lock';

const MAX_SLUG_LENGTH = 40;
const ID_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const MAX_ID_LENGTH = 48;
export const CROP_FILE_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}\.png$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;
/** Control characters, line/paragraph separators, lone surrogates, and bidi overrides (they let a name display as another). */
const FORBIDDEN_NAME_CHARS = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\u202A-\u202E\u2066-\u2069]/u;

export type GalleryErrorCode =
  | 'ERR_NAME_INVALID'
  | 'ERR_NAME_COLLISION'
  | 'ERR_PERSON_EXISTS'
  | 'ERR_PERSON_NOT_FOUND'
  | 'ERR_CROP_NOT_FOUND'
  | 'ERR_CROPS_INVALID'
  | 'ERR_EMBEDDER_INVALID'
  | 'ERR_EMBEDDINGS_INVALID'
  | 'ERR_GALLERY_NOT_FOUND'
  | 'ERR_GALLERY_FORMAT'
  | 'ERR_GALLERY_VERSION'
  | 'ERR_GALLERY_BUSY'
  | 'ERR_GALLERY_READ_ONLY'
  | 'ERR_GALLERY_IO'
  | 'ERR_IMPORT_INVALID'
  | 'ERR_NO_SPACE';

export class GalleryError extends CodedError<GalleryErrorCode> {}

export interface CropRecord {
  readonly file: string;
  readonly addedAt: string;
  readonly source?: string;
  readonly quality?: Readonly<Record<string, unknown>>;
  /** SHA-256 of the crop's RGB pixels: the same face crop is never stored twice. */
  readonly sha256?: string;
}

export interface PersonRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Recognised, but reported as "ignored" rather than as a person (no person trigger, no stranger alert). */
  readonly ignored?: boolean;
  readonly crops: readonly CropRecord[];
  /** Faces that are not this person, kept so the same face is not accepted as them again. */
  readonly negatives: readonly CropRecord[];
}

export interface GalleryIndex {
  readonly format: typeof GALLERY_FORMAT;
  readonly version: number;
  readonly people: readonly PersonRecord[];
}

export const EMPTY_INDEX: GalleryIndex = deepFreeze({
  format: GALLERY_FORMAT,
  version: GALLERY_FORMAT_VERSION,
  people: [],
});

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

export function uniqueId(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let suffix = 2; ; suffix++) {
    const candidate = `${base}-${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}

export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && id.length <= MAX_ID_LENGTH && ID_PATTERN.test(id);
}

/** How a name relates to the people of an index. */
export interface NameMatch {
  /** The person with exactly this display name (after trimming and NFC). */
  exact?: PersonRecord;
  /** Other people whose names collide with it loosely (case, accents, punctuation). */
  similar: PersonRecord[];
}

export function matchName(index: GalleryIndex, name: string): NameMatch {
  const wanted = name.normalize('NFC').trim();
  const loose = looseNameKey(wanted);
  const exact = index.people.find((person) => person.name === wanted);
  const similar = index.people.filter((person) => person !== exact && looseNameKey(person.name) === loose);
  return { exact, similar };
}

/** The refusal when a new name is easily taken for existing ones: the caller must choose "add to" or "new person". */
export function nameCollisionError(name: string, similar: readonly PersonRecord[]): GalleryError {
  const names = similar.map((p) => `'${p.name}'`).join(', ');
  return new GalleryError(
    'ERR_NAME_COLLISION',
    `'${name}' is easily taken for ${names}, already in the gallery. To add these photos to ${names}, give that exact ` +
      'name (or choose "add to"); to enrol someone else, choose "new person" or a clearly different name.',
  );
}

/**
 * Finds a person for a command that names one (forget, rename, list…): the
 * exact display name, else the one person whose name collides loosely, else
 * the id (what automations keep). Several loose matches find nobody.
 */
export function findPerson(index: GalleryIndex, nameOrId: string): PersonRecord | undefined {
  if (typeof nameOrId !== 'string') return undefined;
  const { exact, similar } = matchName(index, nameOrId);
  if (exact) return exact;
  if (similar.length === 1) return similar[0];
  return index.people.find((person) => person.id === nameOrId);
}

// ---------------------------------------------------------------- parsing

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseCrops(raw: unknown, what: string, fail: (detail: string) => Error): CropRecord[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw fail(`${what} is not a list`);
  const files = new Set<string>();
  return raw.map((crop: unknown): CropRecord => {
    if (!isPlainObject(crop) || typeof crop.file !== 'string' || !CROP_FILE_PATTERN.test(crop.file)) {
      throw fail(`${what} has a crop with an unsafe or malformed file name`);
    }
    if (files.has(crop.file)) throw fail(`crop '${crop.file}' appears twice in ${what}`);
    files.add(crop.file);
    if (typeof crop.addedAt !== 'string') throw fail(`crop '${crop.file}' of ${what} lacks addedAt`);
    if (crop.source !== undefined && typeof crop.source !== 'string')
      throw fail(`crop '${crop.file}' has a non-string source`);
    if (crop.quality !== undefined && !isPlainObject(crop.quality))
      throw fail(`crop '${crop.file}' has a non-object quality`);
    if (crop.sha256 !== undefined && (typeof crop.sha256 !== 'string' || !SHA256_PATTERN.test(crop.sha256))) {
      throw fail(`crop '${crop.file}' has a malformed sha256`);
    }
    return {
      file: crop.file,
      addedAt: crop.addedAt,
      ...(crop.source !== undefined ? { source: crop.source } : {}),
      ...(crop.quality !== undefined ? { quality: crop.quality } : {}),
      ...(crop.sha256 !== undefined ? { sha256: crop.sha256 } : {}),
    };
  });
}

/** One person's record, as the index and person.json hold it. */
export function parsePerson(entry: unknown, what: string, fail: (detail: string) => Error): PersonRecord {
  if (!isPlainObject(entry)) throw fail(`${what} is not an object`);
  if (!isValidId(entry.id)) throw fail(`${what} has an unsafe or malformed id`);
  const id = entry.id;
  let name: string;
  try {
    name = normalisePersonName(entry.name);
  } catch (error) {
    throw fail(`person '${id}' has an invalid name: ${(error as Error).message}`);
  }
  if (typeof entry.createdAt !== 'string' || typeof entry.updatedAt !== 'string') {
    throw fail(`person '${id}' lacks createdAt/updatedAt`);
  }
  if (entry.ignored !== undefined && typeof entry.ignored !== 'boolean')
    throw fail(`person '${id}' has a non-boolean "ignored"`);
  if (!Array.isArray(entry.crops)) throw fail(`person '${id}' has no crop list`);
  const crops = parseCrops(entry.crops, `person '${id}'`, fail);
  const negatives = parseCrops(entry.negatives, `the negatives of '${id}'`, fail);
  return {
    id,
    name,
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
    ...(entry.ignored ? { ignored: true } : {}),
    crops,
    negatives,
  };
}

export function parseIndex(text: string, indexPath: string): GalleryIndex {
  const corrupt = (detail: string): GalleryError =>
    new GalleryError(
      'ERR_GALLERY_FORMAT',
      `${indexPath} is damaged (${detail}). Nothing was changed. Run "coral-face repair --gallery <folder>" to rebuild ` +
        'the index from the person folders (the damaged file is kept beside it), or restore it from a backup.',
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw corrupt(`not JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(raw) || raw.format !== GALLERY_FORMAT) throw corrupt(`"format" is not "${GALLERY_FORMAT}"`);
  const version = raw.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1)
    throw corrupt('"version" is not a positive integer');
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
    const person = parsePerson(entry, `person ${position}`, corrupt);
    if (ids.has(person.id)) throw corrupt(`id '${person.id}' appears twice`);
    ids.add(person.id);
    if (names.has(person.name)) throw corrupt(`name '${person.name}' appears twice`);
    names.add(person.name);
    return person;
  });
  // The version read is kept: an index from before person.json existed gets them at its next change.
  return deepFreeze({ format: GALLERY_FORMAT, version, people });
}

export function serialiseIndex(index: GalleryIndex): Buffer {
  return Buffer.from(JSON.stringify({ ...index, version: GALLERY_FORMAT_VERSION }, null, 2) + '\n', 'utf8');
}

/** people/<id>/person.json: the person's record, so the folders alone can rebuild a lost index. */
export function serialisePerson(person: PersonRecord): Buffer {
  return Buffer.from(
    JSON.stringify({ format: PERSON_FORMAT, version: GALLERY_FORMAT_VERSION, ...person }, null, 2) + '\n',
    'utf8',
  );
}
