/**
 * Runs the native runtime on fixed inputs and writes every output, so that the
 * same program on two machines (x64, arm64 under qemu, x64 without AVX under
 * qemu) can be compared number by number (test/arm64/arm64.test.ts).
 *
 *   node build/test/arm64/probe.js <inputs.json> <outputs.json>
 *
 * The inputs are decoded photos and aligned crops made on the host (sharp has
 * no arm64 binary in this checkout), so every machine reads the same pixels.
 * Only engine code that needs nothing but the addon runs here.
 */
import * as fs from 'fs';
import { addonInfo, CpuRuntime, openRuntime, shippedModels } from '../../native';
import { BlazeFaceVariant, prepareInput, prepareInputNative } from '../../nodes/core/detect/blazeface';
import { TfliteEmbedder } from '../../nodes/core/embed/embedder';
import type { RgbImage } from '../../nodes/core/media/image';
import { openDetector } from '../../nodes/core/pipeline';

export interface ProbeImage {
  name: string;
  width: number;
  height: number;
  /** RGB bytes, base64. */
  rgb: string;
}

export interface ProbeInputs {
  photos: ProbeImage[];
  /** Aligned 112x112 crops (the host's pipeline made them). */
  crops: ProbeImage[];
}

export interface ProbeOutputs {
  arch: string;
  addon: { file: string; prebuilt: boolean; tflite: string };
  /** name -> values; every array is a model output or a tensor. */
  tensors: Record<string, number[]>;
  detections: Record<string, { box: number[]; score: number; keypoints: number[] }[]>;
  ms: Record<string, number>;
}

const toImage = (p: ProbeImage): RgbImage => ({
  width: p.width,
  height: p.height,
  data: new Uint8Array(Buffer.from(p.rgb, 'base64')),
});

export function seededInput(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return data;
}

async function main(inputFile: string, outputFile: string): Promise<void> {
  const inputs = JSON.parse(fs.readFileSync(inputFile, 'utf8')) as ProbeInputs;
  const out: ProbeOutputs = { arch: process.arch, addon: addonInfo(), tensors: {}, detections: {}, ms: {} };
  const time = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await work();
    out.ms[name] = Date.now() - started;
    return result;
  };

  const variants: [BlazeFaceVariant, string][] = [
    ['short', shippedModels.blazefaceShort],
    ['full', shippedModels.blazefaceFull],
  ];
  for (const [variant, model] of variants) {
    // Raw BlazeFace outputs on the same input everywhere: the JavaScript
    // resampler (IEEE arithmetic, identical on every machine) prepares it.
    const runtime = await CpuRuntime.open(model, { threads: 2 });
    try {
      for (const photo of inputs.photos) {
        const image = toImage(photo);
        const reference = prepareInput(image, variant);
        const native = await time(`resample ${variant} ${photo.name}`, () => prepareInputNative(image, variant));
        out.tensors[`resample ${variant} ${photo.name}`] = Array.from(native.tensor);
        const outputs = await time(`blazeface ${variant} ${photo.name}`, () => runtime.invoke([reference.tensor]));
        outputs.forEach((o, i) => {
          out.tensors[`blazeface ${variant} ${photo.name} output ${i}`] = Array.from(o);
        });
      }
    } finally {
      await runtime.dispose();
    }
    // The detector as the pipeline runs it (native resampling, decoding, NMS).
    const { detector, runtime: detectorRuntime } = await openDetector({ variant });
    try {
      for (const photo of inputs.photos) {
        const found = await detector.detect(toImage(photo));
        out.detections[`${variant} ${photo.name}`] = found.map((d) => ({
          box: [d.box.x, d.box.y, d.box.width, d.box.height],
          score: d.score,
          keypoints: d.keypoints.flatMap((k) => [k.x, k.y]),
        }));
      }
    } finally {
      await detectorRuntime.dispose();
    }
  }

  // MobileFaceNet as the embedder runs it (rewritten graph, XNNPACK, L2 norm) on the host's crops,
  const embedder = await TfliteEmbedder.open({ device: 'cpu' });
  try {
    const embeddings = await time('embed crops', () => embedder.embed(inputs.crops.map(toImage)));
    embeddings.forEach((e, i) => {
      out.tensors[`embedding ${inputs.crops[i].name}`] = Array.from(e);
    });
  } finally {
    await embedder.dispose();
  }
  // and the model as shipped, without XNNPACK or rewrites (TFLite's own kernels), on a seeded input.
  const plain = await openRuntime(shippedModels.mobilefacenet, { device: 'cpu', xnnpack: false, rewrite: false });
  try {
    const length = plain.inputs[0].shape.reduce((a, b) => a * b, 1);
    const [raw] = await time('mobilefacenet plain', () => plain.invoke([seededInput(length, 11)]));
    out.tensors['mobilefacenet plain seeded'] = Array.from(raw);
  } finally {
    await plain.dispose();
  }
  fs.writeFileSync(outputFile, JSON.stringify(out));
}

if (require.main === module) {
  const [inputFile, outputFile] = process.argv.slice(2);
  main(inputFile, outputFile).catch((error) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
