/**
 * The demo's key moment, replayed for real: the demo clip (made as `npm start`
 * makes it), decoded by ffmpeg at the demo camera's 5 fps, through the real
 * detector (full-range, as the demo flow), alignment, quality gate and
 * MobileFaceNet, into the visit tracker (with camera-in's scene counter) over
 * a real gallery. A walk-up clicked mid-loop takes one person; she is then
 * recognised within one loop of the clip, and nobody else is.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeDemoClip } from '../../../nodes/core/camera/demo-clip';
import { SceneCounter } from '../../../nodes/core/camera/scene';
import { enrolCrops } from '../../../nodes/core/gallery/enrol';
import { Gallery } from '../../../nodes/core/gallery/gallery';
import { WalkupCollector } from '../../../nodes/core/gallery/walkup';
import { Recognizer } from '../../../nodes/core/identify/recognizer';
import { VisitTracker, type VisitEvent } from '../../../nodes/core/identify/visits';
import type { RgbImage } from '../../../nodes/core/media/image';
import { FacePipeline } from '../../../nodes/core/pipeline';
import { DEMO_LOOP_SECONDS, demoClipSegments } from '../../../nodes/tools/demo-clip';
import { clipFrames } from '../../helpers/clip-frames';

const FPS = 5;
const FRAME_MS = 1000 / FPS;
const LOOP = DEMO_LOOP_SECONDS * FPS;

describe('the demo clip, replayed: walk-up, then recognized', function () {
  // Two loops of the clip through the real models: seconds on a quiet machine, minutes on a busy one.
  this.timeout(900000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-demo-replay-'));
  let pipeline: FacePipeline;
  let gallery: Gallery;
  let recognizer: Recognizer;

  before(async () => {
    await makeDemoClip(demoClipSegments(), path.join(tmp, 'demo.mp4'), { width: 1280, height: 720, fps: 10 });
    pipeline = await FacePipeline.open({ detector: { variant: 'full' } });
    gallery = await Gallery.open(path.join(tmp, 'gallery'), { create: true });
    recognizer = await Recognizer.open(gallery, pipeline.embedder);
  });
  after(async () => {
    recognizer?.close();
    await pipeline?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('enrols the one person of the walk-up segment and recognizes her within one loop', async () => {
    const tracker = new VisitTracker<RgbImage>({ camera: 'demo', identify: (e) => recognizer.identify(e) });
    const scenes = new SceneCounter();
    // Clicked 4 s into a loop, for one loop (as the demo's inject): the walk-up segment comes in two pieces.
    const walkStart = 4 * FPS;
    const walkEnd = walkStart + LOOP;
    const collector = new WalkupCollector<RgbImage>();
    const events: { frame: number; event: VisitEvent<RgbImage> }[] = [];
    let enrolledAt = -1;
    let frame = 0;
    for await (const image of clipFrames(path.join(tmp, 'demo.mp4'), {
      fps: FPS,
      width: 1280,
      height: 720,
      loops: 2,
    })) {
      const timestamp = frame * FRAME_MS;
      const scene = scenes.next(image);
      const { faces } = await pipeline.analyse(image);
      if (frame >= walkStart && frame < walkEnd) {
        collector.add({
          source: `demo@${frame}`,
          timestamp,
          width: image.width,
          height: image.height,
          faces: faces.map((f) => ({
            box: f.box,
            ok: f.quality.ok,
            reasons: f.quality.reasons,
            quality: f.quality,
            crop: () => f.crop,
          })),
        });
      }
      if (frame === walkEnd) {
        const choice = await collector.choose((crops) => pipeline.embed(crops));
        assert.equal(choice.refusal, null, choice.refusal?.message);
        assert.equal(choice.people, 1, 'the group photos never have one face clearly in front');
        const result = await enrolCrops(pipeline.embedder, gallery, 'Alice', choice.crops, choice.rejected);
        assert.ok(result.accepted >= 5, JSON.stringify(result.photos.map((p) => [p.accepted, p.reasons])));
        await recognizer.reload();
        enrolledAt = frame;
      }
      const tracked = faces.map((f) => ({ box: f.box, embedding: f.embedding ?? null, crop: f.crop }));
      for (const event of tracker.update(timestamp, tracked, scene)) events.push({ frame, event });
      frame++;
      if (enrolledAt > 0 && events.some((e) => e.frame >= enrolledAt && e.event.type === 'recognized')) break;
    }
    assert.ok(enrolledAt > 0);
    const describe = (e: VisitEvent<RgbImage>) =>
      `${e.type} ${e.name}${e.type === 'left' ? (e.revisedTo ? `->${e.revisedTo}` : '') : e.revises ? `<-${e.revises}` : ''}`;
    const after = events.filter((e) => e.frame >= enrolledAt);
    const alice = after.find((e) => e.event.type === 'recognized');
    assert.ok(alice, `no recognized after the walk-up: ${after.map((e) => describe(e.event)).join(', ')}`);
    assert.equal(alice.event.name, 'Alice');
    assert.ok(alice.frame - enrolledAt <= LOOP, `recognized ${alice.frame - enrolledAt} frames after the enrolment`);
    // Only Alice is ever recognized, and only on the walk-up segment (the first 8 s of each loop).
    for (const { frame: f, event } of events.filter((e) => e.event.type === 'recognized')) {
      assert.equal(event.name, 'Alice');
      assert.ok(f % LOOP < 8 * FPS + 2, `recognized at ${f % LOOP} frames into a loop`);
    }
    // Before the enrolment nobody was recognized; strangers were announced, each closed by its left.
    assert.ok(events.filter((e) => e.frame < enrolledAt).every((e) => e.event.type !== 'recognized'));
    assert.ok(events.filter((e) => e.event.type === 'unknown').length >= 8);
    console.log(`      events after the enrolment: ${after.map((e) => `${e.frame}:${describe(e.event)}`).join(', ')}`);
  });
});
