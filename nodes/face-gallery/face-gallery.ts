/**
 * Config node: one gallery folder and its recognizer, shared by
 * imprint-classify and enrol. An enrolment through one node is seen by every
 * classifier at once (the recognizer follows the gallery's change events).
 */
import * as path from 'path';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { Gallery, GalleryChange } from '../core/gallery/gallery';
import { acquireGallery, Recognizer, releaseGallery } from '../core/flow/resources';
import { appliedRecognition, extrasFor, personForgotten } from '../core/library/registry';
import { configNumber, errorMessage, userDir } from '../kit';
import type { EdgeTpuDeviceNode, FaceGalleryNode } from '../config-types';

interface FaceGalleryDef extends NodeDef {
  path: string;
  threshold: string;
  margin: string;
  device: string;
}

export = function register(RED: NodeAPI): void {
  function FaceGallery(this: FaceGalleryNode, config: FaceGalleryDef): void {
    RED.nodes.createNode(this, config);
    const base = userDir(RED);
    this.directory = path.resolve(base, config.path?.trim() || path.join('coral-face', 'gallery'));
    // Parsed when first used, so a bad value fails the nodes that use the gallery, with the reason.
    const settings = () => ({
      threshold: configNumber('face-gallery', 'threshold', config.threshold),
      margin: configNumber('face-gallery', 'margin', config.margin),
    });
    this.recognitionSettings = settings;
    let galleryOpened: Promise<Gallery> | null = null;
    let recognizerOpened: Promise<Recognizer> | null = null;

    this.deviceNode = () => {
      const device = RED.nodes.getNode(config.device) as EdgeTpuDeviceNode | null;
      if (!device) throw new Error(RED._('face-gallery.errors.device'));
      return device;
    };
    // Forgetting someone removes what the face library keeps of them too (negatives, visits).
    const onForget = (change: GalleryChange) => {
      if (change.kind === 'forget') personForgotten(this.directory, change.personId).catch((e) => this.warn(errorMessage(e)));
    };
    this.gallery = () => (galleryOpened ??= acquireGallery(this.directory).then((g) => { g.on('change', onForget); return g; }));
    this.recognizer = () => (recognizerOpened ??= (async () => {
      const [gallery, embedder] = await Promise.all([this.gallery(), this.deviceNode().embedder()]);
      // The face library's negatives, ignored people and applied threshold (nodes/core/library).
      const [extras, applied] = await Promise.all([extrasFor(this.directory), appliedRecognition(this.directory)]);
      const recognizer = await Recognizer.open(gallery, embedder, { ...settings(), ...applied }, extras);
      recognizer.on('error', (error) => this.error(`gallery reload failed: ${(error as Error).message}`));
      return recognizer;
    })());

    this.on('close', (done: () => void) => {
      const closing: Promise<unknown>[] = [];
      if (recognizerOpened) closing.push(recognizerOpened.then((r) => r.close(), () => undefined));
      if (galleryOpened) closing.push(galleryOpened.then((g) => { g.off('change', onForget); }, () => undefined), releaseGallery(this.directory));
      galleryOpened = null;
      recognizerOpened = null;
      Promise.allSettled(closing).finally(done);
    });
  }
  RED.nodes.registerType('face-gallery', FaceGallery as unknown as (this: Node, def: NodeDef) => void);
};
