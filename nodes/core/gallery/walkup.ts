/**
 * Walk-up enrolment takes one person: "enrol Alice from the next 10 s of the
 * hall camera" must not enrol whoever else is in view. The collector follows
 * the camera's faces over the window and picks the person who is clearly in
 * front, or refuses with a reason; enrolCrops (enrol.ts) then applies the
 * usual enrolment bar to that person's crops.
 *
 * The rules:
 * - each face's prominence is its share of the frame's area times how central
 *   it is (1 at the centre, 0.5 in a corner): the person enrolling walks up to
 *   the camera and looks at it;
 * - a frame is clear when its most prominent face has at least CLEAR_RATIO
 *   times the prominence of the next one (or is alone); otherwise it is
 *   crowded, and none of its faces is taken;
 * - faces are followed by box overlap into tracks; tracks of one person (they
 *   never share a frame and their crops' mean embeddings agree, e.g. she
 *   turned away and back) are joined;
 * - the person is the one clearly in front in the most frames. Refused when:
 *   no frame was clear although faces were seen (several comparable faces),
 *   the chosen person was crowded by a comparable face in more frames than
 *   they were clear, or another person was clearly in front in at least half
 *   as many frames (two people took turns).
 * - from the chosen person's clear frames, faces that pass the quality gate
 *   are taken, at least `minSpacingMs` apart, at most `maxPhotos`; the ones
 *   that fail are reported with their reasons.
 */
import { intersectionOverUnion, type Box } from '../media/image';
import { DEFAULT_OUTLIER_MIN_COSINE, l2normalize } from '../identify/imprint';
import type { CropQuality, PhotoReport } from './enrol';

/** The most prominent face must beat the next by this factor for the frame to count. */
export const CLEAR_RATIO = 2;
/**
 * Tracks whose crops' mean embeddings are at least this close are one person:
 * the bar enrolment holds every photo to against the person's others, so the
 * tracks joined here are ones enrolCrops would also accept together.
 */
const SAME_PERSON_COSINE = DEFAULT_OUTLIER_MIN_COSINE;
const TRACK_IOU = 0.3;
/** A track not matched for this long ends. */
const TRACK_GAP_MS = 1000;

export interface WalkupFace<C> {
  box: Box;
  /** Passed the quality gate. */
  ok: boolean;
  reasons: PhotoReport['reasons'];
  quality: CropQuality;
  /** The aligned crop, asked for only if the face is kept (so frames not kept cost no copy). */
  crop: () => C;
}

export interface WalkupFrame<C> {
  /** Names the frame in the report, e.g. "hall@2024-05-01T10:00:00.000Z". */
  source: string;
  timestamp: number;
  width: number;
  height: number;
  faces: WalkupFace<C>[];
}

export interface WalkupOptions {
  /** Most crops taken (default 10). */
  maxPhotos?: number;
  /** Least time between two crops taken (default 500 ms: at most two a second). */
  minSpacingMs?: number;
}

export type WalkupRefusal = 'ERR_WALKUP_CROWDED' | 'ERR_WALKUP_SEVERAL_PEOPLE';

export interface WalkupChoice<C> {
  /** Set when no one person could be chosen; crops is then empty. */
  refusal: { code: WalkupRefusal; message: string } | null;
  /** The chosen person's good crops, in time order, ready for enrolCrops. */
  crops: { source: string; crop: C; quality: CropQuality }[];
  /** The chosen person's frames that failed the quality gate, and frames without a face. */
  rejected: PhotoReport[];
  frames: number;
  /** Frames where one face was clearly in front / where several comparable faces were. */
  clearFrames: number;
  crowdedFrames: number;
  /** People told apart over the window (clearly in front at least once). */
  people: number;
}

interface Candidate<C> {
  source: string;
  timestamp: number;
  face: WalkupFace<C>;
  crop: C;
}

interface Track<C> {
  id: number;
  box: Box;
  lastSeen: number;
  /** Frames the track was clearly in front / crowded by a comparable face. */
  clear: number;
  crowded: number;
  frames: Set<number>;
  /** Its clear frames, spaced, that passed the gate (up to maxPhotos) and that failed. */
  good: Candidate<C>[];
  bad: Candidate<C>[];
  lastTaken: number;
}

export function prominence(box: Box, width: number, height: number): number {
  const area = (Math.max(0, box.width) * Math.max(0, box.height)) / Math.max(1, width * height);
  const dx = box.x + box.width / 2 - width / 2;
  const dy = box.y + box.height / 2 - height / 2;
  const offCentre = Math.min(1, Math.hypot(dx, dy) / Math.hypot(width / 2, height / 2));
  return area * (1 - 0.5 * offCentre);
}

export class WalkupCollector<C> {
  private readonly maxPhotos: number;
  private readonly minSpacingMs: number;
  private readonly tracks: Track<C>[] = [];
  private live: Track<C>[] = [];
  private nextId = 0;
  private frames = 0;
  private clearFrames = 0;
  private crowdedFrames = 0;
  private faceless = 0;
  /** Most faces in one crowded frame. */
  private maxCrowd = 0;
  private firstFaceless: string | null = null;

  constructor(options: WalkupOptions = {}) {
    this.maxPhotos = options.maxPhotos ?? 10;
    this.minSpacingMs = options.minSpacingMs ?? 500;
    if (!Number.isInteger(this.maxPhotos) || this.maxPhotos < 1)
      throw new RangeError(`maxPhotos must be a whole number of at least 1, got ${this.maxPhotos}`);
  }

  get frameCount(): number {
    return this.frames;
  }

  add(frame: WalkupFrame<C>): void {
    const index = this.frames++;
    if (frame.faces.length === 0) {
      this.faceless++;
      this.firstFaceless ??= frame.source;
      return;
    }
    const tracks = this.match(frame);
    const ranked = frame.faces
      .map((face, i) => ({ face, track: tracks[i], p: prominence(face.box, frame.width, frame.height) }))
      .sort((a, b) => b.p - a.p);
    for (const r of ranked) r.track.frames.add(index);
    const [top, second] = ranked;
    if (second && top.p < CLEAR_RATIO * second.p) {
      this.crowdedFrames++;
      this.maxCrowd = Math.max(this.maxCrowd, ranked.length);
      for (const r of ranked) r.track.crowded++;
      return;
    }
    this.clearFrames++;
    const track = top.track;
    track.clear++;
    if (frame.timestamp - track.lastTaken < this.minSpacingMs) return;
    if (track[top.face.ok ? 'good' : 'bad'].length >= this.maxPhotos) return;
    const candidate = { source: frame.source, timestamp: frame.timestamp, face: top.face, crop: top.face.crop() };
    (top.face.ok ? track.good : track.bad).push(candidate);
    track.lastTaken = frame.timestamp;
  }

  /**
   * Picks the person. `embed` gives the embeddings of crops (the gallery's
   * embedder): they tell whether two tracks are one person.
   */
  async choose(embed: (crops: C[]) => Promise<Float32Array[]>): Promise<WalkupChoice<C>> {
    const base = { frames: this.frames, clearFrames: this.clearFrames, crowdedFrames: this.crowdedFrames };
    const facelessReport: PhotoReport[] =
      this.faceless > 0
        ? [
            {
              source:
                this.faceless === 1
                  ? this.firstFaceless!
                  : `${this.firstFaceless} and ${this.faceless - 1} more frames`,
              accepted: false,
              faces: 0,
              reasons: [
                {
                  code: 'no-face',
                  message: this.faceless === 1 ? 'no face in frame' : `no face in ${this.faceless} frames`,
                },
              ],
            },
          ]
        : [];
    const inFront = this.tracks.filter((t) => t.clear > 0);
    if (inFront.length === 0) {
      if (this.crowdedFrames === 0) return { ...base, refusal: null, crops: [], rejected: facelessReport, people: 0 };
      const most = this.maxCrowd;
      return {
        ...base,
        crops: [],
        rejected: facelessReport,
        people: 0,
        refusal: {
          code: 'ERR_WALKUP_CROWDED',
          message: `${most} faces of similar size were in view the whole time: walk-up enrols one person; ask the others to step out of view (or back), then try again`,
        },
      };
    }
    const people = await this.people(inFront, embed);
    people.sort((a, b) => b.clear - a.clear);
    const [chosen, runnerUp] = people;
    const crops = chosen.tracks
      .flatMap((t) => t.good)
      .sort((a, b) => a.timestamp - b.timestamp)
      .slice(0, this.maxPhotos);
    const rejected = [
      ...chosen.tracks
        .flatMap((t) => t.bad)
        .sort((a, b) => a.timestamp - b.timestamp)
        .map((c): PhotoReport => ({
          source: c.source,
          accepted: false,
          faces: 1,
          reasons: c.face.reasons,
          quality: c.face.quality,
        })),
      ...facelessReport,
    ];
    const result = {
      ...base,
      people: people.length,
      rejected,
      crops: crops.map((c) => ({ source: c.source, crop: c.crop, quality: c.face.quality })),
    };
    if (runnerUp && runnerUp.clear * 2 >= chosen.clear) {
      return {
        ...result,
        crops: [],
        refusal: {
          code: 'ERR_WALKUP_SEVERAL_PEOPLE',
          message: `two people took turns in front of the camera (${chosen.clear} and ${runnerUp.clear} frames): walk-up enrols one person; try again with only them in view`,
        },
      };
    }
    if (chosen.crowded > chosen.clear) {
      return {
        ...result,
        crops: [],
        refusal: {
          code: 'ERR_WALKUP_CROWDED',
          message: `another face of similar size was beside the person in front in ${chosen.crowded} of ${chosen.crowded + chosen.clear} frames: walk-up enrols one person; try again with only them in view`,
        },
      };
    }
    return { ...result, refusal: null };
  }

  /** Follows faces by box overlap; returns each face's track. */
  private match(frame: WalkupFrame<C>): Track<C>[] {
    this.live = this.live.filter((t) => frame.timestamp - t.lastSeen <= TRACK_GAP_MS);
    const pairs: { iou: number; t: number; f: number }[] = [];
    this.live.forEach((track, t) =>
      frame.faces.forEach((face, f) => {
        const iou = intersectionOverUnion(track.box, face.box);
        if (iou >= TRACK_IOU) pairs.push({ iou, t, f });
      }),
    );
    pairs.sort((a, b) => b.iou - a.iou);
    const out: (Track<C> | undefined)[] = frame.faces.map(() => undefined);
    const taken = new Set<number>();
    for (const p of pairs) {
      if (taken.has(p.t) || out[p.f]) continue;
      taken.add(p.t);
      out[p.f] = this.live[p.t];
    }
    return frame.faces.map((face, f) => {
      let track = out[f];
      if (!track) {
        track = {
          id: this.nextId++,
          box: face.box,
          lastSeen: frame.timestamp,
          clear: 0,
          crowded: 0,
          frames: new Set(),
          good: [],
          bad: [],
          lastTaken: -Infinity,
        };
        this.tracks.push(track);
        this.live.push(track);
      }
      track.box = { ...face.box };
      track.lastSeen = frame.timestamp;
      return track;
    });
  }

  /** Joins tracks of one person: never in one frame together, and crops that agree. */
  private async people(tracks: Track<C>[], embed: (crops: C[]) => Promise<Float32Array[]>) {
    const means = await Promise.all(
      tracks.map(async (t) => {
        const crops = [...t.good, ...t.bad].map((c) => c.crop);
        if (crops.length === 0) return null;
        const embeddings = await embed(crops);
        const sum = new Float64Array(embeddings[0].length);
        for (const e of embeddings) {
          const u = l2normalize(e);
          for (let i = 0; i < u.length; i++) sum[i] += u[i];
        }
        return l2normalize(sum);
      }),
    );
    const groups: { tracks: Track<C>[]; means: (Float32Array | null)[]; clear: number; crowded: number }[] = [];
    tracks.forEach((track, i) => {
      const mean = means[i];
      const group =
        mean &&
        groups.find((g) =>
          g.tracks.every((other, j) => {
            const m = g.means[j];
            return m !== null && !overlaps(track.frames, other.frames) && dot(m, mean) >= SAME_PERSON_COSINE;
          }),
        );
      if (group) {
        group.tracks.push(track);
        group.means.push(mean);
        group.clear += track.clear;
        group.crowded += track.crowded;
      } else {
        groups.push({ tracks: [track], means: [mean], clear: track.clear, crowded: track.crowded });
      }
    });
    return groups;
  }
}

function overlaps(a: Set<number>, b: Set<number>): boolean {
  for (const x of a) if (b.has(x)) return true;
  return false;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
