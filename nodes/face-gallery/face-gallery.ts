/**
 * Config node: one gallery folder and its recognizer, shared by
 * imprint-classify and enrol. An enrolment through one node is seen by every
 * classifier at once (the recognizer follows the gallery's change events).
 */
import * as path from 'path';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { Gallery } from '../core/gallery';
import { DEFAULT_MARGIN, DEFAULT_THRESHOLD } from '../core/imprint';
import { acquireGallery, Recognizer, releaseGallery } from '../core/resources';
import { userDir } from '../shared';
import type { EdgeTpuDeviceNode, FaceGalleryNode } from '../config-types';

interface FaceGalleryDef extends NodeDef {
  path: string;
  threshold: string;
  margin: string;
  device: string;
}

function numberOr(value: string, fallback: number): number {
  const n = Number(value);
  return value !== '' && value !== undefined && Number.isFinite(n) ? n : fallback;
}

export = function register(RED: NodeAPI): void {
  function FaceGallery(this: FaceGalleryNode, config: FaceGalleryDef): void {
    RED.nodes.createNode(this, config);
    const base = userDir(RED);
    this.directory = path.resolve(base, config.path?.trim() || path.join('coral-face', 'gallery'));
    const threshold = numberOr(config.threshold, DEFAULT_THRESHOLD);
    const margin = numberOr(config.margin, DEFAULT_MARGIN);
    let galleryOpened: Promise<Gallery> | null = null;
    let recognizerOpened: Promise<Recognizer> | null = null;

    this.deviceNode = () => {
      const device = RED.nodes.getNode(config.device) as EdgeTpuDeviceNode | null;
      if (!device) throw new Error(RED._('face-gallery.errors.device'));
      return device;
    };
    this.gallery = () => (galleryOpened ??= acquireGallery(this.directory));
    this.recognizer = () => (recognizerOpened ??= (async () => {
      const [gallery, embedder] = await Promise.all([this.gallery(), this.deviceNode().embedder()]);
      const recognizer = await Recognizer.open(gallery, embedder, { threshold, margin });
      recognizer.on('error', (error) => this.error(`gallery reload failed: ${(error as Error).message}`));
      return recognizer;
    })());

    this.on('close', (done: () => void) => {
      const closing: Promise<unknown>[] = [];
      if (recognizerOpened) closing.push(recognizerOpened.then((r) => r.close(), () => undefined));
      if (galleryOpened) closing.push(releaseGallery(this.directory));
      galleryOpened = null;
      recognizerOpened = null;
      Promise.allSettled(closing).finally(done);
    });
  }
  RED.nodes.registerType('face-gallery', FaceGallery as unknown as (this: Node, def: NodeDef) => void);
};
