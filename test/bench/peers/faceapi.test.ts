import { strict as assert } from 'node:assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import type { RgbImage } from '../../../nodes/core/media/image';
import {
  type FaceApiPeer,
  descriptorCosine,
  largestFace,
  openFaceApiPeer,
  padRgb,
  resolvePeerModules,
} from './faceapi';

// test/models.ts owns the photo-set location (CORAL_FACES_DIR overrides it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { FACES_DIR } = require('../../models') as { FACES_DIR: string };

async function decode(file: string): Promise<RgbImage> {
  const { data, info } = await sharp(file).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

function photos(person: string, count: number): string[] {
  const dir = path.join(FACES_DIR, person);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .slice(0, count)
    .map((f) => path.join(dir, f));
}

/** The tensor count face-api's tfjs engine reports, read through the same module. */
function numTensors(): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tf = require(
    require.resolve('@tensorflow/tfjs-core', {
      paths: [path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))],
    }),
  ) as { memory(): { numTensors: number } };
  return tf.memory().numTensors;
}

describe('peer-faceapi: pure helpers', () => {
  it('padRgb puts the image in the middle of a black border', () => {
    const image: RgbImage = { width: 2, height: 1, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
    const padded = padRgb(image, 1);
    assert.equal(padded.width, 4);
    assert.equal(padded.height, 3);
    const row1 = Array.from(padded.data.subarray(4 * 3, 8 * 3));
    assert.deepEqual(row1, [0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0]);
    assert.equal(
      padded.data.subarray(0, 12).every((v) => v === 0),
      true,
    );
  });

  it('largestFace picks by box area', () => {
    const faces = [
      { box: { x: 0, y: 0, width: 10, height: 10 } },
      { box: { x: 0, y: 0, width: 13, height: 10 } },
      { box: { x: 0, y: 0, width: 12, height: 12 } },
    ];
    assert.equal(largestFace(faces), faces[2]);
    assert.equal(largestFace([]), undefined);
  });

  it('throws ERR_PEER_MISSING when the packages cannot be resolved', () => {
    const elsewhere = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'peer-')), 'x.js');
    assert.throws(
      () => resolvePeerModules(elsewhere),
      (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'ERR_PEER_MISSING');
        assert.match(err.message, /install @vladmandic\/face-api and @tensorflow\/tfjs-backend-wasm/);
        return true;
      },
    );
  });
});

describe('peer-faceapi: real photos (face-api SSD on tfjs wasm)', function () {
  this.timeout(120_000);
  let peer: FaceApiPeer;
  // Their first two photos each show one face (Andre_Agassi_0001, say, has a
  // second person at the edge, which face-api finds too).
  const people = ['Andy_Roddick', 'Ariel_Sharon'];
  const images = new Map<string, RgbImage[]>();

  before(async () => {
    peer = await openFaceApiPeer();
    for (const person of people) images.set(person, await Promise.all(photos(person, 2).map(decode)));
  });

  after(async () => {
    await peer?.dispose();
  });

  it('runs on the wasm backend with 1 thread', () => {
    assert.equal(peer.runtime.backend, 'wasm');
    assert.equal(peer.runtime.threads, 1);
  });

  it('finds one face in LFW photos padded by 125 px, boxes inside the unpadded image', async () => {
    for (const person of people) {
      for (const image of images.get(person)!) {
        const faces = await peer.describe(image, { padding: 125 });
        assert.equal(faces.length, 1, `${person}: ${faces.length} faces`);
        const { box, score, descriptor } = faces[0];
        assert.ok(score >= 0.5 && score <= 1, `score ${score}`);
        assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= image.width && box.y + box.height <= image.height);
        // LFW crops centre the face: the box centre lies near the image centre.
        assert.ok(Math.abs(box.x + box.width / 2 - image.width / 2) < 40, `x centre ${box.x + box.width / 2}`);
        assert.ok(box.width > 50 && box.width < 200, `width ${box.width}`);
        assert.equal(descriptor.length, 128);
        assert.ok(Math.abs(Math.hypot(...descriptor) - 1) < 1e-5);
        const timings = peer.lastTimings();
        assert.ok(timings.total > 0 && timings.detect > 0 && timings.pad >= 0);
      }
    }
  });

  it('scores two photos of one person above photos of two people', async () => {
    const descriptors = new Map<string, Float32Array[]>();
    for (const person of people) {
      const list: Float32Array[] = [];
      for (const image of images.get(person)!)
        list.push(largestFace(await peer.describe(image, { padding: 125 }))!.descriptor);
      descriptors.set(person, list);
    }
    const [a, b] = people.map((p) => descriptors.get(p)!);
    const same = [descriptorCosine(a[0], a[1]), descriptorCosine(b[0], b[1])];
    const different = [
      descriptorCosine(a[0], b[0]),
      descriptorCosine(a[0], b[1]),
      descriptorCosine(a[1], b[0]),
      descriptorCosine(a[1], b[1]),
    ];
    assert.ok(
      Math.min(...same) > Math.max(...different),
      `same ${same.map((v) => v.toFixed(3))} vs different ${different.map((v) => v.toFixed(3))}`,
    );
  });

  it('leaks no tensors over 20 calls', async () => {
    const image = images.get(people[0])![0];
    await peer.describe(image, { padding: 125 });
    const before = numTensors();
    for (let i = 0; i < 20; i++) await peer.describe(image, { padding: i % 2 === 0 ? 125 : 0 });
    assert.equal(numTensors(), before);
  });
});
