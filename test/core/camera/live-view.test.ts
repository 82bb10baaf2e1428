/**
 * The live view on a real HTTP server, with a viewer in another process that
 * never reads: backpressure skips frames instead of buffering them, a viewer
 * that takes nothing for stalledMs is disconnected, nothing is encoded while
 * no viewer can take a frame, and the cap refuses the viewer beyond it.
 */
import { strict as assert } from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import * as http from 'http';
import type { AddressInfo, Socket } from 'net';
import { LiveView } from '../../../nodes/core/camera/live-view';
import type { CameraFrame } from '../../../nodes/core/camera/source';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Viewers (argv[2] of them) with 4 KB receive buffers that never read, in a process of their own. */
const SLOW_VIEWERS = `
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
viewers = []
for i in range(count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(('127.0.0.1', port))
    s.sendall(b'GET /live HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')
    viewers.append(s)
print('READY', flush=True)
sys.stdin.read()
`;

function noiseFrame(seq: number): CameraFrame {
  const width = 640;
  const height = 360;
  const data = new Uint8Array(width * height * 3);
  let x = seq * 2654435761;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return { image: { width, height, data }, timestamp: Date.now(), seq };
}

describe('core/camera: live view', function () {
  this.timeout(90000);
  let server: http.Server;
  let view: LiveView;
  let frame: CameraFrame | undefined;
  let frames: NodeJS.Timeout;
  const sockets = new Set<Socket>();
  let viewers: ChildProcess | undefined;

  beforeEach(async () => {
    let seq = 0;
    frame = noiseFrame(seq);
    frames = setInterval(() => {
      frame = noiseFrame(++seq);
    }, 50);
    view = new LiveView(() => frame, { fps: 10, maxViewers: 3, stalledMs: 3000 });
    server = http.createServer((req, res) => {
      if (!view.add(req, res)) res.writeHead(503).end('full');
    });
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    clearInterval(frames);
    viewers?.stdin?.end();
    viewers?.kill();
    view.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function slowViewers(count: number): Promise<void> {
    const port = (server.address() as AddressInfo).port;
    viewers = spawn('python3', ['-c', SLOW_VIEWERS, String(port), String(count)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      viewers!.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('READY')) resolve();
      });
      viewers!.once('exit', (code) => reject(new Error(`slow viewers exited with ${code}`)));
    });
  }

  it('skips frames for viewers that do not read, stops encoding, then disconnects them after stalledMs', async () => {
    await slowViewers(3);
    // The kernel's socket buffers take a few MB first; then the writes are refused.
    const deadline = Date.now() + 20000;
    while (view.stats.skipped === 0 && Date.now() < deadline) await sleep(100);
    const queued = [...sockets].reduce((sum, s) => sum + s.writableLength, 0);
    const mid = view.stats;
    assert.equal(mid.viewers, 3);
    assert.ok(mid.skipped > 0, JSON.stringify(mid));
    // Each viewer holds at most the one frame it could not take (a noise JPEG is ~100 KB).
    assert.ok(queued < 3 * 400 * 1024, `${queued} bytes queued`);
    await sleep(500);
    // Nobody can take a frame: no more encoding.
    const encodes = view.stats.encodes;
    await sleep(1000);
    assert.equal(view.stats.encodes, encodes, 'no encode while every viewer is waiting');
    // stalledMs after their last frame, the viewers are let go.
    await sleep(2500);
    assert.deepEqual([view.stats.viewers, view.stats.stalled, view.running], [0, 3, false]);
  });

  it('refuses the viewer beyond the cap, and shares one encode per frame among the others', async () => {
    const port = (server.address() as AddressInfo).port;
    const got: number[] = [0, 0, 0];
    const requests = got.map((_, i) =>
      http.get(`http://127.0.0.1:${port}/live`, (res) =>
        res.on('data', (d: Buffer) => {
          got[i] += d.toString('latin1').split('--coralface').length - 1;
        }),
      ),
    );
    await sleep(300);
    const fourth = await new Promise<number>((resolve) =>
      http.get(`http://127.0.0.1:${port}/live`, (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      }),
    );
    assert.equal(fourth, 503);
    await sleep(1500);
    const { encodes, refused } = view.stats;
    assert.equal(refused, 1);
    assert.ok(Math.min(...got) >= 8, `frames per viewer: ${got.join(', ')}`);
    assert.ok(encodes <= Math.max(...got) + 3, `${encodes} encodes for ${got.join(', ')} frames`);
    for (const r of requests) r.destroy();
    await sleep(200);
    assert.deepEqual([view.stats.viewers, view.running], [0, false]);
  });
});
