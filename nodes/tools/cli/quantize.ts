/**
 * `coral-face quantize`: a full-int8 copy of a float face-embedder model
 * (native/quantize; native/README.md, "Quantiser").
 *
 *   coral-face quantize [float.tflite] --calibration <photos-dir> -o <int8.tflite> [--record <file.json>] [--method mse]
 *   coral-face quantize [float.tflite] --record <file.json> -o <int8.tflite>
 *
 * The first form calibrates on the main face of every photo under the folder
 * (detected and aligned as the embedder sees faces) and can save the
 * calibration record; the second makes the model from a record (no photos),
 * as the package build does. Without a model path: the shipped float
 * MobileFaceNet. With --detector short|full: BlazeFace instead, calibrated on
 * the inputs the detector itself makes from each photo.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CpuRuntime, shippedModels } from '../../../native';
import {
  DEFAULT_METHOD,
  parseMethod,
  quantizeFromRecord,
  quantizeWithCalibration,
  readModel,
} from '../../../native/quantize';
import type { CalibrationInputs, QuantizeReport } from '../../../native/quantize';
import { FaceDetector } from '../../core/detect/blazeface';
import { decodeImage } from '../../core/media/decode';
import type { RgbImage } from '../../core/media/image';
import { blazeFaceModel, openDetector } from '../../core/pipeline';
import { listImages, mainFaceCrop, writeFileAtomic } from '../photos';
import { type Args, numberFlag, stringFlag, UsageError } from './args';
import { emit, hint, outputOf, type Output } from './output';

/** MobileFaceNet's input normalisation (the embedder's default). */
const normalise = (crop: RgbImage) => Float32Array.from(crop.data, (v) => (v - 127.5) / 128);

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

/** Median and 1st percentile of the cosine between the float and the int8 embedding of the same crops. */
export async function compareEmbeddings(
  floatModel: Uint8Array | string,
  int8Model: Uint8Array | string,
  crops: RgbImage[],
): Promise<{ crops: number; median: number; p1: number; min: number }> {
  const float = await CpuRuntime.open(floatModel, { threads: 1 });
  const int8 = await CpuRuntime.open(int8Model, { threads: 1 });
  try {
    const [batch, ...rest] = float.inputs[0].shape;
    if (batch !== 1) await float.resizeInput(0, [1, ...rest]);
    const cosines: number[] = [];
    for (const crop of crops) {
      const input = normalise(crop);
      const [[a], [b]] = [await float.invoke([input]), await int8.invoke([input])];
      cosines.push(cosine(a, b));
    }
    cosines.sort((x, y) => x - y);
    const at = (q: number) => cosines[Math.min(cosines.length - 1, Math.floor(q * cosines.length))];
    return { crops: cosines.length, median: at(0.5), p1: at(0.01), min: cosines[0] };
  } finally {
    await Promise.all([float.dispose(), int8.dispose()]);
  }
}

/** The photos under `dir`, at most `limit` of them spread evenly over the sorted list. */
function calibrationPhotos(dir: string, limit?: number): string[] {
  const files = listImages(dir);
  if (!files) throw new UsageError(`--calibration: not a folder: ${dir}`);
  if (limit === undefined || limit >= files.length) return files;
  const step = files.length / limit;
  return Array.from({ length: limit }, (_, i) => files[Math.floor(i * step)]);
}

/** The main-face crops of the photos under `dir` (at most `limit` photos, spread evenly over the sorted list). */
export async function calibrationCrops(
  dir: string,
  size: number,
  limit?: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ photos: number; crops: RgbImage[] }> {
  const files = calibrationPhotos(dir, limit);
  const { detector, runtime } = await openDetector({ variant: 'short' });
  const crops: RgbImage[] = [];
  try {
    for (const [i, file] of files.entries()) {
      try {
        const crop = await mainFaceCrop(detector, file, size);
        if (crop) crops.push(crop);
      } catch {
        // An unreadable photo is skipped: calibration needs faces, not every file.
      }
      onProgress?.(i + 1, files.length);
    }
  } finally {
    await runtime.dispose();
  }
  return { photos: files.length, crops };
}

/**
 * BlazeFace's own input tensors for the photos under `dir`, as the detector
 * prepares them (letterboxed and normalised), collected while the float model
 * detects. Held in memory: 192x192x3 floats each.
 */
export async function detectorInputs(
  dir: string,
  variant: 'short' | 'full',
  limit?: number,
): Promise<{ photos: number; inputs: Float32Array[] }> {
  const files = calibrationPhotos(dir, limit);
  const runtime = await CpuRuntime.open(blazeFaceModel(variant), { threads: 1 });
  const inputs: Float32Array[] = [];
  try {
    const detector = new FaceDetector(async (input) => {
      inputs.push(Float32Array.from(input));
      return runtime.invoke([input]);
    }, variant);
    for (const file of files) {
      try {
        await detector.detect(await decodeImage(file));
      } catch {
        // An unreadable photo is skipped.
      }
    }
  } finally {
    await runtime.dispose();
  }
  return { photos: files.length, inputs };
}

function summary(report: QuantizeReport, bytes: number): string[] {
  const ops = Object.entries(report.operators)
    .map(([op, n]) => `${n} ${op}`)
    .join(', ');
  const io = (t: { name: string; shape: number[]; scale: number; zeroPoint: number }) =>
    `${t.name} [${t.shape}] int8 (scale ${t.scale.toPrecision(4)}, zero point ${t.zeroPoint})`;
  return [
    `float rewrites:  ${report.applied.join('; ') || 'none'}`,
    `operators:       ${ops}`,
    `input:           ${io(report.input)}`,
    `output:          ${report.output.map(io).join(', ')}`,
    `size:            ${(bytes / 1048576).toFixed(2)} MiB (${(report.parameterBytes / 1048576).toFixed(2)} MiB of weights and biases)`,
  ];
}

async function fromRecord(
  out: Output,
  modelPath: string,
  floatModel: Uint8Array,
  recordPath: string,
  target: string,
): Promise<number> {
  let record: unknown;
  try {
    record = JSON.parse(await fs.promises.readFile(recordPath, 'utf8'));
  } catch (error) {
    throw Object.assign(new Error(`--record ${recordPath}: ${(error as Error).message}`), { code: 'ERR_RECORD' });
  }
  let made;
  try {
    made = quantizeFromRecord(floatModel, record);
  } catch (error) {
    throw Object.assign(new Error(`--record ${recordPath}: ${(error as Error).message}`), { code: 'ERR_RECORD' });
  }
  const { bytes, report, identical } = made;
  await writeFileAtomic(target, bytes);
  emit(
    out,
    {
      model: modelPath,
      out: path.resolve(target),
      record: path.resolve(recordPath),
      bytes: bytes.length,
      identical,
      report,
    },
    () =>
      [
        `wrote ${target} from ${recordPath}`,
        ...summary(report, bytes.length),
        ...(identical
          ? []
          : ['note: these bytes differ from the ones the record was measured on (another quantiser version)']),
      ].join('\n'),
  );
  return 0;
}

export async function quantize(args: Args): Promise<number> {
  const out = outputOf(args);
  const detector = stringFlag(args, 'detector');
  if (detector !== undefined && detector !== 'short' && detector !== 'full')
    throw new UsageError('--detector is short or full');
  const modelPath = path.resolve(
    args.positional[0] ?? (detector ? blazeFaceModel(detector) : shippedModels.mobilefacenet),
  );
  const target = stringFlag(args, 'out');
  if (!target) throw new UsageError('quantize needs -o <int8.tflite> (where to write the int8 model)');
  const calibrationDir = stringFlag(args, 'calibration');
  const recordPath = stringFlag(args, 'record');
  if (!calibrationDir && !recordPath) {
    throw new UsageError(
      'quantize needs --calibration <photos-dir>, or --record <file.json> to rebuild from a calibration record',
    );
  }
  let method;
  try {
    method = parseMethod(stringFlag(args, 'method') ?? DEFAULT_METHOD);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const limit = numberFlag(args, 'limit', { min: 1, integer: true });
  if (!fs.existsSync(modelPath))
    throw Object.assign(new Error(`model file not found: ${modelPath}`), { code: 'ERR_MODEL_NOT_FOUND' });
  const floatModel = new Uint8Array(await fs.promises.readFile(modelPath));
  if (!calibrationDir) return fromRecord(out, modelPath, floatModel, recordPath!, target);

  // For the record, with paths relative to the working folder: it is committed, and must not name someone's home.
  const command = [
    'coral-face',
    'quantize',
    ...process.argv.slice(3).map((a) => (path.isAbsolute(a) ? path.relative(process.cwd(), a) : a)),
  ].join(' ');
  const source = (what: string) => `${what} under ${path.basename(path.resolve(calibrationDir))}/`;
  if (detector) {
    const { photos, inputs } = await detectorInputs(path.resolve(calibrationDir), detector, limit);
    if (inputs.length === 0)
      throw Object.assign(new Error(`no photo could be read under ${calibrationDir}`), { code: 'ERR_NO_PHOTOS' });
    const calibration: CalibrationInputs = async function* samples() {
      for (const input of inputs) yield [input];
    };
    const result = await quantizeWithCalibration(floatModel, calibration, {
      method,
      modelFile: path.basename(modelPath),
      command,
      source: source(`the detector's inputs for ${photos} photos`),
    });
    await writeFileAtomic(target, result.bytes);
    if (recordPath) await writeFileAtomic(recordPath, `${JSON.stringify(result.record, null, 1)}\n`);
    emit(
      out,
      {
        model: modelPath,
        out: path.resolve(target),
        record: recordPath ? path.resolve(recordPath) : null,
        photos,
        samples: inputs.length,
        bytes: result.bytes.length,
        report: result.report,
      },
      () =>
        [
          `wrote ${target}${recordPath ? ` and the calibration record ${recordPath}` : ''}`,
          `calibration:     ${inputs.length} detector inputs from ${photos} photos, ranges by ${result.record.calibration.method}`,
          ...summary(result.report, result.bytes.length),
        ].join('\n'),
    );
    return 0;
  }
  const graph = readModel(floatModel).subgraphs[0];
  const [, height, width] = graph?.tensors[graph.inputs[0]]?.shape ?? [];
  if (!height || height !== width)
    throw new UsageError(
      'quantize --calibration takes a face embedder (an input of [batch, size, size, 3]), or --detector',
    );
  const tty = !out.json && process.stderr.isTTY;
  const { photos, crops } = await calibrationCrops(path.resolve(calibrationDir), height, limit, (done, total) => {
    if (tty) process.stderr.write(`\rfaces ${done}/${total}`);
  });
  if (tty) process.stderr.write('\n');
  if (crops.length === 0)
    throw Object.assign(new Error(`no face found in the ${photos} photos under ${calibrationDir}`), {
      code: 'ERR_NO_FACES',
    });
  const passes = ['channel ranges', 'value ranges', 'histograms'];
  const result = await quantizeWithCalibration(
    floatModel,
    async function* inputs() {
      for (const crop of crops) yield [normalise(crop)];
    },
    {
      method,
      modelFile: path.basename(modelPath),
      command,
      source: source(`${crops.length} faces from ${photos} photos`),
      onProgress: (pass, done) => {
        if (tty) process.stderr.write(`\r${passes[pass]} ${done}/${crops.length}   `);
      },
    },
  );
  if (tty) process.stderr.write('\n');
  await writeFileAtomic(target, result.bytes);
  if (recordPath) await writeFileAtomic(recordPath, `${JSON.stringify(result.record, null, 1)}\n`);
  hint(out, 'comparing the int8 embeddings with the float ones on up to 300 calibration faces');
  const check = await compareEmbeddings(floatModel, result.bytes, crops.slice(0, 300));
  emit(
    out,
    {
      model: modelPath,
      out: path.resolve(target),
      record: recordPath ? path.resolve(recordPath) : null,
      photos,
      faces: crops.length,
      method: result.record.calibration.method,
      bytes: result.bytes.length,
      report: result.report,
      cosine: check,
    },
    () =>
      [
        `wrote ${target}${recordPath ? ` and the calibration record ${recordPath}` : ''}`,
        `calibration:     ${crops.length} faces from ${photos} photos, ranges by ${result.record.calibration.method}`,
        ...summary(result.report, result.bytes.length),
        `int8 vs float:   cosine median ${check.median.toFixed(4)}, 1st percentile ${check.p1.toFixed(4)} over ${check.crops} calibration faces`,
      ].join('\n'),
  );
  return 0;
}
