/**
 * From a visit decision of imprint-classify to what the face library stores: the best frame's
 * crop (copied out of the pixel store, which may evict it any time), embedding, and why an unknown
 * was unknown. Published on the face bus only when something listens (the face library plugin).
 */
import type { FaceQualitySummary } from '../flow/messages';
import { faceBus } from '../flow/face-bus';
import type { Identification } from '../identify/recognizer';
import type { RecognizedEvent, UnknownEvent } from '../identify/visits';
import { isPixelRef, pixels, type PixelRef } from '../media/pixel-store';

/** What imprint-classify's tracker keeps per frame besides the box: enough for the library's record. */
export interface VisitEvidence {
  ref: PixelRef;
  embedding?: number[];
  identification?: Identification;
  quality?: FaceQualitySummary;
}

export function publishVisit(
  galleryDir: string,
  camera: string,
  kind: 'recognized' | 'unknown' | 'ignored',
  event: RecognizedEvent<VisitEvidence> | UnknownEvent<VisitEvidence>,
  recognizer: { gallery: { getPerson(n: string): { id: string } | undefined } },
): void {
  if (!faceBus.hasVisitListeners()) return;
  const evidence = event.crop;
  const id = evidence?.identification;
  const ref = evidence?.ref;
  const image = ref && isPixelRef(ref) && pixels.has(ref) ? pixels.get(ref) : undefined;
  faceBus.publishVisit({
    galleryDir,
    camera,
    kind,
    name: event.name,
    personId: kind === 'unknown' ? null : (recognizer.gallery.getPerson(event.name)?.id ?? null),
    reason: kind === 'unknown' ? (id?.unknownReason ?? 'below-threshold') : null,
    closest: id?.closest ?? null,
    cosine: event.cosine,
    margin: id && id.secondCosine > -1 ? id.cosine - id.secondCosine : null,
    trackId: event.trackId,
    time: Date.now(),
    box: event.box,
    ...(evidence?.quality
      ? { quality: { sharpness: evidence.quality.sharpness, yawDeg: evidence.quality.yawDeg } }
      : {}),
    ...(evidence?.embedding ? { embedding: Float32Array.from(evidence.embedding) } : {}),
    ...(image ? { crop: { width: image.width, height: image.height, data: image.data.slice() } } : {}),
  });
}
