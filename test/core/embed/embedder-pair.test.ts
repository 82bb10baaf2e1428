/**
 * The MobileFaceNet pair on a (fake) Coral: the compiled int8 model on the
 * Edge TPU, and on the CPU the float model (default) or the int8 one. The
 * fake libedgetpu (test/fake-edgetpu) runs the "compiled" model on TFLite's
 * CPU kernels inside the supervised child, so the Edge TPU side gives the
 * int8 model's own numbers, and aborts on request like a USB error does.
 *
 * What must hold across a fallback and back: every embedding is tagged with
 * the model that made it, the gallery's cache for a model only ever holds
 * that model's embeddings, and the recognizer compares a probe with the
 * enrolments made by the same model.
 */
import { strict as assert } from 'assert';
import { once } from 'events';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CpuRuntime, shippedModels } from '../../../native';
import { mainFaceCrop } from '../../../nodes/tools/photos';
import { defaultEmbedderModel, defaultEmbedderPair, TfliteEmbedder } from '../../../nodes/core/embed/embedder';
import { Gallery } from '../../../nodes/core/gallery/gallery';
import { mirrorImage, type RgbImage } from '../../../nodes/core/media/image';
import { l2normalize } from '../../../nodes/core/identify/imprint';
import { openDetector } from '../../../nodes/core/pipeline';
import { Recognizer } from '../../../nodes/core/identify/recognizer';
import { buildFakeEdgeTpu } from '../../helpers/fake-edgetpu';
import { FACES_DIR, MODELS } from '../../models';

const INT8 = shippedModels.mobilefacenetInt8;
const USB0 = '/sys/bus/usb/devices/2-1';
const PEOPLE = ['Jackie_Chan', 'Meryl_Streep', 'Roger_Federer'];

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);

async function cropsOf(
  person: string,
  count: number,
  detector: Awaited<ReturnType<typeof openDetector>>['detector'],
): Promise<RgbImage[]> {
  const dir = path.join(FACES_DIR, person);
  const crops: RgbImage[] = [];
  for (const file of fs.readdirSync(dir).sort()) {
    if (crops.length >= count) break;
    const crop = await mainFaceCrop(detector, path.join(dir, file));
    if (crop) crops.push(crop);
  }
  return crops;
}

/** What a model gives for crops on the CPU, normalised as the embedder does. */
async function reference(model: string, crops: RgbImage[]): Promise<Float32Array[]> {
  const runtime = await CpuRuntime.open(model, { threads: 1 });
  try {
    const [batch, ...rest] = runtime.inputs[0].shape;
    if (batch !== 1) await runtime.resizeInput(0, [1, ...rest]);
    const embed = async (crop: RgbImage) =>
      l2normalize((await runtime.invoke([Float32Array.from(crop.data, (v) => (v - 127.5) / 128)]))[0]);
    const out: Float32Array[] = [];
    // As the gallery embeds a crop: with its mirror image, each normalised, the sum normalised.
    for (const crop of crops) {
      const [plain, flipped] = [await embed(crop), await embed(mirrorImage(crop))];
      out.push(l2normalize(plain.map((v, i) => v + flipped[i])));
    }
    return out;
  } finally {
    await runtime.dispose();
  }
}

describe('embedder pair: Edge TPU int8, CPU float or int8, through a fallback and back', function () {
  this.timeout(180000);
  const saved = { ...process.env };
  let library: string;
  let dir: string;
  let pair: { cpu: string; edgetpu: string };
  let int8Cpu: { cpu: string; edgetpu: string };
  const enrol = new Map<string, RgbImage[]>();
  const probes = new Map<string, RgbImage>();
  const opened: { dispose(): Promise<void> | void }[] = [];

  before(async () => {
    library = buildFakeEdgeTpu();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-pair-'));
    // The layout the package ships: the float model, the int8 model and its compiled twin side by side.
    const float = path.join(dir, 'mobilefacenet.tflite');
    const int8 = path.join(dir, 'mobilefacenet_int8.tflite');
    const compiled = path.join(dir, 'mobilefacenet_int8_edgetpu.tflite');
    fs.copyFileSync(MODELS.mobilefacenet, float);
    fs.copyFileSync(INT8, int8);
    fs.copyFileSync(INT8, compiled);
    pair = { cpu: float, edgetpu: compiled };
    int8Cpu = { cpu: int8, edgetpu: compiled };
    const { detector, runtime } = await openDetector({ variant: 'short' });
    try {
      for (const person of PEOPLE) {
        const crops = await cropsOf(person, 5, detector);
        enrol.set(person, crops.slice(0, 4));
        probes.set(person, crops[4]);
      }
    } finally {
      await runtime.dispose();
    }
  });

  beforeEach(() => {
    process.env.FAKE_EDGETPU_DEVICES = `usb:${USB0}`;
    process.env.FAKE_EDGETPU_ABORT_FILE = path.join(dir, 'abort-now');
    fs.rmSync(process.env.FAKE_EDGETPU_ABORT_FILE, { force: true });
  });

  afterEach(async () => {
    for (const item of opened.splice(0).reverse()) await item.dispose();
    for (const key of Object.keys(process.env)) if (key.startsWith('FAKE_EDGETPU')) delete process.env[key];
    Object.assign(process.env, saved);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function setUp(model: { cpu: string; edgetpu: string }) {
    const embedder = await TfliteEmbedder.open({
      model,
      device: 'usb',
      edgetpuLibrary: library,
      threads: 1,
      restart: { initialMs: 300, maxMs: 300 },
    });
    opened.push(embedder);
    const gallery = await Gallery.open(fs.mkdtempSync(path.join(dir, 'gallery-')), { create: true });
    for (const person of PEOPLE)
      await gallery.addCrops(
        person.replace('_', ' '),
        enrol.get(person)!.map((image) => ({ image })),
      );
    const recognizer = await Recognizer.open(gallery, embedder);
    opened.push({ dispose: () => recognizer.close() });
    return { embedder, gallery, recognizer };
  }

  it('the default pair: the chosen CPU model, and the compiled int8 model only once someone compiled it', () => {
    const compiled = INT8.replace(/\.tflite$/, '_edgetpu.tflite');
    const expected = fs.existsSync(compiled) ? compiled : undefined;
    assert.deepEqual(defaultEmbedderPair(), { cpu: defaultEmbedderModel(), edgetpu: expected });
    assert.deepEqual(defaultEmbedderPair('int8'), { cpu: INT8, edgetpu: expected });
  });

  it("float on the CPU: the id follows the side that answers, one cache per model, each probe matched with its own model's enrolments", async () => {
    const { embedder, gallery, recognizer } = await setUp(pair);
    assert.equal(embedder.backend.kind, 'edgetpu');
    assert.equal(embedder.backend.model, pair.edgetpu);
    const tpuId = embedder.id;
    assert.match(
      tpuId,
      /^mobilefacenet_int8-[0-9a-f]{12}-s$/,
      'the compiled model is named after the int8 model it was made from',
    );
    const identifyAll = async () => {
      for (const person of PEOPLE) {
        const {
          id,
          embeddings: [e],
        } = await embedder.embedTagged([probes.get(person)!]);
        assert.ok(await recognizer.ready(id));
        assert.equal(recognizer.identify(e, id).name, person.replace('_', ' '), `${person} with ${id}`);
      }
    };
    const onTpu = await embedder.embedTagged([probes.get(PEOPLE[0])!]);
    assert.equal(onTpu.id, tpuId);
    await identifyAll();

    // The Coral dies: the CPU answers with the float model, under the float model's id.
    const switched = once(embedder, 'id');
    fs.writeFileSync(process.env.FAKE_EDGETPU_ABORT_FILE!, 'USB error');
    const [floatId] = (await switched) as [string];
    assert.match(floatId, /^mobilefacenet-[0-9a-f]{12}-s$/);
    assert.equal(embedder.backend.kind, 'cpu');
    const onCpu = await embedder.embedTagged([probes.get(PEOPLE[0])!]);
    assert.equal(onCpu.id, floatId);
    assert.ok(
      cosine(onCpu.embeddings[0], onTpu.embeddings[0]) > 0.98,
      'the two models agree closely, but are not the same',
    );
    assert.ok(cosine(onCpu.embeddings[0], onTpu.embeddings[0]) < 0.99999);
    await identifyAll();
    assert.deepEqual(recognizer.loadedIds().sort(), [floatId, tpuId].sort());

    // Each cache holds exactly its own model's embeddings of the gallery's crops.
    const fail = async (): Promise<Float32Array[]> => {
      throw new Error('the cache should be complete');
    };
    const people = gallery.listPeople();
    for (const [id, model] of [
      [tpuId, INT8],
      [floatId, MODELS.mobilefacenet],
    ] as const) {
      const cached = await gallery.embeddings(id, fail);
      for (const person of people) {
        const expected = await reference(model, await gallery.loadCrops(person.id));
        cached
          .get(person.id)!
          .forEach((e, i) => assert.ok(cosine(e, expected[i]) > 0.9999, `${id}: ${person.name} crop ${i}`));
      }
    }

    // The Coral is back: the int8 head is still loaded, nothing is rebuilt.
    let reloads = 0;
    recognizer.on('reload', () => reloads++);
    const back = once(embedder, 'id');
    fs.unlinkSync(process.env.FAKE_EDGETPU_ABORT_FILE!);
    assert.deepEqual(await back, [tpuId]);
    assert.equal(embedder.backend.kind, 'edgetpu');
    await identifyAll();
    assert.equal(reloads, 0);
  });

  it('int8 on the CPU: a fallback keeps the id, so the gallery has a single cache', async () => {
    const { embedder, recognizer } = await setUp(int8Cpu);
    const tpuId = embedder.id;
    const ids: string[] = [];
    embedder.on('id', (id: string) => ids.push(id));
    const cpuSide = new Promise<void>((resolve) =>
      embedder.inference.on('backend', (b) => {
        if (b.kind === 'cpu') resolve();
      }),
    );
    const before = await embedder.embedTagged([probes.get(PEOPLE[1])!]);
    fs.writeFileSync(process.env.FAKE_EDGETPU_ABORT_FILE!, 'USB error');
    await cpuSide;
    assert.equal(embedder.backend.model, int8Cpu.cpu);
    const after = await embedder.embedTagged([probes.get(PEOPLE[1])!]);
    assert.deepEqual([after.id, ids], [tpuId, []]);
    assert.ok(
      cosine(after.embeddings[0], before.embeddings[0]) > 0.9999,
      'the Edge TPU side and the CPU side run the same int8 model',
    );
    assert.equal(recognizer.identify(after.embeddings[0], after.id).name, PEOPLE[1].replace('_', ' '));
    assert.deepEqual(recognizer.loadedIds(), [tpuId]);
  });
});
