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

class FaceBus extends EventEmitter {
  publish(event: CameraFaces): void {
    if (this.listenerCount('faces') > 0) this.emit('faces', event);
  }
}

export const faceBus = new FaceBus();
faceBus.setMaxListeners(100);
