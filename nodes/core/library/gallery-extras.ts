/**
 * The gallery's corrections and ignored flags as the face library uses them
 * (gallery-port.ts): a thin view of the Gallery, which stores both itself
 * (negative crops beside the person's crops, under the same lock, cache and
 * forget; `ignored` in the person's record).
 */
import { EventEmitter } from 'node:events';
import type { Gallery, GalleryChange, NewCrop } from '../gallery/gallery';
import type { EmbedCrops, ExtrasChange, NegativeRecord, PeopleExtras, PersonExtras } from './gallery-port';

export class GalleryExtras extends EventEmitter<{ change: [ExtrasChange] }> implements PeopleExtras {
  private readonly onGalleryChange = (change: GalleryChange): void => {
    if (change.personId === null) return;
    if (change.kind === 'ignore') this.emit('change', { kind: 'ignored', personId: change.personId });
    if (change.kind === 'negative') this.emit('change', { kind: 'negative-add', personId: change.personId });
    if (change.kind === 'remove-crop') this.emit('change', { kind: 'negative-remove', personId: change.personId });
  };

  constructor(readonly gallery: Gallery) {
    super();
    gallery.on('change', this.onGalleryChange);
  }

  extrasOf(personId: string): PersonExtras {
    const person = this.gallery.listPeople().find((p) => p.id === personId);
    return { ignored: person?.ignored ?? false, negatives: person?.negatives ?? [] };
  }

  ignoredIds(): ReadonlySet<string> {
    return new Set(
      this.gallery
        .listPeople()
        .filter((p) => p.ignored)
        .map((p) => p.id),
    );
  }

  async setIgnored(personId: string, ignored: boolean): Promise<void> {
    await this.gallery.setIgnored(personId, ignored);
  }

  async addNegatives(personId: string, crops: readonly NewCrop[]): Promise<NegativeRecord[]> {
    const before = new Set(this.extrasOf(personId).negatives.map((n) => n.file));
    const person = await this.gallery.addCrops(this.extrasName(personId), crops, { negative: true, personId });
    return person.negatives.filter((n) => !before.has(n.file));
  }

  async removeNegative(personId: string, file: string): Promise<void> {
    await this.gallery.removeCrop(personId, file, { negative: true });
  }

  negativeEmbeddings(embedderId: string, embed: EmbedCrops): Promise<Map<string, Float32Array[]>> {
    return this.gallery.negativeEmbeddings(embedderId, embed);
  }

  readNegative(personId: string, file: string): Promise<Buffer> {
    return this.gallery.cropPng(personId, file, { negative: true });
  }

  /** Forgetting a person in the gallery removes their negatives with them: nothing is left to do here. */
  async forgetPerson(): Promise<void> {}

  close(): void {
    this.gallery.off('change', this.onGalleryChange);
  }

  private extrasName(personId: string): string {
    return this.gallery.listPeople().find((p) => p.id === personId)?.name ?? personId;
  }
}
