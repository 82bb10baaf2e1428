/**
 * The comparison peer: @vladmandic/face-api 1.7 (SSD MobileNet v1 detector,
 * 68-point landmarks, 128-d FaceRecognitionNet descriptor) on the tfjs WASM
 * backend in Node. Benchmarks and `coral-face eval --peer` run it beside our
 * pipeline on the same decoded pixels.
 *
 * face-api is only a devDependency, so nothing here is imported at the top:
 * openFaceApiPeer() resolves and loads it on demand and fails with
 * ERR_PEER_MISSING when it is absent.
 *
 * How face-api's WASM build is loaded (the non-obvious part):
 * - dist/face-api.node-wasm.js is CommonJS and does
 *   `require("@tensorflow/tfjs")` + `require("@tensorflow/tfjs-backend-wasm")`.
 *   The umbrella @tensorflow/tfjs is not installed (and tfjs-node cannot be),
 *   but face-api only uses what tfjs-core exports (ops, io.loadWeights,
 *   image.resizeBilinear, browser.*), so we compile the bundle with
 *   vm.compileFunction and hand it a require() that answers
 *   "@tensorflow/tfjs" with tfjs-core and "@tensorflow/tfjs-backend-wasm" with
 *   the backend instance bound to that same tfjs-core. No global resolver hook.
 * - The umbrella package also installs the *chained* tensor methods
 *   (t.as3D(), t.sub(), ...) that face-api calls; tfjs-core ships them only as
 *   ES modules, which CommonJS cannot load. installChainedOps() adds the same
 *   one-line methods (each forwards to the tfjs-core op of that name).
 * - The WASM binaries are read from node_modules via setWasmPaths(<dir>/) with
 *   a file-system prefix: Emscripten in Node reads that path with fs, so nothing
 *   is fetched. In Node tfjs reports no WASM thread support, so it loads the
 *   single-threaded SIMD binary: the peer runs on 1 thread (runtime.threads).
 * - Pixels go in as a [h, w, 3] int32 tensor; face-api accepts tf.Tensor3D
 *   inputs, so no canvas is needed.
 */
import * as path from 'path';
import * as fs from 'fs';
import * as vm from 'vm';
import { createRequire } from 'module';
import type { Box, RgbImage } from '../../../nodes/core/media/image';

export interface PeerFace {
  /** In pixels of the unpadded input image, clipped to it. */
  box: Box;
  /** SSD detection score. */
  score: number;
  /** 128-d, L2-normalised here (face-api's own descriptors are not unit length). */
  descriptor: Float32Array;
}

export interface FaceApiPeerRuntime {
  faceApiVersion: string;
  tfjsVersion: string;
  backend: string;
  /** Threads XNNPACK uses inside the WASM module (1 in Node). */
  threads: number;
  simd: boolean;
}

export interface FaceApiPeer {
  /**
   * Detect + landmarks + descriptor for every face; `padding` px of black border
   * added first (the protocol pads by 125 px so its detector finds tightly framed
   * LFW faces), boxes mapped back to the unpadded image.
   */
  describe(image: RgbImage, options?: { padding?: number }): Promise<PeerFace[]>;
  /**
   * Timings of the last describe call in ms: pad (building the bordered copy),
   * tensor (upload to the backend), detect (SSD incl. its resize to 512x512),
   * landmarks (crop + 68-point net, all faces), descriptor (aligned crop +
   * recognition net, all faces), total = detect + landmarks + descriptor.
   */
  lastTimings(): Record<string, number>;
  readonly runtime: FaceApiPeerRuntime;
  dispose(): Promise<void>;
}

export type PeerMissingError = Error & { code: 'ERR_PEER_MISSING' };

// ---------------------------------------------------------------------------
// The slices of tfjs-core and face-api this file touches. Typed locally so
// that compiling the project never depends on the optional packages' typings.

interface TfTensor {
  readonly shape: number[];
  readonly size: number;
  dispose(): void;
  throwIfDisposed(): void;
}

type TensorMethod = (this: TfTensor, ...args: unknown[]) => unknown;

interface TfCore {
  Tensor: { prototype: Record<string, unknown> } & (abstract new (...args: never[]) => TfTensor);
  version_core: string;
  image: Record<string, unknown>;
  reshape(x: TfTensor, shape: number[]): TfTensor;
  cast(x: TfTensor, dtype: string): TfTensor;
  concat(xs: TfTensor[], axis?: number): TfTensor;
  stack(xs: TfTensor[], axis?: number): TfTensor;
  where(condition: unknown, a: TfTensor, b: unknown): TfTensor;
  tensor3d(values: Uint8Array, shape: [number, number, number], dtype: 'int32'): TfTensor;
  setBackend(name: string): Promise<boolean>;
  getBackend(): string;
  ready(): Promise<void>;
  env(): { getAsync(flag: string): Promise<unknown> };
  memory(): { numTensors: number; numBytes: number };
}

interface TfWasm {
  setWasmPaths(prefix: string): void;
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}

interface FaBox {
  x: number;
  y: number;
  width: number;
  height: number;
}
interface FaDetection {
  score: number;
  box: FaBox;
}
interface FaDetected {
  detection: FaDetection;
}
interface FaDescribed extends FaDetected {
  descriptor: Float32Array;
}

interface FaNet {
  isLoaded: boolean;
  loadFromDisk(dir: string): Promise<void>;
  dispose(): void;
}

/** A task is awaitable; its constructor also accepts a plain Promise as parent. */
type FaTaskClass<In, Out> = new (parent: Promise<In>, input: TfTensor, ...rest: boolean[]) => PromiseLike<Out>;

interface FaceApi {
  version: string;
  nets: { ssdMobilenetv1: FaNet; faceLandmark68Net: FaNet; faceRecognitionNet: FaNet };
  SsdMobilenetv1Options: new (options: { minConfidence?: number; maxResults?: number }) => unknown;
  detectAllFaces(input: TfTensor, options: unknown): PromiseLike<FaDetection[]>;
  extendWithFaceDetection(source: object, detection: FaDetection): FaDetected;
  DetectAllFaceLandmarksTask: FaTaskClass<FaDetected[], FaDetected[]>;
  ComputeAllFaceDescriptorsTask: FaTaskClass<FaDetected[], FaDescribed[]>;
}

// ---------------------------------------------------------------------------
// Loading

interface PeerPaths {
  faceApiScript: string;
  faceApiModels: string;
  faceApiVersion: string;
  wasmPackage: string;
  wasmDir: string;
}

function peerMissing(cause: unknown): PeerMissingError {
  const detail = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  const err = new Error(
    'The face-api comparison peer is not installed: install @vladmandic/face-api and ' +
      `@tensorflow/tfjs-backend-wasm to compare (${detail})`,
  ) as PeerMissingError;
  err.code = 'ERR_PEER_MISSING';
  return err;
}

/**
 * Finds the peer's files as seen from `from` (a file path; this module by
 * default). Throws ERR_PEER_MISSING when a package or its model files are
 * absent. Exported so the missing-package path can be tested from a directory
 * without node_modules.
 */
export function resolvePeerModules(from: string = __filename): PeerPaths {
  try {
    const req = createRequire(from);
    const faceApiPackage = req.resolve('@vladmandic/face-api/package.json');
    const faceApiDir = path.dirname(faceApiPackage);
    const wasmPackage = req.resolve('@tensorflow/tfjs-backend-wasm/package.json');
    // tfjs-core is the backend's peer dependency: resolve it from there so the
    // ops we hand face-api and the kernels the backend registers share one engine.
    createRequire(wasmPackage).resolve('@tensorflow/tfjs-core');
    const paths: PeerPaths = {
      faceApiScript: path.join(faceApiDir, 'dist', 'face-api.node-wasm.js'),
      faceApiModels: path.join(faceApiDir, 'model'),
      faceApiVersion: (JSON.parse(fs.readFileSync(faceApiPackage, 'utf8')) as { version: string }).version,
      wasmPackage,
      wasmDir: path.join(path.dirname(wasmPackage), 'dist'),
    };
    for (const file of [
      paths.faceApiScript,
      path.join(paths.faceApiModels, 'ssd_mobilenetv1_model-weights_manifest.json'),
      path.join(paths.wasmDir, 'tfjs-backend-wasm-simd.wasm'),
    ]) {
      if (!fs.existsSync(file)) throw new Error(`missing ${file}`);
    }
    return paths;
  } catch (err) {
    throw peerMissing(err);
  }
}

/**
 * The chained tensor methods from tfjs-core's src/public/chained_ops (4.22):
 * each is `function (...args) { return op(this, ...args) }` for the op of the
 * same name. The irregular ones are added separately in installChainedOps().
 */
const FORWARDED_CHAINED_OPS = (
  'abs acos acosh add all any argMax argMin asin asinh atan atan2 atanh avgPool batchNorm batchToSpaceND ' +
  'broadcastTo ceil clipByValue conv1d conv2d conv2dTranspose cos cosh cumprod cumsum depthToSpace ' +
  'depthwiseConv2d dilation2d div divNoNan dot elu equal erf euclideanNorm exp expandDims expm1 fft floor ' +
  'floorDiv gather greater greaterEqual ifft irfft isFinite isInf isNaN leakyRelu less lessEqual ' +
  'localResponseNormalization log log1p logSigmoid logSoftmax logSumExp logicalAnd logicalNot logicalOr ' +
  'logicalXor matMul max maxPool maximum mean min minimum mirrorPad mod mul neg norm notEqual oneHot ' +
  'onesLike pad pool pow prelu prod reciprocal relu relu6 reshape rfft round rsqrt selu separableConv2d ' +
  'sigmoid sign sin sinh slice softmax softplus spaceToBatchND split sqrt square squaredDifference squeeze ' +
  'step stridedSlice sub sum tan tanh tile topk transpose unique unsortedSegmentSum unstack zerosLike'
).split(' ');

function installChainedOps(tf: TfCore): void {
  const proto = tf.Tensor.prototype;
  const ops = tf as unknown as Record<string, unknown>;
  // Never replace a method the Tensor class (or a real @tensorflow/tfjs loaded
  // elsewhere in the process) already has: same semantics, theirs wins.
  const define = (name: string, method: TensorMethod): void => {
    if (!(name in proto)) proto[name] = method;
  };
  const forward = (op: unknown): TensorMethod | undefined =>
    typeof op === 'function'
      ? function (this: TfTensor, ...args: unknown[]) {
          this.throwIfDisposed();
          return (op as (...a: unknown[]) => unknown)(this, ...args);
        }
      : undefined;
  for (const name of FORWARDED_CHAINED_OPS) {
    const method = forward(ops[name]);
    if (method) define(name, method);
  }
  for (const name of ['resizeBilinear', 'resizeNearestNeighbor']) {
    const method = forward(tf.image[name]);
    if (method) define(name, method);
  }
  const reshapeTo = (shape: (t: TfTensor, args: number[]) => number[]): TensorMethod =>
    function (this: TfTensor, ...args: unknown[]) {
      this.throwIfDisposed();
      return tf.reshape(this, shape(this, args as number[]));
    };
  define(
    'as1D',
    reshapeTo((t) => [t.size]),
  );
  define(
    'flatten',
    reshapeTo((t) => [t.size]),
  );
  define(
    'asScalar',
    reshapeTo(() => []),
  );
  for (const name of ['as2D', 'as3D', 'as4D', 'as5D'])
    define(
      name,
      reshapeTo((_t, dims) => dims),
    );
  define('reshapeAs', function (this: TfTensor, other: unknown) {
    return tf.reshape(this, (other as TfTensor).shape);
  });
  define('asType', function (this: TfTensor, dtype: unknown) {
    return tf.cast(this, dtype as string);
  });
  define('toFloat', function (this: TfTensor) {
    return tf.cast(this, 'float32');
  });
  define('toInt', function (this: TfTensor) {
    return tf.cast(this, 'int32');
  });
  define('toBool', function (this: TfTensor) {
    return tf.cast(this, 'bool');
  });
  const withThis = (self: TfTensor, x: unknown): TfTensor[] => [
    self,
    ...(Array.isArray(x) ? (x as TfTensor[]) : [x as TfTensor]),
  ];
  define('concat', function (this: TfTensor, x: unknown, axis: unknown) {
    return tf.concat(withThis(this, x), axis as number | undefined);
  });
  define('stack', function (this: TfTensor, x: unknown, axis: unknown) {
    return tf.stack(withThis(this, x), axis as number | undefined);
  });
  define('where', function (this: TfTensor, condition: unknown, x: unknown) {
    return tf.where(condition, this, x);
  });
}

interface Runtime {
  faceapi: FaceApi;
  tf: TfCore;
  paths: PeerPaths;
  info: FaceApiPeerRuntime;
}

/** tfjs and face-api keep process-wide state (engine, backend, nets): load once. */
let runtimePromise: Promise<Runtime> | undefined;
/** Open peers; the nets' weights are freed when the last one is disposed. */
let openPeers = 0;
/** describe() calls run one at a time (see describe). */
let queue: Promise<unknown> = Promise.resolve();

async function loadRuntime(): Promise<Runtime> {
  const paths = resolvePeerModules();
  const wasmRequire = createRequire(paths.wasmPackage);
  const tf = wasmRequire('@tensorflow/tfjs-core') as TfCore;
  const wasm = wasmRequire('@tensorflow/tfjs-backend-wasm') as TfWasm;
  installChainedOps(tf);

  const faceApiRequire = createRequire(paths.faceApiScript);
  const moduleRequire = (id: string): unknown => {
    if (id === '@tensorflow/tfjs') return tf;
    if (id === '@tensorflow/tfjs-backend-wasm') return wasm;
    return faceApiRequire(id);
  };
  const source = fs.readFileSync(paths.faceApiScript, 'utf8');
  const wrapper = vm.compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], {
    filename: paths.faceApiScript,
  });
  const mod: { exports: object } = { exports: {} };
  wrapper.call(mod.exports, mod.exports, moduleRequire, mod, paths.faceApiScript, path.dirname(paths.faceApiScript));
  const faceapi = mod.exports as FaceApi;

  // Both must precede the backend's initialisation. One thread: XNNPACK's pool
  // needs WASM threads, which tfjs never enables in Node; say so explicitly.
  wasm.setWasmPaths(paths.wasmDir + path.sep);
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('face-api peer: the tfjs wasm backend failed to initialise');
  await tf.ready();

  return {
    faceapi,
    tf,
    paths,
    info: {
      faceApiVersion: paths.faceApiVersion,
      tfjsVersion: tf.version_core,
      backend: tf.getBackend(),
      threads: wasm.getThreadsCount(),
      simd: (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true,
    },
  };
}

async function loadNets(rt: Runtime): Promise<void> {
  const { nets } = rt.faceapi;
  for (const net of [nets.ssdMobilenetv1, nets.faceLandmark68Net, nets.faceRecognitionNet]) {
    if (!net.isLoaded) await net.loadFromDisk(rt.paths.faceApiModels);
  }
}

// ---------------------------------------------------------------------------
// Pixels

/** A copy of `image` with `padding` black pixels on every side. */
export function padRgb(image: RgbImage, padding: number): RgbImage {
  const width = image.width + 2 * padding;
  const height = image.height + 2 * padding;
  const data = new Uint8Array(width * height * 3);
  const rowBytes = image.width * 3;
  for (let y = 0; y < image.height; y++) {
    const src = y * rowBytes;
    data.set(image.data.subarray(src, src + rowBytes), ((y + padding) * width + padding) * 3);
  }
  return { width, height, data };
}

function l2Normalised(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  const out = new Float32Array(v.length);
  const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  for (let i = 0; i < v.length; i++) out[i] = v[i] * scale;
  return out;
}

/** A padded-image box moved back by `padding` and clipped to the original image. */
function unpadBox(b: FaBox, padding: number, width: number, height: number): Box {
  const x0 = Math.min(Math.max(b.x - padding, 0), width);
  const y0 = Math.min(Math.max(b.y - padding, 0), height);
  const x1 = Math.min(Math.max(b.x + b.width - padding, 0), width);
  const y1 = Math.min(Math.max(b.y + b.height - padding, 0), height);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** The face with the largest box area, or undefined for none. */
export function largestFace<T extends { box: Box }>(faces: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const face of faces) {
    if (!best || face.box.width * face.box.height > best.box.width * best.box.height) best = face;
  }
  return best;
}

/** Cosine of two L2-normalised descriptors (their dot product). */
export function descriptorCosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
}

// ---------------------------------------------------------------------------

export async function openFaceApiPeer(options: { minConfidence?: number } = {}): Promise<FaceApiPeer> {
  // face-api's own default; the peer protocol keeps it.
  const minConfidence = options.minConfidence ?? 0.5;
  if (!runtimePromise) {
    runtimePromise = loadRuntime();
    // A failed load (e.g. ERR_PEER_MISSING) must not stick: a later install
    // or a retry gets a fresh attempt.
    runtimePromise.catch(() => {
      runtimePromise = undefined;
    });
  }
  const rt = await runtimePromise;
  openPeers++;
  try {
    await loadNets(rt);
  } catch (err) {
    openPeers--;
    throw err;
  }
  const { faceapi, tf } = rt;
  const detectorOptions = new faceapi.SsdMobilenetv1Options({ minConfidence });
  let timings: Record<string, number> = {};
  let disposed = false;

  const run = async (image: RgbImage, padding: number): Promise<PeerFace[]> => {
    const t0 = performance.now();
    const input = padding > 0 ? padRgb(image, padding) : image;
    const t1 = performance.now();
    const tensor = tf.tensor3d(input.data, [input.height, input.width, 3], 'int32');
    try {
      const t2 = performance.now();
      // The same three stages .withFaceLandmarks().withFaceDescriptors() chains,
      // but awaited one by one (the task classes take a Promise as parent) so
      // each stage can be timed.
      const detections = await faceapi.detectAllFaces(tensor, detectorOptions);
      const t3 = performance.now();
      const withLandmarks = await new faceapi.DetectAllFaceLandmarksTask(
        Promise.resolve(detections.map((d) => faceapi.extendWithFaceDetection({}, d))),
        tensor,
        false,
      );
      const t4 = performance.now();
      const described = await new faceapi.ComputeAllFaceDescriptorsTask(Promise.resolve(withLandmarks), tensor);
      const t5 = performance.now();
      timings = {
        pad: t1 - t0,
        tensor: t2 - t1,
        detect: t3 - t2,
        landmarks: t4 - t3,
        descriptor: t5 - t4,
        total: t5 - t2,
      };
      return described.map((f) => ({
        box: unpadBox(f.detection.box, padding, image.width, image.height),
        score: f.detection.score,
        descriptor: l2Normalised(f.descriptor),
      }));
    } finally {
      tensor.dispose();
    }
  };

  return {
    runtime: rt.info,
    describe(image, describeOptions = {}) {
      if (disposed) return Promise.reject(new Error('face-api peer: describe() after dispose()'));
      const padding = Math.max(0, Math.round(describeOptions.padding ?? 0));
      if (image.data.length !== image.width * image.height * 3) {
        return Promise.reject(
          new RangeError(
            `face-api peer: image data is ${image.data.length} bytes, expected ${image.width}x${image.height}x3`,
          ),
        );
      }
      // One at a time: interleaved async stages would make the per-stage
      // timings meaningless and the single WASM thread gains nothing from overlap.
      const result = queue.then(() => run(image, padding));
      queue = result.catch(() => undefined);
      return result;
    },
    lastTimings() {
      return { ...timings };
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await queue;
      openPeers--;
      if (openPeers === 0) {
        // Free the weights; the backend itself stays (tfjs cannot re-create it
        // cleanly) and the next open reloads the nets from disk.
        const { nets } = faceapi;
        for (const net of [nets.ssdMobilenetv1, nets.faceLandmark68Net, nets.faceRecognitionNet]) net.dispose();
      }
    },
  };
}
