/**
 * Would edgetpu_compiler (version 16) map this model to the Edge TPU? A
 * check from Coral's published model requirements and supported-operation
 * table ("TensorFlow models on the Edge TPU", coral.ai/docs/edgetpu/models-intro),
 * without the compiler (it exists only for x86-64 Linux):
 *
 * - every tensor is int8 or uint8 (int32 only for biases and for the shape,
 *   padding and size operands the compiler folds);
 * - shapes are static, the batch is 1, and only the 3 innermost dimensions
 *   may be larger than 1;
 * - every operator is on the table, within its stated limits (PRELU alpha
 *   1-D, pooling and concatenation without fused activation, equal x/y
 *   dilation, no padding/reduction/splitting along the batch, ...);
 * - no DEQUANTIZE: the compiler never maps it;
 * - the parameters fit the on-chip memory (about 8 MB; the rest is streamed
 *   from the host at every inference, which is slow, but still maps).
 *
 * The compiler maps a graph up to its first unsupported operator and leaves
 * that one and everything after it to the CPU, so the report says which
 * operators would follow it off the TPU. A model that passes here can still
 * meet the compiler's unpublished limits ("not mapped due to some
 * unspecified limitation"); only the compiler's own log is the final word.
 */
import { builtinOf, isConstant, mainSubgraph } from './graph';
import { Activation, Op, operatorName, TensorType, tensorTypeName } from './schema';
import { readModel, TfliteModel } from './tflite-file';

/** About the Edge TPU's on-chip parameter memory (Coral: "roughly 8 MB of SRAM"). */
export const ON_CHIP_BYTES = 8 * 1024 * 1024;

export interface EdgeTpuFinding {
  /** error: would not map; warning: maps, but slower than it could be. */
  severity: 'error' | 'warning';
  /** Operator index, when the finding is about one operator. */
  operator?: number;
  op?: string;
  tensor?: string;
  reason: string;
}

export interface EdgeTpuCheck {
  ok: boolean;
  operators: number;
  /** Operators the compiler would map: those before the first one that cannot be. */
  mapped: number;
  parameterBytes: number;
  findings: EdgeTpuFinding[];
}

const BATCH_FREE = 'along the batch dimension';

/** Coral's supported operations (builtin code -> extra limits, checked in checkOperator). */
const SUPPORTED = new Set<number>([
  Op.ADD,
  Op.AVERAGE_POOL_2D,
  Op.CONCATENATION,
  Op.CONV_2D,
  Op.DEPTHWISE_CONV_2D,
  Op.EXPAND_DIMS,
  Op.FULLY_CONNECTED,
  Op.L2_NORMALIZATION,
  Op.LOGISTIC,
  16 /* LSTM */,
  55 /* MAXIMUM */,
  Op.MAX_POOL_2D,
  Op.MEAN,
  57 /* MINIMUM */,
  Op.MUL,
  83 /* PACK */,
  Op.PAD,
  Op.PRELU,
  Op.QUANTIZE,
  82 /* REDUCE_MAX */,
  89 /* REDUCE_MIN */,
  Op.RELU,
  Op.RELU6,
  20 /* RELU_N1_TO_1 */,
  Op.RESHAPE,
  Op.RESIZE_BILINEAR,
  97 /* RESIZE_NEAREST_NEIGHBOR */,
  76 /* RSQRT */,
  65 /* SLICE */,
  Op.SOFTMAX,
  26 /* SPACE_TO_DEPTH */,
  49 /* SPLIT */,
  Op.SQUEEZE,
  45 /* STRIDED_SLICE */,
  Op.SUB,
  74 /* SUM */,
  Op.TANH,
  39 /* TRANSPOSE */,
  67 /* TRANSPOSE_CONV */,
]);

function checkOperator(model: TfliteModel, opIndex: number): string[] {
  const subgraph = mainSubgraph(model);
  const op = subgraph.operators[opIndex];
  const code = builtinOf(model, op);
  const tensor = (k: number) => subgraph.tensors[op.inputs[k]];
  const reasons: string[] = [];
  const activation = (op.options.fused_activation_function as number | undefined) ?? Activation.NONE;
  const constantInts = (k: number): Int32Array | undefined => {
    const t = op.inputs[k] === undefined || op.inputs[k] < 0 ? undefined : tensor(k);
    if (!t || !isConstant(model, t) || t.type !== TensorType.INT32) return undefined;
    const data = model.buffers[t.buffer];
    return new Int32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  };
  switch (code) {
    case Op.AVERAGE_POOL_2D:
    case Op.MAX_POOL_2D:
      if (activation !== Activation.NONE) reasons.push('pooling with a fused activation function is not supported');
      break;
    case Op.CONCATENATION:
      if (activation !== Activation.NONE)
        reasons.push('concatenation with a fused activation function is not supported');
      if (op.inputs.some((t) => isConstant(model, subgraph.tensors[t])) && op.inputs.length !== 2) {
        reasons.push('a concatenation with a constant input must have exactly 2 inputs (the constant all zeros)');
      }
      break;
    case Op.CONV_2D:
    case Op.DEPTHWISE_CONV_2D:
      if ((op.options.dilation_w_factor ?? 1) !== (op.options.dilation_h_factor ?? 1))
        reasons.push('the x and y dilations differ');
      break;
    case Op.FULLY_CONNECTED:
      if ((op.options.weights_format ?? 0) !== 0)
        reasons.push('only the default fully-connected weights format is supported');
      break;
    case Op.PRELU: {
      const alpha = tensor(1);
      if (alpha && alpha.shape.slice(0, -1).some((d) => d > 1)) {
        reasons.push(`alpha must be 1-dimensional (only its innermost dimension above 1), got [${alpha.shape}]`);
      }
      break;
    }
    case Op.PAD: {
      const paddings = constantInts(1);
      if (!paddings) reasons.push('the paddings must be a constant');
      else if (paddings[0] !== 0 || paddings[1] !== 0) reasons.push(`padding ${BATCH_FREE} is not supported`);
      break;
    }
    case Op.MEAN:
    case 74: /* SUM */
    case 82: /* REDUCE_MAX */
    case 89: {
      /* REDUCE_MIN */
      const axes = constantInts(1);
      const rank = tensor(0).shape.length;
      if (!axes) reasons.push('the reduction axes must be a constant');
      else if ([...axes].some((a) => a === 0 || a === -rank))
        reasons.push(`a reduction ${BATCH_FREE} is not supported`);
      break;
    }
    case Op.SOFTMAX: {
      const elements = tensor(0).shape.reduce((n, d) => n * d, 1);
      if (elements > 16000) reasons.push(`softmax supports at most 16,000 elements, this one has ${elements}`);
      break;
    }
    default:
  }
  return reasons;
}

export function checkEdgeTpu(model: Uint8Array | TfliteModel): EdgeTpuCheck {
  const parsed = model instanceof Uint8Array ? readModel(model) : model;
  const findings: EdgeTpuFinding[] = [];
  if (parsed.subgraphs.length !== 1) {
    findings.push({
      severity: 'error',
      reason: `the model has ${parsed.subgraphs.length} subgraphs; the compiler maps only models with one`,
    });
  }
  const subgraph = mainSubgraph(parsed);
  // Int32 is allowed where the compiler folds or consumes it: biases and constant operands.
  const int32Allowed = new Set<number>();
  subgraph.operators.forEach((op) => {
    const code = builtinOf(parsed, op);
    op.inputs.forEach((t, k) => {
      if (t >= 0 && isConstant(parsed, subgraph.tensors[t]) && (k > 0 || code === Op.RESHAPE)) int32Allowed.add(t);
    });
  });
  subgraph.tensors.forEach((t, index) => {
    if (t.type === TensorType.INT8 || t.type === TensorType.UINT8) {
      if (!t.quantization?.scale.length)
        findings.push({
          severity: 'error',
          tensor: t.name,
          reason: `${tensorTypeName(t.type)} tensor without quantisation parameters`,
        });
    } else if (!(t.type === TensorType.INT32 && int32Allowed.has(index))) {
      findings.push({
        severity: 'error',
        tensor: t.name,
        reason: `${tensorTypeName(t.type)} tensor: the Edge TPU runs only int8/uint8 (fully quantised) models`,
      });
    }
    if (isConstant(parsed, t)) return;
    if (t.shapeSignature?.some((d) => d < 0))
      findings.push({
        severity: 'error',
        tensor: t.name,
        reason: `dynamic shape [${t.shapeSignature}]: the compiler needs static shapes`,
      });
    if (t.shape.length > 3 && t.shape.slice(0, -3).some((d) => d > 1)) {
      findings.push({
        severity: 'error',
        tensor: t.name,
        reason: `shape [${t.shape}]: only the 3 innermost dimensions may be above 1 (batch 1)`,
      });
    }
  });
  let firstUnmapped = -1;
  subgraph.operators.forEach((op, index) => {
    const code = builtinOf(parsed, op);
    const name =
      code === Op.CUSTOM ? `CUSTOM (${parsed.operatorCodes[op.opcodeIndex].customCode ?? '?'})` : operatorName(code);
    const reasons: string[] = [];
    if (code === Op.DEQUANTIZE)
      reasons.push('DEQUANTIZE is never mapped: the model must stay int8 to its outputs (dequantise on the host)');
    else if (code === Op.CUSTOM && parsed.operatorCodes[op.opcodeIndex].customCode === 'edgetpu-custom-op')
      reasons.push('already compiled for the Edge TPU');
    else if (!SUPPORTED.has(code)) reasons.push(`${name} is not on the Edge TPU's list of supported operations`);
    else reasons.push(...checkOperator(parsed, index));
    const badTensor = [...op.inputs, ...op.outputs].some(
      (t) => t >= 0 && findings.some((f) => f.tensor === subgraph.tensors[t].name),
    );
    if (reasons.length === 0 && badTensor) reasons.push('one of its tensors cannot be mapped (see above)');
    for (const reason of reasons) findings.push({ severity: 'error', operator: index, op: name, reason });
    if (reasons.length && firstUnmapped < 0) firstUnmapped = index;
  });
  if (firstUnmapped >= 0 && firstUnmapped < subgraph.operators.length - 1) {
    findings.push({
      severity: 'error',
      operator: firstUnmapped,
      op: operatorName(builtinOf(parsed, subgraph.operators[firstUnmapped])),
      reason: `the compiler maps only up to the first unsupported operator: operators ${firstUnmapped}-${subgraph.operators.length - 1} would all run on the CPU`,
    });
  }
  const parameterBytes = subgraph.tensors.reduce(
    (n, t) => n + (isConstant(parsed, t) ? parsed.buffers[t.buffer].length : 0),
    0,
  );
  if (parameterBytes > ON_CHIP_BYTES) {
    findings.push({
      severity: 'warning',
      reason: `${(parameterBytes / 1048576).toFixed(1)} MiB of parameters: about 8 MiB fit on the chip, the rest is streamed from the host at every inference`,
    });
  }
  const errors = findings.filter((f) => f.severity === 'error');
  return {
    ok: errors.length === 0,
    operators: subgraph.operators.length,
    mapped: firstUnmapped < 0 ? (errors.length ? 0 : subgraph.operators.length) : firstUnmapped,
    parameterBytes,
    findings,
  };
}
