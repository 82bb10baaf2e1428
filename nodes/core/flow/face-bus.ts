/**
 * Faces seen per camera, published by the align node for listeners inside
 * the same process (walk-up enrolment). An EventEmitter rather than a wire:
 * "enrol Alice from the next 10 s of the front door" should not need the
 * user to rewire the recognition flow.
 */
import { EventEmitter } from 'events';
import type { FaceRecord } from './messages';
import type { Box, RgbImage } from '../media/image';

export interface CameraFaces {
  camera: string;
  timestamp: number;
  width: number;
  height: number;
  faces: FaceRecord[];
}

/** Names given to a camera's faces (imprint-classify): the live view draws them. */
export interface CameraIdentities {
  camera: string;
  /** Capture time of the frame the faces were found in. */
  timestamp: number;
  /** That frame's sequence number, when known. */
  seq?: number;
  faces: { box: { x: number; y: number; width: number; height: number }; name: string | null }[];
}

/**
 * One visit decision of imprint-classify (output 1's recognized / unknown / ignored), with what the
 * face library stores: the best frame's crop and embedding, and why an unknown was unknown.
 */
export interface VisitObservation {
  /** The face-gallery folder the classifier uses: the library keeps visits per gallery. */
  galleryDir: string;
  camera: string;
  kind: 'recognized' | 'unknown' | 'ignored';
  name: string;
  personId: string | null;
  reason: string | null;
  closest: string | null;
  cosine: number;
  margin: number | null;
  trackId: string;
  time: number;
  box?: Box;
  quality?: { sharpness?: number; yawDeg?: number };
  embedding?: Float32Array;
  /** A copy of the crop's pixels (the pixel store's entry may be evicted any time). */
  crop?: RgbImage;
}

class FaceBus extends EventEmitter {
  publish(event: CameraFaces): void {
    if (this.listenerCount('faces') > 0) this.emit('faces', event);
  }

  publishIdentities(event: CameraIdentities): void {
    if (this.listenerCount('identities') > 0) this.emit('identities', event);
  }

  hasVisitListeners(): boolean {
    return this.listenerCount('visit') > 0;
  }

  publishVisit(event: VisitObservation): void {
    if (this.listenerCount('visit') > 0) this.emit('visit', event);
  }
}

export const faceBus = new FaceBus();
faceBus.setMaxListeners(100);
