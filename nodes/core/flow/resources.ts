/**
 * Shared, reference-counted engine parts. Every node that names the same
 * Edge TPU config gets the same embedder (one runtime per device: a Coral
 * cannot be opened twice), every align node of a detector variant the same
 * detector, every node of a gallery folder the same Gallery. The last
 * release disposes.
 */
import { InferenceRuntime } from '../../../native';
import { FaceLandmarker } from '../align/landmarks';
import type { FaceDetector } from '../detect/blazeface';
import { TfliteEmbedder, TfliteEmbedderOptions } from '../embed/embedder';
import { Gallery } from '../gallery/gallery';
import { openDetector } from '../pipeline';
import { Recognizer } from '../identify/recognizer';

interface Entry<T> {
  value: Promise<T>;
  users: number;
  dispose: (value: T) => Promise<void>;
}

export class SharedPool<T> {
  private entries = new Map<string, Entry<T>>();

  async acquire(key: string, create: () => Promise<T>, dispose: (value: T) => Promise<void>): Promise<T> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { value: create(), users: 0, dispose };
      this.entries.set(key, entry);
      // A failed open must not stay cached: the next acquire tries again.
      entry.value.catch(() => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      });
    }
    entry.users++;
    return entry.value;
  }

  async release(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.users--;
    if (entry.users > 0) return;
    this.entries.delete(key);
    try {
      await entry.dispose(await entry.value);
    } catch {
      // it never opened: nothing to dispose
    }
  }

  get keys(): string[] {
    return [...this.entries.keys()];
  }
}

export interface EmbedderSpec extends TfliteEmbedderOptions {
  device?: string;
}

export function embedderKey(spec: EmbedderSpec): string {
  return JSON.stringify([
    spec.model ?? '',
    spec.device ?? 'auto',
    spec.performance ?? 'high',
    spec.threads ?? 0,
    spec.cpuModel ?? 'float',
  ]);
}

const embedders = new SharedPool<TfliteEmbedder>();
const detectors = new SharedPool<{ detector: FaceDetector; runtime: InferenceRuntime }>();
const galleries = new SharedPool<Gallery>();

export function acquireEmbedder(spec: EmbedderSpec): Promise<TfliteEmbedder> {
  return embedders.acquire(
    embedderKey(spec),
    () => TfliteEmbedder.open(spec),
    (e) => e.dispose(),
  );
}

export function releaseEmbedder(spec: EmbedderSpec): Promise<void> {
  return embedders.release(embedderKey(spec));
}

export interface DetectorSpec {
  variant: 'short' | 'full';
  minScore?: number;
  tiles?: boolean;
}

const detectorKey = (spec: DetectorSpec) => JSON.stringify([spec.variant, spec.minScore ?? 0.5, !!spec.tiles]);

export async function acquireDetector(spec: DetectorSpec): Promise<FaceDetector> {
  const { detector } = await detectors.acquire(
    detectorKey(spec),
    () => openDetector({ variant: spec.variant, minScore: spec.minScore, tiles: spec.tiles }),
    (d) => d.runtime.dispose(),
  );
  return detector;
}

export function releaseDetector(spec: DetectorSpec): Promise<void> {
  return detectors.release(detectorKey(spec));
}

/** The face mesh model, one per process: every align node that aligns a face carefully shares it. */
const landmarkers = new SharedPool<FaceLandmarker>();

export function acquireLandmarker(): Promise<FaceLandmarker> {
  return landmarkers.acquire(
    'face-mesh',
    () => FaceLandmarker.open(),
    (l) => l.dispose(),
  );
}

export function releaseLandmarker(): Promise<void> {
  return landmarkers.release('face-mesh');
}

/**
 * The gallery of a folder, shared by every node that names it. It watches
 * the folder, so an enrolment made from the command line (or another
 * Node-RED) reaches the running classifiers within a couple of seconds.
 */
export function acquireGallery(dir: string): Promise<Gallery> {
  return galleries.acquire(
    dir,
    () => Gallery.open(dir, { create: true, watch: true }),
    async (gallery) => gallery.close(),
  );
}

export function releaseGallery(dir: string): Promise<void> {
  return galleries.release(dir);
}

export { Recognizer };
