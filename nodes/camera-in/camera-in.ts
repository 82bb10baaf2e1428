/**
 * camera-in: a camera (RTSP, HTTP MJPEG or snapshot, a video file, V4L2)
 * decoded by ffmpeg into frames at a set rate. Frames go out as references
 * (msg.frame) to pixels in the shared store. Reconnects with backoff, restarts
 * a stalled stream, and never leaves an ffmpeg process behind. The edit
 * dialog shows the camera live with face boxes and names, behind Node-RED's
 * admin auth.
 */
import type { Request, Response } from 'express';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import sharp from '../core/media/vips';
import { CameraFrame, CameraSource, CameraStateEvent, createCameraSource } from '../core/camera/source';
import { CameraIdentities, faceBus } from '../core/flow/face-bus';
import { SceneCounter } from '../core/camera/scene';
import { isPlaceholderUrl } from '../core/camera/url';
import type { FrameRef } from '../core/flow/messages';
import { pixels } from '../core/media/pixel-store';
import { configNumber, errorMessage, showStatus } from '../kit';

interface CameraInDef extends NodeDef {
  url: string;
  transport: 'tcp' | 'udp';
  fps: string;
  maxWidth: string;
  stallSeconds: string;
}

interface CameraInNode extends Node<{ user?: string; password?: string }> {
  source?: CameraSource;
  camera: string;
  latest?: CameraFrame;
  identities?: CameraIdentities;
  /** seq of the first frame of the current scene: boxes found before it belong to another picture. */
  sceneStartSeq: number;
}

const LIVE_FPS = 5;
const LIVE_WIDTH = 640;

export = function register(RED: NodeAPI): void {
  function CameraIn(this: CameraInNode, config: CameraInDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    node.camera = (config.name || node.id).trim();
    if (isPlaceholderUrl(config.url ?? '')) {
      // An example's camera, deployed unedited: say so once instead of retrying an address that cannot answer.
      showStatus(node, 'warning', RED._('camera-in.status.editMe'));
      node.warn(RED._('camera-in.warn.editMe', { url: (config.url ?? '').trim() || '-' }));
      return;
    }
    let source: CameraSource;
    try {
      source = createCameraSource({
        url: config.url.trim(),
        user: node.credentials?.user || undefined,
        password: node.credentials?.password || undefined,
        rtspTransport: config.transport === 'udp' ? 'udp' : 'tcp',
        fps: configNumber('camera-in', 'fps', config.fps),
        maxWidth: configNumber('camera-in', 'maxWidth', config.maxWidth),
        stallSeconds: configNumber('camera-in', 'stallSeconds', config.stallSeconds),
      });
    } catch (error) {
      showStatus(node, 'error', (error as Error).message);
      node.error(errorMessage(error));
      return;
    }
    node.source = source;
    node.sceneStartSeq = 0;
    let lastStatus = 0;
    const scenes = new SceneCounter();

    source.on('state', ({ state, message }: CameraStateEvent) => {
      // Output 2: the stream's state, for Home Assistant's "stream online" entity and for flows.
      node.send([null, { topic: `${node.camera}/status`, payload: { camera: node.camera, online: state === 'online', state, message } }]);
      if (state !== 'online') scenes.restart();
      switch (state) {
        case 'online': showStatus(node, 'ok', RED._('camera-in.status.online', { fps: source.stats.fps.toFixed(1) })); break;
        case 'connecting': showStatus(node, 'pending', RED._('camera-in.status.connecting')); break;
        case 'reconnecting': showStatus(node, 'warning', RED._('camera-in.status.reconnecting', { message })); break;
        case 'error':
          showStatus(node, 'error', RED._('camera-in.status.error', { message }));
          node.warn(`${node.camera}: ${message}`); // messages are masked by the camera module
          break;
        case 'stopped': showStatus(node, 'stopped', RED._('camera-in.status.stopped')); break;
      }
    });
    source.on('log', (line: string) => node.debug(line));
    source.on('frame', (frame: CameraFrame) => {
      node.latest = frame;
      const before = scenes.scene;
      const scene = scenes.next(frame.image);
      if (scene !== before) node.sceneStartSeq = frame.seq;
      const ref = pixels.put(frame.image, 'frame');
      const message: FrameRef = { ...ref, kind: 'frame', camera: node.camera, seq: frame.seq, timestamp: frame.timestamp, scene };
      node.send([{ topic: node.camera, frame: message, payload: message }, null]);
      if (frame.timestamp - lastStatus > 2000) {
        lastStatus = frame.timestamp;
        showStatus(node, 'ok', RED._('camera-in.status.online', { fps: source.stats.fps.toFixed(1) }));
      }
    });
    const onIdentities = (event: CameraIdentities) => { if (event.camera === node.camera) node.identities = event; };
    faceBus.on('identities', onIdentities);
    showStatus(node, 'pending', RED._('camera-in.status.connecting'));
    source.start();
    // describe() names the ffmpeg too: one line, said once.
    node.log(source.ffmpeg ? source.describe() : `${source.describe()} (ffmpeg: not found)`);

    node.on('close', (done: () => void) => {
      faceBus.off('identities', onIdentities);
      node.latest = undefined;
      source.stop().finally(done);
    });
  }

  RED.nodes.registerType('camera-in', CameraIn as unknown as (this: Node, def: NodeDef) => void, {
    credentials: { user: { type: 'text' }, password: { type: 'password' } },
  });

  const liveNode = (req: Request, res: Response): CameraInNode | undefined => {
    const node = RED.nodes.getNode(String(req.params.id)) as CameraInNode | null;
    if (!node || node.type !== 'camera-in') {
      res.status(404).json({ error: 'no deployed camera-in node with that id (deploy first)' });
      return undefined;
    }
    return node;
  };

  // Live view: MJPEG of the frames the node already decodes (no second
  // connection to the camera), and the latest face boxes and names.
  RED.httpAdmin.get('/camera-in/:id/live.mjpeg', RED.auth.needsPermission('camera-in.read'), (req: Request, res: Response) => {
    const node = liveNode(req, res);
    if (!node) return;
    const boundary = 'coralface';
    res.writeHead(200, {
      'Content-Type': `multipart/x-mixed-replace; boundary=${boundary}`,
      'Cache-Control': 'no-cache, no-store',
      Connection: 'close',
    });
    let lastSeq = -1;
    let writing = false;
    const timer = setInterval(async () => {
      const frame = node.latest;
      if (!frame || frame.seq === lastSeq || writing) return;
      lastSeq = frame.seq;
      writing = true;
      try {
        const { image } = frame;
        const jpeg = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
          raw: { width: image.width, height: image.height, channels: 3 },
        }).resize({ width: Math.min(LIVE_WIDTH, image.width) }).jpeg({ quality: 70 }).toBuffer();
        res.write(`--${boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
        res.write(jpeg);
        res.write('\r\n');
      } catch {
        // a frame that fails to encode is skipped
      } finally {
        writing = false;
      }
    }, 1000 / LIVE_FPS);
    const stop = () => clearInterval(timer);
    req.on('close', stop);
    node.once('close', () => { stop(); res.end(); });
  });

  RED.httpAdmin.get('/camera-in/:id/faces', RED.auth.needsPermission('camera-in.read'), (req: Request, res: Response) => {
    const node = liveNode(req, res);
    if (!node) return;
    const frame = node.latest;
    // Boxes from the last 2 s, and never from before a cut: they would sit on another picture.
    const ids = node.identities;
    const recent = ids && Date.now() - ids.timestamp < 2000 && (ids.seq === undefined || ids.seq >= node.sceneStartSeq) ? ids.faces : [];
    res.json({
      width: frame?.image.width ?? 0,
      height: frame?.image.height ?? 0,
      state: node.source?.state ?? 'stopped',
      stats: node.source?.stats ?? null,
      faces: recent.map((f) => ({ box: f.box, name: f.name })),
    });
  });
};
