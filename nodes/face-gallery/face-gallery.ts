/**
 * Config node: one gallery folder and its recognizer, shared by
 * imprint-classify and enrol. An enrolment through one node is seen by every
 * classifier at once (the recognizer follows the gallery's change events, and
 * the gallery watches the folder for changes made by other processes).
 *
 * Opening can fail (a damaged index, a folder that is not there yet, the
 * embedder not ready): a failure is never kept. The next node that asks tries
 * again, at most every few seconds, so recognition comes back by itself once
 * the cause is fixed, without a redeploy.
 */
import * as path from 'path';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { Gallery, GalleryChange } from '../core/gallery/gallery';
import { acquireGallery, Recognizer, releaseGallery } from '../core/flow/resources';
import { appliedRecognition, personForgotten } from '../core/library/registry';
import { closeWhen, configNumber, errorMessage, userDir } from '../kit';
import type { EdgeTpuDeviceNode, FaceGalleryNode } from '../config-types';

interface FaceGalleryDef extends NodeDef {
  path: string;
  threshold: string;
  margin: string;
  device: string;
}

/** A failed open is retried, but not more often than this: every frame asks. */
const RETRY_AFTER_MS = 5000;

/** A promise that is shared while it is pending or fulfilled, and forgotten RETRY_AFTER_MS after it fails. */
function retrying<T>(open: () => Promise<T>, onFailure: (error: unknown) => void): () => Promise<T> {
  let current: Promise<T> | null = null;
  return () => {
    if (current) return current;
    const attempt = open();
    current = attempt;
    attempt.catch((error: unknown) => {
      onFailure(error);
      setTimeout(() => {
        if (current === attempt) current = null;
      }, RETRY_AFTER_MS).unref();
    });
    return attempt;
  };
}

export = function register(RED: NodeAPI): void {
  function FaceGallery(this: FaceGalleryNode, config: FaceGalleryDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const base = userDir(RED);
    this.directory = path.resolve(base, config.path?.trim() || path.join('coral-face', 'gallery'));
    // Parsed when first used, so a bad value fails the nodes that use the gallery, with the reason.
    this.recognitionSettings = () => ({
      threshold: configNumber('face-gallery', 'threshold', config.threshold),
      margin: configNumber('face-gallery', 'margin', config.margin),
    });
    let galleryHeld = false;
    let closing = false;
    const recognizers: Recognizer[] = [];

    this.deviceNode = () => {
      const device = RED.nodes.getNode(config.device) as EdgeTpuDeviceNode | null;
      if (!device) throw new Error(RED._('face-gallery.errors.device'));
      return device;
    };
    // Forgetting someone removes what the face library keeps of them too (their stored visits).
    const onForget = (change: GalleryChange) => {
      if (change.kind === 'forget' && change.personId)
        personForgotten(this.directory, change.personId).catch((e) => node.warn(errorMessage(e)));
    };
    this.gallery = retrying(
      async () => {
        const gallery = await acquireGallery(this.directory);
        if (closing) {
          await releaseGallery(this.directory);
          throw new Error(RED._('face-gallery.errors.closed'));
        }
        galleryHeld = true;
        if (gallery.recovery)
          node.warn(
            RED._('face-gallery.warn.recovered', {
              dir: this.directory,
              reason: gallery.recovery.reason,
              people: gallery.recovery.people,
              crops: gallery.recovery.crops,
            }),
          );
        gallery.on('warning', onWarning);
        gallery.on('change', onForget);
        return gallery;
      },
      (error) => node.error(RED._('face-gallery.errors.open', { dir: this.directory, error: errorMessage(error) })),
    );
    this.recognizer = retrying(
      async () => {
        const [gallery, embedder] = await Promise.all([this.gallery(), this.deviceNode().embedder()]);
        // A threshold applied from the face library's Health page wins over this node's fields.
        const applied = await appliedRecognition(this.directory);
        const recognizer = await Recognizer.open(gallery, embedder, { ...this.recognitionSettings(), ...applied });
        recognizer.on('error', (error) =>
          node.error(RED._('face-gallery.errors.reload', { error: errorMessage(error) })),
        );
        recognizers.push(recognizer);
        return recognizer;
      },
      () => undefined,
    );

    const onWarning = (warning: string) => node.warn(warning);

    this.on('close', (done: () => void) => {
      closing = true;
      for (const recognizer of recognizers) recognizer.close();
      const held = galleryHeld;
      galleryHeld = false;
      const release = async (gallery: Gallery | undefined) => {
        gallery?.off('warning', onWarning);
        gallery?.off('change', onForget);
        if (held) await releaseGallery(this.directory);
      };
      closeWhen(this, held ? this.gallery().then(release, () => undefined) : Promise.resolve(), done);
    });
  }
  RED.nodes.registerType('face-gallery', FaceGallery as unknown as (this: Node, def: NodeDef) => void);
};
