/**
 * Face embedders: an aligned crop in, an L2-normalised vector out. The
 * normalisation happens here on the host because the Edge TPU has no L2-norm
 * op, so no compiled embedder includes it. Any model plugs in through
 * `Embedder` with its own input size and pixel normalisation.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { BackendInfo, InferenceRuntime, openRuntime, RuntimeOptions, shippedModels } from '../../../native';
import type { RgbImage } from '../media/image';
import { l2normalize } from '../identify/imprint';

export interface Embedder {
  /** Names the model and preprocessing: the gallery caches embeddings per id. */
  readonly id: string;
  readonly inputSize: number;
  readonly dimension: number;
  readonly backend: BackendInfo;
  /** One normalised embedding per crop, in order. Crops are inputSize x inputSize RGB. */
  embed(crops: RgbImage[]): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

export interface TfliteEmbedderOptions extends RuntimeOptions {
  /** Model path (default: the shipped MobileFaceNet, build/models/mobilefacenet.tflite). An X_edgetpu.tflite beside it is used on a Coral. */
  model?: string;
  /** Pixel value to model input: MobileFaceNet was trained on (x - 127.5) / 128. */
  normalise?: (value: number) => number;
  /**
   * Embed each crop together with its mirror image and add the two (default
   * false). It doubles the cost of every face for a small gain: on the dev
   * set the same top-1 and TPIR at FPIR 1/60 and 3/60 (99.7 %) either way,
   * and more known faces kept only at strict thresholds (97.4 % against
   * 95.9 % at cosine 0.65). Always or never, never mixed: the choice is part of
   * the embedder id, so a gallery caches embeddings per mode and a probe is
   * compared like with like.
   */
  mirror?: boolean;
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

function mirrored(crop: RgbImage): RgbImage {
  const out = new Uint8Array(crop.data.length);
  const row = crop.width * 3;
  for (let y = 0; y < crop.height; y++) {
    for (let x = 0; x < crop.width; x++) {
      const from = y * row + x * 3;
      const to = y * row + (crop.width - 1 - x) * 3;
      out[to] = crop.data[from];
      out[to + 1] = crop.data[from + 1];
      out[to + 2] = crop.data[from + 2];
    }
  }
  return { width: crop.width, height: crop.height, data: out };
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

export class TfliteEmbedder implements Embedder {
  private constructor(
    private readonly runtime: InferenceRuntime,
    readonly id: string,
    readonly inputSize: number,
    readonly dimension: number,
    private readonly batch: number,
    private readonly lookup: Float32Array,
    private readonly mirror: boolean,
  ) {}

  static async open(options: TfliteEmbedderOptions = {}): Promise<TfliteEmbedder> {
    const model = options.model ?? defaultEmbedderModel();
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
    const mirror = options.mirror ?? false;
    const id = `${path.basename(model, '.tflite')}-${await fileDigest(model)}-${mirror ? 'm' : 's'}`;
    return new TfliteEmbedder(runtime, id, width, dimension, await singleFaceBatch(runtime, batch), lookup, mirror);
  }

  get backend(): BackendInfo {
    return this.runtime.backend;
  }

  /** The runtime, for status events ('backend'). */
  get inference(): InferenceRuntime {
    return this.runtime;
  }

  async embed(crops: RgbImage[]): Promise<Float32Array[]> {
    const size = this.inputSize;
    const slot = size * size * 3;
    for (const crop of crops) {
      if (crop.width !== size || crop.height !== size) throw new Error(`embedder needs ${size}x${size} crops, got ${crop.width}x${crop.height}`);
    }
    // One slot per crop, plus one per mirror image; a batch holds `batch`
    // slots, the last one padded with zeros on a fixed-batch model.
    const slots: { crop: RgbImage; owner: number }[] = [];
    crops.forEach((crop, owner) => {
      slots.push({ crop, owner });
      if (this.mirror) slots.push({ crop: mirrored(crop), owner });
    });
    const sums = crops.map(() => new Float32Array(this.dimension));
    for (let start = 0; start < slots.length; start += this.batch) {
      const chunk = slots.slice(start, start + this.batch);
      const input = new Float32Array(slot * this.batch);
      chunk.forEach(({ crop }, s) => {
        const offset = s * slot;
        for (let k = 0; k < slot; k++) input[offset + k] = this.lookup[crop.data[k]];
      });
      const [output] = await this.runtime.invoke([input]);
      chunk.forEach(({ owner }, s) => {
        // Normalise each slot before adding, so the mirror has equal weight.
        const vector = l2normalize(output.subarray(s * this.dimension, (s + 1) * this.dimension));
        for (let k = 0; k < this.dimension; k++) sums[owner][k] += vector[k];
      });
    }
    return sums.map((sum) => l2normalize(sum));
  }

  dispose(): Promise<void> {
    return this.runtime.dispose();
  }
}
