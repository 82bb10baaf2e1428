/**
 * align: a frame (from camera-in) or a photo (Buffer or file path) in; every
 * face out with its box, keypoints, aligned 112x112 crop and quality, and the
 * reasons a face would be rejected. Detection runs on the CPU (BlazeFace).
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { alignFace } from '../core/align/warp';
import { FirstFrames } from '../core/align/first-frames';
import type { FaceLandmarker } from '../core/align/landmarks';
import { assessQuality, QualityThresholds } from '../core/align/quality';
import { CodedError } from '../core/common/errors';
import type { Detection, FaceDetector } from '../core/detect/blazeface';
import { decodeImage } from '../core/media/decode';
import { faceBus } from '../core/flow/face-bus';
import type { RgbImage } from '../core/media/image';
import type { FaceMessage, FaceRecord } from '../core/flow/messages';
import { isPixelRef, pixels } from '../core/media/pixel-store';
import {
  acquireDetector,
  acquireLandmarker,
  DetectorSpec,
  releaseDetector,
  releaseLandmarker,
} from '../core/flow/resources';
import { LatestWins } from '../core/flow/latest-wins';
import { closeWhen, configNumber, errorMessage, fail, showStatus } from '../kit';

interface AlignDef extends NodeDef {
  detector: 'short' | 'full';
  minFaceSize: string;
  minScore: string;
  maxFaces: string;
  tiles: boolean;
  minSharpness: string;
  maxYaw: string;
  carefulFrames: string;
}

interface Job {
  msg: NodeMessageInFlow & FaceMessage;
  send: (msg: FaceMessage) => void;
  done: (error?: Error) => void;
}

/** What a wrong msg.payload is, for the error. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Buffer.isBuffer(value)) return 'an empty Buffer';
  if (typeof value === 'string') return 'an empty string';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'a Uint8Array (use a Buffer)';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export = function register(RED: NodeAPI): void {
  function Align(this: Node, config: AlignDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let spec: DetectorSpec, minFaceSize: number, maxFaces: number, quality: Partial<QualityThresholds>;
    let firstFrames: FirstFrames;
    try {
      spec = {
        variant: config.detector === 'full' ? 'full' : 'short',
        minScore: configNumber('align', 'minScore', config.minScore),
        tiles: !!config.tiles,
      };
      minFaceSize = configNumber('align', 'minFaceSize', config.minFaceSize);
      maxFaces = configNumber('align', 'maxFaces', config.maxFaces);
      quality = {
        minSharpness: configNumber('align', 'minSharpness', config.minSharpness),
        maxAbsYawDeg: configNumber('align', 'maxYaw', config.maxYaw),
      };
      firstFrames = new FirstFrames({ frames: configNumber('align', 'carefulFrames', config.carefulFrames) });
    } catch (error) {
      showStatus(node, 'error', (error as Error).message);
      node.error(errorMessage(error));
      node.on('input', (_msg, _send, done) => done(error as Error));
      return;
    }

    const detectorReady: Promise<FaceDetector> = acquireDetector(spec);
    // The face mesh model, opened on the first face that needs it (never, with Careful frames 0).
    let landmarker: Promise<FaceLandmarker> | null = null;
    let meshWarned = false;
    const alignCarefully = async (image: RgbImage, d: Detection): Promise<{ crop: RgbImage; onMesh: boolean }> => {
      try {
        return await (await (landmarker ??= acquireLandmarker())).align(image, d);
      } catch (error) {
        // Without the mesh model the face still gets the mirror image; BlazeFace's keypoints align it.
        if (!meshWarned) node.warn(RED._('align.errors.mesh', { error: errorMessage(error) }));
        meshWarned = true;
        return { crop: alignFace(image, d.keypoints).crop, onMesh: false };
      }
    };
    detectorReady.then(
      () => showStatus(node, 'ready', RED._('align.status.ready', { detector: spec.variant })),
      (error) => showStatus(node, 'error', errorMessage(error)),
    );
    let lastStatus = 0;

    const worker = new LatestWins<Job>(
      async ({ msg, send, done }) => {
        try {
          const detector = await detectorReady;
          const started = performance.now();
          let image: RgbImage;
          if (msg.frame)
            image = pixels.get(msg.frame); // checked on input; throws ERR_PIXELS_EXPIRED when evicted since
          else image = await decodeImage(msg.payload as Buffer | string);

          const detections = (await detector.detect(image))
            .filter((d) => Math.max(d.box.width, d.box.height) >= minFaceSize)
            .slice(0, maxFaces);
          // A photo is one decision on one frame; in a stream, a face's first frames decide its visit.
          const careful =
            firstFrames.frames === 0
              ? detections.map(() => false)
              : msg.frame
                ? firstFrames.choose(
                    msg.frame.camera,
                    msg.frame.timestamp,
                    msg.frame.scene,
                    detections.map((d) => d.box),
                  )
                : detections.map(() => true);
          const faces: FaceRecord[] = [];
          for (const [i, d] of detections.entries()) {
            const { crop, onMesh } = careful[i]
              ? await alignCarefully(image, d)
              : { crop: alignFace(image, d.keypoints).crop, onMesh: false };
            const q = assessQuality(crop, d, quality);
            faces.push({
              box: d.box,
              score: d.score,
              keypoints: d.keypoints,
              crop: pixels.put(crop, 'crop'),
              quality: {
                ok: q.ok,
                reasons: q.reasons,
                sharpness: q.sharpness,
                yawDeg: q.yawDeg,
                interOcularPx: q.faceSize.interOcularPx,
                brightness: q.brightness.mean,
              },
              careful: careful[i],
              alignedOn: onMesh ? 'mesh' : 'keypoints',
            });
          }
          msg.faces = faces;
          if (msg.frame)
            faceBus.publish({
              camera: msg.frame.camera,
              timestamp: msg.frame.timestamp,
              width: image.width,
              height: image.height,
              faces,
            });
          send(msg);
          done();
          const now = Date.now();
          if (now - lastStatus > 1000) {
            lastStatus = now;
            const ms = Math.round(performance.now() - started);
            // Photos refused since the start stay in view: frames drop by design, photos should not be lost unseen.
            showStatus(
              node,
              faces.length ? 'ok' : 'ready',
              RED._(worker.refused ? 'align.status.facesRefused' : 'align.status.faces', {
                count: faces.length,
                ms,
                dropped: worker.dropped,
                refused: worker.refused,
              }),
            );
          }
        } catch (error) {
          fail(node, error, done);
        }
      },
      (job) => !!job.msg.frame,
      (job) => job.done(),
    );

    node.on('input', (raw, send, done) => {
      const msg = raw as Job['msg'];
      // Checked before queueing, so a message that cannot be read fails at once, not after a queue.
      const problem = inputProblem(msg);
      if (problem) return fail(node, new CodedError('ERR_INPUT', problem), done);
      // A full queue refuses the photo with an error rather than dropping it unseen.
      if (!worker.push({ msg, send, done })) {
        showStatus(node, 'error', RED._('align.status.refused', { count: worker.refused }));
        done(new CodedError('ERR_QUEUE_FULL', RED._('align.errors.queueFull', { max: worker.maxQueue })));
      }
    });
    const inputProblem = (msg: Job['msg']): string | null => {
      if (msg.frame !== undefined && msg.frame !== null) {
        return isPixelRef(msg.frame) ? null : RED._('align.errors.frame');
      }
      const payload = msg.payload;
      if (Buffer.isBuffer(payload) ? payload.length > 0 : typeof payload === 'string' && payload.trim() !== '')
        return null;
      return RED._('align.errors.input', { got: describeValue(payload) });
    };
    // Release only what was acquired: after a failed open the pool has no entry of ours, and a release
    // would take away another node's (opened since) instead.
    const releaseOurs = (acquired: Promise<unknown> | null, release: () => Promise<void>) =>
      acquired?.then(release, () => undefined);
    node.on('close', (done: () => void) =>
      closeWhen(
        node,
        Promise.all([
          releaseOurs(detectorReady, () => releaseDetector(spec)),
          releaseOurs(landmarker, releaseLandmarker),
        ]),
        done,
      ),
    );
  }
  RED.nodes.registerType('align', Align as unknown as (this: Node, def: NodeDef) => void);
};
