/**
 * Checks of the faces a message carries (msg.faces), for the nodes that read
 * them (edgetpu-embed, imprint-classify). A message is built by align, but a
 * flow may have rewritten it (a change node, a function, a message replayed
 * from a file): each face that cannot be used gets a coded reason, the others
 * are still handled, and the node reports the bad ones with one error.
 */
import { CodedError } from '../common/errors';
import type { Box } from '../media/image';
import { isPixelRef, type PixelStore } from '../media/pixel-store';

export type FaceProblemCode =
  /** Not an object, or without a usable box: cannot be embedded nor tracked. */
  | 'ERR_FACE_INVALID'
  /** No crop reference, or a reference to something else than an aligned crop. */
  | 'ERR_FACE_NO_CROP'
  /** The crop's pixels were evicted from the store (the flow held the message too long). */
  | 'ERR_PIXELS_EXPIRED'
  /** An embedding that is not a list of finite numbers. */
  | 'ERR_EMBEDDING_INVALID'
  /** An embedding of another length than the gallery's model gives. */
  | 'ERR_EMBEDDING_LENGTH';

export interface FaceProblem {
  /** Position in msg.faces. */
  index: number;
  code: FaceProblemCode;
  message: string;
}

/** One error for a message with bad faces: the good ones were handled, `faces` says what was wrong with the others. */
export class BadFacesError extends CodedError<'ERR_BAD_FACES'> {
  constructor(
    readonly faces: FaceProblem[],
    total: number,
  ) {
    const shown = faces
      .slice(0, 3)
      .map((p) => `${p.message} [${p.code}]`)
      .join('; ');
    const more = faces.length > 3 ? `; and ${faces.length - 3} more` : '';
    super('ERR_BAD_FACES', `${faces.length} of ${total} faces skipped: ${shown}${more}`);
  }
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string')
    return `a string ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value); // NaN, Infinity, true
  return typeof value;
}

function isBox(value: unknown): value is Box {
  const b = value as Box;
  return (
    !!b &&
    typeof b === 'object' &&
    [b.x, b.y, b.width, b.height].every((n) => typeof n === 'number' && Number.isFinite(n)) &&
    b.width >= 0 &&
    b.height >= 0
  );
}

/** A face must be an object with a box (tracking and embedding reuse match faces by box). */
export function faceProblem(face: unknown, index: number): FaceProblem | null {
  if (!face || typeof face !== 'object' || Array.isArray(face)) {
    return { index, code: 'ERR_FACE_INVALID', message: `faces[${index}] is ${describe(face)}, not a face from align` };
  }
  if (!isBox((face as { box?: unknown }).box)) {
    return { index, code: 'ERR_FACE_INVALID', message: `faces[${index}] has no box { x, y, width, height }` };
  }
  return null;
}

/** The face's crop must be a reference to an aligned size x size crop still in the store. */
export function cropProblem(
  face: { crop?: unknown },
  index: number,
  store: PixelStore,
  size: number,
): FaceProblem | null {
  const crop = face.crop;
  if (!isPixelRef(crop)) {
    return {
      index,
      code: 'ERR_FACE_NO_CROP',
      message: `faces[${index}] has no crop reference (the faces must come from align)`,
    };
  }
  if (crop.width !== size || crop.height !== size) {
    return {
      index,
      code: 'ERR_FACE_NO_CROP',
      message: `faces[${index}].crop is ${crop.width}x${crop.height}, not an aligned ${size}x${size} crop`,
    };
  }
  if (!store.has(crop)) {
    return {
      index,
      code: 'ERR_PIXELS_EXPIRED',
      message: `faces[${index}].crop ${crop.id} is no longer available (the flow held it too long)`,
    };
  }
  return null;
}

/**
 * An embedding, when there is one, must be `dimension` finite numbers: a NaN
 * compares false with every threshold, so it would pass the open-set test
 * and name someone.
 */
export function embeddingProblem(embedding: unknown, index: number, dimension: number): FaceProblem | null {
  const isList = Array.isArray(embedding) || embedding instanceof Float32Array || embedding instanceof Float64Array;
  if (!isList) {
    return {
      index,
      code: 'ERR_EMBEDDING_INVALID',
      message: `faces[${index}].embedding is ${describe(embedding)}, not a list of numbers`,
    };
  }
  const values = embedding as ArrayLike<unknown>;
  if (values.length !== dimension) {
    return {
      index,
      code: 'ERR_EMBEDDING_LENGTH',
      message: `faces[${index}].embedding has ${values.length} values, the gallery's model gives ${dimension}`,
    };
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      return {
        index,
        code: 'ERR_EMBEDDING_INVALID',
        message: `faces[${index}].embedding[${i}] is ${describe(v)}, not a finite number`,
      };
    }
  }
  return null;
}
