/**
 * The face library of one gallery: what the page shows and does, framework-free (the HTTP routes in
 * nodes/face-library/ only translate). It owns the visit store and the unknown clusters, and acts on
 * the gallery through the gallery's own operations (so the recognizer and Home Assistant follow
 * every change at once, exactly as for enrolment by message).
 *
 * The gallery, embedder and detection pipeline are looked up per call (`deps`): a redeploy replaces
 * the flow's nodes and with them the open Gallery, while the library (store, clusters) stays.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type Embedder, embedFor } from '../embed/embedder';
import { CropQuality, EnrolError, enrolCrops, enrolPerson, EnrolResult, PhotoReport } from '../gallery/enrol';
import type { Gallery } from '../gallery/gallery';
import type { PersonRecord } from '../gallery/format';
import { decodeImage, encodeJpeg, ImageError } from '../media/decode';
import type { RgbImage } from '../media/image';
import type { FacePipeline } from '../pipeline';
import { CodedError } from '../common/errors';
import { UnknownClusters } from './clusters';
import type { PeopleExtras } from './gallery-port';
import { galleryHealth, type GalleryHealth } from './health';
import {
  checkRecognitionValue,
  checkVisitSettings,
  readLibrarySettings,
  writeLibrarySettings,
  type LibrarySettings,
} from './settings';
import { exportPeople, importPeople } from './transfer';
import { kindOf, VisitStore, type VisitInput, type VisitPage, type VisitQuery, type VisitRecord } from './visit-store';

export interface FaceLibraryDeps {
  gallery(): Promise<Gallery>;
  embedder(): Promise<Embedder>;
  /** Detection + alignment + embedding for uploaded photos (the near-face detector). */
  pipeline(): Promise<FacePipeline>;
  /** The recognizers' current threshold and margin. */
  recognition(): Promise<{ threshold: number; margin: number }>;
  /** Applies a threshold/margin to the running recognizers of this gallery. */
  applyRecognition(options: { threshold?: number; margin?: number }): Promise<void>;
}

export type LibraryErrorCode = 'ERR_NOT_FOUND' | 'ERR_BAD_REQUEST' | 'ERR_CONFLICT' | 'ERR_NO_IMAGES';

export class LibraryError extends CodedError<LibraryErrorCode> {}

export interface ClusterSummary {
  id: string;
  visits: number;
  firstSeen: number;
  lastSeen: number;
  cameras: string[];
  /** Visit ids with a crop, newest first (at most 12). */
  crops: string[];
}

export interface NameResult {
  person: { id: string; name: string } | null;
  ignored: boolean;
  accepted: number;
  rejected: number;
  /** Per crop: visit id, accepted, reasons. */
  crops: { visit: string; accepted: boolean; reasons: PhotoReport['reasons'] }[];
}

export interface UploadResult {
  ok: boolean;
  message?: string;
  person: { id: string; name: string } | null;
  photos: { file: string; accepted: boolean; reasons: PhotoReport['reasons'] }[];
}

/** Crops enrolled from one cluster at most: enough for a good weight, bounded work. */
const MAX_CROPS_PER_NAMING = 12;
const MIN_PHOTOS_NEW_PERSON = 3;

export class FaceLibrary {
  readonly clusters = new UnknownClusters();
  private unsubscribe: (() => void)[] = [];

  private constructor(
    readonly galleryDir: string,
    readonly store: VisitStore,
    readonly extras: PeopleExtras,
    private settings: LibrarySettings,
    private readonly deps: FaceLibraryDeps,
  ) {}

  static async open(galleryDir: string, extras: PeopleExtras, deps: FaceLibraryDeps): Promise<FaceLibrary> {
    const settings = await readLibrarySettings(galleryDir);
    const store = await VisitStore.open(path.join(galleryDir, 'library', 'visits'), settings.visits);
    const library = new FaceLibrary(galleryDir, store, extras, settings, deps);
    for (const record of store.all()) library.cluster(record);
    library.unsubscribe.push(
      store.onAdded((record) => library.cluster(record)),
      store.onRemoved((ids) => {
        for (const id of ids) library.clusters.remove(id);
      }),
      store.onLabelled((record) => {
        if (record.resolved) library.clusters.remove(record.id);
        else library.cluster(record);
      }),
    );
    return library;
  }

  close(): void {
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
  }

  /** A stranger (or a corrected recognition) with an embedding joins a cluster at once. */
  private cluster(record: VisitRecord): void {
    if (kindOf(record) === 'unknown' && !record.resolved && record.embedding) {
      this.clusters.add(record.id, record.embedding, record.time);
    }
  }

  // ---------------------------------------------------------------- recording

  /** Stores one visit (from imprint-classify); the crop is encoded here unless images are off. */
  async record(input: Omit<VisitInput, 'crop'> & { crop?: RgbImage }): Promise<VisitRecord> {
    const crop = input.crop && this.store.settings.keepImages ? await encodeJpeg(input.crop, 92) : undefined;
    return this.store.add({ ...input, crop });
  }

  // ---------------------------------------------------------------- recent faces

  visits(query: VisitQuery): VisitPage {
    return this.store.query(query);
  }

  // ---------------------------------------------------------------- unknown people

  listClusters(): ClusterSummary[] {
    return this.clusters.list().map((cluster) => {
      const records = cluster.members.map((id) => this.store.get(id)).filter((r): r is VisitRecord => !!r);
      return {
        id: cluster.id,
        visits: records.length,
        firstSeen: cluster.firstSeen,
        lastSeen: cluster.lastSeen,
        cameras: [...new Set(records.map((r) => r.camera))].sort(),
        crops: records
          .filter((r) => r.hasCrop)
          .slice(0, 12)
          .map((r) => r.id),
      };
    });
  }

  private clusterMembers(clusterId: string): VisitRecord[] {
    const cluster = this.clusters.get(clusterId);
    if (!cluster)
      throw new LibraryError(
        'ERR_NOT_FOUND',
        `No unknown group '${clusterId}' (it may have been named or deleted meanwhile).`,
      );
    return cluster.members.map((id) => this.store.get(id)).filter((r): r is VisitRecord => !!r);
  }

  /**
   * Names a cluster: its crops (at most 12, newest first) are enrolled as a new person or added to
   * an existing one (`mode` makes the choice explicit: a name that exists is never joined by
   * accident), with the enrolment's per-crop result. `ignore` makes the person a known-but-silent one.
   */
  async nameCluster(
    clusterId: string,
    name: string,
    mode: 'new' | 'existing',
    options: { ignore?: boolean } = {},
  ): Promise<NameResult> {
    const members = this.clusterMembers(clusterId);
    const gallery = await this.deps.gallery();
    const existing = gallery.getPerson(String(name ?? ''));
    if (mode === 'new' && existing) {
      throw new LibraryError(
        'ERR_CONFLICT',
        `'${existing.name}' is already in the gallery: choose "add to ${existing.name}" to add these faces to them, or another name.`,
      );
    }
    if (mode === 'existing' && !existing)
      throw new LibraryError('ERR_NOT_FOUND', `There is no '${name}' in the gallery to add to.`);
    const withCrops = members.filter((r) => r.hasCrop).slice(0, MAX_CROPS_PER_NAMING);
    if (withCrops.length === 0) {
      throw new LibraryError(
        'ERR_NO_IMAGES',
        'These visits have no face images (face images are off, or were pruned): nothing to enrol.',
      );
    }
    const crops: { source: string; crop: RgbImage; quality: CropQuality; visit: string }[] = [];
    const seen = new Set<string>();
    for (const record of withCrops) {
      const jpeg = await this.store.readCrop(record.id);
      if (!jpeg) continue;
      // The same face image seen on several visits is one photo (enrolment would refuse the repeats anyway).
      const digest = createHash('sha256').update(jpeg).digest('hex');
      if (seen.has(digest)) continue;
      seen.add(digest);
      crops.push({
        visit: record.id,
        source: `visit ${record.trackId} at ${new Date(record.time).toISOString()}`,
        crop: await decodeImage(jpeg),
        quality: { sharpness: record.quality?.sharpness ?? 0, yawDeg: record.quality?.yawDeg ?? 0 },
      });
    }
    const embedder = await this.deps.embedder();
    let result: EnrolResult;
    try {
      result = await enrolCrops(embedder, gallery, existing?.name ?? name, crops, [], {
        minPhotos: Math.min(MIN_PHOTOS_NEW_PERSON, Math.max(1, crops.length)),
        // The page asked "new person" or "add to": a name that only resembles someone's is the user's explicit choice.
        mode: mode === 'new' ? 'new' : 'add',
        ...(await this.deps.recognition()),
      });
    } catch (error) {
      if (error instanceof EnrolError) return { ...nameReport(error.result, crops), person: null, ignored: false };
      throw error;
    }
    const person = result.person!;
    if (options.ignore) await this.extras.setIgnored(person.id, true);
    else if (this.extras.extrasOf(person.id).ignored) await this.extras.setIgnored(person.id, false);
    const label = options.ignore ? `ignored as ${person.name}` : `named ${person.name}`;
    await this.store.label(
      members.map((r) => r.id),
      label,
      { resolved: true, resolvedAs: person.id },
    );
    return { ...nameReport(result, crops), person: { id: person.id, name: person.name }, ignored: !!options.ignore };
  }

  async deleteCluster(clusterId: string): Promise<number> {
    const members = this.clusterMembers(clusterId);
    return this.store.delete(members.map((r) => r.id));
  }

  // ---------------------------------------------------------------- corrections

  /**
   * "Not <name>" on a recognised visit: its crop becomes a negative example of that person (the
   * recognizer's veto), and the visit becomes a stranger again, offered among the unknown people.
   */
  async correct(visitId: string): Promise<{ person: string; cluster: string | null }> {
    const record = this.store.get(visitId);
    if (!record) throw new LibraryError('ERR_NOT_FOUND', `No visit '${visitId}'.`);
    if (record.corrected || (record.kind !== 'recognized' && record.kind !== 'ignored') || !record.personId) {
      throw new LibraryError('ERR_BAD_REQUEST', 'Only a visit recognised as someone can be corrected.');
    }
    const gallery = await this.deps.gallery();
    const person = gallery.getPerson(record.personId);
    if (!person) throw new LibraryError('ERR_NOT_FOUND', `'${record.name}' is no longer in the gallery.`);
    const jpeg = await this.store.readCrop(visitId);
    if (!jpeg)
      throw new LibraryError(
        'ERR_NO_IMAGES',
        'This visit has no face image (face images are off or it was pruned): it cannot be a negative example.',
      );
    await this.extras.addNegatives(person.id, [
      { image: await decodeImage(jpeg), source: `not ${person.name}: visit ${record.trackId}` },
    ]);
    await this.store.label([visitId], `not ${person.name}`, { corrected: true });
    return { person: person.name, cluster: this.clusters.clusterIdOf(visitId) ?? null };
  }

  // ---------------------------------------------------------------- people

  async people(): Promise<
    { id: string; name: string; photos: number; negatives: number; ignored: boolean; updatedAt: string }[]
  > {
    const gallery = await this.deps.gallery();
    return gallery.listPeople().map((p) => {
      const own = this.extras.extrasOf(p.id);
      return {
        id: p.id,
        name: p.name,
        photos: p.crops.length,
        negatives: own.negatives.length,
        ignored: own.ignored,
        updatedAt: p.updatedAt,
      };
    });
  }

  async person(nameOrId: string) {
    const gallery = await this.deps.gallery();
    const person = this.requirePerson(gallery, nameOrId);
    const health = await this.health();
    const scores = health.people.find((p) => p.id === person.id);
    const own = this.extras.extrasOf(person.id);
    return {
      id: person.id,
      name: person.name,
      ignored: own.ignored,
      createdAt: person.createdAt,
      updatedAt: person.updatedAt,
      photos: person.crops.map((crop) => {
        const score = scores?.photos.find((p) => p.file === crop.file);
        return {
          file: crop.file,
          addedAt: crop.addedAt,
          source: crop.source ?? null,
          quality: crop.quality ?? null,
          cosine: score?.cosine ?? null,
          top1: score?.top1 ?? null,
          nearest: score?.nearest ?? null,
        };
      }),
      negatives: own.negatives,
      health: scores
        ? {
            top1Rate: scores.top1Rate,
            meanCosine: scores.meanCosine,
            nearest: scores.nearest,
            warnings: scores.warnings,
          }
        : null,
    };
  }

  /** PNG bytes of one enrolled photo. */
  async photo(nameOrId: string, file: string): Promise<Buffer> {
    const gallery = await this.deps.gallery();
    const person = this.requirePerson(gallery, nameOrId);
    // Only a file the index lists is read: nothing else of the folder is reachable from here.
    if (!person.crops.some((c) => c.file === file))
      throw new LibraryError('ERR_NOT_FOUND', `'${person.name}' has no photo '${file}'.`);
    return fsp.readFile(path.join(gallery.dir, 'people', person.id, file));
  }

  async negative(nameOrId: string, file: string): Promise<Buffer> {
    const person = this.requirePerson(await this.deps.gallery(), nameOrId);
    try {
      return await this.extras.readNegative(person.id, file);
    } catch {
      throw new LibraryError('ERR_NOT_FOUND', `'${person.name}' has no negative example '${file}'.`);
    }
  }

  /**
   * Photos uploaded for a new person or an existing one: each is decoded as the CLI decodes
   * (same errors), detected, aligned and quality-checked; the report says per photo what was
   * accepted and why anything was not. Nothing is saved unless enough photos pass.
   */
  async upload(
    name: string,
    mode: 'new' | 'existing',
    files: { name: string; bytes: Buffer }[],
  ): Promise<UploadResult> {
    const gallery = await this.deps.gallery();
    const existing = gallery.getPerson(String(name ?? ''));
    if (mode === 'new' && existing) {
      throw new LibraryError(
        'ERR_CONFLICT',
        `'${existing.name}' is already in the gallery: open them to add photos, or pick another name.`,
      );
    }
    if (mode === 'existing' && !existing)
      throw new LibraryError('ERR_NOT_FOUND', `There is no '${name}' in the gallery.`);
    if (files.length === 0) throw new LibraryError('ERR_BAD_REQUEST', 'No photos in the upload.');
    const reports: UploadResult['photos'] = files.map((f) => ({ file: f.name, accepted: false, reasons: [] }));
    const decoded: { source: string; image: RgbImage; index: number }[] = [];
    for (const [index, file] of files.entries()) {
      try {
        decoded.push({ source: file.name, image: await decodeImage(file.bytes), index });
      } catch (error) {
        const e = error as ImageError;
        reports[index].reasons.push({
          code: e.code ?? 'ERR_IMAGE_CORRUPT',
          message: e.message.replace(/image buffer \(\d+ bytes\)/, file.name),
        });
      }
    }
    if (decoded.length === 0)
      return { ok: false, message: 'None of the files is a readable photo.', person: null, photos: reports };
    const pipeline = await this.deps.pipeline();
    let result: EnrolResult;
    let message: string | undefined;
    try {
      result = await enrolPerson(
        pipeline,
        gallery,
        existing?.name ?? name,
        decoded.map((d) => ({ source: d.source, image: d.image })),
        { mode: mode === 'new' ? 'new' : 'add', ...(await this.deps.recognition()) },
      );
    } catch (error) {
      if (!(error instanceof EnrolError)) throw error;
      result = error.result;
      message = error.message;
    }
    result.photos.forEach((photo, i) => {
      reports[decoded[i].index] = { file: decoded[i].source, accepted: photo.accepted, reasons: photo.reasons };
    });
    const person = result.person ? { id: result.person.id, name: result.person.name } : null;
    return { ok: person !== null, ...(message ? { message } : {}), person, photos: reports };
  }

  async removePhoto(nameOrId: string, file: string): Promise<void> {
    const gallery = await this.deps.gallery();
    const person = this.requirePerson(gallery, nameOrId);
    if (!person.crops.some((c) => c.file === file))
      throw new LibraryError('ERR_NOT_FOUND', `'${person.name}' has no photo '${file}'.`);
    if (person.crops.length === 1) {
      throw new LibraryError('ERR_BAD_REQUEST', `This is ${person.name}'s last photo: forget ${person.name} instead.`);
    }
    await gallery.removeCrop(person.id, file);
  }

  async removeNegative(nameOrId: string, file: string): Promise<void> {
    const person = this.requirePerson(await this.deps.gallery(), nameOrId);
    await this.extras.removeNegative(person.id, file);
  }

  async rename(nameOrId: string, newName: string): Promise<PersonRecord> {
    const gallery = await this.deps.gallery();
    const person = this.requirePerson(gallery, nameOrId);
    return gallery.rename(person.id, newName);
  }

  /** Forgets a person: gallery, negatives, flag, and every stored visit and crop recognised or named as them. */
  async forget(nameOrId: string): Promise<{ id: string; name: string; visits: number }> {
    const gallery = await this.deps.gallery();
    const person = this.requirePerson(gallery, nameOrId);
    await gallery.forget(person.id);
    await this.extras.forgetPerson(person.id);
    const visits = await this.forgetVisitsOf(person.id);
    return { id: person.id, name: person.name, visits };
  }

  /** Deletes the stored visits (and crops) recognised or named as a person. */
  forgetVisitsOf(personId: string): Promise<number> {
    const theirs = this.store
      .all()
      .filter((r) => (r.personId === personId && !r.corrected) || r.resolvedAs === personId);
    return this.store.delete(theirs.map((r) => r.id));
  }

  async setIgnored(nameOrId: string, ignored: boolean): Promise<void> {
    const person = this.requirePerson(await this.deps.gallery(), nameOrId);
    await this.extras.setIgnored(person.id, ignored);
  }

  async exportPeople(personIds?: string[]): Promise<Buffer> {
    const gallery = await this.deps.gallery();
    if (personIds) for (const id of personIds) this.requirePerson(gallery, id);
    const ids = personIds?.map((id) => gallery.getPerson(id)!.id);
    return Buffer.from(JSON.stringify(await exportPeople(gallery, ids)));
  }

  async importPeople(bytes: Buffer, merge: boolean) {
    return importPeople(await this.deps.gallery(), bytes, { merge });
  }

  // ---------------------------------------------------------------- health and settings

  async health(): Promise<
    GalleryHealth & { threshold: number; margin: number; applied: LibrarySettings['recognition'] }
  > {
    const gallery = await this.deps.gallery();
    const embedder = await this.deps.embedder();
    const byPerson = await gallery.embeddings(embedder.id, embedFor(embedder, embedder.id));
    const people = gallery.listPeople().map((p) => ({
      id: p.id,
      name: p.name,
      files: p.crops.map((c) => c.file),
      embeddings: byPerson.get(p.id) ?? [],
    }));
    // Strangers: unknown visits not since named as someone (those are the user's own people now).
    const strangers = this.store
      .all()
      .filter((r) => kindOf(r) === 'unknown' && !r.resolved && r.embedding)
      .map((r) => r.embedding!);
    const recognition = await this.deps.recognition();
    return { ...galleryHealth(people, strangers), ...recognition, applied: { ...this.settings.recognition } };
  }

  getSettings(): LibrarySettings {
    return { visits: this.store.settings, recognition: { ...this.settings.recognition } };
  }

  async updateSettings(change: {
    visits?: Record<string, unknown>;
    recognition?: Record<string, unknown> | null;
  }): Promise<LibrarySettings> {
    let visits = this.store.settings;
    let recognition = { ...this.settings.recognition };
    try {
      if (change.visits) visits = checkVisitSettings({ ...this.store.settings, ...change.visits });
      if (change.recognition === null) {
        recognition = {};
      } else if (change.recognition) {
        for (const key of ['threshold', 'margin'] as const) {
          if (change.recognition[key] !== undefined)
            recognition[key] = checkRecognitionValue(key, change.recognition[key]);
        }
      }
    } catch (error) {
      throw new LibraryError('ERR_BAD_REQUEST', (error as Error).message);
    }
    const next: LibrarySettings = { visits, recognition };
    await writeLibrarySettings(this.galleryDir, next);
    this.settings = next;
    await this.store.configure(visits);
    if (change.recognition !== undefined) await this.deps.applyRecognition(recognition);
    return this.getSettings();
  }

  private requirePerson(gallery: Gallery, nameOrId: string): PersonRecord {
    const person = typeof nameOrId === 'string' ? gallery.getPerson(nameOrId) : undefined;
    if (!person) throw new LibraryError('ERR_NOT_FOUND', `No person '${String(nameOrId)}' in the gallery.`);
    return person;
  }
}

function nameReport(result: EnrolResult, crops: { visit: string }[]): Omit<NameResult, 'person' | 'ignored'> {
  return {
    accepted: result.accepted,
    rejected: result.rejected,
    crops: result.photos.map((photo, i) => ({
      visit: crops[i]?.visit ?? photo.source,
      accepted: photo.accepted,
      reasons: photo.reasons,
    })),
  };
}
