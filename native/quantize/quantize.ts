/**
 * Post-training full-int8 quantisation of a float TFLite model, per the TFLite
 * int8 quantisation spec, so that the model runs on TFLite's int8 kernels
 * and compiles for the Edge TPU:
 *
 * - activations: int8 per tensor, affine (scale, zero point), from the
 *   calibrated ranges; the graph input and output are int8 too (no QUANTIZE
 *   or DEQUANTIZE in the graph: the runtime converts at the boundary);
 * - CONV_2D and DEPTHWISE_CONV_2D weights: int8 per output channel,
 *   symmetric in [-127, 127], zero point 0; FULLY_CONNECTED weights the same
 *   per tensor (TFLite 2.9 has no per-channel int8 FULLY_CONNECTED);
 * - biases: int32, scale = input scale x weight scale (per channel);
 * - PRELU alpha: int8 per tensor, symmetric, zero point 0;
 * - RESHAPE, PAD, pooling, resize, SQUEEZE, EXPAND_DIMS: the output keeps
 *   the input's scale and zero point (the kernels require it, and nothing is
 *   lost: they only move or select values);
 * - LOGISTIC and SOFTMAX outputs 1/256 and -128, TANH and L2_NORMALIZATION
 *   1/128 and 0, as the kernels require;
 * - operator versions: the lowest TFLite 2.9 registers for int8.
 */
import { applyEqualization } from './equalize';
import {
  activationTensors,
  builtinOf,
  bytesOf,
  constantFloats,
  isConstant,
  mainSubgraph,
  prepareFloatGraph,
  prune,
} from './graph';
import { Op, operatorName, TensorType } from './schema';
import { Quantization, readModel, Tensor, TfliteModel, writeModel } from './tflite-file';

export type Ranges = Record<string, [number, number]>;

export class QuantizeError extends Error {
  override readonly name = 'QuantizeError';
}

/** The int8 operator version for each op the quantiser handles (TFLite 2.9's op_version table). */
const INT8_VERSION: Record<number, number> = {
  [Op.CONV_2D]: 3,
  [Op.DEPTHWISE_CONV_2D]: 3,
  [Op.FULLY_CONNECTED]: 4,
  [Op.ADD]: 2,
  [Op.SUB]: 2,
  [Op.MUL]: 2,
  [Op.PRELU]: 1,
  [Op.RESHAPE]: 1,
  [Op.PAD]: 2,
  [Op.PADV2]: 2,
  [Op.MAX_POOL_2D]: 2,
  [Op.AVERAGE_POOL_2D]: 2,
  [Op.CONCATENATION]: 2,
  [Op.RESIZE_BILINEAR]: 2,
  [Op.SOFTMAX]: 2,
  [Op.LOGISTIC]: 2,
  [Op.TANH]: 2,
  [Op.MEAN]: 2,
  [Op.RELU]: 2,
  [Op.RELU6]: 2,
  [Op.SQUEEZE]: 1,
  [Op.EXPAND_DIMS]: 1,
  [Op.L2_NORMALIZATION]: 2,
  [Op.HARD_SWISH]: 1,
};

/** Ops whose output must carry the input's quantisation. */
const SAME_AS_INPUT = new Set<number>([
  Op.RESHAPE,
  Op.PAD,
  Op.MAX_POOL_2D,
  Op.SQUEEZE,
  Op.EXPAND_DIMS,
  Op.RESIZE_BILINEAR,
]);

/** Ops whose output quantisation is fixed by the kernel. */
const FIXED_OUTPUT: Record<number, { scale: number; zeroPoint: number }> = {
  [Op.LOGISTIC]: { scale: 1 / 256, zeroPoint: -128 },
  [Op.SOFTMAX]: { scale: 1 / 256, zeroPoint: -128 },
  [Op.TANH]: { scale: 1 / 128, zeroPoint: 0 },
  [Op.L2_NORMALIZATION]: { scale: 1 / 128, zeroPoint: 0 },
};

/** Inputs that stay int32 constants (shapes, paddings, sizes, axes). */
const INT32_OPERAND: Record<number, number[]> = {
  [Op.RESHAPE]: [1],
  [Op.PAD]: [1],
  [Op.PADV2]: [1],
  [Op.RESIZE_BILINEAR]: [1],
  [Op.MEAN]: [1],
};

/**
 * Per-tensor affine int8 parameters covering [lo, hi]. The range is widened
 * to hold 0, so that 0 (padding, ReLU's floor) is exact.
 */
export function activationQuantization(lo: number, hi: number): Quantization {
  let low = Math.min(lo, 0);
  let high = Math.max(hi, 0);
  if (!(high - low > 1e-8)) {
    low = Math.min(low, -1e-6);
    high = Math.max(high, 1e-6);
  }
  const scale = Math.fround((high - low) / 255);
  const zeroPoint = Math.min(127, Math.max(-128, Math.round(-128 - low / scale))) || 0;
  return { scale: [scale], zeroPoint: [zeroPoint], quantizedDimension: 0 };
}

/** Symmetric int8 in [-127, 127] per channel along `axis` (or per tensor when axis is undefined). */
export function quantizeSymmetric(
  values: Float32Array,
  shape: number[],
  axis: number | undefined,
): { data: Int8Array; scales: number[] } {
  const channels = axis === undefined ? 1 : shape[axis];
  const inner = axis === undefined ? values.length : shape.slice(axis + 1).reduce((n, d) => n * d, 1);
  const channelOf = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const maxAbs = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) maxAbs[channelOf(i)] = Math.max(maxAbs[channelOf(i)], Math.abs(values[i]));
  // An all-zero channel gets scale 1: its values stay 0 and TFLite wants scale > 0.
  const scales = Array.from(maxAbs, (m) => Math.fround(m > 0 ? m / 127 : 1));
  const data = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const q = Math.round(values[i] / scales[channelOf(i)]);
    data[i] = q > 127 ? 127 : q < -127 ? -127 : q;
  }
  return { data, scales };
}

function quantizeBias(
  values: Float32Array,
  inputScale: number,
  weightScales: number[],
): { data: Int32Array; scales: number[] } {
  const scales =
    values.length === weightScales.length
      ? weightScales.map((w) => inputScale * w)
      : Array(values.length).fill(inputScale * weightScales[0]);
  const data = Int32Array.from(values, (v, i) =>
    Math.max(-2147483647, Math.min(2147483647, Math.round(v / scales[i]))),
  );
  return { data, scales: scales.map(Math.fround) };
}

/** Affine int8 for a constant operand of an element-wise op (per tensor, its own min and max). */
function quantizeConstant(values: Float32Array): { data: Int8Array; quantization: Quantization } {
  let lo = 0;
  let hi = 0;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const quantization = activationQuantization(lo, hi);
  const [scale] = quantization.scale;
  const [zeroPoint] = quantization.zeroPoint;
  const data = Int8Array.from(values, (v) => Math.max(-128, Math.min(127, Math.round(v / scale) + zeroPoint)));
  return { data, quantization };
}

/** Unique names of tensors (a repeated name gets "#2", "#3"...): the keys of a calibration record. */
export function tensorKeys(model: TfliteModel): string[] {
  const seen = new Map<string, number>();
  return mainSubgraph(model).tensors.map((t) => {
    const n = (seen.get(t.name) ?? 0) + 1;
    seen.set(t.name, n);
    return n === 1 ? t.name : `${t.name}#${n}`;
  });
}

export interface QuantizeReport {
  /** Float graph rewrites applied first (graph.ts). */
  applied: string[];
  operators: Record<string, number>;
  /** Bytes of int8 weights and int32 biases. */
  parameterBytes: number;
  input: { name: string; shape: number[]; scale: number; zeroPoint: number };
  output: { name: string; shape: number[]; scale: number; zeroPoint: number }[];
}

export interface QuantizeParameters {
  /** Activation ranges by tensor key (tensorKeys). */
  ranges: Ranges;
  /** Channel equalisation scales by pair key (equalize.ts), applied to the float graph first. */
  equalization?: Record<string, number[]>;
}

export interface QuantizeOptions {
  /** Text for the model's description field. */
  description?: string;
}

/**
 * Quantises a float model with activation ranges keyed by tensor name (see
 * tensorKeys), e.g. from `rangesFrom(calibrate(...))` or a committed
 * calibration record, and the channel equalisation measured with them. The
 * same inputs always give the same bytes.
 */
export function quantizeModel(
  floatModel: Uint8Array,
  parameters: QuantizeParameters,
  options: QuantizeOptions = {},
): { bytes: Uint8Array; report: QuantizeReport } {
  const { model, applied } = prepareFloatGraph(floatModel, readModel);
  const { ranges } = parameters;
  const equalised = applyEqualization(model, parameters.equalization ?? {});
  if (equalised) applied.push(`equalised the channels of ${equalised} groups of convolutions`);
  const subgraph = mainSubgraph(model);
  const keys = tensorKeys(model);

  const params = new Map<number, Quantization>();
  const rangeOf = (index: number): [number, number] => {
    const range = ranges[keys[index]];
    if (!range) throw new QuantizeError(`no calibrated range for tensor "${keys[index]}": calibrate this model first`);
    return range;
  };
  for (const index of subgraph.inputs) params.set(index, activationQuantization(...rangeOf(index)));

  let parameterBytes = 0;
  const setConstant = (tensor: Tensor, data: Int8Array | Int32Array, type: number, quantization: Quantization) => {
    model.buffers.push(bytesOf(data));
    tensor.buffer = model.buffers.length - 1;
    tensor.type = type;
    tensor.quantization = quantization;
    parameterBytes += data.byteLength;
  };
  const operators: Record<string, number> = {};
  const retyped = new Set<number>();

  for (const [opIndex, op] of subgraph.operators.entries()) {
    const code = builtinOf(model, op);
    const name = operatorName(code);
    const where = `operator ${opIndex} (${name})`;
    if (INT8_VERSION[code] === undefined)
      throw new QuantizeError(`${where}: no int8 rule for this operator in the quantiser`);
    operators[name] = (operators[name] ?? 0) + 1;

    // Activation inputs must already have parameters (ops run in order).
    const inputParams = (k: number): Quantization => {
      const q = params.get(op.inputs[k]);
      if (!q)
        throw new QuantizeError(
          `${where}: input ${k} ("${subgraph.tensors[op.inputs[k]]?.name}") has no quantisation yet`,
        );
      return q;
    };
    // Output parameters: tied to the input, fixed by the kernel, or calibrated.
    for (const out of op.outputs) {
      if (params.has(out)) continue;
      if (SAME_AS_INPUT.has(code)) params.set(out, inputParams(0));
      else if (FIXED_OUTPUT[code])
        params.set(out, {
          scale: [Math.fround(FIXED_OUTPUT[code].scale)],
          zeroPoint: [FIXED_OUTPUT[code].zeroPoint],
          quantizedDimension: 0,
        });
      else params.set(out, activationQuantization(...rangeOf(out)));
    }

    const constantInput = (k: number): Tensor | undefined => {
      const index = op.inputs[k];
      if (index === undefined || index < 0) return undefined;
      const t = subgraph.tensors[index];
      return isConstant(model, t) ? t : undefined;
    };

    if (code === Op.CONV_2D || code === Op.DEPTHWISE_CONV_2D || code === Op.FULLY_CONNECTED) {
      const weights = constantInput(1);
      if (!weights || weights.type !== TensorType.FLOAT32)
        throw new QuantizeError(`${where}: the weights must be a float constant`);
      const axis = code === Op.CONV_2D ? 0 : code === Op.DEPTHWISE_CONV_2D ? 3 : undefined;
      const { data, scales } = quantizeSymmetric(constantFloats(model, weights), weights.shape, axis);
      setConstant(weights, data, TensorType.INT8, {
        scale: scales,
        zeroPoint: scales.map(() => 0),
        quantizedDimension: axis ?? 0,
      });
      const bias = constantInput(2);
      if (bias) {
        const [inputScale] = inputParams(0).scale;
        const b = quantizeBias(constantFloats(model, bias), inputScale, scales);
        setConstant(bias, b.data, TensorType.INT32, {
          scale: b.scales,
          zeroPoint: b.scales.map(() => 0),
          quantizedDimension: 0,
        });
      } else if (op.inputs[2] !== undefined && op.inputs[2] >= 0) {
        throw new QuantizeError(`${where}: the bias must be a constant`);
      }
    } else if (code === Op.PRELU) {
      const alpha = constantInput(1);
      if (!alpha) throw new QuantizeError(`${where}: alpha must be a constant`);
      const { data, scales } = quantizeSymmetric(constantFloats(model, alpha), alpha.shape, undefined);
      setConstant(alpha, data, TensorType.INT8, { scale: scales, zeroPoint: [0], quantizedDimension: 0 });
    } else {
      const keepInt32 = new Set(INT32_OPERAND[code] ?? []);
      op.inputs.forEach((index, k) => {
        if (index < 0 || keepInt32.has(k)) return;
        const t = subgraph.tensors[index];
        if (!isConstant(model, t)) return;
        if (t.type !== TensorType.FLOAT32) throw new QuantizeError(`${where}: constant input ${k} is not float`);
        const c = quantizeConstant(constantFloats(model, t));
        setConstant(t, c.data, TensorType.INT8, c.quantization);
      });
    }

    for (const index of [...op.inputs, ...op.outputs]) {
      if (index < 0) continue;
      const t = subgraph.tensors[index];
      if (isConstant(model, t) || retyped.has(index)) continue;
      const q = params.get(index);
      if (!q) continue;
      if (t.type !== TensorType.FLOAT32)
        throw new QuantizeError(`${where}: tensor "${t.name}" is ${t.type}, not float`);
      t.type = TensorType.INT8;
      t.quantization = q;
      retyped.add(index);
    }
    // One operator code per (op, version): split codes when a float code was shared.
    const version = code === Op.RESIZE_BILINEAR && op.options.half_pixel_centers ? 3 : INT8_VERSION[code];
    let codeIndex = model.operatorCodes.findIndex(
      (c) => c.builtin === code && c.version === version && c.customCode === undefined,
    );
    if (codeIndex < 0) {
      model.operatorCodes.push({ builtin: code, version });
      codeIndex = model.operatorCodes.length - 1;
    }
    op.opcodeIndex = codeIndex;
  }

  const leftover = activationTensors(model).filter((i) => subgraph.tensors[i].type === TensorType.FLOAT32);
  if (leftover.length)
    throw new QuantizeError(`tensors left float: ${leftover.map((i) => subgraph.tensors[i].name).join(', ')}`);
  prune(model);
  model.description = options.description ?? 'coral-face int8 (post-training quantisation)';
  const describeTensor = (index: number) => {
    const t = subgraph.tensors[index];
    return {
      name: t.name,
      shape: [...t.shape],
      scale: t.quantization!.scale[0],
      zeroPoint: t.quantization!.zeroPoint[0],
    };
  };
  return {
    bytes: writeModel(model),
    report: {
      applied,
      operators,
      parameterBytes,
      input: describeTensor(subgraph.inputs[0]),
      output: subgraph.outputs.map(describeTensor),
    },
  };
}
