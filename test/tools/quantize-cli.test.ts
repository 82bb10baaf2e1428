/**
 * coral-face quantize, eval --model, eval-pairs, edgetpu-check and
 * edgetpu-compile, run as a user would (a child process). edgetpu_compiler
 * exists only for x86-64 Linux and is not installed here: the compile command
 * is tested without one on PATH, and with a stand-in script that writes what
 * the real compiler writes (its output model and operation log).
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readModel, sha256 } from '../../native/quantize';
import { FACES_DIR, MODELS } from '../models';

const CLI = path.resolve(__dirname, '..', '..', 'nodes', 'tools', 'cli', 'main.js');
const INT8 = path.resolve(__dirname, '..', '..', 'models', 'mobilefacenet_int8.tflite');
const RECORD = path.resolve(__dirname, '..', '..', '..', 'native', 'models', 'mobilefacenet_int8.calibration.json');
const PAIRS_DIR = path.join(path.dirname(FACES_DIR), 'dev-pairs');

function run(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { status: number | null; stdout: string; stderr: string; json: any[] } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300000, env });
  const json = result.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, json };
}

describe('coral-face quantize / eval-pairs / edgetpu-* commands', function () {
  this.timeout(300000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-quantize-cli-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('quantize --record rebuilds the shipped int8 model byte for byte, without photos', () => {
    const out = path.join(tmp, 'rebuilt.tflite');
    const result = run(['quantize', '--record', RECORD, '-o', out, '--json']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.json[0].identical, true);
    assert.equal(sha256(fs.readFileSync(out)), sha256(fs.readFileSync(INT8)));
    assert.deepEqual(result.json[0].report.output[0].shape, [1, 192]);
  });

  it('quantize --calibration calibrates on the faces of a folder, and its record rebuilds the same bytes', () => {
    const photos = path.join(tmp, 'photos');
    fs.mkdirSync(photos);
    const people = fs
      .readdirSync(FACES_DIR)
      .filter((d) => !d.startsWith('_'))
      .sort()
      .slice(0, 6);
    for (const person of people) {
      const file = fs.readdirSync(path.join(FACES_DIR, person)).sort()[0];
      fs.symlinkSync(path.join(FACES_DIR, person, file), path.join(photos, file));
    }
    fs.writeFileSync(path.join(photos, 'not-a-photo.jpg'), 'garbage');
    const [out, record] = [path.join(tmp, 'calibrated.tflite'), path.join(tmp, 'record.json')];
    const result = run([
      'quantize',
      '--calibration',
      photos,
      '-o',
      out,
      '--record',
      record,
      '--method',
      'percentile:1e-4',
    ]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /calibration: +6 faces from 7 photos, ranges by percentile:0\.0001/);
    assert.match(result.stdout, /int8 vs float: +cosine median 0\.9\d+/);
    const saved = JSON.parse(fs.readFileSync(record, 'utf8'));
    assert.deepEqual([saved.calibration.samples, saved.result.sha256], [6, sha256(fs.readFileSync(out))]);
    assert.ok(!JSON.stringify(saved).includes(os.homedir()) || os.homedir() === '/', 'the record names no home folder');
    const again = path.join(tmp, 'again.tflite');
    assert.equal(run(['quantize', '--record', record, '-o', again]).status, 0);
    assert.deepEqual(fs.readFileSync(again), fs.readFileSync(out));
  });

  it('quantize usage errors exit 2', () => {
    assert.equal(run(['quantize', '--calibration', tmp]).status, 2, 'no -o');
    assert.equal(run(['quantize', '-o', path.join(tmp, 'x.tflite')]).status, 2, 'neither --calibration nor --record');
    const bad = run(['quantize', '--calibration', tmp, '-o', path.join(tmp, 'x.tflite'), '--method', 'kl']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown range method "kl"/);
  });

  it('edgetpu-check: exit 0 for the int8 model, 1 for the float one with the reasons', () => {
    const ok = run(['edgetpu-check', INT8]);
    assert.equal(ok.status, 0, ok.stdout);
    assert.match(ok.stdout, /every one of the 98 operations would map to the Edge TPU/);
    const missing = run(['edgetpu-check', path.join(tmp, 'missing.tflite')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /model file not found/);
    const fails = run(['edgetpu-check', MODELS.mobilefacenet]);
    assert.equal(fails.status, 1);
    assert.match(fails.stdout, /0 of 230 operations would map/);
    assert.match(
      fails.stdout,
      /float32 tensor: the Edge TPU runs only int8\/uint8 \(fully quantised\) models \(\d+, e\.g\./,
    );
    const json = run(['edgetpu-check', MODELS.mobilefacenet, '--json']).json[0];
    assert.equal(json.ok, false);
    assert.ok(json.findings.length > 100);
  });

  it('edgetpu-compile without the compiler prints the exact steps; with it, checks that every op is mapped', () => {
    const model = path.join(tmp, 'mobilefacenet_int8.tflite');
    fs.copyFileSync(INT8, model);
    const noCompiler = run(['edgetpu-compile', model], { ...process.env, PATH: path.dirname(process.execPath) });
    assert.equal(noCompiler.status, 1);
    assert.match(noCompiler.stdout, /edgetpu_compiler is not on PATH/);
    assert.match(noCompiler.stdout, /apt-get install edgetpu-compiler/);
    assert.ok(noCompiler.stdout.includes(`edgetpu_compiler -s -o ${tmp} ${model}`));

    // A stand-in with the real compiler's interface: -s -o <dir> <model>, writes <name>_edgetpu.tflite and .log.
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    const stub = path.join(bin, 'edgetpu_compiler');
    fs.writeFileSync(
      stub,
      `#!/bin/sh
out="$3"; model="$4"; name=$(basename "$model" .tflite)
cp "$model" "$out/\${name}_edgetpu.tflite"
printf 'Edge TPU Compiler version 16.0.384591198\\n\\nOperator                       Count      Status\\n\\nCONV_2D                        35         Mapped to Edge TPU\\nPRELU                          33         %s\\n' "\${STUB_PRELU:-Mapped to Edge TPU}" > "$out/\${name}_edgetpu.log"
echo "Model compiled successfully."
`,
      { mode: 0o755 },
    );
    const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH}` };
    const compiled = run(['edgetpu-compile', model], env);
    assert.equal(compiled.status, 0, compiled.stdout + compiled.stderr);
    assert.match(compiled.stdout, /every operation is mapped to the Edge TPU/);
    assert.ok(fs.existsSync(path.join(tmp, 'mobilefacenet_int8_edgetpu.tflite')));
    const partly = run(['edgetpu-compile', model, '--json'], {
      ...env,
      STUB_PRELU: 'Operation is otherwise supported, but not mapped due to some unspecified limitation',
    });
    assert.equal(partly.status, 1);
    assert.deepEqual(partly.json[0].unmapped, [
      'PRELU x33 (Operation is otherwise supported, but not mapped due to some unspecified limitation)',
    ]);
  });

  it('eval --model evaluates the int8 model and names it; eval-pairs runs the fold protocol', () => {
    const dataset = path.join(tmp, 'dataset');
    const people = fs
      .readdirSync(FACES_DIR)
      .filter((d) => !d.startsWith('_'))
      .sort()
      .slice(0, 3);
    for (const person of [...people, '_unknown']) {
      fs.mkdirSync(path.join(dataset, person), { recursive: true });
      for (const file of fs.readdirSync(path.join(FACES_DIR, person)).sort().slice(0, 7)) {
        fs.symlinkSync(path.join(FACES_DIR, person, file), path.join(dataset, person, file));
      }
    }
    const result = run(['eval', dataset, '--json', '--model', INT8, '--device', 'cpu']);
    assert.equal(result.status, 0, result.stderr);
    const [report] = result.json;
    assert.equal(report.model, INT8);
    assert.match(report.embedder.id, /^mobilefacenet_int8-[0-9a-f]{12}-s$/);
    assert.deepEqual([report.identities, report.probes, report.impostors], [3, 6, 7]);
    assert.ok(report.top1 >= 5 / 6, JSON.stringify(report));

    // Two folds of 4 + 4 pairs from dev-pairs' own list.
    const lines = fs.readFileSync(path.join(PAIRS_DIR, 'pairs.txt'), 'utf8').trim().split('\n');
    const perFold = Number(lines[0].split(/\s+/)[1]);
    const fold = (f: number) => [
      ...lines.slice(1 + f * 2 * perFold, 1 + f * 2 * perFold + 4),
      ...lines.slice(1 + f * 2 * perFold + perFold, 1 + f * 2 * perFold + perFold + 4),
    ];
    const pairsFile = path.join(tmp, 'pairs.txt');
    fs.writeFileSync(pairsFile, ['2\t4', ...fold(0), ...fold(1)].join('\n') + '\n');
    const pairs = run([
      'eval-pairs',
      pairsFile,
      '--images',
      path.join(PAIRS_DIR, 'images'),
      '--json',
      '--model',
      INT8,
      '--device',
      'cpu',
    ]);
    assert.equal(pairs.status, 0, pairs.stderr);
    const p = pairs.json[0];
    assert.deepEqual([p.pairs, p.folds, p.model, p.foldAccuracies.length], [16, 2, INT8, 2]);
    for (const key of ['accuracy', 'std', 'noFace', 'msPerImage']) assert.equal(typeof p[key], 'number', key);
    assert.deepEqual(Object.keys(p.tarAtFar), ['1e-2', '1e-3']);
    assert.ok(p.accuracy >= 0.75, JSON.stringify(p));
    assert.equal(readModel(fs.readFileSync(INT8)).subgraphs[0].operators.length, 98);
    const missing = run(['eval-pairs', pairsFile, '--images', tmp]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /image\(s\) named in .* are not under/);
  });
});
