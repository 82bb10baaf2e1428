/** What the config nodes offer the nodes that use them. */
import type { Node } from 'node-red';
import type { BackendInfo } from '../native';
import type { TfliteEmbedder } from './core/embed/embedder';
import type { Gallery } from './core/gallery/gallery';
import type { Recognizer } from './core/identify/recognizer';
import type { EmbedderSpec } from './core/flow/resources';

export interface EdgeTpuDeviceNode extends Node {
  spec: EmbedderSpec;
  /** The shared embedder; rejects with the reason it could not open. */
  embedder(): Promise<TfliteEmbedder>;
}

export interface FaceGalleryNode extends Node {
  directory: string;
  /** The node's own threshold and margin (its fields, or the defaults); ConfigError for a bad value. */
  recognitionSettings(): { threshold: number; margin: number };
  gallery(): Promise<Gallery>;
  recognizer(): Promise<Recognizer>;
  deviceNode(): EdgeTpuDeviceNode;
}

/** "Edge TPU usb:0", "CPU" (when asked for), or "CPU (why not the Edge TPU)". */
export function describeBackend(backend: BackendInfo): string {
  if (backend.kind === 'edgetpu') return `Edge TPU ${backend.device}`;
  return backend.reasonCode === undefined ? 'CPU' : `CPU (${backend.reason})`;
}
