/**
 * Float graph transforms that keep every result, run before calibration and
 * quantisation so both see the same tensors:
 *
 * - the load-time rewrites of model-rewrite.ts (MobileFaceNet's five-op
 *   PReLUs become one PRELU op),
 * - constants stored as float16 behind a DEQUANTIZE op become float32
 *   constants (BlazeFace keeps its weights that way; the Edge TPU needs no
 *   DEQUANTIZE in the graph),
 * - a RELU / RELU6 op after a convolution, ADD or FULLY_CONNECTED becomes that
 *   op's fused activation (one int8 tensor instead of two),
 * - the batch is fixed at 1 (the Edge TPU compiler wants static shapes),
 * - tensors, buffers and operator codes nothing uses any more are dropped.
 */
import { rewriteForCpu } from '../model-rewrite';
import { Activation, Op, operatorName, TensorType } from './schema';
import { Operator, Subgraph, Tensor, TfliteModel } from './tflite-file';

export function builtinOf(model: TfliteModel, op: Operator): number {
  return model.operatorCodes[op.opcodeIndex]?.builtin ?? -1;
}

export function isConstant(model: TfliteModel, tensor: Tensor): boolean {
  return tensor.buffer > 0 && (model.buffers[tensor.buffer]?.length ?? 0) > 0;
}

export function mainSubgraph(model: TfliteModel): Subgraph {
  if (model.subgraphs.length !== 1)
    throw new Error(`only single-subgraph models are handled (this one has ${model.subgraphs.length})`);
  return model.subgraphs[0];
}

/** Consumers (operator indices) of every tensor. */
export function consumersOf(subgraph: Subgraph): Map<number, number[]> {
  const consumers = new Map<number, number[]>();
  subgraph.operators.forEach((op, i) => {
    for (const t of op.inputs) if (t >= 0) consumers.set(t, [...(consumers.get(t) ?? []), i]);
  });
  return consumers;
}

function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Float values of a constant float32 or float16 tensor. */
export function constantFloats(model: TfliteModel, tensor: Tensor): Float32Array {
  const data = model.buffers[tensor.buffer];
  if (tensor.type === TensorType.FLOAT32)
    return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  if (tensor.type === TensorType.FLOAT16) {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return Float32Array.from({ length: data.byteLength / 2 }, (_, i) => float16ToFloat32(view.getUint16(2 * i, true)));
  }
  throw new Error(`tensor "${tensor.name}" is a ${tensor.type} constant, not float`);
}

export function constantInt32s(model: TfliteModel, tensor: Tensor): Int32Array {
  const data = model.buffers[tensor.buffer];
  if (tensor.type !== TensorType.INT32) throw new Error(`tensor "${tensor.name}" is not an int32 constant`);
  return new Int32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export function bytesOf(values: Float32Array | Int32Array | Int8Array | Uint8Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

function addBuffer(model: TfliteModel, data: Uint8Array): number {
  model.buffers.push(data);
  return model.buffers.length - 1;
}

/** DEQUANTIZE(float16 or quantised constant) -> a float32 constant of the output tensor. */
function foldConstantDequantize(model: TfliteModel): number {
  const subgraph = mainSubgraph(model);
  let folded = 0;
  subgraph.operators = subgraph.operators.filter((op) => {
    if (builtinOf(model, op) !== Op.DEQUANTIZE) return true;
    const input = subgraph.tensors[op.inputs[0]];
    const output = subgraph.tensors[op.outputs[0]];
    if (!isConstant(model, input)) return true;
    let values: Float32Array;
    if (input.type === TensorType.FLOAT16) {
      values = constantFloats(model, input);
    } else if (
      (input.type === TensorType.INT8 || input.type === TensorType.UINT8) &&
      input.quantization?.scale.length === 1
    ) {
      const data = model.buffers[input.buffer];
      const raw = input.type === TensorType.INT8 ? new Int8Array(data.buffer, data.byteOffset, data.byteLength) : data;
      const {
        scale: [scale],
        zeroPoint: [zeroPoint = 0],
      } = input.quantization;
      values = Float32Array.from(raw, (q) => (q - zeroPoint) * scale);
    } else {
      return true;
    }
    output.buffer = addBuffer(model, bytesOf(values));
    output.type = TensorType.FLOAT32;
    folded++;
    return false;
  });
  return folded;
}

const FUSABLE = new Set<number>([Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.ADD, Op.FULLY_CONNECTED, Op.SUB, Op.MUL]);

/** RELU / RELU6 into the producing op's fused activation, where that op's output feeds only the RELU. */
function fuseActivations(model: TfliteModel): number {
  const subgraph = mainSubgraph(model);
  const consumers = consumersOf(subgraph);
  const producer = new Map<number, number>();
  subgraph.operators.forEach((op, i) => op.outputs.forEach((t) => producer.set(t, i)));
  const outputs = new Set(subgraph.outputs);
  const dropped = new Set<number>();
  subgraph.operators.forEach((op, i) => {
    const code = builtinOf(model, op);
    if (code !== Op.RELU && code !== Op.RELU6) return;
    const source = op.inputs[0];
    const p = producer.get(source);
    if (p === undefined || outputs.has(source) || (consumers.get(source) ?? []).length !== 1) return;
    const before = subgraph.operators[p];
    if (!FUSABLE.has(builtinOf(model, before)) || !before.optionsType) return;
    if ((before.options.fused_activation_function ?? Activation.NONE) !== Activation.NONE) return;
    before.options.fused_activation_function = code === Op.RELU ? Activation.RELU : Activation.RELU6;
    before.outputs = [op.outputs[0]];
    dropped.add(i);
  });
  subgraph.operators = subgraph.operators.filter((_, i) => !dropped.has(i));
  return dropped.size;
}

/**
 * Batch 1 everywhere: the input, every activation tensor whose first
 * dimension is the batch, and RESHAPE targets that name the batch (or -1).
 */
function fixBatch(model: TfliteModel): void {
  const subgraph = mainSubgraph(model);
  const batch = subgraph.tensors[subgraph.inputs[0]]?.shape[0] ?? 1;
  for (const tensor of subgraph.tensors) {
    delete tensor.shapeSignature;
    if (isConstant(model, tensor)) continue;
    if (tensor.shape.length > 0 && tensor.shape[0] === batch) tensor.shape[0] = 1;
  }
  for (const op of subgraph.operators) {
    if (builtinOf(model, op) !== Op.RESHAPE) continue;
    const target = Array.isArray(op.options.new_shape) ? op.options.new_shape : undefined;
    if (target && target.length && (target[0] === batch || target[0] === -1)) target[0] = 1;
    const shapeTensor = op.inputs[1] === undefined ? undefined : subgraph.tensors[op.inputs[1]];
    if (shapeTensor && isConstant(model, shapeTensor) && shapeTensor.type === TensorType.INT32) {
      const values = constantInt32s(model, shapeTensor);
      if (values.length && (values[0] === batch || values[0] === -1)) {
        values[0] = 1;
        // A buffer of its own: another tensor may share the old one.
        shapeTensor.buffer = addBuffer(model, bytesOf(values));
      }
    }
  }
}

/** Drops tensors no operator or graph I/O uses, then unused buffers and operator codes; renumbers. */
export function prune(model: TfliteModel): void {
  const subgraph = mainSubgraph(model);
  const usedTensors = new Set<number>([...subgraph.inputs, ...subgraph.outputs]);
  for (const op of subgraph.operators)
    for (const t of [...op.inputs, ...op.outputs, ...(op.intermediates ?? [])]) if (t >= 0) usedTensors.add(t);
  const tensorIndex = new Map<number, number>();
  subgraph.tensors = subgraph.tensors.filter((_, i) => {
    if (!usedTensors.has(i)) return false;
    tensorIndex.set(i, tensorIndex.size);
    return true;
  });
  const remap = (t: number) => (t < 0 ? t : tensorIndex.get(t)!);
  subgraph.inputs = subgraph.inputs.map(remap);
  subgraph.outputs = subgraph.outputs.map(remap);
  for (const op of subgraph.operators) {
    op.inputs = op.inputs.map(remap);
    op.outputs = op.outputs.map(remap);
    if (op.intermediates) op.intermediates = op.intermediates.map(remap);
  }
  model.signatureDefs = model.signatureDefs
    .filter((s) => [...s.inputs, ...s.outputs].every((m) => tensorIndex.has(m.tensor)))
    .map((s) => ({
      ...s,
      inputs: s.inputs.map((m) => ({ ...m, tensor: remap(m.tensor) })),
      outputs: s.outputs.map((m) => ({ ...m, tensor: remap(m.tensor) })),
    }));

  const usedBuffers = new Set<number>([0, ...model.metadata.map((m) => m.buffer), ...(model.metadataBuffer ?? [])]);
  for (const t of subgraph.tensors) usedBuffers.add(t.buffer);
  const bufferIndex = new Map<number, number>();
  model.buffers = model.buffers.filter((_, i) => {
    if (!usedBuffers.has(i)) return false;
    bufferIndex.set(i, bufferIndex.size);
    return true;
  });
  for (const t of subgraph.tensors) t.buffer = bufferIndex.get(t.buffer)!;
  model.metadata = model.metadata.map((m) => ({ ...m, buffer: bufferIndex.get(m.buffer)! }));
  if (model.metadataBuffer) model.metadataBuffer = model.metadataBuffer.map((b) => bufferIndex.get(b)!);

  const usedCodes = new Set(subgraph.operators.map((op) => op.opcodeIndex));
  const codeIndex = new Map<number, number>();
  model.operatorCodes = model.operatorCodes.filter((_, i) => {
    if (!usedCodes.has(i)) return false;
    codeIndex.set(i, codeIndex.size);
    return true;
  });
  for (const op of subgraph.operators) op.opcodeIndex = codeIndex.get(op.opcodeIndex)!;
}

export interface PreparedGraph {
  model: TfliteModel;
  /** What changed, for the quantiser's report. */
  applied: string[];
}

/** The float model as the quantiser and the calibration see it (see the file comment). */
export function prepareFloatGraph(bytes: Uint8Array, read: (b: Uint8Array) => TfliteModel): PreparedGraph {
  const rewritten = rewriteForCpu(bytes);
  const model = read(rewritten.bytes);
  const applied = [...rewritten.applied];
  const folded = foldConstantDequantize(model);
  if (folded) applied.push(`folded ${folded} constant DEQUANTIZE`);
  const fused = fuseActivations(model);
  if (fused) applied.push(`fused ${fused} RELU into the op before`);
  fixBatch(model);
  prune(model);
  const subgraph = mainSubgraph(model);
  for (const index of subgraph.inputs) {
    const t = subgraph.tensors[index];
    if (t.type !== TensorType.FLOAT32)
      throw new Error(`input "${t.name}" is ${t.type}, not float32: the quantiser takes float models`);
  }
  for (const op of subgraph.operators) {
    const code = builtinOf(model, op);
    if (code === Op.DEQUANTIZE || code === Op.QUANTIZE) {
      throw new Error(`${operatorName(code)} on a non-constant tensor: the model is already partly quantised`);
    }
  }
  return { model, applied };
}

/** Activation tensors: every non-constant tensor an operator produces, plus the graph inputs. */
export function activationTensors(model: TfliteModel): number[] {
  const subgraph = mainSubgraph(model);
  const seen = new Set<number>(subgraph.inputs);
  for (const op of subgraph.operators)
    for (const t of op.outputs) if (t >= 0 && !isConstant(model, subgraph.tensors[t])) seen.add(t);
  return [...seen].sort((a, b) => a - b);
}
