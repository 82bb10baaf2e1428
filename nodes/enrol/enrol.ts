/**
 * enrol: teach, forget, rename and list people by message. Photos come as
 * Buffers or file paths; walk-up enrolment takes the next N seconds of a
 * camera's faces that pass the quality gate. Every classifier on the same
 * gallery picks the change up at once, without a redeploy.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { FaceGalleryNode } from '../config-types';
import type { EnrolCommand } from '../core/flow/messages';
import { EnrolError, enrolCrops, EnrolOptions, enrolPerson, EnrolResult } from '../core/gallery/enrol';
import { WalkupCollector } from '../core/gallery/walkup';
import { SETTINGS } from '../core/flow/settings';
import { CameraFaces, faceBus } from '../core/flow/face-bus';
import type { RgbImage } from '../core/media/image';
import { PixelRef, pixels } from '../core/media/pixel-store';
import { FacePipeline } from '../core/pipeline';
import { CodedError } from '../core/common/errors';
import { configNumber, fail, numberSetting, showStatus } from '../kit';

interface EnrolDef extends NodeDef {
  gallery: string;
  minPhotos: string;
  walkupSeconds: string;
}

function summary(result: EnrolResult) {
  return {
    name: result.name,
    id: result.person?.id ?? null,
    accepted: result.accepted,
    rejected: result.rejected,
    photos: result.photos.map((p) => ({ source: p.source, accepted: p.accepted, reasons: p.reasons })),
  };
}

function copyCrop(ref: PixelRef): RgbImage {
  const crop = pixels.get(ref);
  return { width: crop.width, height: crop.height, data: crop.data.slice() };
}

const isAddMode = (mode: unknown): mode is EnrolOptions['mode'] =>
  mode === undefined || mode === 'add' || mode === 'new' || mode === 'auto';

export = function register(RED: NodeAPI): void {
  function Enrol(this: Node, config: EnrolDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const galleryNode = RED.nodes.getNode(config.gallery) as FaceGalleryNode | null;
    let defaultMinPhotos = SETTINGS.enrol.minPhotos.default;
    let defaultSeconds = SETTINGS.enrol.walkupSeconds.default;
    let configError: Error | null = null;
    try {
      defaultMinPhotos = configNumber('enrol', 'minPhotos', config.minPhotos);
      defaultSeconds = configNumber('enrol', 'walkupSeconds', config.walkupSeconds);
    } catch (error) {
      configError = error instanceof Error ? error : new Error(String(error));
    }
    let pipeline: Promise<FacePipeline> | null = null;
    const pipelineFor = () => {
      if (pipeline) return pipeline;
      // Enrolment photos are near faces: the short-range detector; the
      // embedder is the gallery's own, so embeddings match the classifier's.
      const opening = galleryNode!
        .deviceNode()
        .embedder()
        .then((embedder) => FacePipeline.withEmbedder(embedder, { detector: { variant: 'short' } }));
      pipeline = opening;
      // A failure is not kept: the next command tries again.
      opening.catch(() => {
        if (pipeline === opening) pipeline = null;
      });
      return opening;
    };
    const cancels = new Set<() => void>();

    if (configError) showStatus(node, 'error', configError.message);
    else if (!galleryNode) showStatus(node, 'error', RED._('enrol.errors.gallery'));
    else showStatus(node, 'ready', RED._('enrol.status.ready'));

    /** The bar of the gallery this node enrols into: the threshold and margin it recognises with, and the command's choices. */
    async function enrolOptions(command: { minPhotos?: unknown; mode?: unknown }): Promise<EnrolOptions> {
      const mode = command.mode;
      if (!isAddMode(mode)) throw new CodedError('ERR_BAD_COMMAND', RED._('enrol.errors.mode'));
      const options = {
        minPhotos: numberSetting('minPhotos', command.minPhotos, defaultMinPhotos, SETTINGS.enrol.minPhotos),
        mode,
      };
      const recognizer = await galleryNode!.recognizer();
      return { ...options, threshold: recognizer.threshold, margin: recognizer.margin };
    }

    async function walkup(command: Extract<EnrolCommand, { action: 'walkup' }>) {
      const seconds = numberSetting('seconds', command.seconds, defaultSeconds, SETTINGS.enrol.walkupSeconds);
      const maxPhotos = numberSetting('maxPhotos', command.maxPhotos, 10, { min: 1, max: 100, integer: true });
      const options = await enrolOptions(command);
      const collector = new WalkupCollector<RgbImage>({ maxPhotos });
      showStatus(
        node,
        'pending',
        RED._('enrol.status.walkup', { name: command.name, camera: command.camera, seconds }),
      );
      await new Promise<void>((resolve) => {
        const onFaces = (event: CameraFaces) => {
          if (event.camera !== command.camera) return;
          collector.add({
            source: `${event.camera}@${new Date(event.timestamp).toISOString()}`,
            timestamp: event.timestamp,
            width: event.width,
            height: event.height,
            faces: event.faces.map((face) => ({
              box: face.box,
              ok: face.quality.ok,
              reasons: face.quality.reasons,
              quality: { sharpness: face.quality.sharpness, yawDeg: face.quality.yawDeg },
              // The pixel store may drop the crop before the window ends: a kept face is copied.
              crop: () => copyCrop(face.crop),
            })),
          });
        };
        const timer = setTimeout(finish, seconds * 1000);
        function finish() {
          clearTimeout(timer);
          faceBus.off('faces', onFaces);
          cancels.delete(finish);
          resolve();
        }
        faceBus.on('faces', onFaces);
        cancels.add(finish);
      });
      const frames = collector.frameCount;
      if (frames === 0) {
        throw new CodedError('ERR_NO_FRAMES', RED._('enrol.errors.noFrames', { camera: command.camera, seconds }));
      }
      const embedder = await galleryNode!.deviceNode().embedder();
      // One person: the face clearly in front over the window (nodes/core/gallery/walkup.ts).
      const choice = await collector.choose((crops) => embedder.embed(crops));
      const walk = {
        frames,
        clearFrames: choice.clearFrames,
        crowdedFrames: choice.crowdedFrames,
        people: choice.people,
      };
      if (choice.refusal) {
        const error = new CodedError(choice.refusal.code, choice.refusal.message);
        Object.assign(error, {
          report: {
            name: command.name,
            id: null,
            accepted: 0,
            rejected: choice.rejected.length,
            photos: summary({
              name: command.name,
              person: null,
              existing: false,
              accepted: 0,
              rejected: 0,
              photos: choice.rejected,
            }).photos,
            ...walk,
          },
        });
        throw error;
      }
      try {
        const result = await enrolCrops(
          embedder,
          await galleryNode!.gallery(),
          command.name,
          choice.crops,
          choice.rejected,
          options,
        );
        return { ...summary(result), ...walk };
      } catch (error) {
        if (error instanceof EnrolError) Object.assign(error, { report: { ...summary(error.result), ...walk } });
        throw error;
      }
    }

    async function run(command: EnrolCommand): Promise<Record<string, unknown>> {
      if (configError) throw configError;
      if (!galleryNode) throw new Error(RED._('enrol.errors.gallery'));
      const gallery = await galleryNode.gallery();
      switch (command?.action) {
        case 'enrol': {
          const images = Array.isArray(command.images) ? command.images : [];
          if (!command.name || images.length === 0)
            throw new CodedError('ERR_BAD_COMMAND', RED._('enrol.errors.enrolArgs'));
          const result = await enrolPerson(
            await pipelineFor(),
            gallery,
            command.name,
            images,
            await enrolOptions(command),
          );
          return summary(result);
        }
        case 'walkup':
          if (!command.name || !command.camera)
            throw new CodedError('ERR_BAD_COMMAND', RED._('enrol.errors.walkupArgs'));
          return walkup(command);
        case 'forget': {
          const person = await gallery.forget(command.name);
          return { name: person.name, id: person.id };
        }
        case 'rename': {
          const person = await gallery.rename(command.name, command.newName);
          return { name: person.name, id: person.id, previous: command.name };
        }
        case 'list':
          return {
            people: gallery
              .listPeople()
              .map((p) => ({ id: p.id, name: p.name, photos: p.crops.length, updatedAt: p.updatedAt })),
          };
        default:
          throw new CodedError('ERR_BAD_COMMAND', RED._('enrol.errors.action'));
      }
    }

    // Node-RED does not await a handler: the promise is dropped on purpose, every failure goes to done().
    node.on(
      'input',
      (raw, send, done) =>
        void (async () => {
          const msg = raw as NodeMessageInFlow & { payload: EnrolCommand };
          const command = msg.payload;
          try {
            const result = await run(command);
            msg.payload = { action: command.action, ok: true, ...result } as never;
            showStatus(
              node,
              'ok',
              RED._('enrol.status.done', { action: command.action, name: (command as { name?: string }).name ?? '' }),
            );
            send(msg);
            done();
          } catch (error) {
            const report =
              (error as { report?: Record<string, unknown> }).report ??
              (error instanceof EnrolError ? summary(error.result) : {});
            const code = (error as { code?: string }).code ?? 'ERR_ENROL';
            msg.payload = {
              action: command?.action,
              ok: false,
              error: { code, message: (error as Error).message },
              ...report,
            } as never;
            send(msg);
            fail(node, error, done);
          }
        })(),
    );

    node.on('close', (done: () => void) => {
      for (const cancel of [...cancels]) cancel();
      const closing = pipeline;
      pipeline = null;
      // The embedder belongs to the device config node: dispose only the detector.
      void (
        closing
          ? closing.then(
              (p) => p.disposeDetector(),
              () => undefined,
            )
          : Promise.resolve()
      ).finally(done);
    });
  }
  RED.nodes.registerType('enrol', Enrol as unknown as (this: Node, def: NodeDef) => void);
};
