/**
 * The face library's settings for one gallery, in `<gallery>/library/settings.json`: the visit
 * store's bounds and privacy option, and a threshold/margin applied from the Health page (which
 * then wins over the face-gallery node's fields, so "apply" takes effect without a redeploy and
 * survives a restart).
 */
import * as path from 'node:path';
import { SETTINGS } from '../flow/settings';
import { isPlainObject, readJsonFile, writeFileAtomic } from './files';
import { DEFAULT_VISIT_STORE_OPTIONS, VISIT_STORE_LIMITS, type VisitStoreOptions } from './visit-store';

export interface LibrarySettings {
  visits: VisitStoreOptions;
  /** Applied from the Health page; absent: the face-gallery node's own values. */
  recognition: { threshold?: number; margin?: number };
}

const FORMAT = 'coral-face-library-settings';

export function settingsPath(galleryDir: string): string {
  return path.join(galleryDir, 'library', 'settings.json');
}

export async function readLibrarySettings(galleryDir: string): Promise<LibrarySettings> {
  let raw: unknown;
  try {
    raw = await readJsonFile(settingsPath(galleryDir));
  } catch {
    raw = undefined; // unreadable: defaults, and the next save replaces it
  }
  const stored = isPlainObject(raw) && raw.format === FORMAT ? raw : {};
  const visits = isPlainObject(stored.visits) ? stored.visits : {};
  const recognition = isPlainObject(stored.recognition) ? stored.recognition : {};
  const settings: LibrarySettings = { visits: { ...DEFAULT_VISIT_STORE_OPTIONS }, recognition: {} };
  try {
    settings.visits = checkVisitSettings({ ...DEFAULT_VISIT_STORE_OPTIONS, ...visits });
  } catch {
    // out of range on disk: defaults
  }
  for (const key of ['threshold', 'margin'] as const) {
    const value = recognition[key];
    const rule = SETTINGS['face-gallery'][key];
    if (typeof value === 'number' && value >= rule.min && value <= rule.max) settings.recognition[key] = value;
  }
  return settings;
}

export async function writeLibrarySettings(galleryDir: string, settings: LibrarySettings): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path.dirname(settingsPath(galleryDir)), { recursive: true });
  await writeFileAtomic(
    settingsPath(galleryDir),
    JSON.stringify({ format: FORMAT, version: 1, ...settings }, null, 2) + '\n',
  );
}

/** Checks values from a request or the file; throws a RangeError naming the field. */
export function checkVisitSettings(value: Record<string, unknown>): VisitStoreOptions {
  const maxVisits = Number(value.maxVisits);
  const maxAgeDays = Number(value.maxAgeDays);
  const [minV, maxV] = VISIT_STORE_LIMITS.maxVisits;
  const [minA, maxA] = VISIT_STORE_LIMITS.maxAgeDays;
  if (!Number.isInteger(maxVisits) || maxVisits < minV || maxVisits > maxV) {
    throw new RangeError(`maxVisits must be a whole number from ${minV} to ${maxV}`);
  }
  if (!Number.isFinite(maxAgeDays) || maxAgeDays < minA || maxAgeDays > maxA) {
    throw new RangeError(`maxAgeDays must be a number of days from ${minA} to ${maxA}`);
  }
  if (typeof value.keepImages !== 'boolean') throw new RangeError('keepImages must be true or false');
  return { maxVisits, maxAgeDays, keepImages: value.keepImages };
}

export function checkRecognitionValue(key: 'threshold' | 'margin', value: unknown): number {
  const rule = SETTINGS['face-gallery'][key];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < rule.min || value > rule.max) {
    throw new RangeError(`${key} must be a number from ${rule.min} to ${rule.max}`);
  }
  return value;
}
