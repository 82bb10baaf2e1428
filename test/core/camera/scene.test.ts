/** Hard cuts: the demo clip's photo changes are cuts, its walk-up zoom and a person moving are not. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeDemoClip } from '../../../nodes/core/camera/demo-clip';
import { SceneCounter, sceneDistance, sceneSignature } from '../../../nodes/core/camera/scene';
import type { RgbImage } from '../../../nodes/core/media/image';
import { DEMO_LOOP_SECONDS, DEMO_WALKUP_SECONDS, demoClipSegments } from '../../../nodes/tools/demo-clip';
import { clipFrames } from '../../helpers/clip-frames';

function flat(width: number, height: number, value: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.fill(value(x, y), (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, data };
}

describe('core/camera/scene', function () {
  this.timeout(120000);

  it("counts the demo clip's photo changes as cuts, and nothing inside a photo or the walk-up zoom", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-scene-'));
    try {
      const clip = path.join(tmp, 'demo.mp4');
      await makeDemoClip(demoClipSegments(), clip, { width: 1280, height: 720, fps: 10 });
      const counter = new SceneCounter();
      const cutsAt: number[] = [];
      let frame = 0;
      for await (const image of clipFrames(clip, { fps: 5, width: 320, height: 180, loops: 2 })) {
        const before = counter.scene;
        if (counter.next(image) !== before) cutsAt.push(frame / 5);
        frame++;
      }
      const loop = DEMO_LOOP_SECONDS;
      const changes = [DEMO_WALKUP_SECONDS, DEMO_WALKUP_SECONDS + 3, DEMO_WALKUP_SECONDS + 6, DEMO_WALKUP_SECONDS + 9];
      assert.deepEqual(cutsAt, [...changes, loop, ...changes.map((t) => t + loop)]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('is not fooled by a face moving across a still background, nor by sensor noise', () => {
    const background = (x: number, y: number) => (x * 7 + y * 3) % 200;
    const a = flat(640, 360, background);
    // A 120 px "face" that moved 200 px: a few cells change.
    const b = flat(640, 360, (x, y) => (x > 300 && x < 420 && y > 100 && y < 220 ? 230 : background(x, y)));
    const noisy = flat(640, 360, (x, y) => background(x, y) + ((x * 31 + y * 17) % 7) - 3);
    assert.ok(sceneDistance(sceneSignature(a), sceneSignature(b)) < 10);
    assert.ok(sceneDistance(sceneSignature(a), sceneSignature(noisy)) < 5);
    const counter = new SceneCounter();
    assert.equal(counter.next(a), 0);
    assert.equal(counter.next(b), 0);
    assert.equal(counter.next(noisy), 0);
    // A stream restart starts a new scene whatever the picture; a new frame size does too.
    counter.restart();
    assert.equal(counter.next(a), 1);
    assert.equal(counter.next(flat(320, 180, background)), 2);
  });
});
