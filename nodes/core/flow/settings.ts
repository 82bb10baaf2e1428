/**
 * Every number a node's edit dialog (or a message, or the CLI) sets, with its
 * default and the range that makes sense, in one table: the nodes parse their
 * config with it, the example flows and the add-on's generated flows take
 * their values from it, and a test checks that each node's .html offers the
 * same defaults.
 */
import { DEFAULT_QUALITY_THRESHOLDS } from '../align/quality';
import { CodedError } from '../common/errors';
import { DEFAULT_MARGIN, DEFAULT_THRESHOLD } from '../identify/imprint';

export interface NumericSetting {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly integer?: boolean;
}

const setting = (value: number, min: number, max: number, integer = false): NumericSetting =>
  Object.freeze({ default: value, min, max, ...(integer ? { integer } : {}) });

export const SETTINGS = {
  'camera-in': {
    fps: setting(5, 0.1, 60),
    maxWidth: setting(1280, 64, 7680, true),
    stallSeconds: setting(10, 1, 3600),
  },
  align: {
    minScore: setting(0.5, 0.05, 1),
    maxFaces: setting(10, 1, 100, true),
    minFaceSize: setting(0, 0, 10000),
    minSharpness: setting(DEFAULT_QUALITY_THRESHOLDS.minSharpness, 0, 100000),
    maxYaw: setting(DEFAULT_QUALITY_THRESHOLDS.maxAbsYawDeg, 0, 90),
    /** A new face's first frames aligned on the mesh and embedded with the mirror image (first-frames.ts); 0: none. */
    carefulFrames: setting(3, 0, 100, true),
  },
  'edgetpu-embed': {
    reuseMs: setting(200, 0, 10000),
  },
  'edgetpu-device': {
    /** 0: half the cores (see edgetpu-device.ts). */
    threads: setting(0, 0, 64, true),
  },
  'face-gallery': {
    threshold: setting(DEFAULT_THRESHOLD, 0, 1),
    margin: setting(DEFAULT_MARGIN, 0, 1),
  },
  'imprint-classify': {
    confirmFrames: setting(3, 1, 1000, true),
    unknownFrames: setting(5, 1, 1000, true),
    cooldown: setting(60, 0, 86400),
    maxMissed: setting(1.5, 0, 3600),
  },
  enrol: {
    minPhotos: setting(3, 1, 100, true),
    walkupSeconds: setting(10, 1, 300),
  },
  'ha-face-entities': {
    offDelay: setting(30, 0, 86400),
  },
} as const satisfies Record<string, Record<string, NumericSetting>>;

export type NodeType = keyof typeof SETTINGS;

/** A default as the edit dialog stores it: a string ('' where the default is "automatic"). */
export function dialogDefault(type: NodeType, field: string): string {
  const value = (SETTINGS[type] as Record<string, NumericSetting>)[field]?.default;
  if (value === undefined) throw new Error(`no setting ${type}.${field}`);
  return String(value);
}

/** A config field that does not hold what it should. */
export class ConfigError extends CodedError<'ERR_CONFIG'> {
  constructor(message: string) {
    super('ERR_CONFIG', message);
  }
}

export interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

/**
 * A number from a config field or a message property: blank (undefined, null,
 * '') gives the fallback; anything else must be a finite number within the
 * rule, or a ConfigError naming the field says what is allowed.
 */
export function numberSetting(label: string, value: unknown, fallback: number, rule: NumberRule = {}): number {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) return fallback;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : NaN;
  const range = `${rule.integer ? 'a whole number' : 'a number'}${rangeText(rule)}`;
  if (!Number.isFinite(n) || (rule.integer && !Number.isInteger(n))) {
    throw new ConfigError(`${label} must be ${range} (got ${JSON.stringify(value)})`);
  }
  if ((rule.min !== undefined && n < rule.min) || (rule.max !== undefined && n > rule.max)) {
    throw new ConfigError(`${label} must be ${range} (got ${n})`);
  }
  return n;
}

function rangeText(rule: NumberRule): string {
  if (rule.min !== undefined && rule.max !== undefined) return ` from ${rule.min} to ${rule.max}`;
  if (rule.min !== undefined) return ` of at least ${rule.min}`;
  if (rule.max !== undefined) return ` of at most ${rule.max}`;
  return '';
}
