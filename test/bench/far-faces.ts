/**
 * npm run bench:far-faces
 *
 * Measurement, not a check: how many faces of each size the detector finds
 * in 1280x720 frames built from the group photos, with and without tiles. The
 * reference is full range with fine tiles (half the frame height), checked by
 * eye on the annotated frames.
 */
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { FaceDetector } from '../../nodes/core/detect/blazeface';
import { intersectionOverUnion, type RgbImage } from '../../nodes/core/media/image';
import { DEV_DIR, modelRunner } from '../helpers/real-models';

async function main(): Promise<void> {
  const fullModel = modelRunner('full');
  const shortModel = modelRunner('short');
  const groupDir = path.join(DEV_DIR, '_group');
  const reference = new FaceDetector(fullModel, 'full', { tiles: true, tileFraction: 0.5 });
  const candidates: Record<string, FaceDetector> = {
    'full, whole frame': new FaceDetector(fullModel, 'full'),
    'full, tiles 1.0': new FaceDetector(fullModel, 'full', { tiles: true }),
    'full, tiles 0.6': new FaceDetector(fullModel, 'full', { tiles: true, tileFraction: 0.6 }),
    'short, whole frame': new FaceDetector(shortModel, 'short'),
    'short, tiles 0.5': new FaceDetector(shortModel, 'short', { tiles: true, tileFraction: 0.5 }),
  };
  const bins = [0, 30, 40, 50, 70, 90, 120, 1e9];
  const tally = Object.fromEntries(
    Object.keys(candidates).map((k) => [
      k,
      { hits: bins.map(() => 0), totals: bins.map(() => 0), extra: 0, ms: 0, frames: 0 },
    ]),
  );
  for (const file of fs
    .readdirSync(groupDir)
    .filter((f) => f.endsWith('.jpg'))
    .sort()) {
    // Group photo scaled to several widths and centred on a grey 1280×720 frame.
    for (const width of [1280, 1000, 800, 640, 500]) {
      const scaled = await sharp(path.join(groupDir, file)).resize({ width }).toBuffer({ resolveWithObject: true });
      const frameSharp =
        scaled.info.height >= 720
          ? sharp(scaled.data).extract({ left: 0, top: 0, width: 1280, height: 720 })
          : sharp({ create: { width: 1280, height: 720, channels: 3, background: { r: 90, g: 90, b: 90 } } }).composite(
              [
                {
                  input: scaled.data,
                  left: Math.round((1280 - width) / 2),
                  top: Math.round((720 - scaled.info.height) / 2),
                },
              ],
            );
      const { data } = await frameSharp.removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const frame: RgbImage = { width: 1280, height: 720, data: new Uint8Array(data) };
      const truth = await reference.detect(frame);
      for (const [name, detector] of Object.entries(candidates)) {
        const started = Date.now();
        const found = await detector.detect(frame);
        const t = tally[name];
        t.ms += Date.now() - started;
        t.frames++;
        const used = new Set<number>();
        for (const face of truth) {
          const bin = bins.findIndex((lo, i) => face.box.width >= lo && face.box.width < bins[i + 1]);
          t.totals[bin]++;
          const match = found.findIndex((f, i) => !used.has(i) && intersectionOverUnion(f.box, face.box) > 0.3);
          if (match >= 0) {
            used.add(match);
            t.hits[bin]++;
          }
        }
        t.extra += found.length - used.size;
      }
    }
  }
  for (const [name, t] of Object.entries(tally)) {
    const cells = bins
      .slice(0, -1)
      .map((lo, i) => `${lo}-${bins[i + 1] > 1e8 ? '' : bins[i + 1]}px ${t.hits[i]}/${t.totals[i]}`);
    console.log(
      `    ${name.padEnd(20)} ${cells.join('  ')}  unmatched ${t.extra}  ${(t.ms / t.frames).toFixed(0)} ms/frame`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
