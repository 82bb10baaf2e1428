/**
 * The image's edgetpu-model stage (addon/Dockerfile, addon/edgetpu-model.sh).
 * No Docker engine and no edgetpu_compiler here: the stage's recipe is read,
 * and its script is run for real against a package tarball made here and a
 * stand-in edgetpu_compiler with the real one's interface (-s -o <dir>
 * <model>; writes <name>_edgetpu.tflite and the operation log <name>_edgetpu.log).
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { shippedModels } from '../../native';
import { ADDON } from './sandbox';

const SCRIPT = path.join(ADDON, 'edgetpu-model.sh');
const INT8 = shippedModels.mobilefacenetInt8;

describe('Home Assistant app: the Edge TPU model build stage', function () {
  this.timeout(30000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-edgetpu-stage-'));
  const tarball = path.join(tmp, 'node-red-contrib-coral-face.tgz');
  const bin = path.join(tmp, 'bin');

  before(() => {
    // A package tarball laid out as npm pack lays it out: package/build/models/...
    const staging = path.join(tmp, 'staging', 'package', 'build', 'models');
    fs.mkdirSync(staging, { recursive: true });
    fs.copyFileSync(INT8, path.join(staging, 'mobilefacenet_int8.tflite'));
    assert.equal(spawnSync('tar', ['-czf', tarball, '-C', path.join(tmp, 'staging'), 'package']).status, 0);
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, 'edgetpu_compiler'),
      `#!/bin/sh
[ "$1" = "-s" ] && [ "$2" = "-o" ] || exit 64
out="$3"; model="$4"; name=$(basename "$model" .tflite)
[ -n "$STUB_NO_MODEL" ] || cp "$model" "$out/\${name}_edgetpu.tflite"
{
  echo "Edge TPU Compiler version 16.0.384591198"
  echo
  echo "Operator                       Count      Status"
  echo
  echo "CONV_2D                        35         Mapped to Edge TPU"
  echo "PRELU                          33         \${STUB_PRELU:-Mapped to Edge TPU}"
} > "$out/\${name}_edgetpu.log"
`,
      { mode: 0o755 },
    );
  });

  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const stage = (out: string, env: Record<string, string> = {}) =>
    spawnSync('bash', [SCRIPT, tarball, out], {
      encoding: 'utf8',
      env: { ...process.env, ...env, PATH: `${bin}${path.delimiter}${process.env.PATH}` },
    });

  it('the Dockerfile compiles in its own linux/amd64 stage and copies the result beside the int8 model', () => {
    const dockerfile = fs.readFileSync(path.join(ADDON, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM --platform=linux\/amd64 debian:bookworm-slim AS edgetpu-model$/m);
    assert.match(dockerfile, /apt-get install -y --no-install-recommends edgetpu-compiler/);
    assert.match(
      dockerfile,
      /^COPY --from=package \/node-red-contrib-coral-face\.tgz \/tmp\/package\/node-red-contrib-coral-face\.tgz$/m,
    );
    assert.match(dockerfile, /^COPY edgetpu-model\.sh \/usr\/local\/bin\/edgetpu-model$/m);
    assert.match(dockerfile, /edgetpu-model \/tmp\/package\/node-red-contrib-coral-face\.tgz \/out$/m);
    assert.match(
      dockerfile,
      /^COPY --from=edgetpu-model \/out\/mobilefacenet_int8_edgetpu\.tflite \/out\/mobilefacenet_int8_edgetpu\.log \\\n +\/opt\/node-red\/node_modules\/node-red-contrib-coral-face\/build\/models\/$/m,
    );
    // The compile stage comes first, so the final image is still the last FROM (what the builder tags).
    // It takes the tarball from the package stage, and comes before the final image, which stays the last FROM (what the builder tags).
    assert.ok(dockerfile.indexOf('AS package') < dockerfile.indexOf('AS edgetpu-model'));
    assert.ok(dockerfile.indexOf('AS edgetpu-model') < dockerfile.indexOf('FROM ${BUILD_FROM}'));
    assert.match(dockerfile.slice(dockerfile.lastIndexOf('\nFROM ')), /^\nFROM \$\{BUILD_FROM\}$/m);
    assert.ok(fs.statSync(SCRIPT).mode & 0o111, 'the script is executable');
  });

  it('compiles the model from the tarball when every operation maps', () => {
    const out = path.join(tmp, 'ok');
    const result = stage(out);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /every operation is mapped to the Edge TPU/);
    assert.deepEqual(fs.readdirSync(out).sort(), [
      'mobilefacenet_int8_edgetpu.log',
      'mobilefacenet_int8_edgetpu.tflite',
    ]);
  });

  it('fails the build when an operation is left on the CPU, or when the compiler writes no model', () => {
    const partly = stage(path.join(tmp, 'partly'), {
      STUB_PRELU: 'Operation is otherwise supported, but not mapped due to some unspecified limitation',
    });
    assert.equal(partly.status, 1);
    assert.match(partly.stderr, /not mapped to the Edge TPU: PRELU +33 +Operation is otherwise supported/);
    const none = stage(path.join(tmp, 'none'), { STUB_NO_MODEL: '1' });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /edgetpu_compiler wrote no/);
    const usage = spawnSync('bash', [SCRIPT], { encoding: 'utf8' });
    assert.equal(usage.status, 2);
  });
});
