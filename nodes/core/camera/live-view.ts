/**
 * The live view of one camera: an MJPEG stream (multipart/x-mixed-replace)
 * of the frames the camera source already decodes, for the viewers of the
 * editor's dialog. Framework-free: camera-in serves it on Node-RED's admin
 * API.
 *
 * What it guarantees, whatever the viewers do:
 * - One JPEG per frame, shared: a frame is encoded once, at most `fps` times a
 *   second, for all viewers together, and only while a viewer can take it.
 * - Backpressure: a viewer whose connection does not keep up (write()
 *   returned false) gets nothing until its 'drain'; frames meanwhile are
 *   skipped for it, not buffered. A viewer that never reads holds at most one
 *   frame in this process. (8 viewers that never read used to take Node-RED
 *   from 370 to 451 MB in 120 s.)
 * - A viewer that has taken nothing for `stalledMs` (a laptop asleep with the
 *   dialog open) is disconnected, so it does not hold a place forever.
 * - At most `maxViewers` at once; add() refuses more (the caller answers 503).
 * - A viewer that leaves takes every listener it added with it; with no
 *   viewer left, no timer runs.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import type { RgbImage } from '../media/image';
import sharp from '../media/vips';
import type { CameraFrame } from './source';

export interface LiveViewOptions {
  /** Frames per second sent at most. Default 5. */
  fps?: number;
  /** Frames wider than this are scaled down (aspect kept). Default 640. */
  width?: number;
  /** JPEG quality, 1-100. Default 70. */
  quality?: number;
  /** Viewers at once. Default 8: one editor dialog is one viewer, and a viewer costs no encode of its own. */
  maxViewers?: number;
  /** A viewer that took no frame for this long is disconnected. Default 60 s. */
  stalledMs?: number;
}

export interface LiveViewStats {
  viewers: number;
  /** JPEG encodes since the start: at most one per frame, whatever the number of viewers. */
  encodes: number;
  /** Frames written to viewers (one per viewer and frame). */
  sent: number;
  /** Frames a viewer did not get because it had not taken the previous one yet. */
  skipped: number;
  /** Viewers turned away because maxViewers were watching. */
  refused: number;
  /** Viewers disconnected after stalledMs without taking a frame. */
  stalled: number;
}

interface Viewer {
  res: ServerResponse;
  /** write() returned false: wait for 'drain' before the next frame. */
  waiting: boolean;
  /** When it last took a frame (or joined). */
  lastTaken: number;
  detach: () => void;
}

const BOUNDARY = 'coralface';

export async function encodeLiveJpeg(image: RgbImage, width: number, quality: number): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .resize({ width: Math.min(width, image.width) })
    .jpeg({ quality })
    .toBuffer();
}

export class LiveView {
  readonly fps: number;
  readonly width: number;
  readonly quality: number;
  readonly maxViewers: number;
  readonly stalledMs: number;
  private readonly viewers = new Set<Viewer>();
  private timer?: NodeJS.Timeout;
  private encoding = false;
  private lastSeq = -1;
  private closed = false;
  private readonly counters = { encodes: 0, sent: 0, skipped: 0, refused: 0, stalled: 0 };

  /** `latest` gives the camera's newest frame (or undefined before the first). */
  constructor(
    private readonly latest: () => CameraFrame | undefined,
    options: LiveViewOptions = {},
  ) {
    this.fps = options.fps ?? 5;
    this.width = options.width ?? 640;
    this.quality = options.quality ?? 70;
    this.maxViewers = options.maxViewers ?? 8;
    this.stalledMs = options.stalledMs ?? 60_000;
  }

  get stats(): LiveViewStats {
    return { viewers: this.viewers.size, ...this.counters };
  }

  /** Whether the frame timer runs (only while someone watches). */
  get running(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Starts streaming to a viewer, or returns false without touching `res`
   * when maxViewers are already watching (or the view is closed).
   */
  add(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.closed || this.viewers.size >= this.maxViewers) {
      this.counters.refused++;
      return false;
    }
    res.writeHead(200, {
      'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      'Cache-Control': 'no-cache, no-store',
      Connection: 'close',
    });
    const viewer: Viewer = { res, waiting: false, lastTaken: Date.now(), detach: () => undefined };
    const onDrain = () => {
      viewer.waiting = false;
    };
    const onGone = () => this.remove(viewer);
    res.on('drain', onDrain);
    res.on('close', onGone);
    req.on('close', onGone);
    viewer.detach = () => {
      res.off('drain', onDrain);
      res.off('close', onGone);
      req.off('close', onGone);
    };
    this.viewers.add(viewer);
    // A new viewer gets the current frame at the next tick, even if the others already had it.
    this.lastSeq = -1;
    if (!this.timer) this.timer = setInterval(() => void this.tick(), 1000 / this.fps);
    return true;
  }

  /** Ends every viewer's stream (the camera stops or is redeployed). */
  close(): void {
    this.closed = true;
    for (const viewer of [...this.viewers]) {
      this.remove(viewer);
      viewer.res.end();
    }
  }

  private remove(viewer: Viewer): void {
    if (!this.viewers.delete(viewer)) return;
    viewer.detach();
    if (this.viewers.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    for (const viewer of [...this.viewers]) {
      if (viewer.waiting && now - viewer.lastTaken >= this.stalledMs) {
        this.counters.stalled++;
        this.remove(viewer);
        viewer.res.destroy();
      }
    }
    const frame = this.latest();
    if (!frame || frame.seq === this.lastSeq || this.encoding) return;
    // Nobody can take a frame now: do not encode one.
    if (![...this.viewers].some((v) => !v.waiting)) {
      this.counters.skipped += this.viewers.size;
      this.lastSeq = frame.seq;
      return;
    }
    this.lastSeq = frame.seq;
    this.encoding = true;
    let part: Buffer;
    try {
      const jpeg = await encodeLiveJpeg(frame.image, this.width, this.quality);
      this.counters.encodes++;
      // One buffer per frame, the same for every viewer: writes keep a reference, not a copy.
      part = Buffer.concat([
        Buffer.from(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`),
        jpeg,
        Buffer.from('\r\n'),
      ]);
    } catch {
      return; // a frame that fails to encode is skipped
    } finally {
      this.encoding = false;
    }
    for (const viewer of [...this.viewers]) {
      // Gone while the frame was encoded ('close' may come a tick later): never write after the end.
      if (viewer.res.destroyed || viewer.res.writableEnded) {
        this.remove(viewer);
        continue;
      }
      if (viewer.waiting) {
        this.counters.skipped++;
        continue;
      }
      viewer.lastTaken = Date.now();
      this.counters.sent++;
      if (!viewer.res.write(part)) viewer.waiting = true;
    }
  }
}
