/**
 * The parts of the TFLite flatbuffer schema (tensorflow/lite/schema/schema.fbs)
 * that the model reader and writer (tflite-file.ts) handle: enum values, and a
 * field list per builtin-options table. Field ids are declaration order; a
 * union takes two ids (its _type, then its value). Every schema addition is
 * appended, so a table read with fewer fields than a newer file has only
 * loses fields TFLite 2.9 does not know.
 */

export const TensorType = {
  FLOAT32: 0,
  FLOAT16: 1,
  INT32: 2,
  UINT8: 3,
  INT64: 4,
  STRING: 5,
  BOOL: 6,
  INT16: 7,
  COMPLEX64: 8,
  INT8: 9,
  FLOAT64: 10,
  COMPLEX128: 11,
  UINT64: 12,
  RESOURCE: 13,
  VARIANT: 14,
  UINT32: 15,
  UINT16: 16,
} as const;

export const TENSOR_TYPE_NAMES: readonly string[] = Object.entries(TensorType)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name.toLowerCase());

export function tensorTypeName(type: number): string {
  return TENSOR_TYPE_NAMES[type] ?? `type ${type}`;
}

/** tflite.BuiltinOperator, in enum order (index = code). Empty entries were never used. */
const OPERATOR_NAMES = [
  'ADD',
  'AVERAGE_POOL_2D',
  'CONCATENATION',
  'CONV_2D',
  'DEPTHWISE_CONV_2D',
  'DEPTH_TO_SPACE',
  'DEQUANTIZE',
  'EMBEDDING_LOOKUP',
  'FLOOR',
  'FULLY_CONNECTED',
  'HASHTABLE_LOOKUP',
  'L2_NORMALIZATION',
  'L2_POOL_2D',
  'LOCAL_RESPONSE_NORMALIZATION',
  'LOGISTIC',
  'LSH_PROJECTION',
  'LSTM',
  'MAX_POOL_2D',
  'MUL',
  'RELU',
  'RELU_N1_TO_1',
  'RELU6',
  'RESHAPE',
  'RESIZE_BILINEAR',
  'RNN',
  'SOFTMAX',
  'SPACE_TO_DEPTH',
  'SVDF',
  'TANH',
  'CONCAT_EMBEDDINGS',
  'SKIP_GRAM',
  'CALL',
  'CUSTOM',
  'EMBEDDING_LOOKUP_SPARSE',
  'PAD',
  'UNIDIRECTIONAL_SEQUENCE_RNN',
  'GATHER',
  'BATCH_TO_SPACE_ND',
  'SPACE_TO_BATCH_ND',
  'TRANSPOSE',
  'MEAN',
  'SUB',
  'DIV',
  'SQUEEZE',
  'UNIDIRECTIONAL_SEQUENCE_LSTM',
  'STRIDED_SLICE',
  'BIDIRECTIONAL_SEQUENCE_RNN',
  'EXP',
  'TOPK_V2',
  'SPLIT',
  'LOG_SOFTMAX',
  'DELEGATE',
  'BIDIRECTIONAL_SEQUENCE_LSTM',
  'CAST',
  'PRELU',
  'MAXIMUM',
  'ARG_MAX',
  'MINIMUM',
  'LESS',
  'NEG',
  'PADV2',
  'GREATER',
  'GREATER_EQUAL',
  'LESS_EQUAL',
  'SELECT',
  'SLICE',
  'SIN',
  'TRANSPOSE_CONV',
  'SPARSE_TO_DENSE',
  'TILE',
  'EXPAND_DIMS',
  'EQUAL',
  'NOT_EQUAL',
  'LOG',
  'SUM',
  'SQRT',
  'RSQRT',
  'SHAPE',
  'POW',
  'ARG_MIN',
  'FAKE_QUANT',
  'REDUCE_PROD',
  'REDUCE_MAX',
  'PACK',
  'LOGICAL_OR',
  'ONE_HOT',
  'LOGICAL_AND',
  'LOGICAL_NOT',
  'UNPACK',
  'REDUCE_MIN',
  'FLOOR_DIV',
  'REDUCE_ANY',
  'SQUARE',
  'ZEROS_LIKE',
  'FILL',
  'FLOOR_MOD',
  'RANGE',
  'RESIZE_NEAREST_NEIGHBOR',
  'LEAKY_RELU',
  'SQUARED_DIFFERENCE',
  'MIRROR_PAD',
  'ABS',
  'SPLIT_V',
  'UNIQUE',
  'CEIL',
  'REVERSE_V2',
  'ADD_N',
  'GATHER_ND',
  'COS',
  'WHERE',
  'RANK',
  'ELU',
  'REVERSE_SEQUENCE',
  'MATRIX_DIAG',
  'QUANTIZE',
  'MATRIX_SET_DIAG',
  'ROUND',
  'HARD_SWISH',
  'IF',
  'WHILE',
  'NON_MAX_SUPPRESSION_V4',
  'NON_MAX_SUPPRESSION_V5',
  'SCATTER_ND',
  'SELECT_V2',
  'DENSIFY',
  'SEGMENT_SUM',
  'BATCH_MATMUL',
  'PLACEHOLDER_FOR_GREATER_OP_CODES',
  'CUMSUM',
  'CALL_ONCE',
  'BROADCAST_TO',
  'RFFT2D',
  'CONV_3D',
  'IMAG',
  'REAL',
  'COMPLEX_ABS',
  'HASHTABLE',
  'HASHTABLE_FIND',
  'HASHTABLE_IMPORT',
  'HASHTABLE_SIZE',
  'REDUCE_ALL',
  'CONV_3D_TRANSPOSE',
  'VAR_HANDLE',
  'READ_VARIABLE',
  'ASSIGN_VARIABLE',
  'BROADCAST_ARGS',
  'RANDOM_STANDARD_NORMAL',
  'BUCKETIZE',
  'RANDOM_UNIFORM',
  'MULTINOMIAL',
  'GELU',
  'DYNAMIC_UPDATE_SLICE',
] as const;

export function operatorName(code: number): string {
  return OPERATOR_NAMES[code] ?? `operator ${code}`;
}

/** The builtin operators the quantiser, the checker and the tests name. */
export const Op = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONCATENATION: 2,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  DEQUANTIZE: 6,
  FULLY_CONNECTED: 9,
  L2_NORMALIZATION: 11,
  LOGISTIC: 14,
  MAX_POOL_2D: 17,
  MUL: 18,
  RELU: 19,
  RELU6: 21,
  RESHAPE: 22,
  RESIZE_BILINEAR: 23,
  SOFTMAX: 25,
  TANH: 28,
  CUSTOM: 32,
  PAD: 34,
  MEAN: 40,
  SUB: 41,
  SQUEEZE: 43,
  PRELU: 54,
  PADV2: 60,
  EXPAND_DIMS: 70,
  ABS: 101,
  QUANTIZE: 114,
  HARD_SWISH: 117,
} as const;

/** Fused activations (tflite.ActivationFunctionType). */
export const Activation = { NONE: 0, RELU: 1, RELU_N1_TO_1: 2, RELU6: 3, TANH: 4, SIGN_BIT: 5 } as const;

export type FieldKind = 'bool' | 'int8' | 'uint8' | 'int32' | 'uint32' | 'float32' | 'int32[]';

export interface OptionsField {
  name: string;
  kind: FieldKind;
  /** The schema default, which the writer leaves out like the converter does. */
  fallback?: number | boolean;
}

export interface OptionsTable {
  name: string;
  fields: OptionsField[];
}

const f = (name: string, kind: FieldKind, fallback?: number | boolean): OptionsField => ({ name, kind, fallback });
const activation = f('fused_activation_function', 'int8');

/**
 * BuiltinOptions union members by their union index (NONE is 0). Only these
 * tables can be read and written; a model with another options table is
 * refused with its name, never copied blindly.
 */
export const OPTIONS_TABLES: Readonly<Record<number, OptionsTable>> = {
  1: {
    name: 'Conv2DOptions',
    fields: [
      f('padding', 'int8'),
      f('stride_w', 'int32'),
      f('stride_h', 'int32'),
      activation,
      f('dilation_w_factor', 'int32', 1),
      f('dilation_h_factor', 'int32', 1),
    ],
  },
  2: {
    name: 'DepthwiseConv2DOptions',
    fields: [
      f('padding', 'int8'),
      f('stride_w', 'int32'),
      f('stride_h', 'int32'),
      f('depth_multiplier', 'int32'),
      activation,
      f('dilation_w_factor', 'int32', 1),
      f('dilation_h_factor', 'int32', 1),
    ],
  },
  5: {
    name: 'Pool2DOptions',
    fields: [
      f('padding', 'int8'),
      f('stride_w', 'int32'),
      f('stride_h', 'int32'),
      f('filter_width', 'int32'),
      f('filter_height', 'int32'),
      activation,
    ],
  },
  8: {
    name: 'FullyConnectedOptions',
    fields: [
      activation,
      f('weights_format', 'int8'),
      f('keep_num_dims', 'bool'),
      f('asymmetric_quantize_inputs', 'bool'),
    ],
  },
  9: { name: 'SoftmaxOptions', fields: [f('beta', 'float32')] },
  10: { name: 'ConcatenationOptions', fields: [f('axis', 'int32'), activation] },
  11: { name: 'AddOptions', fields: [activation, f('pot_scale_int16', 'bool', true)] },
  12: { name: 'L2NormOptions', fields: [activation] },
  15: {
    name: 'ResizeBilinearOptions',
    fields: [
      f('new_height', 'int32'),
      f('new_width', 'int32'),
      f('align_corners', 'bool'),
      f('half_pixel_centers', 'bool'),
    ],
  },
  17: { name: 'ReshapeOptions', fields: [f('new_shape', 'int32[]')] },
  19: { name: 'SpaceToDepthOptions', fields: [f('block_size', 'int32')] },
  21: { name: 'MulOptions', fields: [activation] },
  22: { name: 'PadOptions', fields: [] },
  26: { name: 'TransposeOptions', fields: [] },
  27: { name: 'ReducerOptions', fields: [f('keep_dims', 'bool')] },
  28: { name: 'SubOptions', fields: [activation, f('pot_scale_int16', 'bool', true)] },
  30: { name: 'SqueezeOptions', fields: [f('squeeze_dims', 'int32[]')] },
  32: {
    name: 'StridedSliceOptions',
    fields: [
      f('begin_mask', 'int32'),
      f('end_mask', 'int32'),
      f('ellipsis_mask', 'int32'),
      f('new_axis_mask', 'int32'),
      f('shrink_axis_mask', 'int32'),
    ],
  },
  38: { name: 'DequantizeOptions', fields: [] },
  39: { name: 'MaximumMinimumOptions', fields: [] },
  43: { name: 'PadV2Options', fields: [] },
  52: { name: 'ExpandDimsOptions', fields: [] },
  74: { name: 'ResizeNearestNeighborOptions', fields: [f('align_corners', 'bool'), f('half_pixel_centers', 'bool')] },
  75: { name: 'LeakyReluOptions', fields: [f('alpha', 'float32')] },
  78: { name: 'AbsOptions', fields: [] },
  89: { name: 'QuantizeOptions', fields: [] },
  91: { name: 'HardSwishOptions', fields: [] },
};

/** Union index of the options tables the quantiser writes itself. */
export const OptionsType = {
  NONE: 0,
  Conv2D: 1,
  DepthwiseConv2D: 2,
  FullyConnected: 8,
  Add: 11,
  Reshape: 17,
  Mul: 21,
  Pad: 22,
  Quantize: 89,
} as const;
