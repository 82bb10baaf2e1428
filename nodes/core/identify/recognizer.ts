/**
 * The gallery's people as an imprinted head: names a face embedding or says
 * "unknown". It rebuilds itself when the gallery changes, so enrolments and
 * forgets take effect without a restart.
 */
import { EventEmitter } from 'events';
import type { Embedder } from '../embed/embedder';
import type { Gallery, GalleryChange } from '../gallery/gallery';
import { ImprintedHead, ImprintedHeadOptions, l2normalize, UNKNOWN, UnknownReason } from './imprint';

/** 'vetoed': the head accepted a person, but the face is closer to one of their "not <name>" examples. */
export type RecognizerUnknownReason = UnknownReason | 'vetoed';

export interface Identification {
  /** The person's display name, or "unknown". */
  name: string;
  personId: string | null;
  known: boolean;
  cosine: number;
  secondCosine: number;
  confidence: number;
  /** For an unknown face: why (below-threshold, ambiguous, no-people, vetoed). */
  unknownReason: RecognizerUnknownReason | null;
  /** The closest person even when rejected. */
  closest: string | null;
  /** A known person marked ignored (e.g. the postman): recognised, but reported as `ignored`. */
  ignored: boolean;
}

export class Recognizer extends EventEmitter {
  private head: ImprintedHead;
  private names = new Map<string, string>();
  private negatives = new Map<string, Float32Array[]>();
  private ignored: ReadonlySet<string> = new Set();
  private reloading: Promise<void> | null = null;
  private stale = false;
  private readonly onChange = (change: GalleryChange): void => {
    this.emit('gallery-change', change);
    void this.reload().catch((error) => this.emit('error', error));
  };

  private constructor(readonly gallery: Gallery, readonly embedder: Embedder, private options: ImprintedHeadOptions) {
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

  get margin(): number {
    return this.head.margin;
  }

  /** New threshold/margin for every face from now on (the face library's "apply"); no restart. */
  async setOptions(options: Pick<ImprintedHeadOptions, 'threshold' | 'margin'>): Promise<void> {
    this.options = { ...this.options, ...options };
    await this.reload();
  }

  /** Whether a display name belongs to a person marked ignored. */
  isIgnoredName(name: string): boolean {
    for (const [id, personName] of this.names) if (personName === name) return this.ignored.has(id);
    return false;
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
        // "Not <name>" corrections, kept by the gallery beside each person's crops.
        const negatives = await this.gallery.negativeEmbeddings(this.embedder.id, (crops) => this.embedder.embed(crops));
        this.head = ImprintedHead.fromEmbeddings(byPerson, this.options);
        this.negatives = new Map([...negatives].map(([id, vectors]) => [id, vectors.map((v) => l2normalize(v))]));
        this.ignored = new Set(this.gallery.listPeople().filter((p) => p.ignored).map((p) => p.id));
        this.names = new Map(this.gallery.listPeople().map((p) => [p.id, p.name]));
      } while (this.stale);
    })().finally(() => { this.reloading = null; });
    return this.reloading.then(() => { this.emit('reload', this.people()); });
  }

  identify(embedding: Float32Array): Identification {
    const c = this.head.classify(embedding);
    const nameOf = (id: string | null) => (id === null ? null : this.names.get(id) ?? id);
    let personId = c.personId;
    let unknownReason: RecognizerUnknownReason | null = c.unknownReason;
    if (personId !== null && this.vetoed(personId, embedding, c.cosine)) {
      personId = null;
      unknownReason = 'vetoed';
    }
    return {
      name: nameOf(personId) ?? UNKNOWN,
      personId,
      known: personId !== null,
      cosine: c.cosine,
      secondCosine: c.secondCosine,
      confidence: c.confidence,
      unknownReason,
      closest: nameOf(c.bestPersonId),
      ignored: personId !== null && this.ignored.has(personId),
    };
  }

  /**
   * The negative-anchor veto, a step after the head's decision: a face accepted as P is rejected
   * when it is closer to one of P's "not P" examples than to P's weight, and that example is itself
   * above the threshold (it would have been accepted as that face). A stranger wrongly accepted
   * once scores just above the threshold against P but much higher against their own earlier crop,
   * so they are vetoed; P's own photos sit far above the threshold against P's weight and far
   * below it against someone else's crop, so they are not.
   */
  private vetoed(personId: string, embedding: Float32Array, cosineToPerson: number): boolean {
    const anchors = this.negatives.get(personId);
    if (!anchors || anchors.length === 0) return false;
    const probe = l2normalize(embedding);
    for (const anchor of anchors) {
      if (anchor.length !== probe.length) continue;
      let cosine = 0;
      for (let i = 0; i < probe.length; i++) cosine += probe[i] * anchor[i];
      if (cosine > cosineToPerson && cosine >= this.head.threshold) return true;
    }
    return false;
  }

  close(): void {
    this.gallery.off('change', this.onChange);
  }
}
