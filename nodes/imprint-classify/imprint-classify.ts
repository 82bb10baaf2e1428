/**
 * imprint-classify: embeddings in; a name (or "unknown") per face, and per
 * camera the visit decisions automations hang on (output 1): one `recognized`
 * when a person's track is decided, one `unknown` for a stranger, `left` when
 * the visit ends, and a correction (`left` with `revisedTo`, then the new
 * decision with `revises`) when a track's mean embedding later says otherwise
 * (rules: nodes/core/identify/visits.ts). Every frame's identities optionally
 * go to output 2.
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { FaceGalleryNode } from '../config-types';
import { encodeJpeg } from '../core/media/decode';
import { faceBus } from '../core/flow/face-bus';
import type { FaceMessage, FaceRecord, VisitPayload } from '../core/flow/messages';
import { isPixelRef, PixelRef, pixels } from '../core/media/pixel-store';
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

    const trackers = new Map<string, VisitTracker<PixelRef>>();
    const trackerFor = (camera: string, r: Recognizer) => {
      let tracker = trackers.get(camera);
      if (!tracker) {
        tracker = new VisitTracker<PixelRef>({
          camera,
          // A track's mean embedding is named against the gallery as it is at each frame.
          identify: (embedding) => r.identify(embedding),
          ...trackerOptions,
        });
        trackers.set(camera, tracker);
      }
      return tracker;
    };

    const emit = async (camera: string, events: VisitEvent<PixelRef>[]) => {
      for (const event of events) {
        const payload: VisitPayload = {
          event: event.type, name: event.name ?? UNKNOWN, camera, trackId: event.trackId, time: new Date().toISOString(),
        };
        const out: FaceMessage = { topic: `${camera}/${event.type}`, payload };
        if (event.type === 'left') {
          payload.durationMs = event.duration;
          if (event.revisedTo !== undefined) payload.revisedTo = event.revisedTo;
        } else {
          if (event.revises !== undefined) payload.revises = event.revises;
          payload.cosine = Math.round(event.cosine * 10000) / 10000;
          payload.confidence = Math.round(event.confidence * 10000) / 10000;
          payload.box = event.box;
          // The face as a JPEG: Home Assistant's image entity, a notification.
          if (event.crop && isPixelRef(event.crop) && pixels.has(event.crop)) out.image = await encodeJpeg(pixels.get(event.crop));
          showStatus(node, event.type === 'recognized' ? 'ok' : 'notice', RED._(`imprint-classify.status.${event.type}`, { name: payload.name, camera }));
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
        const tracked: TrackedFace<PixelRef>[] = faces.map((face) => {
          if (!face.embedding) return { box: face.box, embedding: null, crop: face.crop };
          const embedding = Float32Array.from(face.embedding);
          const id = r.identify(embedding);
          face.identity = { name: id.name, known: id.known, cosine: id.cosine, confidence: id.confidence, unknownReason: id.unknownReason };
          return { box: face.box, embedding, crop: face.crop };
        });
        const camera = msg.frame?.camera ?? (typeof msg.topic === 'string' && msg.topic ? msg.topic : 'default');
        const timestamp = msg.frame?.timestamp ?? Date.now();
        faceBus.publishIdentities({ camera, timestamp, seq: msg.frame?.seq, faces: faces.map((f) => ({ box: f.box, name: f.identity?.name ?? null })) });
        await emit(camera, trackerFor(camera, r).update(timestamp, tracked, msg.frame?.scene));
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
