/**
 * Conversions between what callers hand us and what a tensor holds.
 *
 * A quantised (int8/uint8) input accepts either raw values in its own dtype
 * (Int8Array / Uint8Array, passed through untouched) or a Float32Array, which
 * is quantised with the tensor's scale and zero point. Outputs come back raw
 * from `invokeRaw` or dequantised to Float32Array from `invoke`.
 */
import type { DType, NativeTensorInfo } from './addon';
import { RuntimeError } from './errors';

export interface TensorInfo {
  readonly index: number;
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** 0 for float tensors. */
  readonly scale: number;
  readonly zeroPoint: number;
  readonly byteLength: number;
  /** True for int8/uint8 tensors with a scale: Float32Array input is quantised, output dequantised. */
  readonly quantized: boolean;
}

/** Raw data in a tensor's own dtype. */
export type RawTensorData =
  Float32Array | Int8Array | Uint8Array | Int16Array | Int32Array | BigInt64Array | Float64Array;

/**
 * An input: raw data of the tensor's dtype, or a Float32Array for a quantised
 * int8/uint8 tensor (quantised here).
 */
export type InputData = RawTensorData;

export function describe(info: NativeTensorInfo): TensorInfo {
  const quantized = (info.dtype === 'int8' || info.dtype === 'uint8') && info.scale > 0;
  return Object.freeze({ ...info, shape: Object.freeze([...info.shape]), quantized });
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function rawMatches(dtype: DType, data: InputData): boolean {
  switch (dtype) {
    case 'float32':
      return data instanceof Float32Array;
    case 'int8':
      return data instanceof Int8Array;
    case 'uint8':
      return data instanceof Uint8Array; // Buffer is a Uint8Array
    case 'int16':
      return data instanceof Int16Array;
    case 'int32':
      return data instanceof Int32Array;
    case 'int64':
      return data instanceof BigInt64Array;
    case 'float64':
      return data instanceof Float64Array;
    default:
      return false;
  }
}

export function quantize(values: Float32Array, info: TensorInfo): Int8Array | Uint8Array {
  const [lo, hi] = info.dtype === 'int8' ? [-128, 127] : [0, 255];
  const out = info.dtype === 'int8' ? new Int8Array(values.length) : new Uint8Array(values.length);
  const inverse = 1 / info.scale;
  for (let i = 0; i < values.length; i++) {
    const q = Math.round(values[i] * inverse) + info.zeroPoint;
    out[i] = q < lo ? lo : q > hi ? hi : q;
  }
  return out;
}

export function dequantize(raw: Int8Array | Uint8Array, info: TensorInfo): Float32Array {
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = (raw[i] - info.zeroPoint) * info.scale;
  return out;
}

/** Checks one input against its tensor and returns the bytes to copy in. */
export function prepareInput(data: InputData, info: TensorInfo): ArrayBufferView {
  if (!ArrayBuffer.isView(data)) {
    throw new RuntimeError('ERR_INPUT_TYPE', `input ${info.index} ("${info.name}") must be a typed array`);
  }
  const expected = elementCount(info.shape);
  if (data.length !== expected) {
    throw new RuntimeError(
      'ERR_INPUT_SIZE',
      `input ${info.index} ("${info.name}") has shape [${info.shape.join(',')}] = ${expected} values, got ${data.length}; ` +
        'resize the input (resizeInput) for another batch size',
    );
  }
  if (rawMatches(info.dtype, data)) return data;
  if (info.quantized && data instanceof Float32Array) return quantize(data, info);
  const given = data.constructor.name;
  const accepted = info.quantized ? `Float32Array (quantised for you) or raw ${info.dtype}` : info.dtype;
  throw new RuntimeError(
    'ERR_INPUT_DTYPE',
    `input ${info.index} ("${info.name}") is ${info.dtype}; got ${given}, expected ${accepted}`,
  );
}

export function rawOutput(buffer: ArrayBuffer, info: TensorInfo): RawTensorData {
  switch (info.dtype) {
    case 'float32':
      return new Float32Array(buffer);
    case 'int8':
      return new Int8Array(buffer);
    case 'uint8':
      return new Uint8Array(buffer);
    case 'int16':
      return new Int16Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    case 'int64':
      return new BigInt64Array(buffer);
    case 'float64':
      return new Float64Array(buffer);
    default:
      return new Uint8Array(buffer);
  }
}

export function floatOutput(raw: RawTensorData, info: TensorInfo): Float32Array {
  if (raw instanceof Float32Array) return raw;
  if (info.quantized && (raw instanceof Int8Array || raw instanceof Uint8Array)) return dequantize(raw, info);
  if (raw instanceof BigInt64Array) return Float32Array.from(raw, Number);
  return Float32Array.from(raw as ArrayLike<number>);
}
