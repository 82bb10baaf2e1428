/**
 * edgetpu-check (native/quantize/edgetpu-check.ts): our int8 MobileFaceNet
 * would map entirely; the float model and hand-broken copies of the int8 one
 * would not, each for the right reason. And the compiler log parser.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { checkEdgeTpu, readModel, writeModel } from '../../native/quantize';
import { parseCompilerLog } from '../../native/quantize/compiler-log';
import { Op, TensorType } from '../../native/quantize/schema';
import type { TfliteModel } from '../../native/quantize/tflite-file';
import { MODELS } from '../models';

const INT8 = path.resolve(__dirname, '..', '..', 'models', 'mobilefacenet_int8.tflite');

function broken(edit: (model: TfliteModel) => void): Uint8Array {
  const model = readModel(new Uint8Array(fs.readFileSync(INT8)));
  edit(model);
  return writeModel(model);
}

const reasons = (bytes: Uint8Array) =>
  checkEdgeTpu(bytes)
    .findings.filter((f) => f.severity === 'error')
    .map((f) => `${f.op ?? f.tensor}: ${f.reason}`);

describe('edgetpu-check', () => {
  it('passes our int8 MobileFaceNet: every op maps, 1.3 MiB of parameters fit on the chip', () => {
    const check = checkEdgeTpu(new Uint8Array(fs.readFileSync(INT8)));
    assert.deepEqual(check.findings, []);
    assert.deepEqual([check.ok, check.mapped, check.operators], [true, 98, 98]);
    assert.ok(check.parameterBytes > 1e6 && check.parameterBytes < 2e6);
  });

  it('fails the float model: float32 tensors everywhere, nothing maps', () => {
    const check = checkEdgeTpu(new Uint8Array(fs.readFileSync(MODELS.mobilefacenet)));
    assert.equal(check.ok, false);
    assert.equal(check.mapped, 0);
    assert.ok(
      check.findings.some((f) => f.tensor === 'input' && /float32 tensor: the Edge TPU runs only int8/.test(f.reason)),
    );
    // The float model as shipped also has a batch of 2 and the five-op PReLUs (ABS is not on the list).
    assert.ok(check.findings.some((f) => /only the 3 innermost dimensions/.test(f.reason)));
    assert.ok(check.findings.some((f) => f.op === 'ABS' && /not on the Edge TPU's list/.test(f.reason)));
  });

  it('fails a DEQUANTIZE at the end, and says the ops after the first unmapped one follow it to the CPU', () => {
    const bytes = broken((model) => {
      const graph = model.subgraphs[0];
      model.operatorCodes.push({ builtin: Op.DEQUANTIZE, version: 2 });
      const out = graph.outputs[0];
      graph.tensors.push({ name: 'embeddings_float', shape: [1, 192], type: TensorType.FLOAT32, buffer: 0 });
      graph.operators.push({
        opcodeIndex: model.operatorCodes.length - 1,
        inputs: [out],
        outputs: [graph.tensors.length - 1],
        optionsType: 0,
        options: {},
      });
      graph.outputs = [graph.tensors.length - 1];
    });
    const check = checkEdgeTpu(bytes);
    assert.equal(check.ok, false);
    assert.equal(check.mapped, 98);
    assert.ok(
      reasons(bytes).some((r) => /^DEQUANTIZE: DEQUANTIZE is never mapped/.test(r)),
      reasons(bytes).join('\n'),
    );
    // A float output tensor is a finding of its own.
    assert.ok(reasons(bytes).some((r) => /^embeddings_float: float32 tensor/.test(r)));

    const early = broken((model) => {
      // The 3rd op becomes ABS (same tensors): everything from it on would run on the CPU.
      model.operatorCodes.push({ builtin: Op.ABS, version: 2 });
      const op = model.subgraphs[0].operators[2];
      Object.assign(op, {
        opcodeIndex: model.operatorCodes.length - 1,
        inputs: [op.inputs[0]],
        optionsType: 0,
        options: {},
      });
    });
    const split = checkEdgeTpu(early);
    assert.equal(split.mapped, 2);
    assert.ok(
      reasons(early).some((r) => /operators 2-97 would all run on the CPU/.test(r)),
      reasons(early).join('\n'),
    );
  });

  it('fails a PRELU whose alpha is not 1-D, a batch of 2, a dynamic shape, a pooling with a fused activation', () => {
    const alpha2d = broken((model) => {
      const graph = model.subgraphs[0];
      const prelu = graph.operators.find((op) => model.operatorCodes[op.opcodeIndex].builtin === Op.PRELU)!;
      const alpha = graph.tensors[prelu.inputs[1]];
      alpha.shape = [2, alpha.shape[0] / 2];
    });
    assert.ok(
      reasons(alpha2d).some((r) => /^PRELU: alpha must be 1-dimensional .*got \[2,32\]/.test(r)),
      reasons(alpha2d).join('\n'),
    );

    const batch2 = broken((model) => {
      const graph = model.subgraphs[0];
      graph.tensors[graph.inputs[0]].shape = [2, 112, 112, 3];
    });
    assert.ok(
      reasons(batch2).some((r) =>
        /^input: shape \[2,112,112,3\]: only the 3 innermost dimensions may be above 1/.test(r),
      ),
    );

    const dynamic = broken((model) => {
      const graph = model.subgraphs[0];
      graph.tensors[graph.inputs[0]].shapeSignature = [-1, 112, 112, 3];
    });
    assert.ok(reasons(dynamic).some((r) => /^input: dynamic shape \[-1,112,112,3\]/.test(r)));

    const pooled = broken((model) => {
      // Op 95 (a 1x1 conv on [1,1,1,512]) becomes a 1x1 MAX_POOL with a fused RELU: same shapes, well formed.
      const graph = model.subgraphs[0];
      model.operatorCodes.push({ builtin: Op.MAX_POOL_2D, version: 2 });
      const op = graph.operators[95];
      Object.assign(op, {
        opcodeIndex: model.operatorCodes.length - 1,
        inputs: [op.inputs[0]],
        optionsType: 5,
        options: {
          padding: 0,
          stride_w: 1,
          stride_h: 1,
          filter_width: 1,
          filter_height: 1,
          fused_activation_function: 1,
        },
      });
    });
    assert.ok(
      reasons(pooled).some((r) => /^MAX_POOL_2D: pooling with a fused activation function is not supported/.test(r)),
    );
  });

  it('warns when the parameters would not fit the on-chip memory', () => {
    const big = broken((model) => {
      const graph = model.subgraphs[0];
      // A 9 MiB int8 constant: the check counts the bytes of every constant tensor.
      model.buffers.push(new Uint8Array(9 * 1024 * 1024));
      graph.tensors.push({
        name: 'huge',
        shape: [9 * 1024 * 1024],
        type: TensorType.INT8,
        buffer: model.buffers.length - 1,
        quantization: { scale: [1], zeroPoint: [0], quantizedDimension: 0 },
      });
    });
    const check = checkEdgeTpu(big);
    assert.equal(check.ok, true, 'it still maps: the rest is streamed');
    assert.ok(check.findings.some((f) => f.severity === 'warning' && /about 8 MiB fit on the chip/.test(f.reason)));
  });

  it('reads the compiler log: every row mapped, or what is left to the CPU', () => {
    const header =
      'Edge TPU Compiler version 16.0.384591198\nInput: m.tflite\nOutput: m_edgetpu.tflite\n\nOperator                       Count      Status\n\n';
    const mapped = parseCompilerLog(
      `${header}CONV_2D                        35         Mapped to Edge TPU\nPRELU                          33         Mapped to Edge TPU\n`,
    );
    assert.deepEqual(
      [mapped.version, mapped.allMapped, mapped.rows.length, mapped.unmapped],
      ['16.0.384591198', true, 2, []],
    );
    const partly = parseCompilerLog(
      `${header}CONV_2D                        35         Mapped to Edge TPU\nDEQUANTIZE                     1          Operation is working on an unsupported data type\n`,
    );
    assert.equal(partly.allMapped, false);
    assert.deepEqual(partly.unmapped, ['DEQUANTIZE x1 (Operation is working on an unsupported data type)']);
    assert.equal(
      parseCompilerLog('Edge TPU Compiler version 16.0\nModel compilation failed\n').allMapped,
      false,
      'no table, nothing mapped',
    );
  });
});
