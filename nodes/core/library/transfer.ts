/**
 * Export and import of people as one JSON file (format "coral-face-export", version 1): each
 * person's name, ignored flag, aligned crops and negative crops as base64 PNG. Crops, not
 * embeddings: the receiving gallery embeds them with its own model.
 *
 * Import checks the whole document before writing anything, decodes every PNG with a pixel limit
 * and requires the gallery's crop size, then adds each person in one atomic gallery write (a
 * person is imported whole or not at all). A name that exists is skipped unless `merge` is asked.
 */
import type { Gallery, NewCrop } from '../gallery/gallery';
import { normalisePersonName } from '../gallery/gallery';
import { encodePng } from '../media/decode';
import sharp from '../media/vips';
import { isPlainObject } from './files';
import type { ExportDocument, ExportedPerson, ImportPersonResult, PeopleExtras } from './gallery-port';

export const CROP_SIZE = 112;
/** A gallery export larger than this is refused before parsing (about 6,000 crops). */
export const MAX_IMPORT_BYTES = 64 * 1024 * 1024;

export class TransferError extends Error {
  readonly code = 'ERR_IMPORT_INVALID';
}

export async function exportPeople(gallery: Gallery, extras: PeopleExtras, personIds?: readonly string[]): Promise<ExportDocument> {
  const chosen = personIds ? gallery.listPeople().filter((p) => personIds.includes(p.id)) : gallery.listPeople();
  const people: ExportedPerson[] = [];
  for (const person of chosen) {
    const images = await gallery.loadCrops(person.id);
    const crops = await Promise.all(images.map(async (image, i) => ({
      png: (await encodePng(image)).toString('base64'),
      addedAt: person.crops[i].addedAt,
      ...(person.crops[i].source ? { source: person.crops[i].source } : {}),
      ...(person.crops[i].quality ? { quality: { ...person.crops[i].quality } } : {}),
    })));
    const own = extras.extrasOf(person.id);
    const negatives = await Promise.all(own.negatives.map(async (n) => ({
      png: (await extras.readNegative(person.id, n.file)).toString('base64'), addedAt: n.addedAt, ...(n.source ? { source: n.source } : {}),
    })));
    people.push({ name: person.name, ignored: own.ignored, crops, negatives });
  }
  return { format: 'coral-face-export', version: 1, exportedAt: new Date().toISOString(), people };
}

interface CheckedPerson {
  name: string;
  ignored: boolean;
  crops: NewCrop[];
  negatives: NewCrop[];
}

/** Parses and checks an export document completely (every image decoded) before anything is written. */
export async function readExport(bytes: Buffer): Promise<CheckedPerson[]> {
  if (bytes.length > MAX_IMPORT_BYTES) throw new TransferError(`the file is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MB`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new TransferError('the file is not a coral-face export (not JSON)');
  }
  if (!isPlainObject(raw) || raw.format !== 'coral-face-export') throw new TransferError('the file is not a coral-face export (no "format")');
  if (raw.version !== 1) throw new TransferError(`export version ${String(raw.version)} is not supported (1 expected): upgrade coral-face`);
  if (!Array.isArray(raw.people) || raw.people.length === 0) throw new TransferError('the export holds no people');
  const people: CheckedPerson[] = [];
  for (const [index, entry] of raw.people.entries()) {
    const where = `person ${index + 1}`;
    if (!isPlainObject(entry)) throw new TransferError(`${where} is not an object`);
    let name: string;
    try {
      name = normalisePersonName(entry.name);
    } catch (error) {
      throw new TransferError(`${where}: ${(error as Error).message}`);
    }
    if (!Array.isArray(entry.crops) || entry.crops.length === 0) throw new TransferError(`${name}: no photos`);
    const decode = async (list: unknown[], what: string): Promise<NewCrop[]> => Promise.all(list.map(async (item, i) => {
      if (!isPlainObject(item) || typeof item.png !== 'string') throw new TransferError(`${name}: ${what} ${i + 1} has no PNG`);
      const image = await decodeCrop(Buffer.from(item.png, 'base64'), `${name}: ${what} ${i + 1}`);
      return {
        image,
        ...(typeof item.source === 'string' ? { source: item.source } : {}),
        ...(isPlainObject(item.quality) ? { quality: item.quality } : {}),
      };
    }));
    people.push({
      name,
      ignored: entry.ignored === true,
      crops: await decode(entry.crops, 'photo'),
      negatives: await decode(Array.isArray(entry.negatives) ? entry.negatives : [], 'negative example'),
    });
  }
  const names = new Set<string>();
  for (const person of people) {
    const key = person.name.toLowerCase();
    if (names.has(key)) throw new TransferError(`'${person.name}' appears twice in the export`);
    names.add(key);
  }
  return people;
}

export async function importPeople(gallery: Gallery, extras: PeopleExtras, bytes: Buffer,
  options: { merge?: boolean } = {}): Promise<ImportPersonResult[]> {
  const people = await readExport(bytes);
  const results: ImportPersonResult[] = [];
  for (const person of people) {
    const existing = gallery.getPerson(person.name);
    if (existing && !options.merge) {
      results.push({ name: person.name, outcome: 'skipped', photos: 0, message: `'${existing.name}' is already in the gallery` });
      continue;
    }
    try {
      const record = await gallery.addCrops(existing?.name ?? person.name, person.crops);
      if (person.negatives.length > 0) await extras.addNegatives(record.id, person.negatives);
      if (person.ignored) await extras.setIgnored(record.id, true);
      results.push({ name: record.name, outcome: existing ? 'merged' : 'created', photos: person.crops.length });
    } catch (error) {
      results.push({ name: person.name, outcome: 'failed', photos: 0, message: (error as Error).message });
    }
  }
  return results;
}

async function decodeCrop(bytes: Buffer, where: string): Promise<NewCrop['image']> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: 1024 * 1024, failOn: 'error' })
      .removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.width !== CROP_SIZE || info.height !== CROP_SIZE) {
      throw new TransferError(`${where} is ${info.width}x${info.height}, not an aligned ${CROP_SIZE}x${CROP_SIZE} crop`);
    }
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    if (error instanceof TransferError) throw error;
    throw new TransferError(`${where} is not a readable PNG`);
  }
}
