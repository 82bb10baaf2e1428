/**
 * npm run bench:quantize [-- --json] [-- --calibration-limit N] [-- --methods minmax,mse,...]
 *
 * The quantiser's range methods compared on accuracy: each int8 MobileFaceNet
 * against the float one on the fixed protocol of ../shared/faces/dev (top-1,
 * TPIR at FPIR 1/60) and on ../shared/faces/dev-pairs (10-fold verification
 * accuracy, TAR at FAR), plus the cosine between the int8 and the float
 * embedding of the same crop (median, 1st percentile). Every photo is
 * detected and aligned once (on BlazeFace keypoints, also for enrolment photos:
 * coral-face eval aligns those on face-mesh points, so its float figures differ
 * slightly); the models only embed.
 *
 * Calibration photos never overlap the photos a figure is measured on: the
 * models measured on dev are calibrated on dev-pairs' images, the models
 * measured on dev-pairs on dev's photos. The committed record
 * (native/models/) is calibrated on dev-pairs' images; its own dev-pairs
 * figure (calibrated on the same images) is printed as "shipped".
 */
import * as fs from 'fs';
import * as path from 'path';
import { CpuRuntime, shippedModels } from '../../native';
import { calibrate, Calibration, parseMethod, quantizeModel, rangesFrom } from '../../native/quantize';
import type { RgbImage } from '../../nodes/core/media/image';
import { l2normalize } from '../../nodes/core/identify/imprint';
import { openDetector } from '../../nodes/core/pipeline';
import { defaultImagesDir, evaluatePairs, parsePairs } from '../../nodes/tools/eval-pairs';
import { evaluateShots, readDataset } from '../../nodes/tools/evaluate';
import { mainFaceCrop } from '../../nodes/tools/photos';
import { DEV_DIR } from '../helpers/real-models';
import { MODELS } from '../models';
import { round } from './stats';

const args = process.argv.slice(2);
const json = args.includes('--json');
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const PAIRS_FILE = path.join(path.dirname(DEV_DIR), 'dev-pairs', 'pairs.txt');
const calibrationLimit = Number(flag('calibration-limit') ?? 600);
const methods = (flag('methods') ?? 'minmax,percentile:1e-3,percentile:1e-4,percentile:1e-5,mse')
  .split(',')
  .map(parseMethod);
const log = (text: string) => {
  if (!json) process.stderr.write(`${text}\n`);
};

async function cropsOf(files: string[]): Promise<Map<string, RgbImage | null>> {
  const { detector, runtime } = await openDetector({ variant: 'short' });
  const crops = new Map<string, RgbImage | null>();
  try {
    for (const file of files) crops.set(file, await mainFaceCrop(detector, file));
  } finally {
    await runtime.dispose();
  }
  return crops;
}

const normalise = (crop: RgbImage) => Float32Array.from(crop.data, (v) => (v - 127.5) / 128);

async function embedAll(
  model: Uint8Array | string,
  crops: Map<string, RgbImage | null>,
): Promise<Map<string, Float32Array | null>> {
  const runtime = await CpuRuntime.open(model, { threads: 1 });
  const [batch, ...rest] = runtime.inputs[0].shape;
  if (batch !== 1) await runtime.resizeInput(0, [1, ...rest]);
  const out = new Map<string, Float32Array | null>();
  try {
    for (const [file, crop] of crops)
      out.set(file, crop ? l2normalize((await runtime.invoke([normalise(crop)]))[0]) : null);
  } finally {
    await runtime.dispose();
  }
  return out;
}

function cosineStats(a: Map<string, Float32Array | null>, b: Map<string, Float32Array | null>) {
  const cosines: number[] = [];
  for (const [file, x] of a) {
    const y = b.get(file);
    if (x && y) cosines.push(x.reduce((s, v, i) => s + v * y[i], 0));
  }
  cosines.sort((p, q) => p - q);
  return {
    median: cosines[Math.floor(cosines.length / 2)],
    p1: cosines[Math.floor(cosines.length * 0.01)],
    min: cosines[0],
  };
}

function spread<T>(items: T[], limit: number): T[] {
  if (items.length <= limit) return items;
  const step = items.length / limit;
  return Array.from({ length: limit }, (_, i) => items[Math.floor(i * step)]);
}

async function calibrateOn(
  floatModel: Uint8Array,
  crops: (RgbImage | null)[],
  equalize: boolean,
): Promise<Calibration> {
  const faces = crops.filter((c): c is RgbImage => c !== null);
  return calibrate(
    floatModel,
    async function* inputs() {
      for (const crop of faces) yield [normalise(crop)];
    },
    { equalize },
  );
}

async function main(): Promise<void> {
  const floatModel = new Uint8Array(fs.readFileSync(MODELS.mobilefacenet));
  const dataset = readDataset(DEV_DIR);
  const devFiles = [...dataset.identities.flatMap((i) => [...i.enrol, ...i.probes]), ...dataset.impostors];
  const pairs = parsePairs(fs.readFileSync(PAIRS_FILE, 'utf8'), defaultImagesDir(PAIRS_FILE));
  const pairFiles = [...new Set(pairs.pairs.flatMap((p) => [p.a, p.b]))];
  log(`detecting and aligning ${devFiles.length} dev photos and ${pairFiles.length} dev-pairs images...`);
  const devCrops = await cropsOf(devFiles);
  const pairCrops = await cropsOf(pairFiles);
  // Calibration sets: spread over the sorted file lists, so every person can contribute.
  const onPairs = spread(
    [...pairFiles].sort().map((f) => pairCrops.get(f) ?? null),
    calibrationLimit,
  );
  const onDev = spread(
    devFiles.map((f) => devCrops.get(f) ?? null),
    calibrationLimit,
  );

  const measureDev = async (model: Uint8Array | string) => {
    const embeddings = await embedAll(model, devCrops);
    // One embedding per photo, whatever its role: enrolment photos align on BlazeFace keypoints here, as probes do.
    const [result] = await evaluateShots(DEV_DIR, async (file) => embeddings.get(file) ?? null);
    return { embeddings, top1: result.top1, tpir: result.tpirAtFpir['1/60'] };
  };
  const measurePairs = async (model: Uint8Array | string) => {
    const embeddings = await embedAll(model, pairCrops);
    const result = await evaluatePairs(pairs, async (file) => embeddings.get(file) ?? null);
    return {
      embeddings,
      accuracy: result.accuracy,
      std: result.std,
      tar2: result.tarAtFar['1e-2'],
      tar3: result.tarAtFar['1e-3'],
    };
  };

  const rows: Record<string, unknown>[] = [];
  const floatDev = await measureDev(floatModel);
  const floatPairs = await measurePairs(floatModel);
  const row = (
    name: string,
    dev: Awaited<ReturnType<typeof measureDev>>,
    pairsResult: Awaited<ReturnType<typeof measurePairs>>,
  ) => {
    const r = {
      model: name,
      top1: round(dev.top1 * 100, 2),
      tpirAt1in60: round(dev.tpir * 100, 2),
      pairsAccuracy: round(pairsResult.accuracy * 100, 2),
      pairsStd: round(pairsResult.std * 100, 2),
      tarAtFar1e2: round(pairsResult.tar2 * 100, 2),
      tarAtFar1e3: round(pairsResult.tar3 * 100, 2),
      cosineMedian: round(cosineStats(dev.embeddings, floatDev.embeddings).median ?? 1, 4),
      cosineP1: round(cosineStats(dev.embeddings, floatDev.embeddings).p1 ?? 1, 4),
      pairsCosineMedian: round(cosineStats(pairsResult.embeddings, floatPairs.embeddings).median ?? 1, 4),
    };
    rows.push(r);
    if (json) console.log(JSON.stringify(r));
    else log(`${name}: ${JSON.stringify(r)}`);
  };
  row('float', floatDev, floatPairs);

  for (const equalize of [true, false]) {
    log(
      `calibrating (equalisation ${equalize ? 'on' : 'off'}) on ${onPairs.length} dev-pairs images and on ${onDev.length} dev photos...`,
    );
    const [calPairs, calDev] = [
      await calibrateOn(floatModel, onPairs, equalize),
      await calibrateOn(floatModel, onDev, equalize),
    ];
    for (const method of methods) {
      const name = `${method.name === 'percentile' ? `percentile ${method.p}` : method.name}${equalize ? '' : ', no equalisation'}`;
      const forDev = quantizeModel(floatModel, {
        ranges: rangesFrom(calPairs, method),
        equalization: calPairs.equalization,
      }).bytes;
      const forPairs = quantizeModel(floatModel, {
        ranges: rangesFrom(calDev, method),
        equalization: calDev.equalization,
      }).bytes;
      row(name, await measureDev(forDev), await measurePairs(forPairs));
    }
  }
  if (fs.existsSync(shippedModels.mobilefacenetInt8)) {
    row(
      'shipped (native/models record)',
      await measureDev(shippedModels.mobilefacenetInt8),
      await measurePairs(shippedModels.mobilefacenetInt8),
    );
  }
  if (!json) {
    console.log(
      `dev: ${dataset.identities.length} identities, ${dataset.impostors.length} impostors; dev-pairs: ${pairs.pairs.length} pairs, ${pairs.folds} folds; calibration ${calibrationLimit} photos\n`,
    );
    console.log(
      'model                              top-1   TPIR@1/60 | pairs acc ± std   TAR@1e-2 TAR@1e-3 | cos median  cos p1',
    );
    for (const r of rows) {
      console.log(
        `${String(r.model).padEnd(34)} ${String(r.top1).padStart(6)}  ${String(r.tpirAt1in60).padStart(7)}   | ${String(r.pairsAccuracy).padStart(6)} ± ${String(r.pairsStd).padEnd(5)}  ${String(r.tarAtFar1e2).padStart(7)}  ${String(r.tarAtFar1e3).padStart(7)} | ${String(r.cosineMedian).padStart(8)}  ${String(r.cosineP1).padStart(7)}`,
      );
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
