/**
 * Stand-in for the gallery's coming `ignored` flag and negative crops (see gallery-port.ts), kept
 * beside the gallery's own files so that nothing of the gallery format changes:
 *
 *   <gallery>/library/people.json                      { format, version, people: { <personId>: { ignored, negatives: [...] } } }
 *   <gallery>/library/negatives/<personId>/<file>.png  aligned crops of faces that are NOT that person
 *
 * Same rules as the gallery: crops are written before the index, the index rename is the commit,
 * file names are generated here and checked on read, person ids are the gallery's (slugs).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { NewCrop } from '../gallery/gallery';
import type { RgbImage } from '../media/image';
import sharp from '../media/vips';
import { isPlainObject, readJsonFile, syncDirectory, writeFileAtomic } from './files';
import type { EmbedCrops, ExtrasChange, NegativeRecord, PeopleExtras, PersonExtras } from './gallery-port';

const FORMAT = 'coral-face-library-people';
const VERSION = 1;
const ID_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const FILE_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}\.png$/;

interface Stored {
  ignored: boolean;
  negatives: NegativeRecord[];
}

export class SidecarExtras extends EventEmitter implements PeopleExtras {
  private people = new Map<string, Stored>();
  private queue: Promise<unknown> = Promise.resolve();
  /** `${embedderId}\0${personId}/${file}` → embedding; negatives are few, so memory is enough. */
  private readonly vectors = new Map<string, Float32Array>();

  private constructor(readonly dir: string) {
    super();
  }

  /** Opens (or starts) the sidecar of a gallery folder; a damaged index is refused, never overwritten. */
  static async open(galleryDir: string): Promise<SidecarExtras> {
    const extras = new SidecarExtras(path.join(galleryDir, 'library'));
    const raw = await readJsonFile(extras.indexPath).catch((error: unknown) => {
      throw new Error(`${extras.indexPath} is not readable JSON (${(error as Error).message}); move it aside to start again`);
    });
    if (raw !== undefined) extras.people = parse(raw, extras.indexPath);
    return extras;
  }

  private get indexPath(): string {
    return path.join(this.dir, 'people.json');
  }

  extrasOf(personId: string): PersonExtras {
    const stored = this.people.get(personId);
    return { ignored: stored?.ignored ?? false, negatives: stored?.negatives ?? [] };
  }

  ignoredIds(): ReadonlySet<string> {
    return new Set([...this.people].filter(([, p]) => p.ignored).map(([id]) => id));
  }

  setIgnored(personId: string, ignored: boolean): Promise<void> {
    checkId(personId);
    return this.serialise(async () => {
      const current = this.extrasOf(personId);
      if (current.ignored === ignored) return;
      await this.commit(personId, { ignored, negatives: [...current.negatives] });
      this.emit('change', { kind: 'ignored', personId } satisfies ExtrasChange);
    });
  }

  addNegatives(personId: string, crops: readonly NewCrop[]): Promise<NegativeRecord[]> {
    checkId(personId);
    return this.serialise(async () => {
      const dir = path.join(this.dir, 'negatives', personId);
      await fsp.mkdir(dir, { recursive: true });
      const written: NegativeRecord[] = [];
      try {
        for (const crop of crops) {
          const file = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.png`;
          await writeFileAtomic(path.join(dir, file), await encodePng(crop.image), { syncDir: false });
          written.push({ file, addedAt: new Date().toISOString(), ...(crop.source ? { source: crop.source } : {}) });
        }
        await syncDirectory(dir);
        const current = this.extrasOf(personId);
        await this.commit(personId, { ignored: current.ignored, negatives: [...current.negatives, ...written] });
      } catch (error) {
        // Not committed: take back the crops so nothing unreferenced stays behind.
        for (const record of written) await fsp.unlink(path.join(dir, record.file)).catch(() => undefined);
        throw error;
      }
      this.emit('change', { kind: 'negative-add', personId } satisfies ExtrasChange);
      return written;
    });
  }

  removeNegative(personId: string, file: string): Promise<void> {
    checkId(personId);
    return this.serialise(async () => {
      const current = this.extrasOf(personId);
      if (!current.negatives.some((n) => n.file === file)) throw notFound(personId, file);
      await this.commit(personId, { ignored: current.ignored, negatives: current.negatives.filter((n) => n.file !== file) });
      await fsp.unlink(path.join(this.dir, 'negatives', personId, file)).catch(() => undefined);
      this.emit('change', { kind: 'negative-remove', personId } satisfies ExtrasChange);
    });
  }

  async readNegative(personId: string, file: string): Promise<Buffer> {
    checkId(personId);
    if (!FILE_PATTERN.test(file) || !this.extrasOf(personId).negatives.some((n) => n.file === file)) throw notFound(personId, file);
    return fsp.readFile(path.join(this.dir, 'negatives', personId, file));
  }

  negativeEmbeddings(embedderId: string, embed: EmbedCrops): Promise<Map<string, Float32Array[]>> {
    return this.serialise(async () => {
      const result = new Map<string, Float32Array[]>();
      for (const [personId, stored] of this.people) {
        if (stored.negatives.length === 0) continue;
        const missing = stored.negatives.filter((n) => !this.vectors.has(`${embedderId}\0${personId}/${n.file}`));
        if (missing.length > 0) {
          const images = await Promise.all(missing.map((n) => this.readNegative(personId, n.file).then(decodePng)));
          const vectors = await embed(images);
          missing.forEach((n, i) => this.vectors.set(`${embedderId}\0${personId}/${n.file}`, vectors[i]));
        }
        result.set(personId, stored.negatives.map((n) => this.vectors.get(`${embedderId}\0${personId}/${n.file}`)!));
      }
      return result;
    });
  }

  forgetPerson(personId: string): Promise<void> {
    checkId(personId);
    return this.serialise(async () => {
      if (!this.people.has(personId)) return;
      const next = new Map(this.people);
      next.delete(personId);
      await this.writeIndex(next);
      this.people = next;
      for (const key of [...this.vectors.keys()]) if (key.includes(`\0${personId}/`)) this.vectors.delete(key);
      await fsp.rm(path.join(this.dir, 'negatives', personId), { recursive: true, force: true });
      this.emit('change', { kind: 'negative-remove', personId } satisfies ExtrasChange);
    });
  }

  private async commit(personId: string, stored: Stored): Promise<void> {
    const next = new Map(this.people);
    if (!stored.ignored && stored.negatives.length === 0) next.delete(personId);
    else next.set(personId, stored);
    await this.writeIndex(next);
    this.people = next;
  }

  private async writeIndex(people: Map<string, Stored>): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    const document = { format: FORMAT, version: VERSION, people: Object.fromEntries(people) };
    await writeFileAtomic(this.indexPath, JSON.stringify(document, null, 2) + '\n');
  }

  private serialise<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

function parse(raw: unknown, file: string): Map<string, Stored> {
  const bad = (detail: string) => new Error(`${file} is not a coral-face library file (${detail}); move it aside to start again`);
  if (!isPlainObject(raw) || raw.format !== FORMAT) throw bad('wrong "format"');
  if (typeof raw.version !== 'number' || raw.version > VERSION) throw bad(`version ${String(raw.version)} is newer than this coral-face`);
  if (!isPlainObject(raw.people)) throw bad('"people" is not an object');
  const people = new Map<string, Stored>();
  for (const [id, value] of Object.entries(raw.people)) {
    if (!ID_PATTERN.test(id) || !isPlainObject(value)) throw bad(`entry '${id}' is malformed`);
    const negatives = Array.isArray(value.negatives) ? value.negatives : [];
    people.set(id, {
      ignored: value.ignored === true,
      negatives: negatives.filter((n): n is NegativeRecord => isPlainObject(n) && typeof n.file === 'string' && FILE_PATTERN.test(n.file)
        && typeof n.addedAt === 'string'),
    });
  }
  return people;
}

function checkId(personId: string): void {
  if (typeof personId !== 'string' || !ID_PATTERN.test(personId)) throw new Error(`'${String(personId)}' is not a person id`);
}

function notFound(personId: string, file: string): Error {
  return Object.assign(new Error(`'${personId}' has no negative example '${file}'`), { code: 'ERR_NOT_FOUND' });
}

function encodePng(image: RgbImage): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  }).png().toBuffer();
}

export async function decodePng(bytes: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(bytes, { limitInputPixels: 4096 * 4096 }).removeAlpha().toColourspace('srgb').raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
