/**
 * A TFLite model as plain objects, read from and written to the flatbuffer
 * format with the `flatbuffers` runtime (no generated code): the tables and
 * field ids of schema.ts. Reading then writing a model gives a file TFLite
 * loads with bit-identical results (test/native/tflite-file.test.ts); what
 * this reader does not understand (sparse tensors, options tables not in
 * schema.ts, buffers stored outside the flatbuffer) is refused with a reason,
 * never dropped.
 */
import { Builder, ByteBuffer } from 'flatbuffers';
import { OPTIONS_TABLES, OptionsField } from './schema';

export interface Quantization {
  scale: number[];
  zeroPoint: number[];
  /** The axis `scale` runs along when it has one entry per channel. */
  quantizedDimension: number;
  min?: number[];
  max?: number[];
}

export interface Tensor {
  name: string;
  shape: number[];
  /** -1 marks a dimension that may change (the batch of a resizable input). */
  shapeSignature?: number[];
  type: number;
  /** Index into the model's buffers; 0 is the empty buffer of non-constant tensors. */
  buffer: number;
  quantization?: Quantization;
  isVariable?: boolean;
  hasRank?: boolean;
}

export type OptionValue = number | boolean | number[];

export interface Operator {
  opcodeIndex: number;
  /** Tensor indices; -1 is an absent optional input. */
  inputs: number[];
  outputs: number[];
  /** Union index of the builtin options table (schema.ts OPTIONS_TABLES), 0 for none. */
  optionsType: number;
  options: Record<string, OptionValue>;
  customOptions?: Uint8Array;
  customOptionsFormat?: number;
  mutatingVariableInputs?: boolean[];
  intermediates?: number[];
}

export interface OperatorCode {
  builtin: number;
  customCode?: string;
  version: number;
}

export interface Subgraph {
  name: string;
  tensors: Tensor[];
  inputs: number[];
  outputs: number[];
  operators: Operator[];
}

export interface SignatureDef {
  key: string;
  subgraphIndex: number;
  inputs: { name: string; tensor: number }[];
  outputs: { name: string; tensor: number }[];
}

export interface TfliteModel {
  version: number;
  description: string;
  operatorCodes: OperatorCode[];
  subgraphs: Subgraph[];
  /** Buffer data; entry 0 is empty by convention. */
  buffers: Uint8Array[];
  metadata: { name: string; buffer: number }[];
  /** Deprecated list of metadata buffers, kept as found. */
  metadataBuffer?: number[];
  signatureDefs: SignatureDef[];
}

export class ModelFormatError extends Error {
  override readonly name = 'ModelFormatError';
}

// ------------------------------------------------------------------ reader --

/** Field access on one flatbuffer table, by field id. */
class Table {
  constructor(
    private readonly bb: ByteBuffer,
    readonly at: number,
  ) {}

  private slot(id: number): number {
    return this.bb.__offset(this.at, 4 + 2 * id);
  }

  has(id: number): boolean {
    return this.slot(id) !== 0;
  }

  int8(id: number, fallback = 0): number {
    const o = this.slot(id);
    return o ? this.bb.readInt8(this.at + o) : fallback;
  }

  uint8(id: number, fallback = 0): number {
    const o = this.slot(id);
    return o ? this.bb.readUint8(this.at + o) : fallback;
  }

  bool(id: number, fallback = false): boolean {
    const o = this.slot(id);
    return o ? this.bb.readInt8(this.at + o) !== 0 : fallback;
  }

  int32(id: number, fallback = 0): number {
    const o = this.slot(id);
    return o ? this.bb.readInt32(this.at + o) : fallback;
  }

  uint32(id: number, fallback = 0): number {
    const o = this.slot(id);
    return o ? this.bb.readUint32(this.at + o) : fallback;
  }

  float32(id: number, fallback = 0): number {
    const o = this.slot(id);
    return o ? this.bb.readFloat32(this.at + o) : fallback;
  }

  uint64(id: number): bigint {
    const o = this.slot(id);
    return o ? this.bb.readUint64(this.at + o) : 0n;
  }

  string(id: number): string | undefined {
    const o = this.slot(id);
    return o ? (this.bb.__string(this.at + o) as string) : undefined;
  }

  table(id: number): Table | undefined {
    const o = this.slot(id);
    return o ? new Table(this.bb, this.bb.__indirect(this.at + o)) : undefined;
  }

  /** Start and length of a vector field, or undefined when absent. */
  private vector(id: number, elementSize: number): { start: number; length: number } | undefined {
    const o = this.slot(id);
    if (!o) return undefined;
    const start = this.bb.__vector(this.at + o);
    const length = this.bb.__vector_len(this.at + o);
    if (start + length * elementSize > this.bb.capacity())
      throw new ModelFormatError('a vector runs past the end of the file');
    return { start, length };
  }

  tables(id: number): Table[] {
    const v = this.vector(id, 4);
    return v ? Array.from({ length: v.length }, (_, i) => new Table(this.bb, this.bb.__indirect(v.start + 4 * i))) : [];
  }

  int32s(id: number): number[] | undefined {
    const v = this.vector(id, 4);
    return v && Array.from({ length: v.length }, (_, i) => this.bb.readInt32(v.start + 4 * i));
  }

  float32s(id: number): number[] | undefined {
    const v = this.vector(id, 4);
    return v && Array.from({ length: v.length }, (_, i) => this.bb.readFloat32(v.start + 4 * i));
  }

  int64s(id: number): number[] | undefined {
    const v = this.vector(id, 8);
    return v && Array.from({ length: v.length }, (_, i) => Number(this.bb.readInt64(v.start + 8 * i)));
  }

  bytes(id: number): Uint8Array | undefined {
    const v = this.vector(id, 1);
    return v && this.bb.bytes().slice(v.start, v.start + v.length);
  }
}

function readOptions(table: Table | undefined, type: number, where: string): Record<string, OptionValue> {
  if (type === 0) return {};
  const spec = OPTIONS_TABLES[type];
  if (!spec) throw new ModelFormatError(`${where}: builtin options table ${type} is not one this writer knows`);
  const options: Record<string, OptionValue> = {};
  if (!table) return options;
  spec.fields.forEach((field, id) => {
    if (!table.has(id)) return;
    switch (field.kind) {
      case 'bool':
        options[field.name] = table.bool(id);
        break;
      case 'int8':
        options[field.name] = table.int8(id);
        break;
      case 'uint8':
        options[field.name] = table.uint8(id);
        break;
      case 'int32':
        options[field.name] = table.int32(id);
        break;
      case 'uint32':
        options[field.name] = table.uint32(id);
        break;
      case 'float32':
        options[field.name] = table.float32(id);
        break;
      case 'int32[]':
        options[field.name] = table.int32s(id) ?? [];
        break;
    }
  });
  return options;
}

function readQuantization(t: Table | undefined): Quantization | undefined {
  if (!t) return undefined;
  if (t.uint8(4) !== 0) throw new ModelFormatError('custom quantisation details are not supported');
  const scale = t.float32s(2) ?? [];
  const zeroPoint = t.int64s(3) ?? [];
  const min = t.float32s(0);
  const max = t.float32s(1);
  if (scale.length === 0 && !min && !max) return undefined;
  return { scale, zeroPoint, quantizedDimension: t.int32(6), ...(min ? { min } : {}), ...(max ? { max } : {}) };
}

/** Parses a .tflite file. Throws ModelFormatError for what it cannot represent faithfully. */
export function readModel(bytes: Uint8Array): TfliteModel {
  if (bytes.length < 8 || String.fromCharCode(...bytes.subarray(4, 8)) !== 'TFL3') {
    throw new ModelFormatError('not a TFLite model (no "TFL3" identifier)');
  }
  const bb = new ByteBuffer(bytes);
  try {
    const model = new Table(bb, bb.readInt32(0));
    const operatorCodes = model.tables(1).map((c): OperatorCode => ({
      builtin: Math.max(c.int8(0), c.int32(3)),
      ...(c.has(1) ? { customCode: c.string(1) } : {}),
      version: c.int32(2, 1),
    }));
    const subgraphs = model.tables(2).map((s, si): Subgraph => ({
      name: s.string(4) ?? '',
      tensors: s.tables(0).map((t, ti): Tensor => {
        if (t.has(6)) throw new ModelFormatError(`tensor ${ti} of subgraph ${si} is sparse, which is not supported`);
        if (t.has(9))
          throw new ModelFormatError(`tensor ${ti} of subgraph ${si} has variant subtypes, which are not supported`);
        const quantization = readQuantization(t.table(4));
        const shapeSignature = t.int32s(7);
        return {
          name: t.string(3) ?? '',
          shape: t.int32s(0) ?? [],
          ...(shapeSignature ? { shapeSignature } : {}),
          type: t.int8(1),
          buffer: t.uint32(2),
          ...(quantization ? { quantization } : {}),
          ...(t.bool(5) ? { isVariable: true } : {}),
          ...(t.has(8) ? { hasRank: t.bool(8) } : {}),
        };
      }),
      inputs: s.int32s(1) ?? [],
      outputs: s.int32s(2) ?? [],
      operators: s.tables(3).map((o, oi): Operator => {
        if (o.uint8(11) !== 0)
          throw new ModelFormatError(`operator ${oi} uses builtin_options_2, which is not supported`);
        const optionsType = o.uint8(3);
        const customOptions = o.bytes(5);
        const mutating = o.bytes(7);
        const intermediates = o.int32s(8);
        return {
          opcodeIndex: o.uint32(0),
          inputs: o.int32s(1) ?? [],
          outputs: o.int32s(2) ?? [],
          optionsType,
          options: readOptions(o.table(4), optionsType, `operator ${oi} of subgraph ${si}`),
          ...(customOptions ? { customOptions, customOptionsFormat: o.int8(6) } : {}),
          ...(mutating && mutating.length ? { mutatingVariableInputs: Array.from(mutating, (v) => v !== 0) } : {}),
          ...(intermediates && intermediates.length ? { intermediates } : {}),
        };
      }),
    }));
    const buffers = model.tables(4).map((b, bi) => {
      if (b.uint64(1) > 1n)
        throw new ModelFormatError(`buffer ${bi} is stored outside the flatbuffer, which is not supported`);
      return b.bytes(0) ?? new Uint8Array(0);
    });
    const metadata = model.tables(6).map((m) => ({ name: m.string(0) ?? '', buffer: m.uint32(1) }));
    const metadataBuffer = model.int32s(5);
    const tensorMap = (t: Table) => ({ name: t.string(0) ?? '', tensor: t.uint32(1) });
    const signatureDefs = model.tables(7).map((s): SignatureDef => ({
      key: s.string(2) ?? '',
      subgraphIndex: s.uint32(4),
      inputs: s.tables(0).map(tensorMap),
      outputs: s.tables(1).map(tensorMap),
    }));
    return {
      version: model.uint32(0),
      description: model.string(3) ?? '',
      operatorCodes,
      subgraphs,
      buffers,
      metadata,
      ...(metadataBuffer ? { metadataBuffer } : {}),
      signatureDefs,
    };
  } catch (error) {
    if (error instanceof ModelFormatError) throw error;
    throw new ModelFormatError(`the model file is damaged: ${(error as Error).message}`);
  }
}

// ------------------------------------------------------------------ writer --

type Offset = number;

// Flatbuffers are built back to front: vectors are filled last element first.
function int32Vector(b: Builder, values: readonly number[]): Offset {
  b.startVector(4, values.length, 4);
  for (let i = values.length - 1; i >= 0; i--) b.addInt32(values[i]);
  return b.endVector();
}

function float32Vector(b: Builder, values: readonly number[]): Offset {
  b.startVector(4, values.length, 4);
  for (let i = values.length - 1; i >= 0; i--) b.addFloat32(values[i]);
  return b.endVector();
}

function int64Vector(b: Builder, values: readonly number[]): Offset {
  b.startVector(8, values.length, 8);
  for (let i = values.length - 1; i >= 0; i--) b.addInt64(BigInt(values[i]));
  return b.endVector();
}

function boolVector(b: Builder, values: readonly boolean[]): Offset {
  b.startVector(1, values.length, 1);
  for (let i = values.length - 1; i >= 0; i--) b.addInt8(values[i] ? 1 : 0);
  return b.endVector();
}

function offsetVector(b: Builder, offsets: readonly Offset[]): Offset {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]);
  return b.endVector();
}

/**
 * A byte vector aligned to 16 bytes (Buffer.data is force_align: 16 in the
 * schema, so kernels can read int32 and float constants in place).
 */
function alignedBytes(b: Builder, data: Uint8Array): Offset {
  b.startVector(1, data.length, 16);
  // The Builder has no public bulk copy with alignment; these are the steps
  // of its own createByteVector, which aligns to 1.
  const internal = b as unknown as { space: number; bb: ByteBuffer };
  internal.space -= data.length;
  internal.bb.setPosition(internal.space);
  internal.bb.bytes().set(data, internal.space);
  return b.endVector();
}

function writeOptions(b: Builder, type: number, options: Record<string, OptionValue>): Offset {
  const spec = OPTIONS_TABLES[type];
  if (!spec) throw new ModelFormatError(`builtin options table ${type} is not one this writer knows`);
  const vectors = new Map<string, Offset>();
  for (const field of spec.fields) {
    const value = options[field.name];
    if (field.kind === 'int32[]' && Array.isArray(value)) vectors.set(field.name, int32Vector(b, value));
  }
  b.startObject(spec.fields.length);
  spec.fields.forEach((field: OptionsField, id) => {
    const value = options[field.name];
    if (value === undefined) return;
    const fallback = field.fallback ?? (field.kind === 'bool' ? false : 0);
    switch (field.kind) {
      case 'bool':
        b.addFieldInt8(id, value ? 1 : 0, fallback ? 1 : 0);
        break;
      case 'int8':
      case 'uint8':
        b.addFieldInt8(id, value as number, fallback as number);
        break;
      case 'int32':
      case 'uint32':
        b.addFieldInt32(id, value as number, fallback as number);
        break;
      case 'float32':
        b.addFieldFloat32(id, value as number, fallback as number);
        break;
      case 'int32[]':
        b.addFieldOffset(id, vectors.get(field.name)!, 0);
        break;
    }
  });
  return b.endObject();
}

function writeQuantization(b: Builder, q: Quantization): Offset {
  const min = q.min ? float32Vector(b, q.min) : 0;
  const max = q.max ? float32Vector(b, q.max) : 0;
  const scale = float32Vector(b, q.scale);
  const zeroPoint = int64Vector(b, q.zeroPoint);
  b.startObject(7);
  if (min) b.addFieldOffset(0, min, 0);
  if (max) b.addFieldOffset(1, max, 0);
  b.addFieldOffset(2, scale, 0);
  b.addFieldOffset(3, zeroPoint, 0);
  b.addFieldInt32(6, q.quantizedDimension, 0);
  return b.endObject();
}

function writeTensor(b: Builder, t: Tensor): Offset {
  const shape = int32Vector(b, t.shape);
  const name = b.createString(t.name);
  const quantization = t.quantization ? writeQuantization(b, t.quantization) : 0;
  const signature = t.shapeSignature ? int32Vector(b, t.shapeSignature) : 0;
  b.startObject(9);
  b.addFieldOffset(0, shape, 0);
  b.addFieldInt8(1, t.type, 0);
  b.addFieldInt32(2, t.buffer, 0);
  b.addFieldOffset(3, name, 0);
  if (quantization) b.addFieldOffset(4, quantization, 0);
  if (t.isVariable) b.addFieldInt8(5, 1, 0);
  if (signature) b.addFieldOffset(7, signature, 0);
  if (t.hasRank !== undefined) {
    b.forceDefaults(true);
    b.addFieldInt8(8, t.hasRank ? 1 : 0, 0);
    b.forceDefaults(false);
  }
  return b.endObject();
}

function writeOperator(b: Builder, op: Operator): Offset {
  const inputs = int32Vector(b, op.inputs);
  const outputs = int32Vector(b, op.outputs);
  const options = op.optionsType ? writeOptions(b, op.optionsType, op.options) : 0;
  const custom = op.customOptions ? b.createByteVector(op.customOptions) : 0;
  const mutating = op.mutatingVariableInputs ? boolVector(b, op.mutatingVariableInputs) : 0;
  const intermediates = op.intermediates ? int32Vector(b, op.intermediates) : 0;
  b.startObject(9);
  // opcode_index is written even when 0, as the converter does.
  b.forceDefaults(true);
  b.addFieldInt32(0, op.opcodeIndex, 0);
  b.forceDefaults(false);
  b.addFieldOffset(1, inputs, 0);
  b.addFieldOffset(2, outputs, 0);
  if (options) {
    b.addFieldInt8(3, op.optionsType, 0);
    b.addFieldOffset(4, options, 0);
  }
  if (custom) {
    b.addFieldOffset(5, custom, 0);
    b.addFieldInt8(6, op.customOptionsFormat ?? 0, 0);
  }
  if (mutating) b.addFieldOffset(7, mutating, 0);
  if (intermediates) b.addFieldOffset(8, intermediates, 0);
  return b.endObject();
}

function writeOperatorCode(b: Builder, code: OperatorCode): Offset {
  const custom = code.customCode !== undefined ? b.createString(code.customCode) : 0;
  b.startObject(4);
  // Both code fields: readers take the larger, and pre-2.4 readers only know
  // the byte, which holds codes up to 127 (PLACEHOLDER_FOR_GREATER_OP_CODES above).
  b.forceDefaults(true);
  b.addFieldInt8(0, Math.min(code.builtin, 127), 0);
  b.addFieldInt32(3, code.builtin, 0);
  b.forceDefaults(false);
  if (custom) b.addFieldOffset(1, custom, 0);
  b.addFieldInt32(2, code.version, 1);
  return b.endObject();
}

function writeSubgraph(b: Builder, s: Subgraph): Offset {
  const tensors = offsetVector(
    b,
    s.tensors.map((t) => writeTensor(b, t)),
  );
  const inputs = int32Vector(b, s.inputs);
  const outputs = int32Vector(b, s.outputs);
  const operators = offsetVector(
    b,
    s.operators.map((o) => writeOperator(b, o)),
  );
  const name = b.createString(s.name);
  b.startObject(5);
  b.addFieldOffset(0, tensors, 0);
  b.addFieldOffset(1, inputs, 0);
  b.addFieldOffset(2, outputs, 0);
  b.addFieldOffset(3, operators, 0);
  b.addFieldOffset(4, name, 0);
  return b.endObject();
}

/** Serialises a model. The same model always gives the same bytes. */
export function writeModel(model: TfliteModel): Uint8Array {
  const size = model.buffers.reduce((n, d) => n + d.length + 32, 0) + 65536;
  const b = new Builder(size);
  // Buffers first (they are written back to front, so they end up last in
  // the file, after the tables, as the converter lays them out).
  const buffers = offsetVector(
    b,
    model.buffers.map((data) => {
      const vector = data.length ? alignedBytes(b, data) : 0;
      b.startObject(3);
      if (vector) b.addFieldOffset(0, vector, 0);
      return b.endObject();
    }),
  );
  const operatorCodes = offsetVector(
    b,
    model.operatorCodes.map((c) => writeOperatorCode(b, c)),
  );
  const subgraphs = offsetVector(
    b,
    model.subgraphs.map((s) => writeSubgraph(b, s)),
  );
  const description = b.createString(model.description);
  const metadata = offsetVector(
    b,
    model.metadata.map((m) => {
      const name = b.createString(m.name);
      b.startObject(2);
      b.addFieldOffset(0, name, 0);
      b.addFieldInt32(1, m.buffer, 0);
      return b.endObject();
    }),
  );
  const tensorMaps = (maps: { name: string; tensor: number }[]) =>
    offsetVector(
      b,
      maps.map((m) => {
        const name = b.createString(m.name);
        b.startObject(2);
        b.addFieldOffset(0, name, 0);
        b.addFieldInt32(1, m.tensor, 0);
        return b.endObject();
      }),
    );
  const signatureDefs = offsetVector(
    b,
    model.signatureDefs.map((s) => {
      const inputs = tensorMaps(s.inputs);
      const outputs = tensorMaps(s.outputs);
      const key = b.createString(s.key);
      b.startObject(5);
      b.addFieldOffset(0, inputs, 0);
      b.addFieldOffset(1, outputs, 0);
      b.addFieldOffset(2, key, 0);
      b.addFieldInt32(4, s.subgraphIndex, 0);
      return b.endObject();
    }),
  );
  const metadataBuffer = model.metadataBuffer ? int32Vector(b, model.metadataBuffer) : 0;
  b.startObject(8);
  b.addFieldInt32(0, model.version, 0);
  b.addFieldOffset(1, operatorCodes, 0);
  b.addFieldOffset(2, subgraphs, 0);
  b.addFieldOffset(3, description, 0);
  b.addFieldOffset(4, buffers, 0);
  if (metadataBuffer) b.addFieldOffset(5, metadataBuffer, 0);
  if (model.metadata.length) b.addFieldOffset(6, metadata, 0);
  if (model.signatureDefs.length) b.addFieldOffset(7, signatureDefs, 0);
  b.finish(b.endObject(), 'TFL3');
  return b.asUint8Array().slice();
}

/** A deep copy, for transforms that must not touch their input. */
export function cloneModel(model: TfliteModel): TfliteModel {
  return structuredClone(model);
}
