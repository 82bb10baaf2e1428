/**
 * The calibration record: what calibration measured, as numbers (activation
 * ranges, channel equalisation scales), never the photos. Committed next to
 * the build script, it makes the int8 model at build time from the float one,
 * the same bytes every time (`result.sha256` says which).
 */
import { createHash } from 'crypto';
import type { QuantizeParameters } from './quantize';

export const RECORD_FORMAT = 'coral-face-calibration';
export const RECORD_VERSION = 1;

export interface CalibrationRecord {
  format: typeof RECORD_FORMAT;
  version: typeof RECORD_VERSION;
  /** The float model the numbers belong to. */
  model: { file: string; sha256: string; bytes: number };
  /** How the numbers were measured: the command, the photos (described, not included), the range method. */
  calibration: { command: string; source: string; samples: number; method: string };
  /** Activation ranges [low, high] by tensor key. */
  ranges: Record<string, [number, number]>;
  /** Channel equalisation scales by pair key, as base64 of little-endian float32. */
  equalization: Record<string, string>;
  /** The int8 model these numbers give (with this version of the quantiser). */
  result: { sha256: string; bytes: number };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function encodeScales(scales: number[]): string {
  return Buffer.from(Float32Array.from(scales).buffer).toString('base64');
}

function decodeScales(text: string): number[] {
  const bytes = Buffer.from(text, 'base64');
  return Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
}

export function makeRecord(fields: {
  modelFile: string;
  floatModel: Uint8Array;
  int8Model: Uint8Array;
  command: string;
  source: string;
  samples: number;
  method: string;
  parameters: QuantizeParameters;
}): CalibrationRecord {
  return {
    format: RECORD_FORMAT,
    version: RECORD_VERSION,
    model: { file: fields.modelFile, sha256: sha256(fields.floatModel), bytes: fields.floatModel.length },
    calibration: { command: fields.command, source: fields.source, samples: fields.samples, method: fields.method },
    ranges: fields.parameters.ranges,
    equalization: Object.fromEntries(
      Object.entries(fields.parameters.equalization ?? {}).map(([k, v]) => [k, encodeScales(v)]),
    ),
    result: { sha256: sha256(fields.int8Model), bytes: fields.int8Model.length },
  };
}

/** Checks a parsed record and returns the quantiser's parameters from it. */
export function recordParameters(record: unknown, floatModel?: Uint8Array): QuantizeParameters {
  const r = record as Partial<CalibrationRecord> | null;
  if (!r || r.format !== RECORD_FORMAT)
    throw new Error(`not a calibration record (format "${RECORD_FORMAT}" expected)`);
  if (r.version !== RECORD_VERSION)
    throw new Error(
      `calibration record version ${r.version} is not supported (this quantiser reads ${RECORD_VERSION})`,
    );
  if (!r.ranges || typeof r.ranges !== 'object' || !r.model) throw new Error('the calibration record has no ranges');
  for (const [key, range] of Object.entries(r.ranges)) {
    if (!Array.isArray(range) || range.length !== 2 || !range.every(Number.isFinite) || range[0] > range[1]) {
      throw new Error(`the calibration record's range for "${key}" is not [low, high]`);
    }
  }
  if (floatModel && sha256(floatModel) !== r.model.sha256) {
    throw new Error(
      `the calibration record was made for another float model (${r.model.file}, sha256 ${r.model.sha256.slice(0, 12)}…): calibrate this one`,
    );
  }
  return {
    ranges: r.ranges,
    equalization: Object.fromEntries(Object.entries(r.equalization ?? {}).map(([k, v]) => [k, decodeScales(v)])),
  };
}
