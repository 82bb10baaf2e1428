// Builds tiny single-operator .tflite models at test time, so runtime tests
// can check numerics, quantisation handling, unresolved custom ops and
// concurrency without shipping binary fixtures.
//
// Written against tensorflow/lite/schema/schema.fbs with the runtime
// flatbuffers Builder (no generated code), so field ids below are the schema's
// declaration order; a union field takes two ids (its _type, then its value).
import { Builder } from 'flatbuffers';

type Offset = number;

/** tflite.TensorType (schema.fbs). Only the types these builders emit. */
export const TensorType = {
  FLOAT32: 0,
  INT32: 2,
  UINT8: 3,
  INT8: 9,
} as const;
export type TensorTypeCode = (typeof TensorType)[keyof typeof TensorType];

/** tflite.BuiltinOperator (schema.fbs). */
export const BuiltinOperator = {
  ADD: 0,
  DEQUANTIZE: 6,
  CUSTOM: 32,
  QUANTIZE: 114,
} as const;
export type BuiltinOperatorCode = (typeof BuiltinOperator)[keyof typeof BuiltinOperator];

// tflite.BuiltinOptions union member index of AddOptions (NONE is 0).
const BUILTIN_OPTIONS_ADD = 11;
const SCHEMA_VERSION = 3;
const FILE_IDENTIFIER = 'TFL3';

export type QuantizedDtype = 'int8' | 'uint8';

export interface TensorSpec {
  name: string;
  shape: number[];
  type: TensorTypeCode;
  /** Per-tensor affine quantisation: real = (q - zeroPoint) * scale. */
  quantization?: { scale: number; zeroPoint: number };
}

export interface SingleOpModelSpec {
  tensors: TensorSpec[];
  /** Indices into tensors. */
  inputs: number[];
  outputs: number[];
  op: {
    builtin: BuiltinOperatorCode;
    /** Required when builtin is CUSTOM. */
    customCode?: string;
    version?: number;
    /** Builtin-options union: member index and a builder for its table. */
    options?: { type: number; build: (b: Builder) => Offset };
  };
  description?: string;
}

export interface QuantizedModelOptions {
  shape: number[];
  scale: number;
  zeroPoint: number;
  dtype: QuantizedDtype;
}

// ------------------------------------------------------------ primitives --

// Flatbuffers are built back to front, hence the reversed loops.
function int32Vector(b: Builder, values: readonly number[]): Offset {
  b.startVector(4, values.length, 4);
  for (let i = values.length - 1; i >= 0; i--) b.addInt32(values[i]);
  return b.endVector();
}

function int64Vector(b: Builder, values: readonly number[]): Offset {
  b.startVector(8, values.length, 8);
  for (let i = values.length - 1; i >= 0; i--) b.addInt64(BigInt(values[i]));
  return b.endVector();
}

function float32Vector(b: Builder, values: readonly number[]): Offset {
  b.startVector(4, values.length, 4);
  for (let i = values.length - 1; i >= 0; i--) b.addFloat32(values[i]);
  return b.endVector();
}

function offsetVector(b: Builder, offsets: readonly Offset[]): Offset {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]);
  return b.endVector();
}

// ---------------------------------------------------------------- tables --

function quantizationTable(b: Builder, q: { scale: number; zeroPoint: number }): Offset {
  const scale = float32Vector(b, [q.scale]);
  const zeroPoint = int64Vector(b, [q.zeroPoint]);
  // QuantizationParameters: min 0, max 1, scale 2, zero_point 3,
  // details_type 4, details 5, quantized_dimension 6.
  b.startObject(7);
  b.addFieldOffset(2, scale, 0);
  b.addFieldOffset(3, zeroPoint, 0);
  return b.endObject();
}

function tensorTable(b: Builder, t: TensorSpec): Offset {
  const shape = int32Vector(b, t.shape);
  const name = b.createString(t.name);
  const quantization = t.quantization ? quantizationTable(b, t.quantization) : 0;
  // Tensor: shape 0, type 1, buffer 2, name 3, quantization 4. buffer stays 0,
  // the schema's always-present empty buffer, as no tensor here is constant.
  b.startObject(5);
  b.addFieldOffset(0, shape, 0);
  b.addFieldInt8(1, t.type, TensorType.FLOAT32);
  b.addFieldOffset(3, name, 0);
  if (quantization !== 0) b.addFieldOffset(4, quantization, 0);
  return b.endObject();
}

function operatorCodeTable(b: Builder, op: SingleOpModelSpec['op']): Offset {
  const customCode = op.customCode !== undefined ? b.createString(op.customCode) : 0;
  // OperatorCode: deprecated_builtin_code 0 (byte), custom_code 1, version 2,
  // builtin_code 3 (int). Readers take the larger of the two codes, and
  // pre-2.4 readers only know the byte, so both carry the code (all < 127).
  b.startObject(4);
  b.addFieldInt8(0, op.builtin, 0);
  if (customCode !== 0) b.addFieldOffset(1, customCode, 0);
  b.addFieldInt32(2, op.version ?? 1, 1);
  b.addFieldInt32(3, op.builtin, 0);
  return b.endObject();
}

function operatorTable(b: Builder, spec: SingleOpModelSpec, tensorInputs: number[], tensorOutputs: number[]): Offset {
  const inputs = int32Vector(b, tensorInputs);
  const outputs = int32Vector(b, tensorOutputs);
  const options = spec.op.options ? spec.op.options.build(b) : 0;
  // Operator: opcode_index 0, inputs 1, outputs 2, builtin_options_type 3,
  // builtin_options 4.
  b.startObject(5);
  b.addFieldInt32(0, 0, 0);
  b.addFieldOffset(1, inputs, 0);
  b.addFieldOffset(2, outputs, 0);
  if (spec.op.options) {
    b.addFieldInt8(3, spec.op.options.type, 0);
    b.addFieldOffset(4, options, 0);
  }
  return b.endObject();
}

function validate(spec: SingleOpModelSpec): void {
  const n = spec.tensors.length;
  for (const t of spec.tensors) {
    if (!t.shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new RangeError(`tensor ${t.name}: shape must be positive integers, got [${t.shape}]`);
    }
  }
  for (const i of [...spec.inputs, ...spec.outputs]) {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`tensor index ${i} out of range`);
  }
  if (spec.op.builtin === BuiltinOperator.CUSTOM && !spec.op.customCode) {
    throw new RangeError('a CUSTOM operator needs a customCode');
  }
}

/**
 * Serialises a model with one subgraph holding one operator that reads
 * spec.inputs and writes spec.outputs (which are also the subgraph I/O).
 */
export function buildSingleOpModel(spec: SingleOpModelSpec): Buffer {
  validate(spec);
  const b = new Builder(1024);

  // Children first: the builder cannot nest table construction.
  const tensors = offsetVector(
    b,
    spec.tensors.map((t) => tensorTable(b, t)),
  );
  const operators = offsetVector(b, [operatorTable(b, spec, spec.inputs, spec.outputs)]);
  const inputs = int32Vector(b, spec.inputs);
  const outputs = int32Vector(b, spec.outputs);
  const subgraphName = b.createString('main');
  // SubGraph: tensors 0, inputs 1, outputs 2, operators 3, name 4.
  b.startObject(5);
  b.addFieldOffset(0, tensors, 0);
  b.addFieldOffset(1, inputs, 0);
  b.addFieldOffset(2, outputs, 0);
  b.addFieldOffset(3, operators, 0);
  b.addFieldOffset(4, subgraphName, 0);
  const subgraph = b.endObject();

  const operatorCodes = offsetVector(b, [operatorCodeTable(b, spec.op)]);
  // Buffer 0 must exist and be empty (schema convention for "no data").
  b.startObject(1);
  const emptyBuffer = b.endObject();
  const buffers = offsetVector(b, [emptyBuffer]);
  const subgraphs = offsetVector(b, [subgraph]);
  const description = b.createString(spec.description ?? 'coral-face test model');

  // Model: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4.
  b.startObject(5);
  b.addFieldInt32(0, SCHEMA_VERSION, 0);
  b.addFieldOffset(1, operatorCodes, 0);
  b.addFieldOffset(2, subgraphs, 0);
  b.addFieldOffset(3, description, 0);
  b.addFieldOffset(4, buffers, 0);
  const model = b.endObject();
  b.finish(model, FILE_IDENTIFIER);

  // asUint8Array() is a view into the builder's scratch buffer; copy it out.
  return Buffer.from(b.asUint8Array());
}

// -------------------------------------------------------- model builders --

function quantizedType(opts: QuantizedModelOptions): TensorSpec['type'] {
  const [lo, hi, type] =
    opts.dtype === 'int8' ? ([-128, 127, TensorType.INT8] as const) : ([0, 255, TensorType.UINT8] as const);
  if (!Number.isInteger(opts.zeroPoint) || opts.zeroPoint < lo || opts.zeroPoint > hi) {
    throw new RangeError(`${opts.dtype} zeroPoint must be an integer in [${lo}, ${hi}]`);
  }
  if (!(opts.scale > 0) || !Number.isFinite(opts.scale)) {
    throw new RangeError('scale must be a positive finite number');
  }
  return type;
}

/** input (int8/uint8, quantised with scale/zeroPoint) -> DEQUANTIZE -> output (float32). */
export function buildDequantizeModel(opts: QuantizedModelOptions): Buffer {
  const type = quantizedType(opts);
  return buildSingleOpModel({
    tensors: [
      { name: 'input', shape: opts.shape, type, quantization: { scale: opts.scale, zeroPoint: opts.zeroPoint } },
      { name: 'output', shape: opts.shape, type: TensorType.FLOAT32 },
    ],
    inputs: [0],
    outputs: [1],
    // Version 2 is what the converter emits for int8 inputs.
    op: { builtin: BuiltinOperator.DEQUANTIZE, version: opts.dtype === 'int8' ? 2 : 1 },
    description: `DEQUANTIZE ${opts.dtype}`,
  });
}

/** input (float32) -> QUANTIZE -> output (int8/uint8, quantised with scale/zeroPoint). */
export function buildQuantizeModel(opts: QuantizedModelOptions): Buffer {
  const type = quantizedType(opts);
  return buildSingleOpModel({
    tensors: [
      { name: 'input', shape: opts.shape, type: TensorType.FLOAT32 },
      { name: 'output', shape: opts.shape, type, quantization: { scale: opts.scale, zeroPoint: opts.zeroPoint } },
    ],
    inputs: [0],
    outputs: [1],
    op: { builtin: BuiltinOperator.QUANTIZE, version: 1 },
    description: `QUANTIZE ${opts.dtype}`,
  });
}

/**
 * input (float32 [1,4] unless shape is given) -> CUSTOM(customCode) -> output
 * (float32, same shape). Without a delegate that claims the op, the CPU
 * interpreter cannot resolve it, like an Edge TPU compiled model.
 */
export function buildCustomOpModel(opts: { customCode: string; shape?: number[] }): Buffer {
  const shape = opts.shape ?? [1, 4];
  return buildSingleOpModel({
    tensors: [
      { name: 'input', shape, type: TensorType.FLOAT32 },
      { name: 'output', shape, type: TensorType.FLOAT32 },
    ],
    inputs: [0],
    outputs: [1],
    op: { builtin: BuiltinOperator.CUSTOM, customCode: opts.customCode },
    description: `CUSTOM ${opts.customCode}`,
  });
}

/** input, input_b (float32) -> ADD -> output (float32) = input + input_b. */
export function buildAddModel(opts: { shape: number[] }): Buffer {
  return buildSingleOpModel({
    tensors: [
      { name: 'input', shape: opts.shape, type: TensorType.FLOAT32 },
      { name: 'input_b', shape: opts.shape, type: TensorType.FLOAT32 },
      { name: 'output', shape: opts.shape, type: TensorType.FLOAT32 },
    ],
    inputs: [0, 1],
    outputs: [2],
    op: {
      builtin: BuiltinOperator.ADD,
      // An empty AddOptions (fused activation NONE), as the converter writes.
      options: {
        type: BUILTIN_OPTIONS_ADD,
        build: (b) => {
          b.startObject(2);
          return b.endObject();
        },
      },
    },
    description: 'ADD',
  });
}
