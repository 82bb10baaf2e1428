/**
 * imprint-classify: embeddings in; a name (or "unknown") per face, and per
 * camera the visit decisions automations hang on: one `recognized` when a
 * person's track is confirmed over several frames, one `unknown` for a
 * confirmed stranger, `left` when the visit ends (output 1). Every frame's
 * identities optionally go to output 2.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { FaceGalleryNode } from '../config-types';
import { encodeJpeg } from '../core/media/decode';
import { faceBus } from '../core/flow/face-bus';
import type { FaceMessage, FaceRecord, VisitPayload } from '../core/flow/messages';
import { isPixelRef, pixels } from '../core/media/pixel-store';
import { publishVisit, type VisitEvidence } from '../core/library/observe';
import { UNKNOWN } from '../core/identify/imprint';
import type { Recognizer } from '../core/identify/recognizer';
import { TrackedFace, VisitEvent, VisitTracker } from '../core/identify/visits';
import { CodedError } from '../core/common/errors';
import { ConfigError, configNumber, errorMessage, fail, showStatus } from '../kit';

interface ClassifyDef extends NodeDef {
  gallery: string;
  confirmFrames: string;
  unknownFrames: string;
  cooldown: string;
  maxMissed: string;
  perFrame: boolean;
}

export = function register(RED: NodeAPI): void {
  function ImprintClassify(this: Node, config: ClassifyDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const galleryNode = RED.nodes.getNode(config.gallery) as FaceGalleryNode | null;
    let trackerOptions: { confirmFrames: number; unknownFrames: number; cooldownMs: number; maxMissedMs: number };
    let recognizer: Promise<Recognizer>;
    try {
      if (!galleryNode) throw new ConfigError(RED._('imprint-classify.errors.gallery'));
      trackerOptions = {
        confirmFrames: configNumber('imprint-classify', 'confirmFrames', config.confirmFrames),
        unknownFrames: configNumber('imprint-classify', 'unknownFrames', config.unknownFrames),
        cooldownMs: configNumber('imprint-classify', 'cooldown', config.cooldown) * 1000,
        maxMissedMs: configNumber('imprint-classify', 'maxMissed', config.maxMissed) * 1000,
      };
      recognizer = galleryNode.recognizer();
    } catch (error) {
      recognizer = Promise.reject(error);
      trackerOptions = { confirmFrames: 0, unknownFrames: 0, cooldownMs: 0, maxMissedMs: 0 };
    }
    recognizer.then(
      (r) => showStatus(node, 'ready', RED._('imprint-classify.status.people', { count: r.people().length })),
      (error) => showStatus(node, 'error', errorMessage(error)));
    const onReload = (people: string[]) => showStatus(node, 'ready', RED._('imprint-classify.status.people', { count: people.length }));
    recognizer.then((r) => r.on('reload', onReload), () => undefined);

    const trackers = new Map<string, VisitTracker<VisitEvidence>>();
    const trackerFor = (camera: string) => {
      let tracker = trackers.get(camera);
      if (!tracker) {
        tracker = new VisitTracker<VisitEvidence>({
          camera,
          ...trackerOptions,
        });
        trackers.set(camera, tracker);
      }
      return tracker;
    };

    const emit = async (camera: string, events: VisitEvent<VisitEvidence>[]) => {
      const r = await recognizer;
      for (const event of events) {
        // A person marked ignored in the face library is recognised but reported as 'ignored'.
        const type = event.type === 'recognized' && r.isIgnoredName(event.name) ? 'ignored' : event.type;
        const payload: VisitPayload = {
          event: type, name: event.name ?? UNKNOWN, camera, trackId: event.trackId, time: new Date().toISOString(),
        };
        const out: FaceMessage = { topic: `${camera}/${type}`, payload };
        if (event.type === 'left') {
          payload.durationMs = event.duration;
        } else {
          payload.cosine = Math.round(event.cosine * 10000) / 10000;
          payload.confidence = Math.round(event.confidence * 10000) / 10000;
          payload.box = event.box;
          // The face as a JPEG: Home Assistant's image entity, a notification.
          const ref = event.crop?.ref;
          if (ref && isPixelRef(ref) && pixels.has(ref)) out.image = await encodeJpeg(pixels.get(ref));
          publishVisit(galleryNode!.directory, camera, type as 'recognized' | 'unknown' | 'ignored', event, r);
          showStatus(node, type === 'recognized' ? 'ok' : 'notice', RED._(`imprint-classify.status.${type}`, { name: payload.name, camera }));
        }
        node.send([out, null]);
      }
    };

    const ticker = setInterval(() => {
      for (const [camera, tracker] of trackers) void emit(camera, tracker.tick(Date.now())).catch((e) => node.error(errorMessage(e)));
    }, 250);

    node.on('input', async (raw, send, done) => {
      const msg = raw as NodeMessageInFlow & FaceMessage;
      try {
        const r = await recognizer;
        if (msg.embedder && msg.embedder.id !== r.embedder.id) {
          throw new CodedError('ERR_EMBEDDER_MISMATCH', RED._('imprint-classify.errors.embedder', { got: msg.embedder.id, want: r.embedder.id }));
        }
        const faces: FaceRecord[] = Array.isArray(msg.faces) ? msg.faces : [];
        const tracked: TrackedFace<VisitEvidence>[] = faces.map((face) => {
          if (!face.embedding) return { box: face.box, identity: null, crop: { ref: face.crop } };
          const id = r.identify(Float32Array.from(face.embedding));
          face.identity = { name: id.name, known: id.known, cosine: id.cosine, confidence: id.confidence, unknownReason: id.unknownReason };
          return { box: face.box, identity: { name: id.name, known: id.known, cosine: id.cosine, confidence: id.confidence },
            crop: { ref: face.crop, embedding: face.embedding, identification: id, quality: face.quality } };
        });
        const camera = msg.frame?.camera ?? (typeof msg.topic === 'string' && msg.topic ? msg.topic : 'default');
        faceBus.publishIdentities({ camera, timestamp: Date.now(), faces: faces.map((f) => ({ box: f.box, name: f.identity?.name ?? null })) });
        const timestamp = msg.frame?.timestamp ?? Date.now();
        await emit(camera, trackerFor(camera).update(timestamp, tracked));
        if (config.perFrame) send([null, msg]);
        done();
      } catch (error) {
        fail(node, error, done);
      }
    });

    node.on('close', () => {
      clearInterval(ticker);
      recognizer.then((r) => r.off('reload', onReload), () => undefined);
    });
  }
  RED.nodes.registerType('imprint-classify', ImprintClassify as unknown as (this: Node, def: NodeDef) => void);
};
