/**
 * `coral-face eval-pairs <pairs.txt> [--images <dir>] [--model <path>]`: the
 * verification protocol on LFW's pairs format (../eval-pairs.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { decodeImage } from '../../core/media/decode';
import { mainFace } from '../../core/pipeline';
import { defaultImagesDir, evaluatePairs, parsePairs } from '../eval-pairs';
import { type Args, stringFlag, UsageError } from './args';
import { emit, outputOf, round, withPipeline } from './output';

export async function evalPairs(args: Args): Promise<number> {
  const [pairsFile] = args.positional;
  if (!pairsFile) throw new UsageError('eval-pairs needs a pairs file (LFW pairs.txt format)');
  const out = outputOf(args);
  const imagesDir = path.resolve(stringFlag(args, 'images') ?? defaultImagesDir(path.resolve(pairsFile)));
  const list = parsePairs(await fs.promises.readFile(pairsFile, 'utf8'), imagesDir);
  const missing = [...new Set(list.pairs.flatMap((p) => [p.a, p.b]))].filter((f) => !fs.existsSync(f));
  if (missing.length) {
    throw Object.assign(
      new Error(
        `${missing.length} image(s) named in ${pairsFile} are not under ${imagesDir}, e.g. ${missing[0]} (give --images <dir>)`,
      ),
      { code: 'ERR_IMAGE_NOT_FOUND' },
    );
  }
  const progress = (done: number, total: number) => {
    if (!out.json && process.stderr.isTTY) process.stderr.write(`\rimages ${done}/${total}`);
  };
  return withPipeline(args, async (pipeline) => {
    // Both photos of a pair as identify and enrol take a photo: face mesh alignment, with the mirror image.
    const result = await evaluatePairs(
      list,
      async (file) => {
        const image = await decodeImage(file);
        const face = mainFace(await pipeline.detect(image), image);
        return face ? pipeline.embedCarefully(image, face) : null;
      },
      progress,
    );
    if (!out.json && process.stderr.isTTY) process.stderr.write('\n');
    const embedder = {
      id: pipeline.embedder.id,
      backend: pipeline.embedder.backend.kind,
      model: pipeline.embedder.backend.model,
    };
    const pct = (v: number) => `${(v * 100).toFixed(2)} %`;
    emit(out, { ...result, msPerImage: round(result.msPerImage, 2), model: embedder.model, embedder }, () =>
      [
        `model:             ${embedder.model} (${embedder.backend})`,
        `pairs / folds:     ${result.pairs} / ${result.folds} (${result.images} images)`,
        `accuracy:          ${pct(result.accuracy)} ± ${pct(result.std)} (std over folds)`,
        `TAR @ FAR 1e-2:    ${pct(result.tarAtFar['1e-2'])} (cosine > ${result.farThresholds['1e-2'].toFixed(3)})`,
        `TAR @ FAR 1e-3:    ${pct(result.tarAtFar['1e-3'])} (cosine > ${result.farThresholds['1e-3'].toFixed(3)}; ${result.differentPairs} different-person pairs)`,
        `no face found:     ${result.noFace} image(s) (a pair with one counts as wrong)`,
        `time:              ${result.msPerImage.toFixed(1)} ms per image (decode, detect, align, embed)`,
      ].join('\n'),
    );
    return 0;
  });
}
