/**
 * Face embedders: an aligned crop in, an L2-normalised vector out. The
 * normalisation happens here on the host because the Edge TPU has no L2-norm
 * op, so no compiled embedder includes it. Any model plugs in through
 * `Embedder` with its own input size and pixel normalisation.
 */
import { createHash } from 'crypto';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import {
  BackendInfo,
  InferenceRuntime,
  ModelPair,
  openRuntime,
  resolveModelPair,
  RuntimeOptions,
  shippedModels,
} from '../../../native';
import { mirrorImage, type RgbImage } from '../media/image';
import { l2normalize } from '../identify/imprint';

export interface Embedder {
  /**
   * Names the model and preprocessing: the gallery caches embeddings per id.
   * It names the model that runs now, so it changes when a pair switches
   * between two different models (the compiled int8 model on the Edge TPU,
   * the float model on the CPU); 'id' events say when.
   */
  readonly id: string;
  readonly inputSize: number;
  readonly dimension: number;
  readonly backend: BackendInfo;
  /** One normalised embedding per crop, in order. Crops are inputSize x inputSize RGB. */
  embed(crops: RgbImage[], options?: EmbedOptions): Promise<Float32Array[]>;
  /** The same, and the id of the model that made all of them (never a mix). */
  embedTagged?(crops: RgbImage[], options?: EmbedOptions): Promise<{ id: string; embeddings: Float32Array[] }>;
  on?(event: 'id', listener: (id: string) => void): unknown;
  off?(event: 'id', listener: (id: string) => void): unknown;
  dispose(): Promise<void>;
}

export interface EmbedOptions {
  /**
   * Embed a crop together with its mirror image and add the two (each
   * normalised first, so both weigh the same): for every crop (true) or per
   * crop. It costs a second inference for each such crop and is worth it
   * where a decision is made (README, "Accuracy": dev-pairs 99.3 -> 99.5 %
   * with face mesh alignment on both sides): the gallery's crops, photos, a
   * face's first frames in a stream. An embedding with and one without the
   * mirror are of the same model and compare as usual (the thresholds at 1 in
   * 60 strangers are the same within 0.01), so the embedder id does not
   * change with it.
   */
  mirror?: boolean | readonly boolean[];
}

/** The embedder's id changed while embeddings were being made for another one. */
export class EmbedderSwitchedError extends Error {
  override readonly name = 'EmbedderSwitchedError';
  readonly code = 'ERR_EMBEDDER_SWITCHED';
  constructor(
    readonly wanted: string,
    readonly got: string,
  ) {
    super(`the embedder switched from ${wanted} to ${got} (Edge TPU and CPU run different models)`);
  }
}

/**
 * An embed function for the gallery's cache of `id`: it refuses (throws
 * EmbedderSwitchedError) rather than store another model's embeddings there.
 */
export function embedFor(
  embedder: Embedder,
  id: string,
): (crops: RgbImage[], options?: EmbedOptions) => Promise<Float32Array[]> {
  return async (crops, options) => {
    if (!embedder.embedTagged) {
      if (embedder.id !== id) throw new EmbedderSwitchedError(id, embedder.id);
      return embedder.embed(crops, options);
    }
    const tagged = await embedder.embedTagged(crops, options);
    if (tagged.id !== id) throw new EmbedderSwitchedError(id, tagged.id);
    return tagged.embeddings;
  };
}

export interface TfliteEmbedderOptions extends RuntimeOptions {
  /**
   * Model path (default: the shipped MobileFaceNet pair, see cpuModel). An X_edgetpu.tflite
   * beside it is used on a Coral; a pair names both sides.
   */
  model?: string | ModelPair;
  /**
   * Without `model`: which MobileFaceNet the CPU runs, float (default: the
   * most accurate) or int8 (the Edge TPU model's own numbers, so a fallback
   * from the Coral keeps the same embeddings). The Edge TPU side is always
   * the compiled int8 model, when one was compiled (edgetpu-compile).
   */
  cpuModel?: 'float' | 'int8';
  /** Pixel value to model input: MobileFaceNet was trained on (x - 127.5) / 128. */
  normalise?: (value: number) => number;
}

/** The default pair: the CPU model chosen by `cpu`, the compiled int8 model for the Edge TPU when there is one. */
export function defaultEmbedderPair(cpu: 'float' | 'int8' = 'float'): ModelPair {
  const compiled = shippedModels.mobilefacenetInt8EdgeTpu;
  return {
    cpu: cpu === 'int8' ? shippedModels.mobilefacenetInt8 : defaultEmbedderModel(),
    edgetpu: fs.existsSync(compiled) ? compiled : undefined,
  };
}

/**
 * The file whose numbers a backend reproduces: the CPU model itself, or for
 * a compiled model the int8 model it was compiled from (X.tflite beside
 * X_edgetpu.tflite), whose embeddings the Edge TPU gives (the same int8
 * arithmetic, to within rounding).
 */
export function embeddingSource(modelFile: string, kind: BackendInfo['kind']): string {
  if (kind !== 'edgetpu' || !modelFile.endsWith('_edgetpu.tflite')) return modelFile;
  const twin = modelFile.slice(0, -'_edgetpu.tflite'.length) + '.tflite';
  return fs.existsSync(twin) ? twin : modelFile;
}

/** The float MobileFaceNet the package ships (build/models/mobilefacenet.tflite). */
export function defaultEmbedderModel(): string {
  return shippedModels.mobilefacenet;
}

const digests = new Map<string, Promise<string>>();

/**
 * A short hash of the model file, for the embedder id. Streamed in chunks and
 * cached per file version: hashing the whole file (5 MB) at once would hold
 * Node-RED's event loop at every deploy.
 */
async function fileDigest(file: string): Promise<string> {
  const stat = await fs.promises.stat(file);
  const key = `${file}:${stat.size}:${stat.mtimeMs}`;
  let digest = digests.get(key);
  if (!digest) {
    digest = new Promise<string>((resolve, reject) => {
      const hash = createHash('sha256');
      fs.createReadStream(file, { highWaterMark: 256 * 1024 })
        .on('data', (chunk) => hash.update(chunk))
        .on('error', reject)
        .on('end', () => resolve(hash.digest('hex').slice(0, 12)));
    });
    digests.set(key, digest);
  }
  return digest;
}

/**
 * The batch to run: 1 when the model can take it. On the CPU a batch of N
 * costs about N single inferences (bench:runtime), so a fixed batch of 2
 * only wastes its empty slot on a lone face.
 * Edge TPU models have fixed shapes and keep theirs (empty slots padded).
 */
async function singleFaceBatch(runtime: InferenceRuntime, batch: number): Promise<number> {
  if (batch === 1) return 1;
  const [, height, width, channels] = runtime.inputs[0].shape;
  try {
    await runtime.resizeInput(0, [1, height, width, channels]);
    return 1;
  } catch {
    return batch;
  }
}

export class TfliteEmbedder extends EventEmitter implements Embedder {
  private current: string;
  private readonly onBackend = (backend: BackendInfo): void => {
    let id: string;
    try {
      id = this.idOf(backend);
    } catch {
      return; // a side without a model file (a compiled model with no CPU twin): nothing answers there
    }
    if (id === this.current) return;
    this.current = id;
    this.emit('id', id);
  };

  private constructor(
    private readonly runtime: InferenceRuntime,
    /** Embedder id per model file the runtime may run (see embeddingSource). */
    private readonly ids: Map<string, string>,
    readonly inputSize: number,
    readonly dimension: number,
    private readonly batch: number,
    private readonly lookup: Float32Array,
  ) {
    super();
    this.current = this.idOf(runtime.backend);
    runtime.on('backend', this.onBackend);
  }

  static async open(options: TfliteEmbedderOptions = {}): Promise<TfliteEmbedder> {
    const model = options.model ?? defaultEmbedderPair(options.cpuModel);
    const runtime = await openRuntime(model, options);
    const [input] = runtime.inputs;
    const [batch, height, width, channels] = input.shape;
    if (input.shape.length !== 4 || height !== width || channels !== 3) {
      await runtime.dispose();
      throw new Error(`embedder model input must be [batch, size, size, 3], got [${input.shape.join(',')}]`);
    }
    const dimension = runtime.outputs[0].shape[runtime.outputs[0].shape.length - 1];
    const normalise = options.normalise ?? ((v: number) => (v - 127.5) / 128);
    // 256 entries: per-pixel normalisation becomes a table lookup.
    const lookup = Float32Array.from({ length: 256 }, (_, v) => normalise(v));
    // Ids for both sides of the pair, so a switch needs no hashing then.
    const pair = resolveModelPair(model);
    const sources = new Set<string>();
    if (pair.cpu) sources.add(pair.cpu);
    if (pair.edgetpu) sources.add(embeddingSource(pair.edgetpu, 'edgetpu'));
    const ids = new Map<string, string>();
    try {
      // "-s": ids have always ended so (it once told a mirror-everything
      // embedder, "-m", apart); kept so galleries' caches keep their names.
      for (const file of sources) ids.set(file, `${path.basename(file, '.tflite')}-${await fileDigest(file)}-s`);
    } catch (error) {
      await runtime.dispose();
      throw error;
    }
    return new TfliteEmbedder(runtime, ids, width, dimension, await singleFaceBatch(runtime, batch), lookup);
  }

  /** The embedder id of whatever `backend` runs. */
  idOf(backend: BackendInfo): string {
    const source = embeddingSource(backend.model, backend.kind);
    const id = this.ids.get(source);
    if (!id) throw new Error(`no embedder id for ${source}: not a model of this embedder`);
    return id;
  }

  get id(): string {
    return this.current;
  }

  get backend(): BackendInfo {
    return this.runtime.backend;
  }

  /** The runtime, for status events ('backend'). */
  get inference(): InferenceRuntime {
    return this.runtime;
  }

  async embed(crops: RgbImage[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    return (await this.embedTagged(crops, options)).embeddings;
  }

  /**
   * Embeddings and the id of the model that made them. A switch between the
   * sides of a pair in the middle of a batch would mix two models: the batch
   * is then embedded again on the side now running.
   */
  async embedTagged(
    crops: RgbImage[],
    options: EmbedOptions = {},
  ): Promise<{ id: string; embeddings: Float32Array[] }> {
    for (let attempt = 0; ; attempt++) {
      const { ids, embeddings } = await this.embedOnce(crops, options.mirror ?? false);
      const [first = this.current] = ids;
      if (ids.every((id) => id === first)) return { id: first, embeddings };
      if (attempt >= 2)
        throw new Error('the embedder kept switching between its Edge TPU and CPU models during one batch');
    }
  }

  private async embedOnce(
    crops: RgbImage[],
    mirror: boolean | readonly boolean[],
  ): Promise<{ ids: string[]; embeddings: Float32Array[] }> {
    const size = this.inputSize;
    const slot = size * size * 3;
    for (const crop of crops) {
      if (crop.width !== size || crop.height !== size)
        throw new Error(`embedder needs ${size}x${size} crops, got ${crop.width}x${crop.height}`);
    }
    // One slot per crop, plus one per mirror image; a batch holds `batch`
    // slots, the last one padded with zeros on a fixed-batch model.
    const slots: { crop: RgbImage; owner: number }[] = [];
    crops.forEach((crop, owner) => {
      slots.push({ crop, owner });
      if (mirror === true || (mirror !== false && mirror[owner])) slots.push({ crop: mirrorImage(crop), owner });
    });
    const sums = crops.map(() => new Float32Array(this.dimension));
    const ids: string[] = [];
    for (let start = 0; start < slots.length; start += this.batch) {
      const chunk = slots.slice(start, start + this.batch);
      const input = new Float32Array(slot * this.batch);
      chunk.forEach(({ crop }, s) => {
        const offset = s * slot;
        for (let k = 0; k < slot; k++) input[offset + k] = this.lookup[crop.data[k]];
      });
      const {
        outputs: [output],
        backend,
      } = await this.runtime.invokeWithBackend([input]);
      ids.push(this.idOf(backend));
      chunk.forEach(({ owner }, s) => {
        // Normalise each slot before adding, so the mirror has equal weight.
        const vector = l2normalize(output.subarray(s * this.dimension, (s + 1) * this.dimension));
        for (let k = 0; k < this.dimension; k++) sums[owner][k] += vector[k];
      });
    }
    return { ids, embeddings: sums.map((sum) => l2normalize(sum)) };
  }

  dispose(): Promise<void> {
    this.runtime.off('backend', this.onBackend);
    return this.runtime.dispose();
  }
}
