/**
 * Which faces of a camera's frame are in their first frames, and so worth
 * the careful pass (face mesh alignment and the mirror image: about twice a
 * face's cost, README "Accuracy"). A visit is decided on a track's first
 * frames (imprint-classify confirms a person after 3, a stranger after 5),
 * so that is where the better embedding pays; a face that stays in view
 * keeps the fast pass from then on, and a stream's cost hardly changes.
 *
 * The careful passes of a face are at least `spacingMs` apart: frames of a
 * face 40 ms apart look the same, so passes in a row would cost several
 * times for one view. In between, edgetpu-embed hands the frames the careful
 * embedding it just made (its reuse window, 200 ms by default, is this
 * spacing), so the first readings the visit is decided on are careful ones,
 * and the later careful passes add views from further apart.
 *
 * A face continues one seen on the camera within `maxMissedMs` when their
 * boxes overlap by `minIoU` (greedy, best overlap first, as the visit tracker
 * matches). A new scene number (a cut, a reconnect) forgets every face. At
 * most `perFrame` faces get the careful pass in one frame, largest first, so
 * a crowd walking in spreads the cost over a few frames instead of stalling
 * one; a face passed over keeps its turn.
 */
import { type Box, intersectionOverUnion } from '../media/image';

export interface FirstFramesOptions {
  /** Careful passes per new face (default 3; 0: none). */
  frames?: number;
  /** Careful passes in one frame at most (default 3). */
  perFrame?: number;
  /** Time between a face's careful passes at least (default 200 ms). */
  spacingMs?: number;
  minIoU?: number;
  maxMissedMs?: number;
}

interface Seen {
  box: Box;
  careful: number;
  lastCareful: number;
  lastSeen: number;
}

interface Camera {
  scene: number | undefined;
  faces: Seen[];
  /** The latest timestamp seen: an earlier one counts as this (a clock stepped back). */
  latest: number;
}

export class FirstFrames {
  readonly frames: number;
  readonly perFrame: number;
  readonly spacingMs: number;
  private readonly minIoU: number;
  private readonly maxMissedMs: number;
  private readonly cameras = new Map<string, Camera>();

  constructor(options: FirstFramesOptions = {}) {
    this.frames = options.frames ?? 3;
    this.perFrame = options.perFrame ?? 3;
    this.spacingMs = options.spacingMs ?? 200;
    this.minIoU = options.minIoU ?? 0.3;
    this.maxMissedMs = options.maxMissedMs ?? 1500;
  }

  /** For each box of a camera's frame: whether it gets the careful pass. */
  choose(camera: string, stamp: number, scene: number | undefined, boxes: readonly Box[]): boolean[] {
    let state = this.cameras.get(camera);
    if (!state || state.scene !== scene) state = { scene, faces: [], latest: stamp };
    const timestamp = (state.latest = Math.max(state.latest, stamp));
    // Most recently used last; a flow that invents camera names cannot grow the map without bound.
    this.cameras.delete(camera);
    this.cameras.set(camera, state);
    if (this.cameras.size > MAX_CAMERAS) this.cameras.delete(this.cameras.keys().next().value!);
    const recent = state.faces.filter((f) => timestamp - f.lastSeen <= this.maxMissedMs);
    const pairs: { seen: number; box: number; iou: number }[] = [];
    recent.forEach((seen, s) =>
      boxes.forEach((box, b) => {
        const iou = intersectionOverUnion(seen.box, box);
        if (iou >= this.minIoU) pairs.push({ seen: s, box: b, iou });
      }),
    );
    pairs.sort((a, b) => b.iou - a.iou);
    const matched = new Array<Seen | undefined>(boxes.length);
    const taken = new Set<number>();
    for (const p of pairs) {
      if (matched[p.box] || taken.has(p.seen)) continue;
      matched[p.box] = recent[p.seen];
      taken.add(p.seen);
    }
    const faces = boxes.map((box, b) => {
      const seen = matched[b] ?? { box, careful: 0, lastCareful: -Infinity, lastSeen: timestamp };
      seen.box = box;
      seen.lastSeen = timestamp;
      return seen;
    });
    state.faces = [...faces, ...recent.filter((_, s) => !taken.has(s))].slice(0, MAX_FACES);
    const careful = boxes.map(() => false);
    const order = boxes.map((_, b) => b).sort((a, b) => area(boxes[b]) - area(boxes[a]));
    let budget = this.perFrame;
    for (const b of order) {
      if (budget === 0) break;
      if (faces[b].careful >= this.frames || timestamp - faces[b].lastCareful < this.spacingMs) continue;
      faces[b].careful++;
      faces[b].lastCareful = timestamp;
      careful[b] = true;
      budget--;
    }
    return careful;
  }

  /** Forgets a camera (its node closed). */
  forget(camera: string): void {
    this.cameras.delete(camera);
  }
}

const area = (box: Box) => box.width * box.height;
const MAX_CAMERAS = 256;
/** Faces remembered per camera at most (this frame's first). */
const MAX_FACES = 64;
