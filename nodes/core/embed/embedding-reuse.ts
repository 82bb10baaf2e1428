/**
 * Re-use a face's embedding across consecutive frames of a camera.
 *
 * At 25 fps a face that stands still is embedded 25 times a second for
 * identical answers, and the embedder dominates the cost of a frame. A face
 * whose box overlaps (IoU >= 0.6) a face embedded less than `maxAgeMs` ago
 * on the same camera takes that embedding instead; after `maxAgeMs` it is
 * embedded afresh, so a person who turns or changes still gets new votes
 * several times a second. Photos (no camera) are always embedded.
 */
import type { Box } from '../media/image';
import { intersectionOverUnion } from '../media/image';

interface Remembered {
  box: Box;
  embedding: Float32Array;
  /** The embedder id that made it: an embedding of another model is never reused. */
  id: string;
  time: number;
}

export class EmbeddingReuse {
  private readonly cameras = new Map<string, Remembered[]>();

  constructor(
    readonly maxAgeMs = 200,
    readonly minIoU = 0.6,
  ) {}

  /** The remembered embedding for a face at `box`, or undefined when it must be embedded. */
  lookup(camera: string, box: Box, now: number, id: string): Float32Array | undefined {
    if (this.maxAgeMs <= 0) return undefined;
    let best: Remembered | undefined;
    let bestIoU = this.minIoU;
    for (const r of this.cameras.get(camera) ?? []) {
      if (now - r.time >= this.maxAgeMs || r.id !== id) continue;
      const iou = intersectionOverUnion(r.box, box);
      if (iou >= bestIoU) {
        best = r;
        bestIoU = iou;
      }
    }
    return best?.embedding;
  }

  /** Replaces the camera's memory with this frame's freshly embedded faces (plus still-valid older ones). */
  remember(camera: string, faces: { box: Box; embedding: Float32Array }[], now: number, id: string): void {
    const kept = (this.cameras.get(camera) ?? []).filter(
      (r) =>
        now - r.time < this.maxAgeMs &&
        r.id === id &&
        !faces.some((f) => intersectionOverUnion(f.box, r.box) >= this.minIoU),
    );
    this.cameras.set(
      camera,
      [...kept, ...faces.map((f) => ({ box: f.box, embedding: f.embedding, id, time: now }))].slice(-32),
    );
  }
}
