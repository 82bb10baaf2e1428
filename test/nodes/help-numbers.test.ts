/**
 * The help of align and edgetpu-embed says numbers users rely on (the pixel
 * store's size, the photo queue, the quality thresholds, the embedding
 * length): each must be the code's. Every number in those help texts is
 * either checked against its constant here or listed as an example.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { alignFace } from '../../nodes/core/align/warp';
import { FirstFrames } from '../../nodes/core/align/first-frames';
import { DEFAULT_QUALITY_THRESHOLDS as Q } from '../../nodes/core/align/quality';
import { NUM_KEYPOINTS } from '../../nodes/core/detect/blazeface';
import { TfliteEmbedder } from '../../nodes/core/embed/embedder';
import { EmbeddingReuse } from '../../nodes/core/embed/embedding-reuse';
import { DEFAULT_MAX_QUEUE } from '../../nodes/core/flow/latest-wins';
import { SETTINGS } from '../../nodes/core/flow/settings';
import { MAX_INPUT_PIXELS } from '../../nodes/core/media/decode';
import { createRgbImage } from '../../nodes/core/media/image';
import { pixels } from '../../nodes/core/media/pixel-store';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The help's text, tags and entities turned into plain text. */
function helpText(type: string): string {
  const html = fs.readFileSync(path.join(ROOT, 'nodes', type, 'locales', 'en-US', `${type}.html`), 'utf8');
  return html
    .replace(/<[^>]+>/g, '')
    .replace(/&ge;/g, '≥')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

/** Each claim: a pattern in the help and the value the code has. */
function checkClaims(text: string, claims: [RegExp, number][]): void {
  for (const [pattern, value] of claims) {
    const match = pattern.exec(text);
    assert.ok(match, `the help says ${pattern}`);
    assert.equal(Number(match[1]), value, `${pattern}: the help says ${match[1]}, the code ${value}`);
  }
}

/** Every number of the text is one of the checked values or a listed example. */
function checkNoOtherNumbers(text: string, known: number[], examples: number[]): void {
  const allowed = new Set([...known, ...examples]);
  for (const m of text.matchAll(/(?<![\w.])\d+(?:\.\d+)?/g)) {
    const value = Number(m[0]);
    assert.ok(
      allowed.has(value),
      `unchecked number ${m[0]} in "…${text.slice(Math.max(0, m.index - 50), m.index + 30)}…"`,
    );
  }
}

describe("node help: the numbers are the code's", () => {
  it('align', () => {
    const text = helpText('align');
    const crop = alignFace(createRgbImage(200, 200), [
      { x: 80, y: 90 },
      { x: 120, y: 90 },
      { x: 100, y: 110 },
      { x: 100, y: 130 },
      { x: 60, y: 95 },
      { x: 140, y: 95 },
    ]).crop;
    const firstFrames = new FirstFrames();
    // The frames between a face's careful passes take the careful embedding from embed's reuse window.
    assert.equal(firstFrames.spacingMs, SETTINGS['edgetpu-embed'].reuseMs.default);
    const claims: [RegExp, number][] = [
      [/bounded \((\d+) MB/, pixels.maxBytes / 2 ** 20],
      [/up to (\d+) at a time/, DEFAULT_MAX_QUEUE],
      [/while (\d+) are waiting/, DEFAULT_MAX_QUEUE],
      [/eyes less than (\d+) px apart/, Q.minInterOcularPx],
      [/box under (\d+) px/, Q.minBoxPx],
      [/Min\. sharpness \(default (\d+)\)/, Q.minSharpness],
      [/Max\. yaw \(default (\d+)°\)/, Q.maxAbsYawDeg],
      [/below (\d+) \/ above \d+/, Q.minBrightness],
      [/below \d+ \/ above (\d+)/, Q.maxBrightness],
      [/more than (\d+) % of the face pixels/, Q.maxClippedFraction * 100],
      [/Min\. score drops weaker detections \(default ([\d.]+)\)/, SETTINGS.align.minScore.default],
      [/Max\. faces keeps the best ones \(default (\d+)\)/, SETTINGS.align.maxFaces.default],
      [/over (\d+) megapixels/, MAX_INPUT_PIXELS / 1e6],
      [/aligned (\d+)×\d+ crop/, crop.width],
      [/first Careful frames \(default (\d+)\)/, SETTINGS.align.carefulFrames.default],
      [/at most (\d+) faces in one frame/, firstFrames.perFrame],
      [/one every (\d+) ms at most/, firstFrames.spacingMs],
      [/a person after (\d+) in a row/, SETTINGS['imprint-classify'].confirmFrames.default],
      [/a stranger after (\d+), by default/, SETTINGS['imprint-classify'].unknownFrames.default],
    ];
    checkClaims(text, claims);
    // A word, not a digit: "six { x, y }".
    assert.match(text, /six \{ x, y \} in frame pixels/);
    assert.equal(NUM_KEYPOINTS, 6);
    checkNoOtherNumbers(
      text,
      [
        pixels.maxBytes / 2 ** 20,
        DEFAULT_MAX_QUEUE,
        Q.minInterOcularPx,
        Q.minBoxPx,
        Q.minSharpness,
        Q.maxAbsYawDeg,
        Q.minBrightness,
        Q.maxBrightness,
        Q.maxClippedFraction * 100,
        SETTINGS.align.minScore.default,
        SETTINGS.align.maxFaces.default,
        MAX_INPUT_PIXELS / 1e6,
        crop.width,
        SETTINGS.align.carefulFrames.default,
        firstFrames.perFrame,
        firstFrames.spacingMs,
        SETTINGS['imprint-classify'].confirmFrames.default,
        SETTINGS['imprint-classify'].unknownFrames.default,
      ],
      // Examples: a status (2 faces · 35 ms · 4 dropped, 1 face · 40 ms · 199 refused), brightness 0…255,
      // score 0…1, a 1280×720 frame of 2.7 MB.
      [2, 35, 4, 1, 40, 199, 0, 255, 1280, 720, 2.7],
    );
    assert.ok(Math.abs((1280 * 720 * 3) / 1e6 - 2.7) < 0.1, '1280×720 RGB is 2.7 MB');
  });

  it('edgetpu-embed', async () => {
    const text = helpText('edgetpu-embed');
    const embedder = await TfliteEmbedder.open();
    try {
      const reuse = new EmbeddingReuse();
      const claims: [RegExp, number][] = [
        [/MobileFaceNet: (\d+) numbers/, embedder.dimension],
        [/overlaps \(IoU ≥ ([\d.]+)\)/, reuse.minIoU],
        [/Reuse for ms ago \(default (\d+)\)/, SETTINGS['edgetpu-embed'].reuseMs.default],
        [/up to (\d+) at a time/, DEFAULT_MAX_QUEUE],
        [/not an aligned (\d+)×\d+ crop/, embedder.inputSize],
      ];
      checkClaims(text, claims);
      checkNoOtherNumbers(
        text,
        [
          embedder.dimension,
          reuse.minIoU,
          SETTINGS['edgetpu-embed'].reuseMs.default,
          DEFAULT_MAX_QUEUE,
          embedder.inputSize,
        ],
        // Examples: 25 fps, "usb:0", turning reuse off with 0.
        [25, 0],
      );
    } finally {
      await embedder.dispose();
    }
  });
});
