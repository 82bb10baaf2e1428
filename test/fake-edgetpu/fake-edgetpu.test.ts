// Exercises the fake libedgetpu through a small C driver compiled at test
// time: Node has no FFI here, and a separate process is needed anyway to
// observe abort() and to give each case a clean environment.
import { strict as assert } from 'assert';
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { buildFakeEdgeTpu, tfliteCcDeps } from '../helpers/fake-edgetpu';
import { buildAddModel } from '../helpers/tflite-builder';

// dlopen()s the library like the runtime does, and links TFLite only for the
// "invoke" command. One command per process:
//   list | version | create <usb|pci> <name|-> [Name=Value...]
//   invoke <model> <usb|pci|none> | hold <usb|pci> <ms> [<ms after free>]
const DRIVER_SOURCE = String.raw`
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tensorflow/lite/c/c_api.h"

enum edgetpu_device_type { EDGETPU_APEX_PCI = 0, EDGETPU_APEX_USB = 1 };
struct edgetpu_device { enum edgetpu_device_type type; const char* path; };
struct edgetpu_option { const char* name; const char* value; };

static struct edgetpu_device* (*list_devices)(size_t*);
static void (*free_devices)(struct edgetpu_device*);
static TfLiteDelegate* (*create_delegate)(enum edgetpu_device_type, const char*,
                                          const struct edgetpu_option*, size_t);
static void (*free_delegate)(TfLiteDelegate*);
static const char* (*version)(void);

static void* need(void* lib, const char* name) {
  void* sym = dlsym(lib, name);
  if (sym == NULL) { printf("missing %s\n", name); exit(3); }
  return sym;
}

static enum edgetpu_device_type parse_type(const char* s) {
  return strcmp(s, "usb") == 0 ? EDGETPU_APEX_USB : EDGETPU_APEX_PCI;
}

static int invoke(const char* model_path, const char* type) {
  TfLiteDelegate* delegate = NULL;
  if (strcmp(type, "none") != 0) {
    delegate = create_delegate(parse_type(type), NULL, NULL, 0);
    if (delegate == NULL) { printf("delegate null\n"); return 1; }
  }
  TfLiteModel* model = TfLiteModelCreateFromFile(model_path);
  if (model == NULL) { printf("model null\n"); return 1; }
  TfLiteInterpreterOptions* options = TfLiteInterpreterOptionsCreate();
  if (delegate != NULL) TfLiteInterpreterOptionsAddDelegate(options, delegate);
  TfLiteInterpreter* interpreter = TfLiteInterpreterCreate(model, options);
  if (interpreter == NULL) { printf("interpreter null\n"); return 1; }
  printf("allocate %d\n", (int)TfLiteInterpreterAllocateTensors(interpreter));
  /* Input t, element j = (t + 1) * 10 + j, so outputs are predictable. */
  for (int t = 0; t < TfLiteInterpreterGetInputTensorCount(interpreter); t++) {
    TfLiteTensor* in = TfLiteInterpreterGetInputTensor(interpreter, t);
    if (TfLiteTensorType(in) != kTfLiteFloat32) continue;
    float* data = (float*)TfLiteTensorData(in);
    size_t n = TfLiteTensorByteSize(in) / sizeof(float);
    for (size_t j = 0; j < n; j++) data[j] = (float)((t + 1) * 10 + (int)j);
  }
  printf("invoke %d\n", (int)TfLiteInterpreterInvoke(interpreter));
  const TfLiteTensor* out = TfLiteInterpreterGetOutputTensor(interpreter, 0);
  if (TfLiteTensorType(out) == kTfLiteFloat32 && TfLiteTensorByteSize(out) <= 16 * sizeof(float)) {
    const float* data = (const float*)TfLiteTensorData(out);
    printf("output");
    for (size_t j = 0; j < TfLiteTensorByteSize(out) / sizeof(float); j++) printf(" %g", data[j]);
    printf("\n");
  }
  printf("outputs %d\n", (int)TfLiteInterpreterGetOutputTensorCount(interpreter));
  TfLiteInterpreterDelete(interpreter);
  TfLiteInterpreterOptionsDelete(options);
  TfLiteModelDelete(model);
  if (delegate != NULL) free_delegate(delegate);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);  /* whole lines, live: abort tests read them */
  if (argc < 3) return 2;
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) { printf("dlopen %s\n", dlerror()); return 2; }
  list_devices = need(lib, "edgetpu_list_devices");
  free_devices = need(lib, "edgetpu_free_devices");
  create_delegate = need(lib, "edgetpu_create_delegate");
  free_delegate = need(lib, "edgetpu_free_delegate");
  version = need(lib, "edgetpu_version");
  need(lib, "edgetpu_verbosity");

  const char* cmd = argv[2];
  if (strcmp(cmd, "list") == 0) {
    size_t n = 12345;
    struct edgetpu_device* devices = list_devices(&n);
    printf("count %zu %s\n", n, devices != NULL ? "array" : "null");
    for (size_t i = 0; i < n; i++) {
      printf("device %s %s\n", devices[i].type == EDGETPU_APEX_USB ? "usb" : "pci", devices[i].path);
    }
    free_devices(devices);
  } else if (strcmp(cmd, "version") == 0) {
    printf("%s\n", version());
  } else if (strcmp(cmd, "create") == 0 && argc >= 5) {
    struct edgetpu_option options[16];
    size_t count = 0;
    for (int i = 5; i < argc && count < 16; i++) {
      char* eq = strchr(argv[i], '=');
      if (eq == NULL) return 2;
      *eq = '\0';
      options[count].name = argv[i];
      options[count].value = eq + 1;
      count++;
    }
    const char* name = strcmp(argv[4], "-") == 0 ? NULL : argv[4];
    TfLiteDelegate* delegate = create_delegate(parse_type(argv[3]), name, options, count);
    printf("%s\n", delegate != NULL ? "created" : "null");
    if (delegate != NULL) free_delegate(delegate);
  } else if (strcmp(cmd, "invoke") == 0 && argc >= 5) {
    return invoke(argv[3], argv[4]);
  } else if (strcmp(cmd, "hold") == 0 && argc >= 5) {
    TfLiteDelegate* delegate = create_delegate(parse_type(argv[3]), NULL, NULL, 0);
    printf("%s\n", delegate != NULL ? "created" : "null");
    usleep((useconds_t)atoi(argv[4]) * 1000);
    if (delegate != NULL) free_delegate(delegate);
    printf("released\n");
    if (argc >= 6) usleep((useconds_t)atoi(argv[5]) * 1000);
  } else {
    return 2;
  }
  return 0;
}
`;

const DEVICES = 'usb:/sys/bus/usb/devices/2-1;pci:/dev/apex_0;usb:/sys/bus/usb/devices/2-2';

describe('fake libedgetpu', function () {
  // The first run compiles two C programs.
  this.timeout(120000);

  let lib: string;
  let dir: string;
  let driver: string;
  let logFile: string;

  before(() => {
    lib = buildFakeEdgeTpu();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-edgetpu-test-'));
    const { includeDir, libDir } = tfliteCcDeps();
    fs.writeFileSync(path.join(dir, 'driver.c'), DRIVER_SOURCE);
    driver = path.join(dir, 'driver');
    execFileSync(
      'cc',
      [
        '-O1',
        `-I${includeDir}`,
        '-o',
        driver,
        path.join(dir, 'driver.c'),
        `-L${libDir}`,
        '-ltensorflowlite_c',
        `-Wl,-rpath,${libDir}`,
        '-ldl',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    logFile = path.join(dir, `log-${Date.now()}-${Math.random().toString(16).slice(2)}.txt`);
  });

  // Starts from a scrubbed environment so a developer's own FAKE_EDGETPU_*
  // settings cannot leak into the cases.
  function env(extra: Record<string, string>): NodeJS.ProcessEnv {
    const base: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('FAKE_EDGETPU_')) base[k] = v;
    }
    return { ...base, FAKE_EDGETPU_LOG: logFile, ...extra };
  }

  function run(args: string[], extra: Record<string, string> = {}) {
    const r = spawnSync(driver, [lib, ...args], { env: env(extra), encoding: 'utf8', timeout: 30000 });
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  }

  function logLines(): string[] {
    return fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [];
  }

  it('builds libedgetpu.so.1 exporting the edgetpu C API, and reuses the build', () => {
    assert.ok(path.isAbsolute(lib));
    assert.equal(path.basename(lib), 'libedgetpu.so.1');
    const before = fs.statSync(lib).mtimeMs;
    assert.equal(buildFakeEdgeTpu(), lib);
    assert.equal(fs.statSync(lib).mtimeMs, before, 'rebuilt although the source is unchanged');
    const r = run(['version']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^BuildLabel\(fake\), RuntimeVersion\(\d+\)\n$/);
  });

  it('lists no devices (NULL, count 0) when FAKE_EDGETPU_DEVICES is unset or empty', () => {
    assert.equal(run(['list']).stdout, 'count 0 null\n');
    assert.equal(run(['list'], { FAKE_EDGETPU_DEVICES: '' }).stdout, 'count 0 null\n');
    assert.deepEqual(logLines(), ['list 0', 'free_devices', 'list 0', 'free_devices']);
  });

  it('lists the scripted devices in order', () => {
    const r = run(['list'], { FAKE_EDGETPU_DEVICES: DEVICES });
    assert.equal(
      r.stdout,
      [
        'count 3 array',
        'device usb /sys/bus/usb/devices/2-1',
        'device pci /dev/apex_0',
        'device usb /sys/bus/usb/devices/2-2',
        '',
      ].join('\n'),
    );
    assert.deepEqual(logLines(), ['list 3', 'free_devices']);
  });

  it('selects the first device of a type for an empty or NULL name', () => {
    const e = { FAKE_EDGETPU_DEVICES: DEVICES };
    assert.equal(run(['create', 'usb', '-'], e).stdout, 'created\n');
    assert.equal(run(['create', 'usb', ''], e).stdout, 'created\n');
    assert.equal(run(['create', 'pci', '-'], e).stdout, 'created\n');
    assert.deepEqual(logLines(), [
      'create type=usb path=/sys/bus/usb/devices/2-1',
      'free type=usb path=/sys/bus/usb/devices/2-1',
      'create type=usb path=/sys/bus/usb/devices/2-1',
      'free type=usb path=/sys/bus/usb/devices/2-1',
      'create type=pci path=/dev/apex_0',
      'free type=pci path=/dev/apex_0',
    ]);
  });

  it('selects by path within the type, and fails for unknown paths or a wrong type', () => {
    const e = { FAKE_EDGETPU_DEVICES: DEVICES };
    assert.equal(run(['create', 'usb', '/sys/bus/usb/devices/2-2'], e).stdout, 'created\n');
    assert.equal(run(['create', 'usb', '/sys/bus/usb/devices/9-9'], e).stdout, 'null\n');
    assert.equal(run(['create', 'pci', '/sys/bus/usb/devices/2-1'], e).stdout, 'null\n');
    assert.equal(run(['create', 'usb', '-']).stdout, 'null\n', 'no devices at all');
    assert.deepEqual(logLines(), [
      'create type=usb path=/sys/bus/usb/devices/2-2',
      'free type=usb path=/sys/bus/usb/devices/2-2',
      'create_failed type=usb name=/sys/bus/usb/devices/9-9 reason=no_device',
      'create_failed type=pci name=/sys/bus/usb/devices/2-1 reason=no_device',
      'create_failed type=usb name= reason=no_device',
    ]);
  });

  it('logs accepted options and rejects invalid values', () => {
    const e = { FAKE_EDGETPU_DEVICES: DEVICES };
    for (const perf of ['Low', 'Medium', 'High', 'Max']) {
      assert.equal(run(['create', 'usb', '-', `Performance=${perf}`], e).stdout, 'created\n');
    }
    assert.equal(
      run(['create', 'usb', '-', 'Performance=High', 'Usb.AlwaysDfu=True', 'Usb.MaxBulkInQueueLength=8'], e).stdout,
      'created\n',
    );
    assert.equal(run(['create', 'usb', '-', 'Performance=Turbo'], e).stdout, 'null\n');
    assert.equal(run(['create', 'usb', '-', 'Usb.AlwaysDfu=yes'], e).stdout, 'null\n');
    assert.equal(run(['create', 'usb', '-', 'Usb.MaxBulkInQueueLength=256'], e).stdout, 'null\n');
    const creates = logLines().filter((l) => l.startsWith('create'));
    assert.deepEqual(creates, [
      'create type=usb path=/sys/bus/usb/devices/2-1 Performance=Low',
      'create type=usb path=/sys/bus/usb/devices/2-1 Performance=Medium',
      'create type=usb path=/sys/bus/usb/devices/2-1 Performance=High',
      'create type=usb path=/sys/bus/usb/devices/2-1 Performance=Max',
      'create type=usb path=/sys/bus/usb/devices/2-1 Performance=High Usb.AlwaysDfu=True ' +
        'Usb.MaxBulkInQueueLength=8',
      'create_failed type=usb name= reason=bad_option Performance=Turbo',
      'create_failed type=usb name= reason=bad_option Usb.AlwaysDfu=yes',
      'create_failed type=usb name= reason=bad_option Usb.MaxBulkInQueueLength=256',
    ]);
  });

  it('returns NULL for every create with FAKE_EDGETPU_FAIL_CREATE=1', () => {
    const r = run(['create', 'usb', '/sys/bus/usb/devices/2-1'], {
      FAKE_EDGETPU_DEVICES: DEVICES,
      FAKE_EDGETPU_FAIL_CREATE: '1',
    });
    assert.equal(r.stdout, 'null\n');
    assert.deepEqual(logLines(), ['create_failed type=usb name=/sys/bus/usb/devices/2-1 reason=fail_create']);
  });

  it('attaches to a TFLite interpreter without claiming nodes (CPU still computes)', () => {
    const model = path.join(dir, 'add.tflite');
    fs.writeFileSync(model, buildAddModel({ shape: [1, 4] }));
    const r = run(['invoke', model, 'pci'], { FAKE_EDGETPU_DEVICES: DEVICES });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // input = 10..13, input_b = 20..23
    assert.equal(r.stdout, 'allocate 0\ninvoke 0\noutput 30 32 34 36\noutputs 1\n');
    assert.deepEqual(logLines(), [
      'create type=pci path=/dev/apex_0',
      'prepare type=pci path=/dev/apex_0',
      'free type=pci path=/dev/apex_0',
    ]);
  });

  it('runs a real model (BlazeFace short range) with the delegate attached', () => {
    const model = path.join(
      path.dirname(require.resolve('@mediapipe/face_detection/package.json')),
      'face_detection_short_range.tflite',
    );
    const r = run(['invoke', model, 'usb'], { FAKE_EDGETPU_DEVICES: DEVICES });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^allocate 0\ninvoke 0\noutputs 2\n$/);
    assert.ok(logLines().includes('prepare type=usb path=/sys/bus/usb/devices/2-1'));
  });

  describe('FAKE_EDGETPU_ABORT_FILE', () => {
    it('aborts (SIGABRT) a process holding a delegate while the file exists, keeping the file', () => {
      const flag = path.join(dir, 'abort-now');
      fs.writeFileSync(flag, '');
      const r = run(['hold', 'usb', '5000'], { FAKE_EDGETPU_DEVICES: DEVICES, FAKE_EDGETPU_ABORT_FILE: flag });
      assert.equal(r.signal, 'SIGABRT', `status ${r.status} stdout ${r.stdout}`);
      // The watcher may fire before the driver prints; the log proves the create.
      assert.match(r.stdout, /^(created\n)?$/);
      assert.ok(fs.existsSync(flag), 'the fake must leave the file for the test to remove');
      assert.deepEqual(logLines(), ['create type=usb path=/sys/bus/usb/devices/2-1', `abort file=${flag}`]);

      // Removing the file lets the next process (a restart) live.
      fs.rmSync(flag);
      const again = run(['hold', 'usb', '100'], { FAKE_EDGETPU_DEVICES: DEVICES, FAKE_EDGETPU_ABORT_FILE: flag });
      assert.equal(again.status, 0);
      assert.equal(again.stdout, 'created\nreleased\n');
    });

    it('notices a file that appears while the delegate is alive', async () => {
      const flag = path.join(dir, 'abort-later');
      const child = spawn(driver, [lib, 'hold', 'usb', '10000'], {
        env: env({ FAKE_EDGETPU_DEVICES: DEVICES, FAKE_EDGETPU_ABORT_FILE: flag }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      const created = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('created')) resolve();
        });
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => {
        child.on('exit', (_code, signal) => resolve(signal));
      });
      try {
        await created;
        const start = Date.now();
        fs.writeFileSync(flag, '');
        assert.equal(await exited, 'SIGABRT');
        // 20 ms polling; generous bound for loaded CI machines.
        assert.ok(Date.now() - start < 3000, `took ${Date.now() - start} ms`);
      } finally {
        child.kill('SIGKILL');
        fs.rmSync(flag, { force: true });
      }
    });

    it('stops watching once every delegate is freed', async () => {
      const flag = path.join(dir, 'abort-after-free');
      // Holds 50 ms, frees, then lives 500 ms more: plenty of 20 ms polls.
      const child = spawn(driver, [lib, 'hold', 'usb', '50', '500'], {
        env: env({ FAKE_EDGETPU_DEVICES: DEVICES, FAKE_EDGETPU_ABORT_FILE: flag }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('released')) fs.writeFileSync(flag, '');
      });
      try {
        const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
          child.on('exit', (c, sig) => resolve([c, sig])),
        );
        assert.equal(signal, null);
        assert.equal(code, 0);
        assert.ok(fs.existsSync(flag), 'the file was created after the free');
        assert.ok(!logLines().some((l) => l.startsWith('abort')));
      } finally {
        child.kill('SIGKILL');
        fs.rmSync(flag, { force: true });
      }
    });
  });
});
