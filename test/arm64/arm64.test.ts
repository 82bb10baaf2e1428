/**
 * The shipped prebuilt addons on other CPUs, under Debian's qemu-user:
 * - linux-arm64 with Debian's arm64 Node.js: the addon loads, BlazeFace (both
 *   ranges), MobileFaceNet and the native resampler give the x64 numbers
 *   within 1e-4 (absolute below 1, relative above), the detector finds the same faces, and the Edge TPU tests
 *   (model pair, device choice, fallback, abort isolation) pass with the fake
 *   libedgetpu cross-compiled for arm64;
 * - linux-x64 on a CPU model without AVX (qemu's Nehalem raises SIGILL on any
 *   AVX instruction): the same numbers.
 *
 *   npm run test:arm64              (makes the arm64 root and the prebuilt addons when missing)
 *   CORAL_FACE_ARM64_QUICK=1 ...    the probe only, without the emulated mocha run
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeImage } from '../../nodes/core/media/decode';
import { FacePipeline } from '../../nodes/core/pipeline';
import { FACES_DIR } from '../models';
import { arm64NodeWrapper, missingForEmulation, Machine, ROOT, runNode } from './emulator';
import type { ProbeImage, ProbeInputs, ProbeOutputs } from './probe';

const PROBE = path.join(ROOT, 'build', 'test', 'arm64', 'probe.js');
const TOLERANCE = 1e-4;

function maxAbsDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length, 'same length');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/**
 * The difference the runtime tests use: absolute for values below 1, relative
 * above (BlazeFace's logits reach the hundreds, where float32 itself steps by
 * 1e-5 and a different summation order moves the last digits).
 */
function maxRelDiff(a: number[], reference: number[]): number {
  assert.equal(a.length, reference.length, 'same length');
  let max = 0;
  for (let i = 0; i < a.length; i++)
    max = Math.max(max, Math.abs(a[i] - reference[i]) / Math.max(1, Math.abs(reference[i])));
  return max;
}

function firstPhoto(person: string): string {
  const dir = path.join(FACES_DIR, person);
  return path.join(
    dir,
    fs
      .readdirSync(dir)
      .filter((f) => /\.(jpe?g|png)$/i.test(f))
      .sort()[0],
  );
}

async function makeInputs(): Promise<ProbeInputs> {
  const files = [
    firstPhoto('Andre_Agassi'),
    firstPhoto('Ariel_Sharon'),
    path.join(FACES_DIR, '_group', 'five-faces.jpg'),
  ];
  const photos: ProbeImage[] = [];
  const crops: ProbeImage[] = [];
  // Full range finds the group photo's faces (short range is for faces near the camera).
  const pipeline = await FacePipeline.open({ detector: { variant: 'full' }, embedder: { device: 'cpu' } });
  try {
    for (const file of files) {
      const image = await decodeImage(file);
      const name = path.basename(file);
      photos.push({
        name,
        width: image.width,
        height: image.height,
        rgb: Buffer.from(image.data.buffer, image.data.byteOffset, image.width * image.height * 3).toString('base64'),
      });
      const { faces } = await pipeline.analyse(image, { qualityGate: false });
      faces.forEach((face, i) =>
        crops.push({
          name: `${name} face ${i}`,
          width: face.crop.width,
          height: face.crop.height,
          rgb: Buffer.from(face.crop.data).toString('base64'),
        }),
      );
    }
  } finally {
    await pipeline.dispose();
  }
  return { photos, crops };
}

describe('prebuilt addons under emulation: arm64, and x64 without AVX', function () {
  this.timeout(30 * 60_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-arm64-'));
  const inputFile = path.join(dir, 'inputs.json');
  const outputs: Partial<Record<Machine, ProbeOutputs>> = {};
  let inputs: ProbeInputs;

  before(async function () {
    const missing = missingForEmulation();
    assert.deepEqual(
      missing,
      [],
      `to run the emulated tests: ${missing.join('; ')} (npm run test:arm64 does the last two)`,
    );
    inputs = await makeInputs();
    assert.ok(inputs.crops.length >= 5, `the inputs hold faces (${inputs.crops.length} crops)`);
    fs.writeFileSync(inputFile, JSON.stringify(inputs));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function probe(machine: Machine): Promise<ProbeOutputs> {
    const outputFile = path.join(dir, `${machine}.json`);
    const run = await runNode(machine, [PROBE, inputFile, outputFile]);
    assert.equal(run.status, 0, `${machine} probe failed (signal ${run.signal}) after ${run.ms} ms:\n${run.stderr}`);
    const result = JSON.parse(fs.readFileSync(outputFile, 'utf8')) as ProbeOutputs;

    console.log(
      `      ${machine}: probe ${(run.ms / 1000).toFixed(0)} s; ${Object.entries(result.ms)
        .filter(([k]) => !k.startsWith('resample'))
        .map(([k, v]) => `${k} ${v} ms`)
        .join(', ')}`,
    );
    outputs[machine] = result;
    return result;
  }

  function assertSameNumbers(machine: Machine): void {
    const reference = outputs.x64!;
    const other = outputs[machine]!;
    assert.deepEqual(Object.keys(other.tensors).sort(), Object.keys(reference.tensors).sort());
    const worst: [string, number, number][] = [];
    for (const [name, values] of Object.entries(reference.tensors)) {
      const diff = maxRelDiff(other.tensors[name], values);
      worst.push([name, diff, maxAbsDiff(other.tensors[name], values)]);
      assert.ok(diff <= TOLERANCE, `${machine}: ${name} differs from x64 by ${diff}`);
    }
    worst.sort((a, b) => b[1] - a[1]);
    const absolute = Math.max(...worst.map((w) => w[2]));

    console.log(
      `      ${machine}: ${worst.length} tensors within ${TOLERANCE} of x64; largest difference ${worst[0][1].toExponential(2)} ` +
        `(${worst[0][0]}; largest absolute ${absolute.toExponential(2)})`,
    );
    for (const [name, faces] of Object.entries(reference.detections)) {
      const found = other.detections[name];
      assert.equal(found.length, faces.length, `${machine}: ${name}: ${found.length} faces, x64 found ${faces.length}`);
      faces.forEach((face, i) => {
        assert.ok(
          maxAbsDiff(found[i].box, face.box) < 1e-2,
          `${machine}: ${name} face ${i} box ${found[i].box} vs ${face.box}`,
        );
        assert.ok(maxAbsDiff(found[i].keypoints, face.keypoints) < 1e-2, `${machine}: ${name} face ${i} keypoints`);
        assert.ok(Math.abs(found[i].score - face.score) < TOLERANCE, `${machine}: ${name} face ${i} score`);
      });
    }
  }

  it('x64 (the reference): the shipped linux-x64 prebuilt addon', async () => {
    const result = await probe('x64');
    assert.equal(result.addon.prebuilt, true);
    assert.equal(
      path.relative(ROOT, result.addon.file),
      path.join('native', 'prebuilds', 'linux-x64', 'coral_face_native.napi.glibc.node'),
    );
    assert.equal(result.addon.tflite, '2.9.0');
    assert.ok(Object.values(result.detections).flat().length >= 5, 'faces found');
    // The native resampler agrees with its JavaScript reference here too.
    assert.ok(Object.keys(result.tensors).some((k) => k.startsWith('resample')));
  });

  it("arm64: the linux-arm64 prebuilt addon loads in Debian's arm64 Node.js and gives the x64 numbers", async () => {
    const result = await probe('arm64');
    assert.equal(result.arch, 'arm64');
    assert.equal(result.addon.prebuilt, true);
    assert.equal(
      path.relative(ROOT, result.addon.file),
      path.join('native', 'prebuilds', 'linux-arm64', 'coral_face_native.napi.glibc.node'),
    );
    assert.equal(result.addon.tflite, '2.9.0');
    assertSameNumbers('arm64');
  });

  it('x64 without AVX (qemu -cpu Nehalem): runs, and gives the same numbers', async () => {
    const result = await probe('x64-no-avx');
    assert.equal(result.arch, 'x64');
    assertSameNumbers('x64-no-avx');
  });

  // The native runtime's own tests, run by mocha in the arm64 Node.js, with
  // every timeout 10 times longer (exec-wrapper.ts) and a longer hang watchdog
  // for the Edge TPU child (CORAL_FACE_EMULATED): one emulated inference takes
  // seconds. Left out: the comparisons with the
  // peer binding (tfjs-tflite-node has no arm64 build here; the probe above
  // compares with x64 instead), the event-loop timing bounds, and the abort
  // test's backoff timings (300/600/1200 ms, shorter than one emulated child
  // start): they measure the emulator, not the code.
  const ARM64_TESTS = [
    'native/edgetpu.test.js',
    'native/model-rewrite.test.js',
    'native/runtime.test.js',
    'core/detect/blazeface.test.js',
  ];
  const ARM64_LEFT_OUT = 'independent binding|matches the peer|event loop|survives a libedgetpu abort';

  it('arm64: the runtime, Edge TPU (fake libedgetpu built for arm64), rewrite and detector tests pass', async function () {
    if (process.env.CORAL_FACE_ARM64_QUICK === '1') this.skip();
    const files = ARM64_TESTS.map((f) => path.join(ROOT, 'build', 'test', f));
    // A test file that moved must fail here, not quietly shrink the run.
    for (const file of files) assert.ok(fs.existsSync(file), `${file} is missing: update ARM64_TESTS`);
    const run = await runNode(
      'arm64',
      [
        '-r',
        path.join(ROOT, 'build', 'test', 'arm64', 'exec-wrapper.js'),
        path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js'),
        '--no-config',
        '--timeout',
        '60000',
        '--exit',
        '--grep',
        ARM64_LEFT_OUT,
        '--invert',
        ...files,
      ],
      {
        CC: 'aarch64-linux-gnu-gcc',
        CORAL_FACE_NODE_WRAPPER: arm64NodeWrapper(),
        CORAL_FACE_EMULATED: '1',
        CORAL_FACE_TIMEOUT_SCALE: '10',
      },
    );
    const summary = /(\d+) passing[^\n]*(?:\n\s*(\d+) pending)?(?:\n\s*(\d+) failing)?/.exec(run.stdout);

    console.log(
      `      arm64 mocha: ${summary?.[0].replace(/\s+/g, ' ') ?? 'no summary'} in ${(run.ms / 1000).toFixed(0)} s`,
    );
    assert.equal(run.status, 0, `arm64 mocha failed:\n${run.stdout.slice(-6000)}\n${run.stderr.slice(-3000)}`);
    assert.ok(summary && Number(summary[1]) >= 40, `tests ran on arm64:\n${run.stdout.slice(-3000)}`);
  });
});
