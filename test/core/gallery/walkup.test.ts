/** Walk-up takes one person: the collector's choice on scripted frames (crops named by who they are). */
import { strict as assert } from 'node:assert';
import type { Box } from '../../../nodes/core/media/image';
import { l2normalize } from '../../../nodes/core/identify/imprint';
import { prominence, WalkupCollector, type WalkupFace } from '../../../nodes/core/gallery/walkup';

const W = 1280;
const H = 720;
/** Each person's embedding: an axis (people are orthogonal), so the embedder stand-in is exact. */
const PEOPLE = ['alice', 'bob', 'carol', 'dave'];
const embed = async (crops: string[]) => crops.map((c) => l2normalize(PEOPLE.map((p) => (c.startsWith(p) ? 1 : 0.05))));

function face(who: string, box: Box, ok = true): WalkupFace<string> {
  return {
    box,
    ok,
    quality: { sharpness: 100, yawDeg: 0 },
    reasons: ok ? [] : [{ code: 'blurry', message: 'blurry' }],
    crop: () => `${who}-${box.x}`,
  };
}
const central = (size: number, dx = 0): Box => ({
  x: W / 2 - size / 2 + dx,
  y: H / 2 - size / 2,
  width: size,
  height: size,
});

function collect(frames: number, faces: (i: number) => WalkupFace<string>[], maxPhotos?: number) {
  const c = new WalkupCollector<string>({ maxPhotos });
  for (let i = 0; i < frames; i++)
    c.add({ source: `cam@${i}`, timestamp: i * 200, width: W, height: H, faces: faces(i) });
  return c;
}

describe('core/gallery/walkup', () => {
  it('weighs faces by size and centrality', () => {
    assert.ok(prominence(central(200), W, H) > prominence({ x: 0, y: 0, width: 200, height: 200 }, W, H) * 1.5);
    assert.ok(prominence(central(200), W, H) > prominence(central(150), W, H));
  });

  it('takes the face clearly in front, not the people behind, at most two a second and maxPhotos', async () => {
    // Alice walks up (her face grows, in the middle); Bob and Carol stay small at the sides.
    const c = collect(
      50,
      (i) => [
        face('bob', { x: 40, y: 60, width: 70, height: 70 }),
        face('alice', central(160 + i * 2, i)),
        face('carol', { x: 1150, y: 80, width: 60, height: 60 }),
      ],
      6,
    );
    const choice = await c.choose(embed);
    assert.equal(choice.refusal, null);
    assert.equal(choice.crops.length, 6);
    assert.ok(
      choice.crops.every((p) => p.crop.startsWith('alice')),
      JSON.stringify(choice.crops),
    );
    const times = choice.crops.map((p) => Number(p.source.split('@')[1]) * 200);
    for (let i = 1; i < times.length; i++) assert.ok(times[i] - times[i - 1] >= 500);
    assert.equal(choice.clearFrames, 50);
    assert.equal(choice.people, 1);
  });

  it('refuses several comparable faces, with how many', async () => {
    const c = collect(30, () => [
      face('bob', central(150, -400)),
      face('alice', central(160)),
      face('carol', central(150, 400)),
    ]);
    const choice = await c.choose(embed);
    assert.equal(choice.refusal?.code, 'ERR_WALKUP_CROWDED');
    assert.match(choice.refusal.message, /3 faces of similar size/);
    assert.deepEqual(choice.crops, []);
  });

  it('refuses two people taking turns in front of the camera', async () => {
    const c = collect(40, (i) => [face(i < 20 ? 'alice' : 'bob', central(200, i < 20 ? 0 : 300))]);
    const choice = await c.choose(embed);
    assert.equal(choice.refusal?.code, 'ERR_WALKUP_SEVERAL_PEOPLE');
    assert.match(choice.refusal.message, /20 and 20 frames/);
  });

  it('joins the tracks of one person who stepped aside and back, and still takes a short appearance of someone else as no rival', async () => {
    // Alice, gone for 2 s, back elsewhere; Bob clearly in front for 4 frames only.
    const c = collect(60, (i) =>
      i < 20
        ? [face('alice', central(200))]
        : i < 30
          ? []
          : i < 34
            ? [face('bob', central(220, 200))]
            : [face('alice', central(200, -300))],
    );
    const choice = await c.choose(embed);
    assert.equal(choice.refusal, null, choice.refusal?.message);
    assert.equal(choice.people, 2);
    assert.ok(choice.crops.every((p) => p.crop.startsWith('alice')));
    assert.ok(choice.crops.some((p) => p.crop === 'alice-540') && choice.crops.some((p) => p.crop === 'alice-240'));
    // The 10 empty frames are one report, not ten.
    assert.deepEqual(
      choice.rejected.map((r) => r.reasons[0].code),
      ['no-face'],
    );
    assert.match(choice.rejected[0].reasons[0].message, /no face in 10 frames/);
  });

  it("reports the chosen person's frames that fail the quality gate, with their reasons", async () => {
    const c = collect(20, (i) => [face('alice', central(200), i % 2 === 0)]);
    const choice = await c.choose(embed);
    assert.equal(choice.refusal, null);
    assert.ok(choice.crops.length > 0 && choice.rejected.length > 0);
    assert.ok(choice.rejected.every((r) => !r.accepted && r.reasons[0].code === 'blurry'));
  });

  it('refuses when the person in front had a comparable face beside them most of the time', async () => {
    const c = collect(30, (i) =>
      i < 10 ? [face('alice', central(220))] : [face('alice', central(220)), face('bob', central(200, 350))],
    );
    const choice = await c.choose(embed);
    assert.equal(choice.refusal?.code, 'ERR_WALKUP_CROWDED');
    assert.match(choice.refusal.message, /20 of 30 frames/);
  });

  it('says nothing when no face was seen: enrolment then reports too few photos', async () => {
    const choice = await collect(10, () => []).choose(embed);
    assert.equal(choice.refusal, null);
    assert.deepEqual(choice.crops, []);
    assert.equal(choice.rejected.length, 1);
  });
});
