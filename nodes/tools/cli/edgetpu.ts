/**
 * `coral-face edgetpu-check <model>`: would edgetpu_compiler map the whole
 * model to the Edge TPU (native/quantize/edgetpu-check.ts, Coral's published
 * rules)? Exit 0 when everything would map, 1 otherwise, with the reasons.
 *
 * `coral-face edgetpu-compile [int8.tflite] [-o <dir>]`: compiles the model
 * with edgetpu_compiler when it is on PATH (x86-64 Linux only) and checks that
 * its log says every operation is mapped; otherwise prints the exact steps.
 * Without a model: the package's int8 MobileFaceNet, compiled into the same
 * folder so that the runtime finds the pair.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { shippedModels } from '../../../native/models';
import { checkEdgeTpu, type EdgeTpuCheck } from '../../../native/quantize';
import { parseCompilerLog } from '../../../native/quantize/compiler-log';
import { type Args, stringFlag, UsageError } from './args';
import { emit, outputOf } from './output';

/** Findings grouped by reason, with a few of the tensors or operators each one is about. */
export function describeCheck(check: EdgeTpuCheck): string[] {
  const lines = [
    check.ok
      ? `every one of the ${check.operators} operations would map to the Edge TPU`
      : `${check.mapped} of ${check.operators} operations would map to the Edge TPU; not mapped, and why:`,
  ];
  const groups = new Map<string, string[]>();
  for (const f of check.findings.filter((x) => x.severity === 'error')) {
    const key = f.op ? `${f.op}: ${f.reason}` : f.reason;
    groups.set(
      key,
      [...(groups.get(key) ?? []), f.tensor ?? (f.operator !== undefined ? `operator ${f.operator}` : '')].filter(
        Boolean,
      ),
    );
  }
  for (const [reason, where] of groups) {
    const example = where.length
      ? ` (${where.length > 3 ? `${where.length}, e.g. ${where.slice(0, 3).join(', ')}` : where.join(', ')})`
      : '';
    lines.push(`  - ${reason}${example}`);
  }
  for (const f of check.findings.filter((x) => x.severity === 'warning')) lines.push(`warning: ${f.reason}`);
  lines.push(
    `parameters: ${(check.parameterBytes / 1048576).toFixed(2)} MiB (about 8 MiB fit in the Edge TPU's on-chip memory)`,
  );
  return lines;
}

function readModelFile(file: string): Uint8Array {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile())
    throw Object.assign(new Error(`model file not found: ${file}`), { code: 'ERR_MODEL_NOT_FOUND' });
  return new Uint8Array(fs.readFileSync(file));
}

export async function edgetpuCheck(args: Args): Promise<number> {
  const [model] = args.positional;
  if (!model) throw new UsageError('edgetpu-check needs a model file');
  let check: EdgeTpuCheck;
  try {
    check = checkEdgeTpu(readModelFile(model));
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODEL_NOT_FOUND') throw error;
    throw Object.assign(new Error(`${model}: ${(error as Error).message}`), { code: 'ERR_MODEL_INVALID' });
  }
  emit(outputOf(args), { model: path.resolve(model), ...check }, () => describeCheck(check).join('\n'));
  return check.ok ? 0 : 1;
}

/** The executable on PATH, or undefined. */
function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** What to run where edgetpu_compiler is not installed. */
export function compileSteps(model: string, outDir: string): string {
  const compiled = path.join(outDir, path.basename(model).replace(/\.tflite$/, '_edgetpu.tflite'));
  return `edgetpu_compiler is not on PATH. It runs on x86-64 Debian or Ubuntu (Coral publishes no ARM build); on a Raspberry Pi,
compile on a PC and copy the result over. To install it (Coral's apt repository):

  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg
  echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \\
    | sudo tee /etc/apt/sources.list.d/coral-edgetpu.list
  sudo apt-get update && sudo apt-get install edgetpu-compiler

Then compile (this command does it for you once the compiler is on PATH):

  edgetpu_compiler -s -o ${outDir} ${model}

Every row of ${compiled.replace(/\.tflite$/, '.log')} should say "Mapped to Edge TPU". Keep
${path.basename(compiled)} beside ${path.basename(model)} (${outDir}): the runtime uses the pair,
the compiled model on the Coral and ${path.basename(model)} on the CPU when the Coral is away${
    path.resolve(model) === shippedModels.mobilefacenetInt8
      ? '\n(for the bundled MobileFaceNet the CPU runs the float model unless the edgetpu-device config\'s "CPU model" is int8)'
      : ''
  }.
`;
}

export async function edgetpuCompile(args: Args): Promise<number> {
  const out = outputOf(args);
  const model = path.resolve(args.positional[0] ?? shippedModels.mobilefacenetInt8);
  const outDir = path.resolve(stringFlag(args, 'out') ?? path.dirname(model));
  const check = checkEdgeTpu(readModelFile(model));
  const compiler = onPath('edgetpu_compiler');
  if (!compiler) {
    emit(
      out,
      { model, compiled: null, reason: 'edgetpu_compiler not on PATH', steps: compileSteps(model, outDir), check },
      () => compileSteps(model, outDir),
    );
    return 1;
  }
  if (!check.ok && !out.json) process.stderr.write(`${describeCheck(check).join('\n')}\n`);
  fs.mkdirSync(outDir, { recursive: true });
  const run = spawnSync(compiler, ['-s', '-o', outDir, model], { encoding: 'utf8', timeout: 600000 });
  const logFile = path.join(outDir, path.basename(model).replace(/\.tflite$/, '_edgetpu.log'));
  const compiled = logFile.replace(/\.log$/, '.tflite');
  const log = parseCompilerLog(fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : (run.stdout ?? ''));
  const ok = run.status === 0 && fs.existsSync(compiled) && log.allMapped;
  if (!out.json) {
    // The compiler's own words first: they are what a bug report needs.
    process.stdout.write(run.stdout ?? '');
    process.stderr.write(run.stderr ?? '');
  }
  emit(
    out,
    {
      model,
      compiled: ok ? compiled : null,
      log: logFile,
      compilerVersion: log.version ?? null,
      allMapped: log.allMapped,
      unmapped: log.unmapped,
      status: run.status,
    },
    () => {
      if (ok) return `\nevery operation is mapped to the Edge TPU: ${compiled} (log ${logFile})`;
      if (run.status !== 0) return `\nedgetpu_compiler failed (exit ${run.status ?? run.signal})`;
      return `\nnot every operation is mapped to the Edge TPU: ${log.unmapped.join('; ') || 'no operation table in the log'}`;
    },
  );
  return ok ? 0 : 1;
}
