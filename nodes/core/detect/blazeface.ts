/**
 * BlazeFace (MediaPipe face detection) pre- and post-processing in plain
 * TypeScript, except the resampling loop of the input, which runs natively
 * (`prepareInputNative`; `prepareInput` is its TypeScript reference). The
 * model itself runs elsewhere: `FaceDetector` takes an injected `RunModel`, so
 * the native runtime, a test binding or a fake can be plugged in.
 *
 * The numbers below follow MediaPipe's own graphs
 * (modules/face_detection/face_detection_{short,full}_range.pbtxt and the
 * shared face_detection.pbtxt): SsdAnchorsCalculator options for the anchors,
 * TensorsToDetectionsCalculator options for decoding (XYWH order, since the
 * graph sets reverse_output_order, sigmoid scores clipped to ±100), and
 * NonMaxSuppressionCalculator with the WEIGHTED algorithm.
 */
import { resampleRgb } from '../../../native';
import { intersectionOverUnion, type Box, type Point, type RgbImage } from '../media/image';

export type BlazeFaceVariant = 'short' | 'full';

/**
 * Index of each BlazeFace keypoint. "Right"/"left" are the subject's, so for an
 * unmirrored frontal photo `rightEye` (0) is on the image-left side; it is the
 * point that goes to the ArcFace template's first ("left") eye.
 */
export const KEYPOINT = {
  rightEye: 0,
  leftEye: 1,
  noseTip: 2,
  mouthCenter: 3,
  rightEarTragion: 4,
  leftEarTragion: 5,
} as const;
export const NUM_KEYPOINTS = 6;

/** One face: box, score in [0,1] and the 6 keypoints in `KEYPOINT` order. */
export interface Detection {
  box: Box;
  score: number;
  keypoints: Point[];
}

// ---------------------------------------------------------------------------
// Anchors

/** The subset of MediaPipe's SsdAnchorsCalculatorOptions BlazeFace uses. */
export interface SsdAnchorOptions {
  inputSizeWidth: number;
  inputSizeHeight: number;
  numLayers: number;
  minScale: number;
  maxScale: number;
  anchorOffsetX: number;
  anchorOffsetY: number;
  strides: number[];
  aspectRatios: number[];
  reduceBoxesInLowestLayer: boolean;
  /** 0 disables the extra interpolated-scale anchor per cell. */
  interpolatedScaleAspectRatio: number;
  /** When true every anchor is 1×1, so regressor offsets are in input units. */
  fixedAnchorSize: boolean;
}

/** Anchor centre and size, normalised to the model input (0..1). */
export interface Anchor {
  xCenter: number;
  yCenter: number;
  width: number;
  height: number;
}

export interface BlazeFaceModelSpec {
  /** Square input side in pixels. */
  inputSize: number;
  numBoxes: number;
  /** Values per box in the regressor tensor: 4 box + 2 × 6 keypoints. */
  numCoords: number;
  /** x/y/w/h_scale of TensorsToDetectionsCalculator: equal to the input size. */
  coordScale: number;
  anchorOptions: SsdAnchorOptions;
  /** min_score_thresh in MediaPipe's graph for this model (for reference). */
  mediapipeMinScore: number;
}

const SHARED_ANCHOR_OPTIONS = {
  minScale: 0.1484375,
  maxScale: 0.75,
  anchorOffsetX: 0.5,
  anchorOffsetY: 0.5,
  aspectRatios: [1.0],
  reduceBoxesInLowestLayer: false,
  fixedAnchorSize: true,
};

export const BLAZEFACE_MODELS: Readonly<Record<BlazeFaceVariant, BlazeFaceModelSpec>> = {
  short: {
    inputSize: 128,
    numBoxes: 896,
    numCoords: 16,
    coordScale: 128,
    mediapipeMinScore: 0.5,
    anchorOptions: {
      ...SHARED_ANCHOR_OPTIONS,
      inputSizeWidth: 128,
      inputSizeHeight: 128,
      numLayers: 4,
      strides: [8, 16, 16, 16],
      interpolatedScaleAspectRatio: 1.0,
    },
  },
  full: {
    inputSize: 192,
    numBoxes: 2304,
    numCoords: 16,
    coordScale: 192,
    mediapipeMinScore: 0.6,
    anchorOptions: {
      ...SHARED_ANCHOR_OPTIONS,
      inputSizeWidth: 192,
      inputSizeHeight: 192,
      numLayers: 1,
      strides: [4],
      interpolatedScaleAspectRatio: 0.0,
    },
  },
};

function layerScale(options: SsdAnchorOptions, strideIndex: number): number {
  const count = options.strides.length;
  if (count === 1) return (options.minScale + options.maxScale) / 2;
  return options.minScale + ((options.maxScale - options.minScale) * strideIndex) / (count - 1);
}

/**
 * SSD anchors in the order the model emits its boxes: layers with the same
 * stride are merged into one grid, then row by row, cell by cell, with all
 * anchors of a cell adjacent.
 */
export function generateSsdAnchors(options: SsdAnchorOptions): Anchor[] {
  if (options.strides.length !== options.numLayers) {
    throw new Error(`strides has ${options.strides.length} entries, numLayers is ${options.numLayers}`);
  }
  const anchors: Anchor[] = [];
  let layer = 0;
  while (layer < options.numLayers) {
    const widths: number[] = [];
    const heights: number[] = [];
    const addShape = (scale: number, aspectRatio: number): void => {
      const ratioRoot = Math.sqrt(aspectRatio);
      widths.push(scale * ratioRoot);
      heights.push(scale / ratioRoot);
    };

    let sameStrideEnd = layer;
    while (sameStrideEnd < options.strides.length && options.strides[sameStrideEnd] === options.strides[layer]) {
      const scale = layerScale(options, sameStrideEnd);
      if (sameStrideEnd === 0 && options.reduceBoxesInLowestLayer) {
        addShape(0.1, 1.0);
        addShape(scale, 2.0);
        addShape(scale, 0.5);
      } else {
        for (const aspectRatio of options.aspectRatios) addShape(scale, aspectRatio);
        if (options.interpolatedScaleAspectRatio > 0) {
          const nextScale = sameStrideEnd === options.strides.length - 1 ? 1.0 : layerScale(options, sameStrideEnd + 1);
          addShape(Math.sqrt(scale * nextScale), options.interpolatedScaleAspectRatio);
        }
      }
      sameStrideEnd++;
    }

    const stride = options.strides[layer];
    const gridHeight = Math.ceil(options.inputSizeHeight / stride);
    const gridWidth = Math.ceil(options.inputSizeWidth / stride);
    for (let y = 0; y < gridHeight; y++) {
      for (let x = 0; x < gridWidth; x++) {
        for (let shape = 0; shape < widths.length; shape++) {
          anchors.push({
            xCenter: (x + options.anchorOffsetX) / gridWidth,
            yCenter: (y + options.anchorOffsetY) / gridHeight,
            width: options.fixedAnchorSize ? 1 : widths[shape],
            height: options.fixedAnchorSize ? 1 : heights[shape],
          });
        }
      }
    }
    layer = sameStrideEnd;
  }
  return anchors;
}

const anchorCache = new Map<BlazeFaceVariant, Anchor[]>();

/** Anchors of a variant, computed once. */
export function anchorsFor(variant: BlazeFaceVariant): Anchor[] {
  let anchors = anchorCache.get(variant);
  if (!anchors) {
    anchors = generateSsdAnchors(BLAZEFACE_MODELS[variant].anchorOptions);
    anchorCache.set(variant, anchors);
  }
  return anchors;
}

// ---------------------------------------------------------------------------
// Decoding

export interface DecodeOptions {
  /** Detections scoring below this are dropped. Default 0.5. */
  minScore?: number;
  /** Raw logits are clamped to ±this before the sigmoid (MediaPipe: 100). */
  scoreClippingThreshold?: number;
}

/**
 * Turns raw model outputs into detections in model-input normalised
 * coordinates (0..1 across the square input, letterbox padding included).
 * Box and keypoint offsets are XYWH relative to the anchor centre, divided by
 * the input size and multiplied by the (1×1) anchor size.
 */
export function decodeDetections(
  regressors: Float32Array,
  scores: Float32Array,
  anchors: readonly Anchor[],
  variant: BlazeFaceVariant,
  options: DecodeOptions = {},
): Detection[] {
  const spec = BLAZEFACE_MODELS[variant];
  const minScore = options.minScore ?? 0.5;
  const clip = options.scoreClippingThreshold ?? 100;
  if (anchors.length !== spec.numBoxes) {
    throw new Error(`expected ${spec.numBoxes} anchors for '${variant}', got ${anchors.length}`);
  }
  if (regressors.length !== spec.numBoxes * spec.numCoords || scores.length !== spec.numBoxes) {
    throw new Error(
      `'${variant}' needs ${spec.numBoxes * spec.numCoords} regressor and ${spec.numBoxes} score values, ` +
        `got ${regressors.length} and ${scores.length}`,
    );
  }
  const detections: Detection[] = [];
  const s = spec.coordScale;
  for (let i = 0; i < spec.numBoxes; i++) {
    const logit = Math.min(clip, Math.max(-clip, scores[i]));
    const score = 1 / (1 + Math.exp(-logit));
    if (score < minScore) continue;
    const anchor = anchors[i];
    const base = i * spec.numCoords;
    const xCenter = (regressors[base] / s) * anchor.width + anchor.xCenter;
    const yCenter = (regressors[base + 1] / s) * anchor.height + anchor.yCenter;
    const width = (regressors[base + 2] / s) * anchor.width;
    const height = (regressors[base + 3] / s) * anchor.height;
    // MediaPipe drops boxes the model predicts with negative or NaN size.
    if (!(width >= 0) || !(height >= 0)) continue;
    const keypoints: Point[] = [];
    for (let k = 0; k < NUM_KEYPOINTS; k++) {
      keypoints.push({
        x: (regressors[base + 4 + 2 * k] / s) * anchor.width + anchor.xCenter,
        y: (regressors[base + 5 + 2 * k] / s) * anchor.height + anchor.yCenter,
      });
    }
    detections.push({
      box: { x: xCenter - width / 2, y: yCenter - height / 2, width, height },
      score,
      keypoints,
    });
  }
  return detections;
}

// ---------------------------------------------------------------------------
// Non-maximum suppression

/**
 * MediaPipe's WEIGHTED non-max suppression: take the best remaining detection,
 * gather every remaining one overlapping it by IoU > `iouThreshold` (strictly
 * greater, as MediaPipe does; the best one included), and emit one detection
 * whose box corners and keypoints are the score-weighted mean of the cluster
 * and whose score is the best one's. Averaging the many anchors that fire on a
 * face steadies the keypoints, which alignment depends on.
 */
export function weightedNonMaxSuppression(
  detections: readonly Detection[],
  iouThreshold: number,
  maxDetections = Infinity,
): Detection[] {
  let remaining = [...detections].sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  while (remaining.length > 0 && kept.length < maxDetections) {
    const best = remaining[0];
    const cluster: Detection[] = [];
    const rest: Detection[] = [];
    for (const candidate of remaining) {
      // `best` joins its own cluster even when its box is degenerate (IoU 0).
      const joins = candidate === best || intersectionOverUnion(candidate.box, best.box) > iouThreshold;
      (joins ? cluster : rest).push(candidate);
    }
    kept.push(weightedMean(cluster, best.score));
    remaining = rest;
  }
  return kept;
}

function weightedMean(cluster: readonly Detection[], score: number): Detection {
  let total = 0;
  let left = 0;
  let top = 0;
  let right = 0;
  let bottom = 0;
  const keypointCount = cluster[0].keypoints.length;
  const sums = new Float64Array(keypointCount * 2);
  for (const d of cluster) {
    const w = d.score;
    total += w;
    left += d.box.x * w;
    top += d.box.y * w;
    right += (d.box.x + d.box.width) * w;
    bottom += (d.box.y + d.box.height) * w;
    for (let k = 0; k < keypointCount; k++) {
      sums[2 * k] += d.keypoints[k].x * w;
      sums[2 * k + 1] += d.keypoints[k].y * w;
    }
  }
  const keypoints: Point[] = [];
  for (let k = 0; k < keypointCount; k++) keypoints.push({ x: sums[2 * k] / total, y: sums[2 * k + 1] / total });
  return {
    box: { x: left / total, y: top / total, width: (right - left) / total, height: (bottom - top) / total },
    score,
    keypoints,
  };
}

// ---------------------------------------------------------------------------
// Letterboxing

/**
 * How a region of the frame sits in the square model input:
 * inputPixel = (framePixel - region origin) * scale + pad.
 * Pixel coordinates are continuous, with pixel i covering [i, i+1).
 */
export interface Letterbox {
  /** Model-input pixels per frame pixel (the same on both axes). */
  scale: number;
  /** Padding left of / above the content, in model-input pixels (may be fractional). */
  padX: number;
  padY: number;
  /** Side of the square model input. */
  inputSize: number;
  /** The part of the frame that was fed to the model (the whole frame unless tiling). */
  region: Box;
}

export interface PreparedInput {
  /** inputSize × inputSize × 3, HWC, values (v / 127.5) - 1; padding is black (-1). */
  tensor: Float32Array;
  letterbox: Letterbox;
}

export function computeLetterbox(region: Box, inputSize: number): Letterbox {
  const scale = inputSize / Math.max(region.width, region.height);
  return {
    scale,
    padX: (inputSize - region.width * scale) / 2,
    padY: (inputSize - region.height * scale) / 2,
    inputSize,
    region: { ...region },
  };
}

/** Model-input normalised point (0..1) → frame pixels. */
export function normalizedToFrame(point: Point, letterbox: Letterbox): Point {
  return {
    x: letterbox.region.x + (point.x * letterbox.inputSize - letterbox.padX) / letterbox.scale,
    y: letterbox.region.y + (point.y * letterbox.inputSize - letterbox.padY) / letterbox.scale,
  };
}

/** Frame pixels → model-input normalised point; the inverse of `normalizedToFrame`. */
export function frameToNormalized(point: Point, letterbox: Letterbox): Point {
  return {
    x: ((point.x - letterbox.region.x) * letterbox.scale + letterbox.padX) / letterbox.inputSize,
    y: ((point.y - letterbox.region.y) * letterbox.scale + letterbox.padY) / letterbox.inputSize,
  };
}

/** Maps a detection from model-input normalised coordinates to frame pixels. */
export function detectionToFrame(detection: Detection, letterbox: Letterbox): Detection {
  const topLeft = normalizedToFrame({ x: detection.box.x, y: detection.box.y }, letterbox);
  const unitsToPixels = letterbox.inputSize / letterbox.scale;
  return {
    box: {
      x: topLeft.x,
      y: topLeft.y,
      width: detection.box.width * unitsToPixels,
      height: detection.box.height * unitsToPixels,
    },
    score: detection.score,
    keypoints: detection.keypoints.map((p) => normalizedToFrame(p, letterbox)),
  };
}

/**
 * Source taps of every output sample along one axis, flattened: output o reads
 * source samples indices[k] with weights[k] for k in [first[o], first[o + 1]).
 * Weights may sum to < 1 at the content edge (the rest is black padding).
 */
interface AxisTaps {
  first: Int32Array;
  indices: Int32Array;
  weights: Float32Array;
}

/**
 * Per-output-sample taps along one axis. Upscaling uses bilinear
 * interpolation; any downscaling integrates the source over each output
 * pixel's footprint (area averaging). For mild ratios (LFW 250 → 128) that is
 * close to bilinear; for strong ones (1280 → 192) it stops the aliasing that
 * 2-tap bilinear would give, where a 6.7-pixel footprint would be sampled at 2.
 */
function computeAxisTaps(
  outputLength: number,
  regionStart: number,
  regionLength: number,
  scale: number,
  pad: number,
): AxisTaps {
  const first = new Int32Array(outputLength + 1);
  const indices: number[] = [];
  const weights: number[] = [];
  for (let o = 0; o < outputLength; o++) {
    first[o] = indices.length;
    if (scale >= 1) {
      const centre = (o + 0.5 - pad) / scale;
      if (centre >= 0 && centre <= regionLength) {
        const position = Math.min(regionLength - 1, Math.max(0, centre - 0.5));
        const lower = Math.floor(position);
        const fraction = position - lower;
        const upper = Math.min(regionLength - 1, lower + 1);
        indices.push(regionStart + lower, regionStart + upper);
        weights.push(1 - fraction, fraction);
      }
    } else {
      const footprintStart = (o - pad) / scale;
      const footprintEnd = (o + 1 - pad) / scale;
      const footprint = footprintEnd - footprintStart;
      const from = Math.max(0, footprintStart);
      const to = Math.min(regionLength, footprintEnd);
      for (let i = Math.floor(from); i < to; i++) {
        const overlap = Math.min(to, i + 1) - Math.max(from, i);
        if (overlap > 1e-9) {
          indices.push(regionStart + i);
          weights.push(overlap / footprint);
        }
      }
    }
  }
  first[outputLength] = indices.length;
  return { first, indices: Int32Array.from(indices), weights: Float32Array.from(weights) };
}

/** Taps repeat for every frame of a stream and every photo of one size: computing them took half the resampling time. */
const tapCache = new Map<string, AxisTaps>();

function axisTaps(
  outputLength: number,
  regionStart: number,
  regionLength: number,
  scale: number,
  pad: number,
): AxisTaps {
  const key = `${outputLength}:${regionStart}:${regionLength}:${scale}:${pad}`;
  let taps = tapCache.get(key);
  if (!taps) {
    if (tapCache.size >= 64) tapCache.clear(); // photos of many sizes: bounded, never a leak
    taps = computeAxisTaps(outputLength, regionStart, regionLength, scale, pad);
    tapCache.set(key, taps);
  }
  return taps;
}

function checkRegion(image: RgbImage, area: Box): void {
  if (
    area.width <= 0 ||
    area.height <= 0 ||
    area.x < 0 ||
    area.y < 0 ||
    area.x + area.width > image.width ||
    area.y + area.height > image.height ||
    ![area.x, area.y, area.width, area.height].every(Number.isInteger)
  ) {
    throw new Error(`region ${JSON.stringify(area)} is not an integer box inside ${image.width}×${image.height}`);
  }
}

/** The letterbox of `region` (default: the whole frame) in the model input, and the taps along each axis. */
function resamplingPlan(image: RgbImage, variant: BlazeFaceVariant, region?: Box) {
  const inputSize = BLAZEFACE_MODELS[variant].inputSize;
  const area = region ?? { x: 0, y: 0, width: image.width, height: image.height };
  checkRegion(image, area);
  const letterbox = computeLetterbox(area, inputSize);
  const columns = axisTaps(inputSize, area.x, area.width, letterbox.scale, letterbox.padX);
  const rows = axisTaps(inputSize, area.y, area.height, letterbox.scale, letterbox.padY);
  return { inputSize, letterbox, columns, rows };
}

/**
 * Resamples `region` (default: whole frame) of `image` into the square input
 * of `variant`, aspect ratio kept, centred, black padding, as MediaPipe's
 * ImageToTensorCalculator does with keep_aspect_ratio and BORDER_ZERO.
 * The region must lie inside the image and have integer bounds.
 */
export function prepareInput(image: RgbImage, variant: BlazeFaceVariant, region?: Box): PreparedInput {
  const { inputSize, letterbox, columns, rows } = resamplingPlan(image, variant, region);

  // Horizontal pass over the source rows that some output row reads, then a
  // vertical pass: separable, so the cost is linear in the taps rather than
  // their product.
  const rowLength = inputSize * 3;
  const firstRow = rows.indices.length ? rows.indices.reduce((a, b) => Math.min(a, b)) : 0;
  const lastRow = rows.indices.length ? rows.indices.reduce((a, b) => Math.max(a, b)) : -1;
  const rowBuffer = new Float32Array(Math.max(0, lastRow - firstRow + 1) * rowLength);
  const src = image.data;
  const { first: colFirst, indices: colIndex, weights: colWeight } = columns;
  for (let y = firstRow; y <= lastRow; y++) {
    const sourceRow = y * image.width * 3;
    let q = (y - firstRow) * rowLength;
    for (let ox = 0; ox < inputSize; ox++, q += 3) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let t = colFirst[ox]; t < colFirst[ox + 1]; t++) {
        const p = sourceRow + colIndex[t] * 3;
        const w = colWeight[t];
        r += src[p] * w;
        g += src[p + 1] * w;
        b += src[p + 2] * w;
      }
      rowBuffer[q] = r;
      rowBuffer[q + 1] = g;
      rowBuffer[q + 2] = b;
    }
  }

  const tensor = new Float32Array(inputSize * rowLength);
  for (let oy = 0; oy < inputSize; oy++) {
    const out = oy * rowLength;
    for (let t = rows.first[oy]; t < rows.first[oy + 1]; t++) {
      const from = (rows.indices[t] - firstRow) * rowLength;
      const w = rows.weights[t];
      for (let i = 0; i < rowLength; i++) tensor[out + i] += rowBuffer[from + i] * w;
    }
    for (let i = 0; i < rowLength; i++) tensor[out + i] = tensor[out + i] / 127.5 - 1;
  }
  return { tensor, letterbox };
}

/**
 * The same input as `prepareInput`, computed natively on the libuv thread
 * pool (native/src/resample.cc) with the same cached taps: faster, hand-over
 * included, than the same resampling in JavaScript (on the event loop) or
 * through libvips (sharp), whose fixed cost per call dominates at this size
 * (the figures are in the README's design notes).
 */
export async function prepareInputNative(
  image: RgbImage,
  variant: BlazeFaceVariant,
  region?: Box,
): Promise<PreparedInput> {
  const { letterbox, columns, rows } = resamplingPlan(image, variant, region);
  const pixels =
    image.data.length === image.width * image.height * 3
      ? image.data
      : image.data.subarray(0, image.width * image.height * 3);
  const tensor = await resampleRgb(pixels, image.width, { x: columns, y: rows, scale: 1 / 127.5, offset: -1 });
  return { tensor, letterbox };
}

// ---------------------------------------------------------------------------
// Detector

/**
 * Runs the model on one prepared input and resolves its output tensors in
 * model order. For both shipped models that is regressors [1,N,16] then
 * classificators [1,N,1] (tensor names "regressors"/"classificators" and
 * "reshaped_regressor_face_4"/"reshaped_classifier_face_4"); the detector
 * tells them apart by length anyway, so a runtime returning them swapped works.
 */
export type RunModel = (input: Float32Array) => Promise<Float32Array[]>;

export interface FaceDetectorOptions {
  /** Minimum sigmoid score. MediaPipe uses 0.5 (short) and 0.6 (full). */
  minScore: number;
  /** IoU above which detections are merged by weighted NMS. */
  nmsIoU: number;
  /** Drop faces whose box is smaller than this (larger side, frame pixels). */
  minFaceSize: number;
  /** Keep at most this many faces, best first. */
  maxFaces: number;
  /**
   * Also run the model on overlapping square tiles of the frame and merge,
   * for faces too small to be found in the whole frame squeezed into the
   * input. Costs one inference per tile.
   */
  tiles: boolean;
  /** Tile side as a fraction of the frame's shorter side (tiles only). */
  tileFraction: number;
  /** Minimum overlap between neighbouring tiles, as a fraction of the tile side. */
  tileOverlap: number;
}

export const DEFAULT_DETECTOR_OPTIONS: Readonly<FaceDetectorOptions> = {
  minScore: 0.5,
  nmsIoU: 0.3,
  minFaceSize: 0,
  maxFaces: Infinity,
  tiles: false,
  tileFraction: 1,
  tileOverlap: 0.25,
};

/**
 * Square tiles covering the frame with at least `overlap` (fraction of the
 * side) between neighbours, evenly spread, integer bounds. A face narrower
 * than the overlap lies whole inside at least one tile.
 */
export function planTiles(width: number, height: number, tileSide: number, overlap: number): Box[] {
  const side = Math.max(1, Math.min(Math.round(tileSide), width, height));
  const positions = (length: number): number[] => {
    if (length <= side) return [0];
    const step = side * (1 - overlap);
    const count = Math.ceil((length - side) / step) + 1;
    const spacing = (length - side) / (count - 1);
    return Array.from({ length: count }, (_, i) => Math.round(i * spacing));
  };
  const tiles: Box[] = [];
  for (const y of positions(height)) for (const x of positions(width)) tiles.push({ x, y, width: side, height: side });
  return tiles;
}

function splitOutputs(
  outputs: Float32Array[],
  spec: BlazeFaceModelSpec,
): { regressors: Float32Array; scores: Float32Array } {
  const regressors = outputs.find((o) => o.length === spec.numBoxes * spec.numCoords);
  const scores = outputs.find((o) => o.length === spec.numBoxes);
  if (!regressors || !scores) {
    throw new Error(
      `model outputs have lengths [${outputs.map((o) => o.length).join(', ')}]; expected ` +
        `${spec.numBoxes * spec.numCoords} (regressors) and ${spec.numBoxes} (scores)`,
    );
  }
  return { regressors, scores };
}

/** True if the box reaches within `margin` pixels of a tile edge that is not also a frame edge. */
function touchesInnerTileEdge(box: Box, tile: Box, frameWidth: number, frameHeight: number, margin: number): boolean {
  return (
    (tile.x > 0 && box.x < tile.x + margin) ||
    (tile.y > 0 && box.y < tile.y + margin) ||
    (tile.x + tile.width < frameWidth && box.x + box.width > tile.x + tile.width - margin) ||
    (tile.y + tile.height < frameHeight && box.y + box.height > tile.y + tile.height - margin)
  );
}

export class FaceDetector {
  readonly options: Readonly<FaceDetectorOptions>;
  private readonly spec: BlazeFaceModelSpec;
  private readonly anchors: Anchor[];

  constructor(
    private readonly runModel: RunModel,
    readonly variant: BlazeFaceVariant,
    options: Partial<FaceDetectorOptions> = {},
  ) {
    this.options = { ...DEFAULT_DETECTOR_OPTIONS, ...options };
    this.spec = BLAZEFACE_MODELS[variant];
    this.anchors = anchorsFor(variant);
  }

  /** Faces in frame pixel coordinates, best score first. */
  async detect(image: RgbImage): Promise<Detection[]> {
    const whole: Box = { x: 0, y: 0, width: image.width, height: image.height };
    let merged = await this.detectInRegion(image, whole);

    if (this.options.tiles) {
      const side = Math.min(image.width, image.height) * this.options.tileFraction;
      const tiles = planTiles(image.width, image.height, side, this.options.tileOverlap);
      // One tile equal to the frame adds nothing.
      if (tiles.length > 1 || tiles[0].width !== image.width || tiles[0].height !== image.height) {
        // A face smaller than the tile overlap lies whole in some tile, seen
        // there at a higher resolution: take it from the tiles only, since
        // full-frame and tile boxes of a small face can differ too much in
        // size for IoU to pair them. The full frame keeps the larger faces.
        const overlapPx = tiles[0].width * this.options.tileOverlap;
        merged = merged.filter((d) => Math.max(d.box.width, d.box.height) >= overlapPx);
        const margin = 2;
        for (const tile of tiles) {
          const found = await this.detectInRegion(image, tile);
          // A face cut by an inner tile edge is whole in a neighbouring tile
          // (or in the full frame); its clipped box would skew the merge.
          merged = merged.concat(
            found.filter((d) => !touchesInnerTileEdge(d.box, tile, image.width, image.height, margin)),
          );
        }
        merged = weightedNonMaxSuppression(merged, this.options.nmsIoU);
      }
    }

    return merged
      .filter((d) => Math.max(d.box.width, d.box.height) >= this.options.minFaceSize)
      .sort((a, b) => b.score - a.score)
      .slice(0, this.options.maxFaces);
  }

  private async detectInRegion(image: RgbImage, region: Box): Promise<Detection[]> {
    const { tensor, letterbox } = await prepareInputNative(image, this.variant, region);
    const { regressors, scores } = splitOutputs(await this.runModel(tensor), this.spec);
    const decoded = decodeDetections(regressors, scores, this.anchors, this.variant, {
      minScore: this.options.minScore,
    });
    // NMS in normalised input space first, as MediaPipe does, then map out.
    return weightedNonMaxSuppression(decoded, this.options.nmsIoU).map((d) => detectionToFrame(d, letterbox));
  }
}
