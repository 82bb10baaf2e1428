/** What the config nodes offer the nodes that use them. */
import * as path from 'path';
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

/** The model a backend runs, by file name: "mobilefacenet_int8" (compiled or not), "mobilefacenet" (float). */
export function modelLabel(backend: BackendInfo): string {
  return path
    .basename(backend.model)
    .replace(/\.tflite$/, '')
    .replace(/_edgetpu$/, '');
}

/** The same, short enough for a node status: "int8" or "float" for the shipped MobileFaceNet, else the file name. */
export function shortModelLabel(backend: BackendInfo): string {
  const label = modelLabel(backend);
  return label === 'mobilefacenet_int8' ? 'int8' : label === 'mobilefacenet' ? 'float' : label;
}

/**
 * Which model runs where: "Edge TPU usb:0, mobilefacenet_int8", "CPU,
 * mobilefacenet" (when asked for), or "CPU, mobilefacenet (why not the Edge TPU)".
 */
export function describeBackend(backend: BackendInfo): string {
  if (backend.kind === 'edgetpu') return `Edge TPU ${backend.device}, ${modelLabel(backend)}`;
  return backend.reasonCode === undefined
    ? `CPU, ${modelLabel(backend)}`
    : `CPU, ${modelLabel(backend)} (${backend.reason})`;
}
