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
import { isPixelRef, pixels } from '../core/media/pixel-store';
import { publishVisit, type VisitEvidence } from '../core/library/observe';
import { UNKNOWN } from '../core/identify/imprint';
import type { Recognizer } from '../core/identify/recognizer';
import { TrackedFace, VisitEvent, VisitTracker } from '../core/identify/visits';
import { CodedError } from '../core/common/errors';
import { RepeatedWarning } from '../core/common/repeated-warning';
import { BadFacesError, embeddingProblem, faceProblem, type FaceProblem } from '../core/flow/face-checks';
import { TrackerRegistry } from '../core/identify/tracker-registry';
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
    let configError: Error | null = null;
    try {
      if (!galleryNode) throw new ConfigError(RED._('imprint-classify.errors.gallery'));
      trackerOptions = {
        confirmFrames: configNumber('imprint-classify', 'confirmFrames', config.confirmFrames),
        unknownFrames: configNumber('imprint-classify', 'unknownFrames', config.unknownFrames),
        cooldownMs: configNumber('imprint-classify', 'cooldown', config.cooldown) * 1000,
        maxMissedMs: configNumber('imprint-classify', 'maxMissed', config.maxMissed) * 1000,
      };
    } catch (error) {
      configError = error instanceof Error ? error : new Error(String(error));
      trackerOptions = { confirmFrames: 0, unknownFrames: 0, cooldownMs: 0, maxMissedMs: 0 };
    }
    const onReload = (people: string[]) =>
      showStatus(node, 'ready', RED._('imprint-classify.status.people', { count: people.length }));
    // Asked for every message, not kept: the gallery node retries a failed open (a damaged or missing gallery,
    // a full disk), so recognition comes back once the cause is fixed.
    let listening: Recognizer | null = null;
    const recognizer = async (): Promise<Recognizer> => {
      if (configError) throw configError;
      const current = await galleryNode!.recognizer();
      if (listening !== current) {
        listening?.off('reload', onReload);
        current.on('reload', onReload);
        listening = current;
        onReload(current.people());
      }
      return current;
    };
    recognizer().catch((error) => showStatus(node, 'error', errorMessage(error)));
    /** The embedder id of the last message's embeddings. */
    let latestEmbedderId: string | undefined;

    // One tracker per camera, bounded and dropped when idle (see tracker-registry.ts).
    const trackers = new TrackerRegistry<VisitEvent<VisitEvidence>, VisitTracker<VisitEvidence>>(
      // A track's mean embedding is named against the gallery as it is at each frame (the recognizer of the moment).
      // On a pair whose Edge TPU and CPU sides run different models, it is named with the head of the model
      // that made the latest frame's embeddings (a track across a fallback averages the two models' embeddings
      // of the same face, whose cosine is about 0.99), or the current one when that head is gone.
      (camera) =>
        new VisitTracker<VisitEvidence>({
          camera,
          identify: (embedding) =>
            listening!.identify(
              embedding,
              latestEmbedderId !== undefined && listening!.loadedIds().includes(latestEmbedderId)
                ? latestEmbedderId
                : undefined,
            ),
          ...trackerOptions,
        }),
    );
    const boundWarning = new RepeatedWarning(60_000);
    const trackerFor = (camera: string): VisitTracker<VisitEvidence> | undefined => {
      const tracker = trackers.get(camera, Date.now());
      if (tracker) return tracker;
      // Every tracker holds an open visit: this camera's faces are named, not tracked.
      const warning = boundWarning.next('bound', Date.now());
      if (warning) {
        const repeats = warning.repeats
          ? ` (${RED._('imprint-classify.warn.repeats', { count: warning.repeats })})`
          : '';
        node.warn(RED._('imprint-classify.warn.tooManyCameras', { max: trackers.maxTrackers, camera }) + repeats);
        showStatus(node, 'warning', RED._('imprint-classify.status.tooManyCameras', { max: trackers.maxTrackers }));
      }
      return undefined;
    };

    const emit = async (camera: string, events: VisitEvent<VisitEvidence>[]) => {
      // The recognizer that made the decisions (events only come after a message was classified).
      const r = listening;
      for (const event of events) {
        // A person marked ignored in the face library is recognised but reported as 'ignored'.
        const type = event.type === 'recognized' && r?.isIgnoredName(event.name) ? 'ignored' : event.type;
        const payload: VisitPayload = {
          event: type,
          name: event.name ?? UNKNOWN,
          camera,
          trackId: event.trackId,
          time: new Date().toISOString(),
        };
        const out: FaceMessage = { topic: `${camera}/${type}`, payload };
        if (event.type === 'left') {
          payload.durationMs = event.duration;
          if (event.revisedTo !== undefined) payload.revisedTo = event.revisedTo;
        } else {
          if (event.revises !== undefined) payload.revises = event.revises;
          payload.cosine = Math.round(event.cosine * 10000) / 10000;
          payload.confidence = Math.round(event.confidence * 10000) / 10000;
          payload.box = event.box;
          // The face as a JPEG: Home Assistant's image entity, a notification.
          const ref = event.crop?.ref;
          if (ref && isPixelRef(ref) && pixels.has(ref)) out.image = await encodeJpeg(pixels.get(ref));
          if (r) publishVisit(galleryNode!.directory, camera, type as 'recognized' | 'unknown' | 'ignored', event, r);
          showStatus(
            node,
            type === 'recognized' ? 'ok' : 'notice',
            RED._(`imprint-classify.status.${type}`, { name: payload.name, camera }),
          );
        }
        node.send([out, null]);
      }
    };

    const ticker = setInterval(() => {
      for (const { key, events } of trackers.tick(Date.now()))
        void emit(key, events).catch((e) => node.error(errorMessage(e)));
    }, 250);

    // Node-RED does not await a handler: the promise is dropped on purpose, every failure goes to done().
    node.on(
      'input',
      (raw, send, done) =>
        void (async () => {
          const msg = raw as NodeMessageInFlow & FaceMessage;
          try {
            const r = await recognizer();
            // The embeddings' own model: on a pair whose Edge TPU and CPU sides differ it changes at a
            // fallback, and the recognizer loads the head of that model (from the gallery's cache for it).
            const embedderId = msg.embedder?.id;
            if (embedderId !== undefined && !(await r.ready(embedderId))) {
              throw new CodedError(
                'ERR_EMBEDDER_MISMATCH',
                RED._('imprint-classify.errors.embedder', { got: embedderId, want: r.embedder.id }),
              );
            }
            latestEmbedderId = embedderId;
            if (!Array.isArray(msg.faces)) throw new CodedError('ERR_INPUT', RED._('imprint-classify.errors.input'));
            // Faces that cannot be tracked (not objects, no box) are left out; a face whose embedding is
            // unusable (NaN, wrong length) is tracked as seen but not named. Both are reported below.
            const problems: FaceProblem[] = [];
            const faces: FaceRecord[] = [];
            (msg.faces as unknown[]).forEach((face, index) => {
              const invalid = faceProblem(face, index);
              if (invalid) return void problems.push(invalid);
              const record = face as FaceRecord;
              const bad =
                record.embedding === undefined ? null : embeddingProblem(record.embedding, index, r.embedder.dimension);
              if (bad) {
                problems.push(bad);
                record.error = { code: bad.code, message: bad.message };
              }
              faces.push(record);
            });
            // The tracker keeps, per frame, what the face library stores of a visit: crop, embedding, identification.
            const tracked: TrackedFace<VisitEvidence>[] = faces.map((face) => {
              if (!face.embedding || face.error) return { box: face.box, embedding: null, crop: { ref: face.crop } };
              const embedding = Float32Array.from(face.embedding);
              const id = r.identify(embedding, embedderId);
              face.identity = {
                name: id.name,
                known: id.known,
                cosine: id.cosine,
                confidence: id.confidence,
                unknownReason: id.unknownReason,
              };
              return {
                box: face.box,
                embedding,
                crop: { ref: face.crop, embedding: face.embedding, identification: id, quality: face.quality },
              };
            });
            const camera =
              typeof msg.frame?.camera === 'string'
                ? msg.frame.camera
                : typeof msg.topic === 'string' && msg.topic
                  ? msg.topic
                  : 'default';
            const timestamp =
              typeof msg.frame?.timestamp === 'number' && Number.isFinite(msg.frame.timestamp)
                ? msg.frame.timestamp
                : Date.now();
            faceBus.publishIdentities({
              camera,
              timestamp,
              seq: msg.frame?.seq,
              faces: faces.map((f) => ({ box: f.box, name: f.identity?.name ?? null })),
            });
            const tracker = trackerFor(camera);
            if (tracker) await emit(camera, tracker.update(timestamp, tracked, msg.frame?.scene));
            if (config.perFrame) send([null, msg]);
            if (problems.length) return fail(node, new BadFacesError(problems, msg.faces.length), done);
            done();
          } catch (error) {
            fail(node, error, done);
          }
        })(),
    );

    node.on('close', () => {
      clearInterval(ticker);
      listening?.off('reload', onReload);
    });
  }
  RED.nodes.registerType('imprint-classify', ImprintClassify as unknown as (this: Node, def: NodeDef) => void);
};
