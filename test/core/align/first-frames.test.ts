/** Which faces of a stream get the careful pass: a new face's first frames, a few per frame, largest first. */
import { strict as assert } from 'assert';
import { FirstFrames } from '../../../nodes/core/align/first-frames';
import type { Box } from '../../../nodes/core/media/image';

const box = (x: number, size = 100): Box => ({ x, y: 50, width: size, height: size });

describe('first frames: the careful pass goes to new faces', () => {
  it("a face's first N frames are careful, later ones not; a face that moves a little is the same face", () => {
    const first = new FirstFrames({ frames: 3, spacingMs: 0 });
    const got = [0, 5, 10, 15, 20].map((dx, i) => first.choose('door', i * 40, 1, [box(100 + dx)])[0]);
    assert.deepEqual(got, [true, true, true, false, false]);
  });

  it("a face's careful passes are spacingMs apart; the frames between take the fast pass", () => {
    const first = new FirstFrames({ frames: 3, spacingMs: 200 });
    // 25 fps for a second: passes at 0, 200 and 400 ms.
    const careful = Array.from({ length: 25 }, (_, i) => i * 40).filter(
      (t) => first.choose('door', t, 1, [box(100)])[0],
    );
    assert.deepEqual(careful, [0, 200, 400]);
  });

  it('a face that appears beside a known one is new; faces of another camera are their own', () => {
    const first = new FirstFrames({ frames: 2, spacingMs: 0 });
    first.choose('door', 0, 1, [box(0)]);
    first.choose('door', 40, 1, [box(0)]);
    assert.deepEqual(first.choose('door', 80, 1, [box(0), box(400)]), [false, true]);
    assert.deepEqual(first.choose('yard', 80, 1, [box(0)]), [true]);
  });

  it('a face unseen for longer than maxMissedMs, or across a new scene, is new again', () => {
    const first = new FirstFrames({ frames: 1, maxMissedMs: 1000 });
    assert.deepEqual(first.choose('door', 0, 1, [box(0)]), [true]);
    assert.deepEqual(first.choose('door', 900, 1, [box(0)]), [false]);
    assert.deepEqual(first.choose('door', 2000, 1, [box(0)]), [true], 'gone for 1.1 s');
    assert.deepEqual(first.choose('door', 2040, 2, [box(0)]), [true], 'a cut or a reconnect');
    assert.deepEqual(first.choose('door', 2080, 2, [box(0)]), [false]);
  });

  it('at most perFrame careful faces in one frame, largest first; the others keep their turn', () => {
    const first = new FirstFrames({ frames: 1, perFrame: 2, spacingMs: 0 });
    const crowd = [box(0, 60), box(200, 120), box(400, 90), box(600, 30)];
    assert.deepEqual(first.choose('hall', 0, 1, crowd), [false, true, true, false]);
    assert.deepEqual(first.choose('hall', 40, 1, crowd), [true, false, false, true]);
    assert.deepEqual(first.choose('hall', 80, 1, crowd), [false, false, false, false]);
  });

  it('a clock stepped back counts as the latest time: the face stays the same one, its passes go on', () => {
    const first = new FirstFrames({ frames: 2, spacingMs: 200 });
    assert.deepEqual(first.choose('door', 10_000, 1, [box(0)]), [true]);
    // An hour back: taken as 10 000 ms, so the face is the same one, and its next pass comes 200 ms later.
    assert.deepEqual(first.choose('door', 10_000 - 3_600_000, 1, [box(0)]), [false]);
    assert.deepEqual(first.choose('door', 10_250, 1, [box(0)]), [true]);
    assert.deepEqual(first.choose('door', 10_500, 1, [box(0)]), [false], 'its two passes are done');
  });

  it('frames 0: nothing is careful', () => {
    const first = new FirstFrames({ frames: 0 });
    assert.deepEqual(first.choose('door', 0, 1, [box(0), box(300)]), [false, false]);
  });

  it('keeps a bounded number of cameras', () => {
    const first = new FirstFrames({ frames: 1 });
    first.choose('cam-0', 0, 1, [box(0)]);
    for (let i = 1; i <= 300; i++) first.choose(`cam-${i}`, 0, 1, [box(0)]);
    // cam-0 was forgotten, so its face counts as new again.
    assert.deepEqual(first.choose('cam-0', 10, 1, [box(0)]), [true]);
    assert.deepEqual(first.choose('cam-300', 10, 1, [box(0)]), [false]);
  });
});
