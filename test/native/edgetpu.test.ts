/**
 * The Edge TPU path, against a fake libedgetpu built by the tests
 * (test/fake-edgetpu/fake_edgetpu.c): the real C API, scripted devices, a
 * delegate that claims no nodes (so the "compiled" model computes on the CPU
 * kernels inside the child), and an abort on request.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  BackendInfo,
  chooseDevice,
  CpuRuntime,
  EdgeTpuRuntime,
  InferenceRuntime,
  listEdgeTpuDevices,
  openRuntime,
  parseDeviceSpec,
  resolveModelPair,
  RuntimeError,
} from '../../native';
import { buildFakeEdgeTpu } from '../helpers/fake-edgetpu';
import { MODELS } from '../models';

// Under emulation (npm run test:arm64) one inference takes seconds and a
// child's start many more: longer than the supervisor's 10 s hang watchdog
// allows a cold invoke, or the 15 s a device listing gets.
const EMULATED = process.env.CORAL_FACE_EMULATED === '1' ? { invokeTimeoutMs: 300000 } : {};
const EMULATED_LISTING = process.env.CORAL_FACE_EMULATED === '1' ? { timeoutMs: 300000 } : {};

const USB0 = '/sys/bus/usb/devices/2-1';
const USB1 = '/sys/bus/usb/devices/2-2';
const PCI0 = '/dev/apex_0';

function seededInput(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return data;
}

function waitFor(
  emitter: InferenceRuntime,
  predicate: (b: BackendInfo) => boolean,
  timeoutMs: number,
): Promise<BackendInfo> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching backend event within ${timeoutMs} ms`)), timeoutMs);
    const listener = (backend: BackendInfo) => {
      if (!predicate(backend)) return;
      clearTimeout(timer);
      emitter.off('backend', listener);
      resolve(backend);
    };
    emitter.on('backend', listener);
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Edge TPU: device strings', function () {
  const devices = [
    { type: 'usb' as const, path: USB0 },
    { type: 'pci' as const, path: PCI0 },
    { type: 'usb' as const, path: USB1 },
  ];
  const pick = (text: string) => {
    const spec = parseDeviceSpec(text);
    assert.equal(spec.kind, 'edgetpu');
    return chooseDevice(devices, spec);
  };

  it('accepts the strings Frigate and pycoral users know', () => {
    assert.deepEqual(parseDeviceSpec('cpu'), { kind: 'cpu' });
    assert.deepEqual(parseDeviceSpec(''), { kind: 'edgetpu', text: '' });
    assert.deepEqual(parseDeviceSpec('auto'), { kind: 'edgetpu', text: 'auto' });
    assert.deepEqual(parseDeviceSpec('usb'), { kind: 'edgetpu', type: 'usb', index: undefined, text: 'usb' });
    assert.deepEqual(parseDeviceSpec('USB:1'), { kind: 'edgetpu', type: 'usb', index: 1, text: 'usb:1' });
    assert.deepEqual(parseDeviceSpec('pci:0'), { kind: 'edgetpu', type: 'pci', index: 0, text: 'pci:0' });
    assert.deepEqual(parseDeviceSpec(':2'), { kind: 'edgetpu', type: undefined, index: 2, text: ':2' });
    for (const bad of ['gpu', 'usb:', 'usb:x', 'pci:-1', 'usb:1:2']) {
      assert.throws(
        () => parseDeviceSpec(bad),
        (e: RuntimeError) => e.code === 'ERR_DEVICE_SPEC' && /usb:N/.test(e.message),
      );
    }
  });

  it('selects devices like libedgetpu: PCIe first for "", then by type and index', () => {
    const choice = (text: string) => {
      const c = pick(text);
      return c.ok ? `${c.name} ${c.device.path}` : `${c.code} ${c.reason}`;
    };
    assert.equal(choice(''), `pci:0 ${PCI0}`);
    assert.equal(choice('usb'), `usb:0 ${USB0}`);
    assert.equal(choice('usb:1'), `usb:1 ${USB1}`);
    assert.equal(choice('pci'), `pci:0 ${PCI0}`);
    assert.equal(choice(':0'), `usb:0 ${USB0}`); // the N-th in enumeration order
    assert.equal(choice(':2'), `usb:1 ${USB1}`);
    assert.equal(choice('usb:2'), 'ERR_EDGETPU_DEVICE_NOT_FOUND usb:2 not present (found pci:0, usb:0, usb:1)');
    assert.equal(choice('pci:1'), 'ERR_EDGETPU_DEVICE_NOT_FOUND pci:1 not present (found pci:0, usb:0, usb:1)');
    const none = chooseDevice([], { kind: 'edgetpu', text: '' });
    assert.equal(none.ok, false);
    assert.equal(!none.ok && none.code, 'ERR_EDGETPU_NO_DEVICE');
  });
});

describe('Edge TPU: with a fake libedgetpu', function () {
  this.timeout(60000);
  let library: string;
  let dir: string;
  let cpuModel: string;
  let logFile: string;
  const saved = { ...process.env };
  const open: InferenceRuntime[] = [];

  before(() => {
    library = buildFakeEdgeTpu();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-edgetpu-'));
    // A "compiled" twin: the fake delegate claims no nodes, so the child runs
    // the same graph on the CPU kernels and must give the CPU's results.
    cpuModel = path.join(dir, 'mobilefacenet.tflite');
    fs.copyFileSync(MODELS.mobilefacenet, cpuModel);
    fs.copyFileSync(MODELS.mobilefacenet, path.join(dir, 'mobilefacenet_edgetpu.tflite'));
    logFile = path.join(dir, 'fake.log');
  });

  beforeEach(() => {
    process.env.FAKE_EDGETPU_DEVICES = `usb:${USB0};pci:${PCI0};usb:${USB1}`;
    process.env.FAKE_EDGETPU_LOG = logFile;
    fs.writeFileSync(logFile, '');
  });

  afterEach(async () => {
    for (const runtime of open.splice(0)) await runtime.dispose();
    for (const key of Object.keys(process.env)) if (key.startsWith('FAKE_EDGETPU')) delete process.env[key];
    Object.assign(process.env, saved);
  });

  async function track(runtime: Promise<InferenceRuntime>): Promise<InferenceRuntime> {
    const r = await runtime;
    open.push(r);
    return r;
  }

  const logLines = () => fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean);

  it('lists devices with their names, through a child process', async () => {
    const listing = await listEdgeTpuDevices({ edgetpuLibrary: library, ...EMULATED_LISTING });
    assert.equal(listing.loaded, true);
    assert.match(listing.version ?? '', /RuntimeVersion\(14\)/);
    assert.deepEqual(listing.devices, [
      { type: 'usb', path: USB0, name: 'usb:0' },
      { type: 'pci', path: PCI0, name: 'pci:0' },
      { type: 'usb', path: USB1, name: 'usb:1' },
    ]);
    const missing = await listEdgeTpuDevices({
      edgetpuLibrary: path.join(dir, 'nope', 'libedgetpu.so.1'),
      ...EMULATED_LISTING,
    });
    assert.equal(missing.loaded, false);
    assert.match(missing.error ?? '', /cannot open shared object file/);
    assert.deepEqual(missing.devices, []);
  });

  it('finds the model pair X.tflite / X_edgetpu.tflite from either name', () => {
    const compiled = path.join(dir, 'mobilefacenet_edgetpu.tflite');
    assert.deepEqual(resolveModelPair(cpuModel), { cpu: cpuModel, edgetpu: compiled });
    assert.deepEqual(resolveModelPair(compiled), { edgetpu: compiled, cpu: cpuModel });
    assert.deepEqual(resolveModelPair(MODELS['blazeface-short']), {
      cpu: MODELS['blazeface-short'],
      edgetpu: undefined,
    });
  });

  it('runs the compiled model on the chosen device, with the performance option, and gives the CPU results', async () => {
    const runtime = await track(
      openRuntime(cpuModel, { device: 'usb:1', performance: 'max', edgetpuLibrary: library, ...EMULATED }),
    );
    assert.deepEqual(
      {
        kind: runtime.backend.kind,
        device: runtime.backend.device,
        path: runtime.backend.devicePath,
        model: runtime.backend.model,
      },
      { kind: 'edgetpu', device: 'usb:1', path: USB1, model: path.join(dir, 'mobilefacenet_edgetpu.tflite') },
    );
    assert.ok(runtime instanceof EdgeTpuRuntime);
    assert.ok(
      logLines().some((l) => l === `create type=usb path=${USB1} Performance=Max`),
      logLines().join('\n'),
    );
    const input = seededInput(2 * 112 * 112 * 3, 5);
    const [onTpu] = await runtime.invoke([input]);
    const cpu = await CpuRuntime.open(cpuModel);
    const [onCpu] = await cpu.invoke([input]);
    await cpu.dispose();
    assert.deepEqual(Array.from(onTpu), Array.from(onCpu));
  });

  it('passes no Performance option to a PCIe device (libedgetpu never throttles PCIe)', async () => {
    const runtime = await track(
      openRuntime(cpuModel, { device: 'pci', performance: 'low', edgetpuLibrary: library, ...EMULATED }),
    );
    assert.equal(runtime.backend.device, 'pci:0');
    assert.ok(logLines().includes(`create type=pci path=${PCI0}`), logLines().join('\n'));
  });

  const fallbacks: [string, () => void, Record<string, unknown>, string, RegExp][] = [
    [
      'libedgetpu not found',
      () => undefined,
      { edgetpuLibrary: '/nonexistent/libedgetpu.so.1' },
      'ERR_EDGETPU_LIBRARY',
      /libedgetpu not found .*nonexistent/,
    ],
    [
      'no device',
      () => {
        delete process.env.FAKE_EDGETPU_DEVICES;
      },
      {},
      'ERR_EDGETPU_NO_DEVICE',
      /no Edge TPU found/,
    ],
    [
      'usb:3 not present',
      () => undefined,
      { device: 'usb:3' },
      'ERR_EDGETPU_DEVICE_NOT_FOUND',
      /usb:3 not present \(found pci:0, usb:0, usb:1\)/,
    ],
    [
      'delegate failed',
      () => {
        process.env.FAKE_EDGETPU_FAIL_CREATE = '1';
      },
      { device: 'usb' },
      'ERR_EDGETPU_DELEGATE',
      /could not be opened/,
    ],
    ['cpu requested', () => undefined, { device: 'cpu' }, 'undefined', /CPU requested/],
  ];
  for (const [name, setup, options, code, reason] of fallbacks) {
    it(`falls back to the CPU model and says why: ${name}`, async () => {
      setup();
      const runtime = await track(openRuntime(cpuModel, { edgetpuLibrary: library, ...EMULATED, ...options }));
      assert.equal(runtime.backend.kind, 'cpu');
      assert.equal(runtime.backend.model, cpuModel);
      assert.equal(String(runtime.backend.reasonCode), code);
      assert.match(runtime.backend.reason, reason);
      const [out] = await runtime.invoke([seededInput(2 * 112 * 112 * 3, 1)]);
      assert.equal(out.length, 384);
    });
  }

  it('says so when a model has no compiled twin, and when a compiled model has no CPU twin and no device', async () => {
    const plain = await track(openRuntime(MODELS['blazeface-short'], { edgetpuLibrary: library, ...EMULATED }));
    assert.equal(plain.backend.reasonCode, 'ERR_NO_COMPILED_MODEL');
    const lonely = path.join(dir, 'lonely_edgetpu.tflite');
    fs.copyFileSync(MODELS['blazeface-short'], lonely);
    delete process.env.FAKE_EDGETPU_DEVICES;
    await assert.rejects(
      openRuntime(lonely, { edgetpuLibrary: library, ...EMULATED }),
      (e: RuntimeError) => e.code === 'ERR_EDGETPU_NO_DEVICE' && /no CPU model to fall back to/.test(e.message),
    );
  });

  it('survives a libedgetpu abort: answers on the CPU meanwhile, restarts with backoff, and recovers', async () => {
    const abortFile = path.join(dir, 'abort-now');
    process.env.FAKE_EDGETPU_ABORT_FILE = abortFile;
    const runtime = await track(
      openRuntime(cpuModel, { device: 'usb', edgetpuLibrary: library, restart: { initialMs: 300, maxMs: 1200 } }),
    );
    assert.equal(runtime.backend.kind, 'edgetpu');
    const input = seededInput(2 * 112 * 112 * 3, 9);
    const [expected] = await runtime.invoke([input]);
    const events: BackendInfo[] = [];
    runtime.on('backend', (b: BackendInfo) => events.push(b));

    const toCpu = waitFor(runtime, (b) => b.kind === 'cpu', 10000);
    fs.writeFileSync(abortFile, 'USB error');
    // Keep invoking straight through the crash: every call gets a right answer.
    const answers: Promise<Float32Array[]>[] = [];
    for (let i = 0; i < 20; i++) {
      answers.push(runtime.invoke([input]));
      await new Promise((r) => setTimeout(r, 25));
    }
    const fallback = await toCpu;
    assert.equal(fallback.reasonCode, 'ERR_EDGETPU_CRASHED');
    assert.match(fallback.reason, /Edge TPU process killed by SIGABRT; CPU fallback, restarting in 300 ms/);
    for (const answer of await Promise.all(answers)) {
      const diff = answer[0].reduce((m, v, k) => Math.max(m, Math.abs(v - expected[k])), 0);
      assert.ok(diff < 1e-4, `answer differs by ${diff}`);
    }
    assert.equal(runtime.backend.kind, 'cpu');
    assert.equal((runtime as EdgeTpuRuntime).crashes, 1);
    // While the device keeps failing, restarts back off: the fake aborts
    // again during each open, 300 ms, then 600, then capped at 1200.
    await new Promise((r) => setTimeout(r, 1800));
    const retries = events.map((e) => e.reason).filter((r) => r.startsWith('Edge TPU restart failed'));
    assert.match(
      retries[0] ?? '',
      /restart failed \(Edge TPU process killed by SIGABRT\); CPU fallback, next try in 600 ms/,
    );
    assert.match(retries[1] ?? '', /next try in 1200 ms/);
    assert.equal(runtime.backend.kind, 'cpu');

    const recovered = waitFor(runtime, (b) => b.kind === 'edgetpu', 10000);
    fs.unlinkSync(abortFile);
    const back = await recovered;
    assert.equal(back.device, 'usb:0');
    const [again] = await runtime.invoke([input]);
    assert.deepEqual(Array.from(again), Array.from(expected));
    assert.ok(events.some((e) => e.kind === 'cpu') && events[events.length - 1].kind === 'edgetpu');
    assert.ok(logLines().filter((l) => l.startsWith('create type=usb')).length >= 3);
  });

  it('dispose ends the Edge TPU process', async () => {
    const runtime = await openRuntime(cpuModel, { device: 'usb', edgetpuLibrary: library, ...EMULATED });
    const pid = (runtime as unknown as { active: { host: { child: { pid: number } } } }).active.host.child.pid;
    assert.ok(pidAlive(pid));
    await runtime.dispose();
    assert.equal(pidAlive(pid), false);
    await assert.rejects(
      runtime.invoke([new Float32Array(2 * 112 * 112 * 3)]),
      (e: RuntimeError) => e.code === 'ERR_DISPOSED',
    );
  });
});
