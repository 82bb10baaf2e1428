/**
 * The live pipeline in real Node-RED, from a real RTSP server (GStreamer,
 * fed with a clip made from dev photos) through camera-in -> align ->
 * edgetpu-embed -> imprint-classify, with real ffmpeg.
 */
import { strict as assert } from 'assert';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import sharp from 'sharp';
import { makeDemoClip } from '../../nodes/core/camera/demo-clip';
import helper, { nodeModule, NODES, onTab } from '../helpers/node-red';
import { RtspServer, startRtspServer } from '../helpers/rtsp-server';
import { FACES_DIR } from '../models';

const ALL_NODES = [nodeModule('camera-in'), ...NODES];

const photos = (person: string): string[] => {
  const dir = path.join(FACES_DIR, person);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => path.join(dir, f));
};

/** ffmpeg processes whose command line names this URL (so only ours, even orphaned ones). */
function ffmpegProcessesFor(marker: string): number {
  try {
    return execFileSync('pgrep', ['-f', `ffmpeg.*${marker}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean).length;
  } catch {
    return 0; // pgrep exits 1 when nothing matches
  }
}

function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (predicate()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }
    }, 100);
  });
}

function flow(url: string, galleryDir: string, extra: Record<string, unknown> = {}) {
  const nodes: Record<string, unknown>[] = [
    { id: 'dev', type: 'edgetpu-device', device: 'auto', performance: 'high', model: '', threads: '' },
    { id: 'gal', type: 'face-gallery', path: galleryDir, threshold: '', margin: '', device: 'dev' },
    { id: 'enrol', type: 'enrol', gallery: 'gal', minPhotos: '3', walkupSeconds: '2', wires: [['enrolled']] },
    {
      id: 'cam',
      type: 'camera-in',
      name: 'front_door',
      url,
      transport: 'tcp',
      fps: '5',
      maxWidth: '1280',
      stallSeconds: '5',
      wires: [['align']],
      ...extra,
    },
    {
      id: 'align',
      type: 'align',
      detector: 'short',
      minFaceSize: '',
      minScore: '',
      maxFaces: '',
      tiles: false,
      wires: [['embed']],
    },
    { id: 'embed', type: 'edgetpu-embed', device: 'dev', wires: [['classify']] },
    {
      id: 'classify',
      type: 'imprint-classify',
      gallery: 'gal',
      confirmFrames: '3',
      unknownFrames: '4',
      cooldown: '1',
      maxMissed: '1',
      perFrame: false,
      wires: [['visits'], []],
    },
    { id: 'enrolled', type: 'helper' },
    { id: 'visits', type: 'helper' },
  ];
  return onTab(nodes);
}

describe('nodes: camera-in from a real RTSP server', function () {
  this.timeout(240000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-camera-'));
  const galleryDir = path.join(tmp, 'gallery');
  const people = ['Jackie_Chan', 'Meryl_Streep', 'Roger_Federer'];
  let server: RtspServer;

  before(async () => {
    await new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve())));
    // A visit per person with an empty hallway between (so each visit is a new track), then a stranger.
    const empty = path.join(tmp, 'empty.png');
    await sharp({ create: { width: 250, height: 250, channels: 3, background: '#8c8c8c' } })
      .png()
      .toFile(empty);
    const stranger = path.join(FACES_DIR, '_unknown', fs.readdirSync(path.join(FACES_DIR, '_unknown')).sort()[3]);
    const sequence = [...people.flatMap((p) => [photos(p)[7], empty]), stranger, empty];
    const clip = path.join(tmp, 'visits.mp4');
    await makeDemoClip(sequence, clip, { secondsPerImage: 3, width: 640, height: 480, fps: 10 });
    server = await startRtspServer({ file: clip, user: 'viewer', password: 's3cret-pw' });
  });

  after(async () => {
    await server?.stop();
    await new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve())));
  });

  afterEach(() => helper.unload());

  it('recognises each enrolled person once per visit and the stranger as unknown; reconnects after the server restarts', async () => {
    await helper.load(ALL_NODES, flow(server.url, galleryDir), { cam: { user: 'viewer', password: 's3cret-pw' } });
    const enrolled = helper.getNode('enrolled');
    for (const person of people) {
      const reply = new Promise<any>((resolve) => enrolled.on('input', resolve));
      helper
        .getNode('enrol')
        .receive({ payload: { action: 'enrol', name: person, images: photos(person).slice(0, 5) } });
      assert.equal((await reply).payload.ok, true);
    }
    const visits: any[] = [];
    helper.getNode('visits').on('input', (msg: any) => visits.push(msg.payload));
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    // The clip loops every 24 s; within one loop every visit has happened.
    await waitUntil(
      () =>
        people.every((p) => visits.some((v) => v.event === 'recognized' && v.name === p)) &&
        visits.some((v) => v.event === 'unknown'),
      60000,
      'every visit',
    );
    loop.disable();
    const firstLoop = visits.filter((v) => v.event === 'recognized');
    for (const person of people)
      assert.equal(firstLoop.filter((v) => v.name === person).length, 1, `${person} once per visit`);
    assert.ok(visits.filter((v) => v.event === 'unknown').every((v) => v.name === 'unknown'));
    assert.ok(loop.percentile(99) / 1e6 < 30, `event loop p99 ${loop.percentile(99) / 1e6} ms`);

    // The camera reboots: the stream drops and comes back.
    const before = visits.length;
    const statuses: any[] = [];
    const cam = helper.getNode('cam');
    const status = (cam.status as (s: unknown) => void).bind(cam);
    cam.status = (s: any) => {
      statuses.push(s);
      return status(s);
    };
    const restartedAt = Date.now();
    await server.restart();
    await waitUntil(() => statuses.some((s) => /reconnect/i.test(s.text ?? '')), 15000, 'reconnecting status');
    await waitUntil(
      () => statuses.some((s) => s.fill === 'green' && Date.now() - restartedAt > 0),
      15000,
      'online again',
    );
    assert.ok(Date.now() - restartedAt < 15000, 'reconnected within 15 s');
    await waitUntil(
      () => visits.slice(before).some((v) => v.event === 'recognized'),
      45000,
      'recognition after reconnect',
    );
    for (const s of statuses) assert.ok(!JSON.stringify(s).includes('s3cret-pw'));
  });

  it('a wrong password, an unreachable host and a non-video URL give a clear status, never the password, and no crash', async () => {
    const http = await import('http');
    const textServer = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('hello, not a video\n');
    });
    await new Promise<void>((resolve) => textServer.listen(0, '127.0.0.1', resolve));
    const textUrl = `http://127.0.0.1:${(textServer.address() as { port: number }).port}/stream`;
    const cases: [string, string, Record<string, string> | undefined, RegExp][] = [
      [
        'wrong password',
        server.url,
        { user: 'viewer', password: 'WRONG-pass-123' },
        /wrong password · retrying every 30 s/,
      ],
      ['unreachable', 'rtsp://127.0.0.1:9/none', undefined, /unreachable/i],
      ['not video', textUrl, undefined, /not a video/i],
    ];
    for (const [label, url, credentials, expected] of cases) {
      await helper.load(ALL_NODES, flow(url, galleryDir), credentials ? { cam: credentials } : {});
      const cam = helper.getNode('cam');
      const texts: string[] = [];
      const status = (cam.status as (s: unknown) => void).bind(cam);
      cam.status = (s: any) => {
        texts.push(String(s.text ?? ''));
        return status(s);
      };
      await waitUntil(() => texts.some((t) => expected.test(t)), 20000, `${label} status`).catch((error) => {
        throw new Error(`${error.message}; statuses: ${texts.join(' | ')}`);
      });
      assert.ok(
        texts.every((t) => !t.includes('WRONG-pass-123')),
        'password never shown',
      );
      await helper.unload();
    }
    textServer.close();
  });

  it('20 redeploys leave no ffmpeg process behind, and never block the event loop more than 50 ms', async () => {
    const marker = String(server.port);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    const worst: number[] = [];
    // Starting a process forks this one, and the fork copies its page tables: from a test process of about
    // 1 GB (the whole suite's) that alone holds the event loop 30-60 ms, whoever calls spawn. What counts
    // here is what the nodes add beyond that, so each redeploy is compared with a bare spawn measured next to it.
    const spawnCost: number[] = [];
    const bareSpawn = () => {
      const start = performance.now();
      spawn('true', [], { stdio: 'ignore' });
      return performance.now() - start;
    };
    for (let i = 0; i < 20; i++) {
      spawnCost.push(Math.max(bareSpawn(), bareSpawn()));
      loop.reset();
      loop.enable();
      await helper.load(ALL_NODES, flow(server.url, galleryDir), { cam: { user: 'viewer', password: 's3cret-pw' } });
      await new Promise((r) => setTimeout(r, 150 + (i % 4) * 100)); // close at different moments of start-up
      await helper.unload();
      loop.disable();
      worst.push(loop.max / 1e6);
    }
    // The first deploy also loads the nodes' modules (Node-RED's start, not a redeploy): not counted.
    worst.shift();
    spawnCost.shift();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(ffmpegProcessesFor(marker), 0);
    const beyondSpawn = worst.map((w, i) => w - spawnCost[i]);
    assert.ok(
      Math.max(...beyondSpawn) < 50,
      `event loop blocked ${Math.max(...beyondSpawn).toFixed(0)} ms beyond a bare spawn (worst per redeploy: ` +
        `${worst.map((w) => w.toFixed(0)).join(' ')}; a bare spawn: ${spawnCost.map((w) => w.toFixed(0)).join(' ')})`,
    );
  });
});
