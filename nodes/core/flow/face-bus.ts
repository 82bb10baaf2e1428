/**
 * Faces seen per camera, published by the align node for listeners inside
 * the same process (walk-up enrolment). An EventEmitter rather than a wire:
 * "enrol Alice from the next 10 s of the front door" should not need the
 * user to rewire the recognition flow.
 */
import { EventEmitter } from 'events';
import type { FaceRecord } from './messages';

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

class FaceBus extends EventEmitter {
  publish(event: CameraFaces): void {
    if (this.listenerCount('faces') > 0) this.emit('faces', event);
  }

  publishIdentities(event: CameraIdentities): void {
    if (this.listenerCount('identities') > 0) this.emit('identities', event);
  }
}

export const faceBus = new FaceBus();
faceBus.setMaxListeners(100);
