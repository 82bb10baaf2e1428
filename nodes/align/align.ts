/**
 * align: a frame (from camera-in) or a photo (Buffer or file path) in; every
 * face out with its box, keypoints, aligned 112x112 crop and quality, and the
 * reasons a face would be rejected. Detection runs on the CPU (BlazeFace).
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { alignFace } from '../core/align/warp';
import { assessQuality, QualityThresholds } from '../core/align/quality';
import { CodedError } from '../core/common/errors';
import type { FaceDetector } from '../core/detect/blazeface';
import { decodeImage } from '../core/media/decode';
import { faceBus } from '../core/flow/face-bus';
import type { RgbImage } from '../core/media/image';
import type { FaceMessage, FaceRecord } from '../core/flow/messages';
import { isPixelRef, pixels } from '../core/media/pixel-store';
import { acquireDetector, DetectorSpec, releaseDetector } from '../core/flow/resources';
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
}

interface Job {
  msg: NodeMessageInFlow & FaceMessage;
  send: (msg: FaceMessage) => void;
  done: (error?: Error) => void;
}

export = function register(RED: NodeAPI): void {
  function Align(this: Node, config: AlignDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let spec: DetectorSpec, minFaceSize: number, maxFaces: number, quality: Partial<QualityThresholds>;
    try {
      spec = { variant: config.detector === 'full' ? 'full' : 'short', minScore: configNumber('align', 'minScore', config.minScore), tiles: !!config.tiles };
      minFaceSize = configNumber('align', 'minFaceSize', config.minFaceSize);
      maxFaces = configNumber('align', 'maxFaces', config.maxFaces);
      quality = {
        minSharpness: configNumber('align', 'minSharpness', config.minSharpness),
        maxAbsYawDeg: configNumber('align', 'maxYaw', config.maxYaw),
      };
    } catch (error) {
      showStatus(node, 'error', (error as Error).message);
      node.error(errorMessage(error));
      node.on('input', (_msg, _send, done) => done(error as Error));
      return;
    }

    const detectorReady: Promise<FaceDetector> = acquireDetector(spec);
    detectorReady.then(
      () => showStatus(node, 'ready', RED._('align.status.ready', { detector: spec.variant })),
      (error) => showStatus(node, 'error', errorMessage(error)));
    let lastStatus = 0;

    const worker = new LatestWins<Job>(async ({ msg, send, done }) => {
      try {
        const detector = await detectorReady;
        const started = performance.now();
        let image: RgbImage;
        if (msg.frame && isPixelRef(msg.frame)) image = pixels.get(msg.frame);
        else if (Buffer.isBuffer(msg.payload) || typeof msg.payload === 'string') image = await decodeImage(msg.payload);
        else throw new CodedError('ERR_INPUT', RED._('align.errors.input'));

        const detections = (await detector.detect(image))
          .filter((d) => Math.max(d.box.width, d.box.height) >= minFaceSize)
          .slice(0, maxFaces);
        const faces: FaceRecord[] = detections.map((d) => {
          const { crop } = alignFace(image, d.keypoints);
          const q = assessQuality(crop, d, quality);
          return {
            box: d.box,
            score: d.score,
            keypoints: d.keypoints,
            crop: pixels.put(crop, 'crop'),
            quality: {
              ok: q.ok, reasons: q.reasons, sharpness: q.sharpness, yawDeg: q.yawDeg,
              interOcularPx: q.faceSize.interOcularPx, brightness: q.brightness.mean,
            },
          };
        });
        msg.faces = faces;
        if (msg.frame) faceBus.publish({ camera: msg.frame.camera, timestamp: msg.frame.timestamp, width: image.width, height: image.height, faces });
        send(msg);
        done();
        const now = Date.now();
        if (now - lastStatus > 1000) {
          lastStatus = now;
          const ms = Math.round(performance.now() - started);
          showStatus(node, faces.length ? 'ok' : 'ready',
            RED._('align.status.faces', { count: faces.length, ms, dropped: worker.dropped }));
        }
      } catch (error) {
        fail(node, error, done);
      }
    }, (job) => !!job.msg.frame, (job) => job.done());

    node.on('input', (msg, send, done) => worker.push({ msg, send, done }));
    node.on('close', (done: () => void) => closeWhen(node, releaseDetector(spec), done));
  }
  RED.nodes.registerType('align', Align as unknown as (this: Node, def: NodeDef) => void);
};
