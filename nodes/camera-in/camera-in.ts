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
import * as fs from 'fs';
import { LiveView } from '../core/camera/live-view';
import { expandUrlPlaceholders, findUrlSecrets, usesCredentialPlaceholders } from '../core/camera/url-secrets';
import { RepeatedWarning } from '../core/common/repeated-warning';
import { CameraFrame, CameraSource, CameraStateEvent, createCameraSource } from '../core/camera/source';
import { CameraIdentities, faceBus } from '../core/flow/face-bus';
import { SceneCounter } from '../core/camera/scene';
import { isPlaceholderUrl } from '../core/camera/url';
import type { FrameRef } from '../core/flow/messages';
import { pixels } from '../core/media/pixel-store';
import { closeWhen, configNumber, errorMessage, showStatus } from '../kit';

/** A camera failing the same way again is logged at most this often. */
const FAILURE_LOG_INTERVAL_MS = 10 * 60_000;

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
  /** The edit dialog's live view of this camera (one per node, whatever the number of viewers). */
  live?: LiveView;
  /** seq of the first frame of the current scene: boxes found before it belong to another picture. */
  sceneStartSeq: number;
}

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
    // Passwords must not sit in the URL: node properties are saved in plain text in flows.json.
    const url = cameraUrl(node, config.url.trim());
    if (!url) return;
    let source: CameraSource;
    try {
      source = createCameraSource({
        url: url.url,
        user: url.user,
        password: url.password,
        secrets: url.secrets,
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
    node.live = new LiveView(() => node.latest);
    node.sceneStartSeq = 0;
    let lastStatus = 0;
    const scenes = new SceneCounter();

    // A camera that keeps failing the same way (a wrong password) is logged once, then every 10 minutes.
    const failureLog = new RepeatedWarning(FAILURE_LOG_INTERVAL_MS);
    let failing = false;
    source.on('state', ({ state, message, cause, failures, auth, retryMs }: CameraStateEvent) => {
      // Output 2: the stream's state, for Home Assistant's "stream online" entity and for flows.
      node.send([
        null,
        {
          topic: `${node.camera}/status`,
          payload: { camera: node.camera, online: state === 'online', state, message },
        },
      ]);
      if (state !== 'online') scenes.restart();
      switch (state) {
        case 'online':
          if (failing) node.log(RED._('camera-in.log.recovered', { camera: node.camera }));
          failing = false;
          failureLog.reset();
          showStatus(node, 'ok', RED._('camera-in.status.online', { fps: source.stats.fps.toFixed(1) }));
          break;
        case 'connecting':
          // A retry after an error keeps the error in view: it still holds until a frame comes.
          if (!failing) showStatus(node, 'pending', RED._('camera-in.status.connecting'));
          break;
        case 'reconnecting':
          showStatus(node, 'warning', RED._('camera-in.status.reconnecting', { message }));
          break;
        case 'error': {
          failing = true;
          const seconds = Math.round((retryMs ?? 0) / 1000);
          showStatus(
            node,
            'error',
            auth && cause === 'wrong user or password'
              ? RED._('camera-in.status.wrongPassword', { seconds })
              : RED._('camera-in.status.error', { message }),
          );
          const logged = failureLog.next(cause || message, Date.now());
          if (logged) {
            // messages are masked by the camera module
            const repeats = logged.repeats
              ? ` ${RED._('camera-in.log.repeats', { count: logged.repeats, failures })}`
              : '';
            node.warn(`${node.camera}: ${message}${repeats}`);
          }
          break;
        }
        case 'stopped':
          showStatus(node, 'stopped', RED._('camera-in.status.stopped'));
          break;
      }
    });
    source.on('log', (line: string) => node.debug(line));
    source.on('frame', (frame: CameraFrame) => {
      node.latest = frame;
      const before = scenes.scene;
      const scene = scenes.next(frame.image);
      if (scene !== before) node.sceneStartSeq = frame.seq;
      const ref = pixels.put(frame.image, 'frame');
      const message: FrameRef = {
        ...ref,
        kind: 'frame',
        camera: node.camera,
        seq: frame.seq,
        timestamp: frame.timestamp,
        scene,
      };
      node.send([{ topic: node.camera, frame: message, payload: message }, null]);
      if (frame.timestamp - lastStatus > 2000) {
        lastStatus = frame.timestamp;
        showStatus(node, 'ok', RED._('camera-in.status.online', { fps: source.stats.fps.toFixed(1) }));
      }
    });
    const onIdentities = (event: CameraIdentities) => {
      if (event.camera === node.camera) node.identities = event;
    };
    faceBus.on('identities', onIdentities);
    showStatus(node, 'pending', RED._('camera-in.status.connecting'));
    source.start();
    // describe() names the ffmpeg too: one line, said once.
    node.log(
      source.ffmpeg
        ? source.describe()
        : RED._('camera-in.log.started', { source: source.describe(), ffmpeg: RED._('camera-in.log.noFfmpeg') }),
    );

    node.on('close', (done: () => void) => {
      faceBus.off('identities', onIdentities);
      node.live?.close();
      node.latest = undefined;
      closeWhen(node, source.stop(), done);
    });
  }

  /**
   * The URL ffmpeg gets, with placeholders filled in and the credentials to add as user:password@,
   * or undefined (after saying why in the status and the log) when the URL cannot be used.
   */
  function cameraUrl(
    node: CameraInNode,
    raw: string,
  ): { url: string; user?: string; password?: string; secrets: string[] } | undefined {
    const credentials = node.credentials ?? {};
    // A URL that is, whole, the value of an environment variable (Node-RED's `${CAM_URL}` form) is not in flows.json.
    const fromEnvironment = Object.values(process.env).includes(raw);
    const written = fromEnvironment ? [] : findUrlSecrets(raw);
    if (written.length) {
      showStatus(node, 'error', RED._('camera-in.status.urlSecret'));
      node.error(
        RED._('camera-in.errors.urlSecret', {
          names: written.map((w) => (w.where === 'userinfo' ? 'user:password@' : `${w.name}=`)).join(', '),
        }),
      );
      return undefined;
    }
    // Node-RED's own lookup of ${NAME} (flow, global and environment variables); RED.util's typings lack it.
    const { getSetting } = RED.util as unknown as { getSetting: (this: void, node: Node, name: string) => unknown };
    const expanded = expandUrlPlaceholders(raw, (name) => {
      if (name === 'user') return credentials.user || undefined;
      if (name === 'password') return credentials.password || undefined;
      const value = getSetting(node, name);
      if (typeof value === 'string') return value;
      return typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
    });
    if (expanded.missing.length) {
      showStatus(node, 'error', RED._('camera-in.status.placeholder', { name: expanded.missing[0] }));
      node.error(RED._('camera-in.errors.placeholder', { names: expanded.missing.map((n) => `\${${n}}`).join(', ') }));
      return undefined;
    }
    // The URL says itself where the credentials go: do not add them as user:password@ too.
    const placed = usesCredentialPlaceholders(raw);
    return {
      url: expanded.url,
      user: placed ? undefined : credentials.user || undefined,
      password: placed ? undefined : credentials.password || undefined,
      secrets: [...expanded.values, ...(placed && credentials.password ? [credentials.password] : [])],
    };
  }

  RED.nodes.registerType('camera-in', CameraIn as unknown as (this: Node, def: NodeDef) => void, {
    credentials: { user: { type: 'text' }, password: { type: 'password' } },
  });

  // The editor moves passwords out of a URL with the very code the runtime checks it with (a module
  // without imports): served as a plain script, which Node-RED loads before camera-in.html's own.
  let urlSecretsScript: string | undefined;
  RED.httpAdmin.get('/camera-in/url-secrets.js', (_req: Request, res: Response) => {
    urlSecretsScript ??= `(function (exports) {\n${fs
      .readFileSync(require.resolve('../core/camera/url-secrets'), 'utf8')
      .replace(/^\/\/# sourceMappingURL=.*$/m, '')}\n})(window.coralFaceUrlSecrets = {});\n`;
    res.type('application/javascript').set('Cache-Control', 'no-cache').send(urlSecretsScript);
  });

  const liveNode = (req: Request, res: Response): CameraInNode | undefined => {
    const node = RED.nodes.getNode(String(req.params.id)) as CameraInNode | null;
    if (!node || node.type !== 'camera-in') {
      res.status(404).json({ error: RED._('camera-in.live.notDeployed') });
      return undefined;
    }
    return node;
  };

  // Live view: MJPEG of the frames the node already decodes (no second
  // connection to the camera), and the latest face boxes and names.
  RED.httpAdmin.get(
    '/camera-in/:id/live.mjpeg',
    RED.auth.needsPermission('camera-in.read'),
    (req: Request, res: Response) => {
      const node = liveNode(req, res);
      if (!node) return;
      if (!node.live) {
        res.status(503).json({ error: RED._('camera-in.live.notRunning') });
        return;
      }
      if (!node.live.add(req, res)) {
        res
          .status(503)
          .set('Retry-After', '10')
          .json({
            error: RED._('camera-in.live.full', { max: node.live.maxViewers }),
          });
      }
    },
  );

  RED.httpAdmin.get(
    '/camera-in/:id/faces',
    RED.auth.needsPermission('camera-in.read'),
    (req: Request, res: Response) => {
      const node = liveNode(req, res);
      if (!node) return;
      const frame = node.latest;
      // Boxes from the last 2 s, and never from before a cut: they would sit on another picture.
      const ids = node.identities;
      const recent =
        ids && Date.now() - ids.timestamp < 2000 && (ids.seq === undefined || ids.seq >= node.sceneStartSeq)
          ? ids.faces
          : [];
      res.json({
        width: frame?.image.width ?? 0,
        height: frame?.image.height ?? 0,
        state: node.source?.state ?? 'stopped',
        stats: node.source?.stats ?? null,
        faces: recent.map((f) => ({ box: f.box, name: f.name })),
        live: node.live ? { ...node.live.stats, maxViewers: node.live.maxViewers } : null,
      });
    },
  );
};
