/**
 * The gallery's people as an imprinted head: names a face embedding or says
 * "unknown". It rebuilds itself when the gallery changes, so enrolments and
 * forgets take effect without a restart.
 */
import { EventEmitter } from 'events';
import type { Embedder } from '../embed/embedder';
import type { Gallery, GalleryChange } from '../gallery/gallery';
import { ImprintedHead, ImprintedHeadOptions, UNKNOWN, UnknownReason } from './imprint';

export interface Identification {
  /** The person's display name, or "unknown". */
  name: string;
  personId: string | null;
  known: boolean;
  cosine: number;
  secondCosine: number;
  confidence: number;
  /** For an unknown face: why (below-threshold, ambiguous, no-people). */
  unknownReason: UnknownReason | null;
  /** The closest person even when rejected. */
  closest: string | null;
}

export class Recognizer extends EventEmitter {
  private head: ImprintedHead;
  private names = new Map<string, string>();
  private reloading: Promise<void> | null = null;
  private stale = false;
  private readonly onChange = (change: GalleryChange): void => {
    this.emit('gallery-change', change);
    void this.reload().catch((error) => this.emit('error', error));
  };

  private constructor(readonly gallery: Gallery, readonly embedder: Embedder, private readonly options: ImprintedHeadOptions) {
    super();
    this.head = new ImprintedHead(options);
  }

  static async open(gallery: Gallery, embedder: Embedder, options: ImprintedHeadOptions = {}): Promise<Recognizer> {
    const recognizer = new Recognizer(gallery, embedder, options);
    await recognizer.reload();
    gallery.on('change', recognizer.onChange);
    return recognizer;
  }

  get threshold(): number {
    return this.head.threshold;
  }

  /** People's display names, sorted. */
  people(): string[] {
    return [...this.names.values()].sort((a, b) => a.localeCompare(b));
  }

  /**
   * Rebuilds the head from the gallery (cached embeddings; new crops are
   * embedded). Concurrent calls coalesce: one runs, one more follows if a
   * change arrived meanwhile.
   */
  reload(): Promise<void> {
    if (this.reloading) {
      this.stale = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.stale = false;
        const byPerson = await this.gallery.embeddings(this.embedder.id, (crops) => this.embedder.embed(crops));
        this.head = ImprintedHead.fromEmbeddings(byPerson, this.options);
        this.names = new Map(this.gallery.listPeople().map((p) => [p.id, p.name]));
      } while (this.stale);
    })().finally(() => { this.reloading = null; });
    return this.reloading.then(() => { this.emit('reload', this.people()); });
  }

  identify(embedding: Float32Array): Identification {
    const c = this.head.classify(embedding);
    const nameOf = (id: string | null) => (id === null ? null : this.names.get(id) ?? id);
    return {
      name: nameOf(c.personId) ?? UNKNOWN,
      personId: c.personId,
      known: c.personId !== null,
      cosine: c.cosine,
      secondCosine: c.secondCosine,
      confidence: c.confidence,
      unknownReason: c.unknownReason,
      closest: nameOf(c.bestPersonId),
    };
  }

  close(): void {
    this.gallery.off('change', this.onChange);
  }
}
