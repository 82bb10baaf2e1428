/**
 * enrol: teach, forget, rename and list people by message. Photos come as
 * Buffers or file paths; walk-up enrolment takes the next N seconds of a
 * camera's faces that pass the quality gate. Every classifier on the same
 * gallery picks the change up at once, without a redeploy.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { FaceGalleryNode } from '../config-types';
import type { EnrolCommand } from '../core/flow/messages';
import { CropQuality, EnrolError, enrolCrops, EnrolOptions, enrolPerson, EnrolResult, PhotoReport } from '../core/gallery/enrol';
import { SETTINGS } from '../core/flow/settings';
import { CameraFaces, faceBus } from '../core/flow/face-bus';
import type { RgbImage } from '../core/media/image';
import { pixels } from '../core/media/pixel-store';
import { FacePipeline, mainFace } from '../core/pipeline';
import { CodedError } from '../core/common/errors';
import { configNumber, errorMessage, fail, numberSetting, showStatus } from '../kit';

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

export = function register(RED: NodeAPI): void {
  function Enrol(this: Node, config: EnrolDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const galleryNode = RED.nodes.getNode(config.gallery) as FaceGalleryNode | null;
    let defaultMinPhotos = SETTINGS.enrol.minPhotos.default;
    let defaultSeconds = SETTINGS.enrol.walkupSeconds.default;
    let configError: unknown = null;
    try {
      defaultMinPhotos = configNumber('enrol', 'minPhotos', config.minPhotos);
      defaultSeconds = configNumber('enrol', 'walkupSeconds', config.walkupSeconds);
    } catch (error) {
      configError = error;
    }
    let pipeline: Promise<FacePipeline> | null = null;
    const pipelineFor = () => {
      if (pipeline) return pipeline;
      // Enrolment photos are near faces: the short-range detector; the
      // embedder is the gallery's own, so embeddings match the classifier's.
      const opening = galleryNode!.deviceNode().embedder().then((embedder) => FacePipeline.withEmbedder(embedder, { detector: { variant: 'short' } }));
      pipeline = opening;
      // A failure is not kept: the next command tries again.
      opening.catch(() => { if (pipeline === opening) pipeline = null; });
      return opening;
    };
    const cancels = new Set<() => void>();

    if (configError) showStatus(node, 'error', (configError as Error).message);
    else if (!galleryNode) showStatus(node, 'error', RED._('enrol.errors.gallery'));
    else showStatus(node, 'ready', RED._('enrol.status.ready'));

    /** The bar of the gallery this node enrols into: its threshold and margin, and the command's choices. */
    function enrolOptions(command: { minPhotos?: unknown; mode?: unknown }): EnrolOptions {
      if (command.mode !== undefined && command.mode !== 'add' && command.mode !== 'new' && command.mode !== 'auto') {
        throw new CodedError('ERR_BAD_COMMAND', RED._('enrol.errors.mode'));
      }
      return {
        minPhotos: numberSetting('minPhotos', command.minPhotos, defaultMinPhotos, SETTINGS.enrol.minPhotos),
        mode: command.mode as EnrolOptions['mode'],
        ...galleryNode!.settings(),
      };
    }

    async function walkup(command: Extract<EnrolCommand, { action: 'walkup' }>) {
      const walkupRule = SETTINGS.enrol.walkupSeconds;
      const seconds = numberSetting('seconds', command.seconds, defaultSeconds, walkupRule);
      const maxPhotos = numberSetting('maxPhotos', command.maxPhotos, 10, { min: 1, max: 100, integer: true });
      const accepted: { source: string; crop: RgbImage; quality: CropQuality }[] = [];
      const rejected: PhotoReport[] = [];
      let frames = 0;
      let lastTaken = 0;
      showStatus(node, 'pending', RED._('enrol.status.walkup', { name: command.name, camera: command.camera, seconds }));
      await new Promise<void>((resolve) => {
        const onFaces = (event: CameraFaces) => {
          if (event.camera !== command.camera) return;
          frames++;
          const face = mainFace(event.faces, event);
          const source = `${event.camera}@${new Date(event.timestamp).toISOString()}`;
          if (!face) return void rejected.push({ source, accepted: false, faces: 0, reasons: [{ code: 'no-face', message: 'no face in frame' }] });
          if (!face.quality.ok) return void rejected.push({ source, accepted: false, faces: event.faces.length, reasons: face.quality.reasons });
          // Spread the photos over the walk-up: at most two a second.
          if (event.timestamp - lastTaken < 500 || accepted.length >= maxPhotos) return;
          lastTaken = event.timestamp;
          const crop = pixels.get(face.crop);
          accepted.push({ source, crop: { ...crop, data: crop.data.slice() }, quality: { sharpness: face.quality.sharpness, yawDeg: face.quality.yawDeg } });
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
      if (frames === 0) {
        throw new CodedError('ERR_NO_FRAMES', RED._('enrol.errors.noFrames', { camera: command.camera, seconds }));
      }
      const embedder = await galleryNode!.deviceNode().embedder();
      const result = await enrolCrops(embedder, await galleryNode!.gallery(), command.name, accepted, rejected,
        enrolOptions(command));
      return { ...summary(result), frames };
    }

    async function run(command: EnrolCommand): Promise<Record<string, unknown>> {
      if (configError) throw configError;
      if (!galleryNode) throw new Error(RED._('enrol.errors.gallery'));
      const gallery = await galleryNode.gallery();
      switch (command?.action) {
        case 'enrol': {
          const images = Array.isArray(command.images) ? command.images : [];
          if (!command.name || images.length === 0) throw new CodedError('ERR_BAD_COMMAND', RED._('enrol.errors.enrolArgs'));
          const result = await enrolPerson(await pipelineFor(), gallery, command.name, images, enrolOptions(command));
          return summary(result);
        }
        case 'walkup':
          if (!command.name || !command.camera) throw new CodedError('ERR_BAD_COMMAND', RED._('enrol.errors.walkupArgs'));
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
          return { people: gallery.listPeople().map((p) => ({ id: p.id, name: p.name, photos: p.crops.length, updatedAt: p.updatedAt })) };
        default:
          throw new CodedError('ERR_BAD_COMMAND', RED._('enrol.errors.action'));
      }
    }

    node.on('input', async (raw, send, done) => {
      const msg = raw as NodeMessageInFlow & { payload: EnrolCommand };
      const command = msg.payload;
      try {
        const result = await run(command);
        msg.payload = { action: command.action, ok: true, ...result } as never;
        showStatus(node, 'ok', RED._('enrol.status.done', { action: command.action, name: (command as { name?: string }).name ?? '' }));
        send(msg);
        done();
      } catch (error) {
        const report = error instanceof EnrolError ? summary(error.result) : {};
        const code = (error as { code?: string }).code ?? 'ERR_ENROL';
        msg.payload = { action: command?.action, ok: false, error: { code, message: (error as Error).message }, ...report } as never;
        send(msg);
        fail(node, error, done);
      }
    });

    node.on('close', (done: () => void) => {
      for (const cancel of [...cancels]) cancel();
      const closing = pipeline;
      pipeline = null;
      // The embedder belongs to the device config node: dispose only the detector.
      (closing ? closing.then((p) => p.disposeDetector(), () => undefined) : Promise.resolve()).finally(done);
    });
  }
  RED.nodes.registerType('enrol', Enrol as unknown as (this: Node, def: NodeDef) => void);
};
