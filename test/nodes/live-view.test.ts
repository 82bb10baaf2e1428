/**
 * camera-in's live view (the edit dialog's MJPEG) in real Node-RED, from a
 * real ffmpeg reading a video file: viewers that never read do not grow memory, viewers that
 * leave leave nothing behind, the cap answers 503 with a reason, and one JPEG
 * per frame serves every viewer. The probe of issue #9: 8 viewers that never
 * read took Node-RED from 370 to 451 MB in 120 s, 100 short views left 101
 * close callbacks on the node.
 */
import { strict as assert } from 'assert';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import { resolveFfmpeg } from '../../nodes/core/camera/ffmpeg';
import { faceBus } from '../../nodes/core/flow/face-bus';
import { pixels } from '../../nodes/core/media/pixel-store';
import helper, { nodeModule, onTab } from '../helpers/node-red';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The test helper's spies record every node method call: not Node-RED's memory. */
const harness = (helper as unknown as { _sandbox: { resetHistory(): void } })._sandbox;

/** Heap and Buffers (where unsent frames would pile up) after a full GC, MB. */
function memoryMb(): { heap: number; buffers: number; rss: number } {
  harness.resetHistory();
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed / 2 ** 20, buffers: m.arrayBuffers / 2 ** 20, rss: m.rss / 2 ** 20 };
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Python: connects argv[2] viewers to the live view on port argv[1] with 4 KB receive buffers, never reads. */
const SLOW_VIEWERS = `
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
viewers = []
for i in range(count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(('127.0.0.1', port))
    s.sendall(b'GET /camera-in/cam/live.mjpeg HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')
    viewers.append(s)
print('READY', flush=True)
sys.stdin.read()
`;

/** A viewer that reads the stream and cuts it into its JPEG parts. */
function reader(url: string): { jpegs: Buffer[]; status: Promise<number>; ended: Promise<void>; close(): void } {
  const jpegs: Buffer[] = [];
  let buffer = Buffer.alloc(0);
  let resolveStatus!: (n: number) => void;
  let resolveEnded!: () => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const ended = new Promise<void>((r) => (resolveEnded = r));
  const req = http.get(url, (res) => {
    resolveStatus(res.statusCode ?? 0);
    res.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const header = /--coralface\r\nContent-Type: image\/jpeg\r\nContent-Length: (\d+)\r\n\r\n/.exec(
          buffer.toString('latin1', 0, Math.min(buffer.length, 200)),
        );
        if (!header || header.index !== 0) break;
        const start = header[0].length;
        const length = Number(header[1]);
        if (buffer.length < start + length + 2) break;
        jpegs.push(buffer.subarray(start, start + length));
        buffer = buffer.subarray(start + length + 2);
      }
    });
    res.on('end', resolveEnded);
    res.on('close', resolveEnded);
  });
  req.on('error', () => resolveEnded());
  return { jpegs, status, ended, close: () => req.destroy() };
}

describe('nodes: camera-in live view', function () {
  this.timeout(180000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-live-'));
  let clip: string;
  let admin: http.Server;
  let base: string;

  before(async () => {
    await new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve())));
    // A camera of colour noise: JPEGs that compress badly (about 100 KB at 640 px), so that a viewer that
    // does not read fills the kernel's socket buffers within seconds (and Node-RED's, if it buffered).
    clip = path.join(tmp, 'noise.avi');
    execFileSync(resolveFfmpeg().path, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      "nullsrc=s=1280x720:r=10,geq=lum='random(1)*255':cb='random(2)*255':cr='random(3)*255'",
      '-t',
      '2',
      '-c:v',
      'mjpeg',
      '-q:v',
      '3',
      '-pix_fmt',
      'yuvj420p',
      '-y',
      clip,
    ]);
    // Node-RED's admin API, where the live view is served, on a port of its own.
    // (The helper makes a new admin app at each load: look it up per request.)
    admin = http.createServer((req, res) =>
      (helper as unknown as { _httpAdmin: http.RequestListener })._httpAdmin(req, res),
    );
    await new Promise<void>((resolve) => admin.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(admin.address() as net.AddressInfo).port}`;
    admin.on('connection', (socket: net.Socket) => {
      connections.add(socket);
      socket.once('close', () => connections.delete(socket));
    });
  });

  after(async () => {
    admin?.closeAllConnections();
    await new Promise((r) => admin?.close(r));
    await new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve())));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  afterEach(() => helper.unload());

  /** Bytes Node-RED holds for its admin connections, not yet taken by the kernel. */
  const connections = new Set<net.Socket>();
  const queued = () => [...connections].reduce((sum, socket) => sum + socket.writableLength, 0);

  async function loadCamera(): Promise<any> {
    await helper.load(
      [nodeModule('camera-in')],
      onTab([
        {
          id: 'cam',
          type: 'camera-in',
          name: 'door',
          url: clip,
          transport: 'tcp',
          fps: '10',
          maxWidth: '1280',
          stallSeconds: '10',
          wires: [[], []],
        },
      ]),
    );
    const cam = helper.getNode('cam');
    await waitUntil(() => !!cam.latest, 30000, 'the first frame');
    return cam;
  }

  it('8 viewers that never read: memory stays flat; a 9th viewer gets 503 with the reason', async () => {
    const cam = await loadCamera();
    // The frames fill the shared pixel store up to its bound first: measure from there.
    await waitUntil(() => pixels.size.bytes > pixels.maxBytes - 2 * 1280 * 720 * 3, 30000, 'a full pixel store');
    const port = (admin.address() as net.AddressInfo).port;
    // 8 viewers that never read, with small receive buffers (a phone on a weak link, a laptop asleep): a
    // separate process, so that their sockets are not Node-RED's memory.
    const viewers = spawn('python3', ['-c', SLOW_VIEWERS, String(port), '8'], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      viewers.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('READY')) resolve();
      });
      viewers.once('exit', (code) => reject(new Error(`slow viewers exited with ${code}`)));
    });
    await waitUntil(() => cam.live.stats.viewers === 8, 10000, '8 viewers');
    const ninth = reader(`${base}/camera-in/cam/live.mjpeg`);
    assert.equal(await ninth.status, 503);
    const body = await new Promise<string>((resolve) =>
      http.get(`${base}/camera-in/cam/live.mjpeg`, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(text));
      }),
    );
    assert.match(JSON.parse(body).error, /live view full: 8 viewers are already watching/);

    // The viewers' kernel buffers are full within seconds; from then on, whatever is not sent stays in Node-RED.
    await sleep(10000);
    const before = memoryMb();
    await sleep(20000);
    const afterMb = memoryMb();
    const stats = cam.live.stats;

    const figures =
      `queued ${(queued() / 2 ** 20).toFixed(2)} MB, heap ${before.heap.toFixed(1)} → ${afterMb.heap.toFixed(1)} MB, buffers ${before.buffers.toFixed(1)} → ${afterMb.buffers.toFixed(1)} MB, ` +
      `rss ${before.rss.toFixed(0)} → ${afterMb.rss.toFixed(0)} MB; ${stats.encodes} encodes, ${stats.sent} sent, ${stats.skipped} skipped`;
    console.log(`      ${figures}`);
    assert.ok(afterMb.heap + afterMb.buffers - (before.heap + before.buffers) < 10, figures);
    assert.ok(afterMb.rss - before.rss < 30, figures);
    assert.ok(stats.skipped > stats.sent, `frames are skipped for viewers that do not read: ${figures}`);
    assert.ok(queued() < 8 * 256 * 1024, `${(queued() / 2 ** 20).toFixed(1)} MB queued in Node-RED for 8 viewers`);
    viewers.stdin.end();
    await waitUntil(() => cam.live.stats.viewers === 0, 5000, 'the viewers to go');
    assert.equal(cam.live.running, false, 'no timer without viewers');
  });

  it('100 short views leave no listener, callback or timer behind', async () => {
    const cam = await loadCamera();
    const closeCallbacks = cam._closeCallbacks.length;
    const busListeners = faceBus.listenerCount('identities');
    for (let i = 0; i < 100; i++) {
      const view = reader(`${base}/camera-in/cam/live.mjpeg`);
      assert.equal(await view.status, 200);
      if (i % 10 === 0) await waitUntil(() => view.jpegs.length > 0, 5000, 'a frame');
      view.close();
      await view.ended;
    }
    await waitUntil(() => cam.live.stats.viewers === 0, 5000, 'every viewer gone');
    assert.equal(cam._closeCallbacks.length, closeCallbacks, 'close callbacks on the node');
    assert.equal(faceBus.listenerCount('identities'), busListeners);
    assert.equal(cam.live.running, false, 'no timer without viewers');
  });

  it('4 viewers share one JPEG per frame; a redeploy ends their streams', async () => {
    const cam = await loadCamera();
    const views = [0, 1, 2, 3].map(() => reader(`${base}/camera-in/cam/live.mjpeg`));
    for (const v of views) assert.equal(await v.status, 200);
    await sleep(3000);
    const encodes = cam.live.stats.encodes;
    const most = Math.max(...views.map((v) => v.jpegs.length));
    assert.ok(
      views.every((v) => v.jpegs.length >= 8),
      `frames per viewer: ${views.map((v) => v.jpegs.length).join(', ')}`,
    );
    // At most 5 frames a second, one encode each for all four viewers (each viewer joining re-sends the current frame).
    assert.ok(encodes <= most + 4, `${encodes} encodes for ${most} frames to each of 4 viewers`);
    assert.ok(most <= 3 * 5 + 2, `${most} frames in 3 s at 5 fps`);
    for (const jpeg of views[0].jpegs) {
      assert.deepEqual(
        [jpeg[0], jpeg[1], jpeg[jpeg.length - 2], jpeg[jpeg.length - 1]],
        [0xff, 0xd8, 0xff, 0xd9],
        'a whole JPEG',
      );
    }
    await helper.unload();
    await Promise.all(views.map((v) => v.ended));
  });
});
