/**
 * Frames and face crops travel through a flow by reference.
 *
 * Node-RED deep-clones a message for every extra wire (lodash cloneDeep,
 * which copies typed arrays). A 1280x720 RGB frame is 2.7 MB: at 25 fps and
 * two wires that is 140 MB/s of copying. So messages carry a small
 * `PixelRef` ({ id, width, height, ... }, cheap to clone) and the pixels stay
 * here, once, whatever the number of wires. The store is bounded in bytes and
 * evicts the least recently used images: a flow that holds a reference too
 * long gets a clear "expired" error, never unbounded memory.
 */
import type { RgbImage } from './image';

export interface PixelRef {
  /** Opaque id: "px-<n>". */
  readonly id: string;
  readonly kind: 'frame' | 'crop';
  readonly width: number;
  readonly height: number;
}

export class PixelExpiredError extends Error {
  readonly code = 'ERR_PIXELS_EXPIRED';
  constructor(ref: PixelRef) {
    super(
      `${ref.kind} ${ref.id} is no longer available: the flow held it too long (raise the store size or lower the frame rate)`,
    );
  }
}

export class PixelStore {
  private readonly images = new Map<string, RgbImage>();
  private bytes = 0;
  private next = 1;

  /**
   * maxBytes: default 96 MB, about 35 frames of 1280x720: a frame is in
   * flight for well under a second, and frames dropped downstream (latest
   * wins) are simply evicted.
   */
  constructor(readonly maxBytes = 96 * 1024 * 1024) {}

  put(image: RgbImage, kind: PixelRef['kind']): PixelRef {
    const id = `px-${this.next++}`;
    this.images.set(id, image);
    this.bytes += image.data.byteLength;
    this.evict();
    return { id, kind, width: image.width, height: image.height };
  }

  /** The pixels of a reference, or throws PixelExpiredError. Marks it recently used. */
  get(ref: PixelRef): RgbImage {
    const image = this.images.get(ref?.id);
    if (!image) throw new PixelExpiredError(ref);
    this.images.delete(ref.id);
    this.images.set(ref.id, image); // Map order is insertion order: re-insert = most recent
    return image;
  }

  has(ref: PixelRef): boolean {
    return this.images.has(ref?.id);
  }

  get size(): { images: number; bytes: number } {
    return { images: this.images.size, bytes: this.bytes };
  }

  private evict(): void {
    for (const [id, image] of this.images) {
      if (this.bytes <= this.maxBytes) break;
      this.images.delete(id);
      this.bytes -= image.data.byteLength;
    }
  }
}

/** The process-wide store the nodes share. */
export const pixels = new PixelStore();

export function isPixelRef(value: unknown): value is PixelRef {
  const v = value as PixelRef;
  return (
    !!v &&
    typeof v.id === 'string' &&
    v.id.startsWith('px-') &&
    typeof v.width === 'number' &&
    typeof v.height === 'number'
  );
}
