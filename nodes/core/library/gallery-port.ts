/**
 * What the face library needs from the gallery beyond what nodes/core/gallery/gallery.ts offers
 * today: a per-person `ignored` flag (a known-but-silent class), negative example crops per person
 * ("not <name>" corrections), and export/import of people as one file.
 *
 * The lead is adding these to the gallery itself (issue #9). Until then `SidecarExtras`
 * (sidecar.ts) implements this interface beside the gallery folder; when the gallery has them, the
 * Gallery class implements PeopleExtras and the sidecar goes. Everything in nodes/core/library and
 * the recognizer's veto depend on this interface only.
 */
import type { NewCrop } from '../gallery/gallery';
import type { PersonRecord } from '../gallery/format';
import type { RgbImage } from '../media/image';
import type { EmbedOptions } from '../embed/embedder';

export type EmbedCrops = (crops: RgbImage[], options?: EmbedOptions) => Promise<Float32Array[]>;

export interface NegativeRecord {
  readonly file: string;
  readonly addedAt: string;
  /** Where the crop came from, e.g. "visit front_door-17 at 2025-…". */
  readonly source?: string;
}

export interface PersonExtras {
  ignored: boolean;
  negatives: readonly NegativeRecord[];
}

export interface ExtrasChange {
  kind: 'ignored' | 'negative-add' | 'negative-remove';
  personId: string;
}

/** One person as exported: everything needed to recreate them in another gallery. */
export interface ExportedPerson {
  name: string;
  ignored: boolean;
  crops: { png: string; addedAt: string; source?: string; quality?: Record<string, unknown> }[];
  negatives: { png: string; addedAt: string; source?: string }[];
}

export interface ExportDocument {
  format: 'coral-face-export';
  version: 1;
  exportedAt: string;
  people: ExportedPerson[];
}

export interface ImportPersonResult {
  name: string;
  /** 'created', 'merged' (photos added to the person of that name), 'skipped' (name taken, merge not asked) or 'failed'. */
  outcome: 'created' | 'merged' | 'skipped' | 'failed';
  photos: number;
  message?: string;
}

export interface PeopleExtras {
  extrasOf(personId: string): PersonExtras;
  /** Ids of the people recognised but reported as `ignored`. */
  ignoredIds(): ReadonlySet<string>;
  setIgnored(personId: string, ignored: boolean): Promise<void>;
  addNegatives(personId: string, crops: readonly NewCrop[]): Promise<NegativeRecord[]>;
  removeNegative(personId: string, file: string): Promise<void>;
  /** personId → embeddings of faces that are not that person, for one embedder (cached per embedder id). */
  negativeEmbeddings(embedderId: string, embed: EmbedCrops): Promise<Map<string, Float32Array[]>>;
  /** PNG bytes of one of a person's negative crops. */
  readNegative(personId: string, file: string): Promise<Buffer>;
  /** Removes every trace kept for a person (called when the person is forgotten). */
  forgetPerson(personId: string): Promise<void>;
  on(event: 'change', listener: (change: ExtrasChange) => void): unknown;
  off(event: 'change', listener: (change: ExtrasChange) => void): unknown;
}

/** The gallery as the library uses it (today's Gallery satisfies it). */
export interface GalleryView {
  readonly dir: string;
  listPeople(): readonly PersonRecord[];
  getPerson(nameOrId: string): PersonRecord | undefined;
  on(event: 'change', listener: (change: { kind: string; personId: string; name: string }) => void): unknown;
  off(event: 'change', listener: (change: { kind: string; personId: string; name: string }) => void): unknown;
}
