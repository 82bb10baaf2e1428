/**
 * The gallery's people as an imprinted head: names a face embedding or says
 * "unknown". It rebuilds itself when the gallery changes, so enrolments and
 * forgets take effect without a restart.
 */
import { EventEmitter } from 'events';
import { type Embedder, embedFor, EmbedderSwitchedError } from '../embed/embedder';
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

/** An embedding from a model the gallery has no head for (another embedder, or one not yet loaded). */
export class EmbedderMismatchError extends Error {
  override readonly name = 'EmbedderMismatchError';
  readonly code = 'ERR_EMBEDDER_MISMATCH';
  constructor(
    readonly got: string,
    readonly want: string,
  ) {
    super(`the embedding comes from ${got}; this gallery is loaded for ${want}`);
  }
}

interface LoadedHead {
  head: ImprintedHead;
  negatives: Map<string, Float32Array[]>;
}

/**
 * The head is per embedder id. An embedder whose Edge TPU and CPU sides run
 * different models (int8 and float MobileFaceNet) changes id when it falls
 * back and again when it recovers: the recognizer then builds the head for
 * the new id (from the gallery's per-id cache, embedding only what is
 * missing, with the model that made the probe) and keeps the other, so that
 * every probe is compared with enrolments made by the same model and
 * switching back costs nothing. A gallery change rebuilds from scratch.
 */
export class Recognizer extends EventEmitter {
  /** Per embedder id: the head and the "not <name>" anchors, both made by that id's model. */
  private heads = new Map<string, LoadedHead>();
  private names = new Map<string, string>();
  private ignored: ReadonlySet<string> = new Set();
  private reloading: Promise<void> | null = null;
  private stale = false;
  private readonly onChange = (change: GalleryChange): void => {
    this.emit('gallery-change', change);
    void this.reload().catch((error) => this.emit('error', error));
  };
  private readonly onEmbedderId = (): void => {
    void this.load(false).catch((error) => this.emit('error', error));
  };

  private constructor(
    readonly gallery: Gallery,
    readonly embedder: Embedder,
    private options: ImprintedHeadOptions,
  ) {
    super();
  }

  static async open(gallery: Gallery, embedder: Embedder, options: ImprintedHeadOptions = {}): Promise<Recognizer> {
    const recognizer = new Recognizer(gallery, embedder, options);
    await recognizer.reload();
    gallery.on('change', recognizer.onChange);
    embedder.on?.('id', recognizer.onEmbedderId);
    return recognizer;
  }

  private get head(): ImprintedHead {
    return (this.heads.get(this.embedder.id) ?? [...this.heads.values()][0])?.head ?? new ImprintedHead(this.options);
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

  /** Embedder ids with a loaded head. */
  loadedIds(): string[] {
    return [...this.heads.keys()];
  }

  /**
   * Rebuilds the head from the gallery (cached embeddings; new crops are
   * embedded). Concurrent calls coalesce: one runs, one more follows if a
   * change arrived meanwhile.
   */
  reload(): Promise<void> {
    return this.load(true);
  }

  /** `fresh`: the gallery changed, every head is out of date; otherwise only the current id's head may be missing. */
  private load(fresh: boolean): Promise<void> {
    if (fresh) this.stale = true;
    if (this.reloading) {
      if (!fresh) this.stale ||= !this.heads.has(this.embedder.id);
      return this.reloading;
    }
    if (!this.stale && this.heads.has(this.embedder.id)) return Promise.resolve();
    this.reloading = (async () => {
      let rounds = 0;
      do {
        const clear = this.stale;
        this.stale = false;
        const id = this.embedder.id;
        const embed = embedFor(this.embedder, id);
        let byPerson;
        let negatives;
        try {
          byPerson = await this.gallery.embeddings(id, embed);
          // "Not <name>" corrections, kept by the gallery beside each person's crops.
          negatives = await this.gallery.negativeEmbeddings(id, embed);
        } catch (error) {
          // The embedder switched sides under us: start again with its new id.
          if (error instanceof EmbedderSwitchedError && ++rounds < 5) {
            this.stale ||= clear;
            continue;
          }
          throw error;
        }
        if (clear) this.heads.clear();
        this.heads.set(id, {
          head: ImprintedHead.fromEmbeddings(byPerson, this.options),
          negatives: new Map([...negatives].map(([person, vectors]) => [person, vectors.map((v) => l2normalize(v))])),
        });
        this.ignored = new Set(
          this.gallery
            .listPeople()
            .filter((p) => p.ignored)
            .map((p) => p.id),
        );
        this.names = new Map(this.gallery.listPeople().map((p) => [p.id, p.name]));
      } while (this.stale || !this.heads.has(this.embedder.id));
    })().finally(() => {
      this.reloading = null;
    });
    return this.reloading.then(() => {
      this.emit('reload', this.people());
    });
  }

  /**
   * True once a head for `embedderId` is loaded: waits for a reload under
   * way, and loads the head when `embedderId` is what the embedder runs now.
   * False for an id this gallery cannot serve (a foreign embedder, or a side
   * of the pair that is no longer running and was never loaded).
   */
  async ready(embedderId: string): Promise<boolean> {
    if (this.reloading) await this.reloading.catch(() => undefined);
    if (!this.heads.has(embedderId) && embedderId === this.embedder.id) await this.load(false);
    return this.heads.has(embedderId);
  }

  /**
   * Names a face. `embedderId` says which model made the embedding (default:
   * the one running now); an id without a loaded head throws
   * EmbedderMismatchError (call ready(id) first).
   */
  identify(embedding: Float32Array, embedderId?: string): Identification {
    const loaded =
      embedderId === undefined
        ? (this.heads.get(this.embedder.id) ?? [...this.heads.values()][0])
        : this.heads.get(embedderId);
    if (!loaded) {
      if (embedderId !== undefined) throw new EmbedderMismatchError(embedderId, this.embedder.id);
      throw new Error('the recognizer has no head loaded (open() loads one)');
    }
    const c = loaded.head.classify(embedding);
    const nameOf = (id: string | null) => (id === null ? null : (this.names.get(id) ?? id));
    let personId = c.personId;
    let unknownReason: RecognizerUnknownReason | null = c.unknownReason;
    if (personId !== null && this.vetoed(loaded, personId, embedding, c.cosine)) {
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
  private vetoed(loaded: LoadedHead, personId: string, embedding: Float32Array, cosineToPerson: number): boolean {
    const anchors = loaded.negatives.get(personId);
    if (!anchors || anchors.length === 0) return false;
    const probe = l2normalize(embedding);
    for (const anchor of anchors) {
      if (anchor.length !== probe.length) continue;
      let cosine = 0;
      for (let i = 0; i < probe.length; i++) cosine += probe[i] * anchor[i];
      if (cosine > cosineToPerson && cosine >= loaded.head.threshold) return true;
    }
    return false;
  }

  close(): void {
    this.gallery.off('change', this.onChange);
    this.embedder.off?.('id', this.onEmbedderId);
  }
}
