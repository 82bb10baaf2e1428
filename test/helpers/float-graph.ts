/**
 * Small float models for the quantiser's tests, described op by op and
 * serialised with the project's own writer (native/quantize/tflite-file.ts),
 * with seeded random weights.
 */
import { Activation, Op, OptionsType, TensorType } from '../../native/quantize/schema';
import { Operator, Tensor, TfliteModel, writeModel } from '../../native/quantize/tflite-file';

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export class GraphBuilder {
  private tensors: Tensor[] = [];
  private operators: Operator[] = [];
  private buffers: Uint8Array[] = [new Uint8Array(0)];
  private codes: { builtin: number; version: number }[] = [];
  private readonly random: () => number;

  constructor(seed = 1) {
    this.random = seededRandom(seed);
  }

  tensor(name: string, shape: number[], type: number = TensorType.FLOAT32, data?: Float32Array | Int32Array): number {
    let buffer = 0;
    if (data) {
      this.buffers.push(new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)));
      buffer = this.buffers.length - 1;
    }
    this.tensors.push({ name, shape, type, buffer });
    return this.tensors.length - 1;
  }

  /** A float constant of uniform random values in [lo, hi). */
  weights(name: string, shape: number[], lo = -1, hi = 1): number {
    const n = shape.reduce((a, b) => a * b, 1);
    return this.tensor(
      name,
      shape,
      TensorType.FLOAT32,
      Float32Array.from({ length: n }, () => lo + (hi - lo) * this.random()),
    );
  }

  ints(name: string, values: number[], shape = [values.length]): number {
    return this.tensor(name, shape, TensorType.INT32, Int32Array.from(values));
  }

  op(
    builtin: number,
    inputs: number[],
    outputs: number[],
    optionsType = 0,
    options: Record<string, number | boolean | number[]> = {},
  ): void {
    let code = this.codes.findIndex((c) => c.builtin === builtin);
    if (code < 0) {
      this.codes.push({ builtin, version: 1 });
      code = this.codes.length - 1;
    }
    this.operators.push({ opcodeIndex: code, inputs, outputs, optionsType, options });
  }

  model(inputs: number[], outputs: number[]): TfliteModel {
    return {
      version: 3,
      description: 'coral-face test graph',
      operatorCodes: this.codes,
      subgraphs: [{ name: 'main', tensors: this.tensors, inputs, outputs, operators: this.operators }],
      buffers: this.buffers,
      metadata: [],
      signatureDefs: [],
    };
  }
}

/**
 * input [1,8,8,3] -> CONV_2D 3x3 (+RELU) -> DEPTHWISE 3x3 -> PRELU -> CONV 1x1
 * -> ADD (residual with the first conv) -> PAD -> MAX_POOL 2x2 -> MUL (constant)
 * -> RESHAPE [1,96] -> FULLY_CONNECTED -> output [1,10]: every op the
 * quantiser has a rule for except RESIZE_BILINEAR (BlazeFace has that).
 */
export function buildMixedFloatModel(seed = 7): Uint8Array {
  const g = new GraphBuilder(seed);
  const input = g.tensor('input', [1, 8, 8, 3]);
  const c1 = g.tensor('conv1', [1, 8, 8, 8]);
  g.op(
    Op.CONV_2D,
    [input, g.weights('conv1/w', [8, 3, 3, 3], -0.5, 0.5), g.weights('conv1/b', [8], -0.1, 0.1)],
    [c1],
    OptionsType.Conv2D,
    { stride_w: 1, stride_h: 1, fused_activation_function: Activation.RELU },
  );
  const d1 = g.tensor('dw1', [1, 8, 8, 8]);
  g.op(
    Op.DEPTHWISE_CONV_2D,
    [c1, g.weights('dw1/w', [1, 3, 3, 8], -0.6, 0.6), g.weights('dw1/b', [8], -0.1, 0.1)],
    [d1],
    OptionsType.DepthwiseConv2D,
    { stride_w: 1, stride_h: 1, depth_multiplier: 1 },
  );
  const p1 = g.tensor('prelu1', [1, 8, 8, 8]);
  g.op(Op.PRELU, [d1, g.weights('prelu1/alpha', [8], -0.3, 0.5)], [p1]);
  const c2 = g.tensor('conv2', [1, 8, 8, 8]);
  g.op(
    Op.CONV_2D,
    [p1, g.weights('conv2/w', [8, 1, 1, 8], -0.5, 0.5), g.weights('conv2/b', [8], -0.1, 0.1)],
    [c2],
    OptionsType.Conv2D,
    { stride_w: 1, stride_h: 1 },
  );
  const add = g.tensor('add', [1, 8, 8, 8]);
  g.op(Op.ADD, [c2, c1], [add], OptionsType.Add, {});
  const padded = g.tensor('pad', [1, 8, 8, 12]);
  g.op(Op.PAD, [add, g.ints('pad/paddings', [0, 0, 0, 0, 0, 0, 0, 4], [4, 2])], [padded], OptionsType.Pad, {});
  const pooled = g.tensor('pool', [1, 4, 4, 12]);
  g.op(Op.MAX_POOL_2D, [padded], [pooled], 5, {
    padding: 1,
    stride_w: 2,
    stride_h: 2,
    filter_width: 2,
    filter_height: 2,
  });
  const scaled = g.tensor('mul', [1, 4, 4, 12]);
  g.op(Op.MUL, [pooled, g.weights('mul/c', [12], 0.5, 1.5)], [scaled], OptionsType.Mul, {});
  const flat = g.tensor('flat', [1, 192]);
  g.op(Op.RESHAPE, [scaled, g.ints('flat/shape', [1, 192])], [flat], OptionsType.Reshape, { new_shape: [1, 192] });
  const output = g.tensor('output', [1, 10]);
  g.op(
    Op.FULLY_CONNECTED,
    [flat, g.weights('fc/w', [10, 192], -0.2, 0.2), g.weights('fc/b', [10], -0.1, 0.1)],
    [output],
    OptionsType.FullyConnected,
    {},
  );
  return writeModel(g.model([input], [output]));
}
