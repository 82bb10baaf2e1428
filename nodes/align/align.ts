/**
 * align: a frame (from camera-in) or a photo (Buffer or file path) in; every
 * face out with its box, keypoints, aligned 112x112 crop and quality, and the
 * reasons a face would be rejected. Detection runs on the CPU (BlazeFace).
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { alignFace, assessQuality, QualityThresholds } from '../core/align';
import type { FaceDetector } from '../core/blazeface';
import { decodeImage } from '../core/decode';
import { faceBus } from '../core/face-bus';
import type { RgbImage } from '../core/image';
import type { FaceMessage, FaceRecord } from '../core/messages';
import { isPixelRef, pixels } from '../core/pixel-store';
import { acquireDetector, DetectorSpec, releaseDetector } from '../core/resources';
import { errorMessage, LatestWins, setStatus } from '../shared';

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
    const num = (v: string, fallback: number) => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : fallback);
    const spec: DetectorSpec = { variant: config.detector === 'full' ? 'full' : 'short', minScore: num(config.minScore, 0.5), tiles: !!config.tiles };
    const minFaceSize = num(config.minFaceSize, 0);
    const maxFaces = num(config.maxFaces, 10);
    const quality: Partial<QualityThresholds> = {};
    if (config.minSharpness !== undefined && config.minSharpness !== '') quality.minSharpness = num(config.minSharpness, 40);
    if (config.maxYaw !== undefined && config.maxYaw !== '') quality.maxAbsYawDeg = num(config.maxYaw, 50);

    const detectorReady: Promise<FaceDetector> = acquireDetector(spec);
    detectorReady.then(
      () => setStatus(node, 'grey', RED._('align.status.ready', { detector: spec.variant })),
      (error) => setStatus(node, 'red', errorMessage(error)));
    let lastStatus = 0;

    const worker = new LatestWins<Job>(async ({ msg, send, done }) => {
      try {
        const detector = await detectorReady;
        const started = performance.now();
        let image: RgbImage;
        if (msg.frame && isPixelRef(msg.frame)) image = pixels.get(msg.frame);
        else if (Buffer.isBuffer(msg.payload) || typeof msg.payload === 'string') image = await decodeImage(msg.payload);
        else throw Object.assign(new Error(RED._('align.errors.input')), { code: 'ERR_INPUT' });

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
          setStatus(node, faces.length ? 'green' : 'grey',
            RED._('align.status.faces', { count: faces.length, ms, dropped: worker.dropped }));
        }
      } catch (error) {
        setStatus(node, 'red', errorMessage(error));
        done(error as Error);
      }
    }, (job) => !!job.msg.frame, (job) => job.done());

    node.on('input', (msg, send, done) => worker.push({ msg: msg as Job['msg'], send, done }));
    node.on('close', (done: () => void) => { releaseDetector(spec).finally(done); });
  }
  RED.nodes.registerType('align', Align as unknown as (this: Node, def: NodeDef) => void);
};
