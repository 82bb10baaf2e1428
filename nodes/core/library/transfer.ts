/**
 * Export and import of people as one JSON file, for the face library's page:
 * the gallery does the work (Gallery.exportPeople / importPeople: the
 * "coral-face-export" format, every crop checked before anything is written,
 * each person one atomic change); this adds the page's size limit and its
 * per-person report.
 */
import type { Gallery } from '../gallery/gallery';
import { GalleryError } from '../gallery/format';
import type { ExportDocument, ImportPersonResult } from './gallery-port';

/** A gallery export larger than this is refused before parsing (about 6,000 crops). */
export const MAX_IMPORT_BYTES = 64 * 1024 * 1024;

export async function exportPeople(gallery: Gallery, personIds?: readonly string[]): Promise<ExportDocument> {
  return (await gallery.exportPeople(personIds)) as ExportDocument;
}

/** Adds the people of an export; a name that is already there is skipped unless `merge` is asked. */
export async function importPeople(
  gallery: Gallery,
  bytes: Buffer,
  options: { merge?: boolean } = {},
): Promise<ImportPersonResult[]> {
  if (bytes.length > MAX_IMPORT_BYTES) {
    throw new GalleryError(
      'ERR_IMPORT_INVALID',
      `Cannot import this file: it is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MB.`,
    );
  }
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new GalleryError('ERR_IMPORT_INVALID', 'Cannot import this file: it is not a coral-face export (not JSON).');
  }
  const result = await gallery.importPeople(document, { onCollision: options.merge ? 'add' : 'skip' });
  return [
    ...result.people.map((p): ImportPersonResult => ({
      name: p.name,
      outcome: p.merged ? 'merged' : 'created',
      photos: p.added,
    })),
    ...result.skipped.map((s): ImportPersonResult => ({
      name: s.name,
      outcome: 'skipped',
      photos: 0,
      message: s.reason,
    })),
  ];
}
