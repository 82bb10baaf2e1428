/**
 * The message properties the nodes read and write, typed once. The node help
 * (nodes/<type>/locales/en-US/<type>.html) documents the same fields.
 */
import type { QualityReason } from '../align/quality';
import type { Box, Point } from '../media/image';
import type { PixelRef } from '../media/pixel-store';

/** A camera frame (camera-in → align): the pixels stay in the pixel store. */
export interface FrameRef extends PixelRef {
  kind: 'frame';
  /** The camera-in node's name (or id): tracks and events are per camera. */
  camera: string;
  seq: number;
  /** Capture time, ms since the epoch. */
  timestamp: number;
  /**
   * Numbers the stream's continuous stretches: it changes at a hard cut in
   * the picture and when the stream restarts, so trackers never carry a face
   * across it.
   */
  scene?: number;
}

export interface FaceQualitySummary {
  ok: boolean;
  reasons: QualityReason[];
  sharpness: number;
  yawDeg: number;
  interOcularPx: number;
  brightness: number;
}

export interface FaceIdentity {
  name: string;
  known: boolean;
  cosine: number;
  confidence: number;
  unknownReason: string | null;
}

/** One face (align → edgetpu-embed → imprint-classify). */
export interface FaceRecord {
  box: Box;
  score: number;
  keypoints: Point[];
  /** The aligned 112x112 crop. */
  crop: PixelRef;
  quality: FaceQualitySummary;
  /**
   * Set by align on a photo's faces and a new face's first frames: the crop
   * is aligned on face mesh points (`alignedOn`), and edgetpu-embed embeds
   * it with its mirror image. The decisions rest on these frames.
   */
  careful?: boolean;
  /** Which points the crop was aligned on: 'mesh' (five face mesh points) or 'keypoints' (BlazeFace's). */
  alignedOn?: 'mesh' | 'keypoints';
  /** Set by edgetpu-embed: the L2-normalised embedding (faces that passed the quality gate). */
  embedding?: number[];
  /** Set by imprint-classify. */
  identity?: FaceIdentity;
  /** Set by a node that could not use this face (a missing or expired crop, a bad embedding): why. */
  error?: { code: string; message: string };
}

export interface EmbedderInfo {
  id: string;
  backend: string;
  msPerFace: number;
}

/** What flows along the recognition wires. */
export interface FaceMessage {
  _msgid?: string;
  topic?: string;
  payload?: unknown;
  frame?: FrameRef;
  faces?: FaceRecord[];
  embedder?: EmbedderInfo;
  [key: string]: unknown;
}

/** imprint-classify's first output: one message per visit decision. */
export interface VisitPayload {
  /** 'ignored': a person marked ignored in the face library (recognised, but no person trigger, no unknown alert). */
  event: 'recognized' | 'unknown' | 'ignored' | 'left';
  name: string;
  camera: string;
  trackId: string;
  /** ISO time of the event. */
  time: string;
  cosine?: number;
  confidence?: number;
  box?: Box;
  /** For 'left': how long the visit lasted, ms. */
  durationMs?: number;
  /** For 'recognized' / 'unknown': the name this track was announced as before (the decision was corrected). */
  revises?: string;
  /** For 'left': the visit closed because its track was decided again, as this name. */
  revisedTo?: string;
}

/** msg.payload for the enrol node. */
export type EnrolCommand =
  /** mode: 'auto' (default), 'add' (to the person the name resembles) or 'new' (a new person despite a similar name). */
  | { action: 'enrol'; name: string; images: (Buffer | string)[]; minPhotos?: number; mode?: 'auto' | 'add' | 'new' }
  | { action: 'forget'; name: string }
  | { action: 'rename'; name: string; newName: string }
  | { action: 'list' }
  | {
      action: 'walkup';
      name: string;
      camera: string;
      seconds?: number;
      maxPhotos?: number;
      minPhotos?: number;
      mode?: 'auto' | 'add' | 'new';
    };
