/**
 * Channel equalisation: a float rewrite that changes no result and makes
 * per-tensor int8 activations fit.
 *
 * int8 activations have one scale per tensor, but channels of one tensor can
 * differ in range by 100x (MobileFaceNet's first depthwise output: most
 * channels within +-2, a few at +-40), so a scale wide enough for the loud
 * channels leaves the quiet ones a handful of levels. Channel c of a tensor
 * made by convolutions and read by convolutions can be divided by s_c if the
 * producers' output channel c (weights and bias) is divided by s_c and the
 * consumers' input channel c multiplied by s_c: the consumers' outputs are
 * unchanged. What may sit between: PRELU or RELU (they commute with a
 * positive scale: f(x / s) = f(x) / s), and ADD (linear), which is how a
 * residual stream of several blocks becomes one group: every tensor of the
 * stream shares its channels, so all its producers and consumers take the
 * same scales. With s_c from the calibrated range of channel c, every channel
 * spans about the same range (Nagel et al., "Data-Free Quantization Through
 * Weight Equalization and Bias Correction", 2019, do this from weight
 * ranges; here the activations themselves are measured).
 *
 * When every consumer is depthwise (weights quantised per channel) any s_c is
 * free: full equalisation. When a consumer is a full convolution, multiplying
 * its input columns by s_c widens the spread inside each of its
 * per-output-channel weight ranges, so the scale is the geometric mean of
 * full equalisation and none (the square root), balancing the activation
 * against the weight quantisation.
 */
import { builtinOf, bytesOf, consumersOf, constantFloats, isConstant, mainSubgraph } from './graph';
import { Activation, Op } from './schema';
import { Tensor, TfliteModel } from './tflite-file';

export interface EqualizationGroup {
  /** Convolutions whose output channels are scaled down. */
  producers: number[];
  /** Convolutions whose input channels are scaled up. */
  consumers: number[];
  /** Tensors whose channel c is divided by s_c. */
  tensors: number[];
  /** Name of the group's first tensor: the key of its scales in a calibration record. */
  key: string;
}

const CONVOLUTIONS = new Set<number>([Op.CONV_2D, Op.DEPTHWISE_CONV_2D]);

function fusedActivation(op: { options: Record<string, unknown> }): number {
  return (op.options.fused_activation_function as number | undefined) ?? Activation.NONE;
}

/**
 * Groups that can be equalised (see the file comment), in graph order:
 * a convolution's output read by one convolution, directly or through a
 * PRELU; and residual streams joined by ADDs.
 */
export function findPairs(model: TfliteModel): EqualizationGroup[] {
  const subgraph = mainSubgraph(model);
  const consumers = consumersOf(subgraph);
  const producer = new Map<number, number>();
  subgraph.operators.forEach((op, i) => op.outputs.forEach((t) => producer.set(t, i)));
  const boundary = new Set([...subgraph.outputs, ...subgraph.inputs]);
  const code = (i: number) => builtinOf(model, subgraph.operators[i]);
  const channels = (t: number) => subgraph.tensors[t].shape.at(-1);
  // A convolution whose output channels can be scaled: constant weights, an
  // activation that commutes with a positive scale (RELU6's cap does not),
  // and for a depthwise one, one output channel per input channel.
  const scalable = (i: number): boolean => {
    const op = subgraph.operators[i];
    if (!CONVOLUTIONS.has(code(i)) || !isConstant(model, subgraph.tensors[op.inputs[1]])) return false;
    const activation = fusedActivation(op);
    if (activation !== Activation.NONE && activation !== Activation.RELU) return false;
    return (
      code(i) !== Op.DEPTHWISE_CONV_2D ||
      subgraph.tensors[op.inputs[1]].shape[3] === subgraph.tensors[op.inputs[0]].shape[3]
    );
  };
  const reads = (i: number, t: number) =>
    scalable(i) && subgraph.operators[i].inputs[0] === t && !subgraph.operators[i].inputs.slice(1).includes(t);

  const groups: EqualizationGroup[] = [];
  const taken = new Set<number>();

  // Residual streams: tensors joined by ADDs (both inputs activations, no broadcast).
  const parent = new Map<number, number>();
  const find = (t: number): number => {
    const p = parent.get(t) ?? t;
    if (p === t) return t;
    const root = find(p);
    parent.set(t, root);
    return root;
  };
  const joined = new Set<number>();
  const union = (a: number, b: number) => {
    joined.add(a).add(b);
    if (find(a) !== find(b)) parent.set(find(a), find(b));
  };
  subgraph.operators.forEach((op, i) => {
    if (code(i) !== Op.ADD || op.inputs.length !== 2) return;
    const [a, b] = op.inputs;
    const out = op.outputs[0];
    if ([a, b].some((t) => isConstant(model, subgraph.tensors[t]))) return;
    if ([a, b].some((t) => subgraph.tensors[t].shape.join() !== subgraph.tensors[out].shape.join())) return;
    if (fusedActivation(op) !== Activation.NONE && fusedActivation(op) !== Activation.RELU) return;
    union(a, out);
    union(b, out);
  });
  const members = new Map<number, number[]>();
  for (const t of joined) members.set(find(t), [...(members.get(find(t)) ?? []), t]);
  for (const tensors of members.values()) {
    tensors.sort((x, y) => x - y);
    const inGroup = new Set(tensors);
    const producers = new Set<number>();
    const readers = new Set<number>();
    const valid = tensors.every((t) => {
      if (boundary.has(t)) return false;
      const p = producer.get(t);
      if (p === undefined) return false;
      const madeByAdd = code(p) === Op.ADD && subgraph.operators[p].inputs.every((x) => inGroup.has(x));
      if (!madeByAdd) {
        if (!scalable(p)) return false;
        producers.add(p);
      }
      return (consumers.get(t) ?? []).every((c) => {
        if (code(c) === Op.ADD && inGroup.has(subgraph.operators[c].outputs[0])) return true;
        if (!reads(c, t)) return false;
        readers.add(c);
        return true;
      });
    });
    if (!valid || readers.size === 0 || new Set(tensors.map(channels)).size !== 1) continue;
    // In graph order: the key is the stream's first tensor.
    const ordered = [...tensors].sort((x, y) => (producer.get(x) ?? 0) - (producer.get(y) ?? 0));
    groups.push({
      producers: [...producers],
      consumers: [...readers],
      tensors: ordered,
      key: subgraph.tensors[ordered[0]].name,
    });
    for (const t of tensors) taken.add(t);
  }

  // Chains: a convolution's output read by one convolution, directly or through a PRELU.
  const outputs = new Set(subgraph.outputs);
  const sole = (t: number): number | undefined => {
    const users = consumers.get(t) ?? [];
    return users.length === 1 && !outputs.has(t) ? users[0] : undefined;
  };
  subgraph.operators.forEach((op, a) => {
    if (!scalable(a)) return;
    const x = op.outputs[0];
    if (taken.has(x)) return;
    const tensors = [x];
    let next = sole(x);
    if (next !== undefined && code(next) === Op.PRELU) {
      const prelu = subgraph.operators[next];
      const alpha = subgraph.tensors[prelu.inputs[1]];
      if (
        prelu.inputs[0] !== x ||
        !isConstant(model, alpha) ||
        alpha.shape.length !== 1 ||
        alpha.shape[0] !== channels(x)
      )
        return;
      tensors.push(prelu.outputs[0]);
      next = sole(prelu.outputs[0]);
    }
    if (next === undefined || !reads(next, tensors.at(-1)!)) return;
    groups.push({ producers: [a], consumers: [next], tensors, key: subgraph.tensors[x].name });
  });
  return groups.sort((g, h) => Math.min(...g.producers) - Math.min(...h.producers));
}

/** Largest |value| per channel (the last dimension) of an NHWC activation. */
export function channelMaxAbs(values: Float32Array, channels: number, into: Float64Array): void {
  for (let start = 0; start < values.length; start += channels) {
    for (let c = 0; c < channels; c++) {
      const x = values[start + c];
      const v = x < 0 ? -x : x;
      if (v > into[c]) into[c] = v;
    }
  }
}

/**
 * Scales per group from the per-channel ranges of its tensors (the largest
 * |value| of channel c over all of them). Channels that were never non-zero
 * keep scale 1.
 */
export function chooseScales(
  model: TfliteModel,
  groups: EqualizationGroup[],
  channelRange: Map<number, Float64Array>,
): Record<string, number[]> {
  const subgraph = mainSubgraph(model);
  const scales: Record<string, number[]> = {};
  for (const group of groups) {
    const channels = subgraph.tensors[group.tensors[0]].shape.at(-1)!;
    const range = new Float64Array(channels);
    for (const t of group.tensors)
      channelRange.get(t)?.forEach((v, c) => {
        range[c] = Math.max(range[c], v);
      });
    const active = [...range].filter((v) => v > 0);
    if (active.length === 0) continue;
    const target = Math.max(...active);
    const depthwise = group.consumers.every((c) => builtinOf(model, subgraph.operators[c]) === Op.DEPTHWISE_CONV_2D);
    scales[group.key] = [...range].map((r) => {
      if (!(r > 0)) return 1;
      const full = r / target;
      return Math.fround(depthwise ? full : Math.sqrt(full));
    });
  }
  return scales;
}

function scaleConstant(model: TfliteModel, tensor: Tensor, axis: number, factor: (c: number) => number): void {
  const values = constantFloats(model, tensor);
  const channels = tensor.shape[axis];
  const inner = tensor.shape.slice(axis + 1).reduce((n, d) => n * d, 1);
  for (let i = 0; i < values.length; i++) values[i] *= factor(Math.floor(i / inner) % channels);
  model.buffers.push(bytesOf(values));
  tensor.buffer = model.buffers.length - 1;
}

/** Applies recorded scales (by group key) to the float model in place; groups without scales are left alone. */
export function applyEqualization(model: TfliteModel, scales: Record<string, number[]>): number {
  const subgraph = mainSubgraph(model);
  let applied = 0;
  for (const group of findPairs(model)) {
    const s = scales[group.key];
    if (!s) continue;
    const channels = subgraph.tensors[group.tensors[0]].shape.at(-1);
    if (s.length !== channels)
      throw new Error(`equalisation scales for "${group.key}" have ${s.length} channels, the tensor ${channels}`);
    for (const p of group.producers) {
      const op = subgraph.operators[p];
      // Output channel c is dim 0 of CONV_2D weights [O,H,W,I], dim 3 of depthwise ones [1,H,W,C].
      scaleConstant(
        model,
        subgraph.tensors[op.inputs[1]],
        builtinOf(model, op) === Op.CONV_2D ? 0 : 3,
        (c) => 1 / s[c],
      );
      if (op.inputs[2] !== undefined && op.inputs[2] >= 0)
        scaleConstant(model, subgraph.tensors[op.inputs[2]], 0, (c) => 1 / s[c]);
    }
    // Input channel c is the last dim of both CONV_2D and depthwise weights.
    for (const c of group.consumers)
      scaleConstant(model, subgraph.tensors[subgraph.operators[c].inputs[1]], 3, (k) => s[k]);
    applied++;
  }
  return applied;
}
