/**
 * npm run bench:stream [-- --json] [-- --seconds N] [-- --fps N]
 *
 * A 1280x720 H.264 stream at 25 fps with 1-4 faces, served by a real RTSP
 * server, through the real flow in Node-RED: camera-in -> align (full-range)
 * -> edgetpu-embed -> imprint-classify. Reports frames in and processed per
 * second, frames dropped (latest frame wins), CPU use in cores (Node-RED and
 * ffmpeg together), latency from a frame's arrival to its classification,
 * and RSS at the start (after the warm-up), the end and its peak.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { makeDemoClip } from '../../nodes/core/camera/demo-clip';
import helper, { nodeModule, NODES, onTab } from '../helpers/node-red';
import { startRtspServer } from '../helpers/rtsp-server';
import { FACES_DIR } from '../models';
import { percentile, round } from './stats';

const args = process.argv.slice(2);
const json = args.includes('--json');
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const seconds = flag('seconds', 600);
const fps = flag('fps', 25);

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) used so far by a process, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

function ffmpegPids(marker: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `ffmpeg.*${marker}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function sideBySide(files: string[], out: string): Promise<string> {
  const tiles = await Promise.all(files.map((f) => sharp(f).resize(250, 250).toBuffer()));
  await sharp({ create: { width: 250 * files.length, height: 250, channels: 3, background: '#777' } })
    .composite(tiles.map((input, i) => ({ input, left: i * 250, top: 0 })))
    .png()
    .toFile(out);
  return out;
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-bench-stream-'));
  const person = (name: string, i: number) =>
    path.join(FACES_DIR, name, fs.readdirSync(path.join(FACES_DIR, name)).sort()[i]);
  // 1, 2, 3 and 4 faces in turn.
  const scenes = [
    person('Jackie_Chan', 6),
    await sideBySide([person('Meryl_Streep', 6), person('Roger_Federer', 6)], path.join(tmp, 'two.png')),
    await sideBySide(
      [person('Jackie_Chan', 7), person('Meryl_Streep', 7), person('Tony_Blair', 2)],
      path.join(tmp, 'three.png'),
    ),
    path.join(FACES_DIR, '_group', 'four-faces.jpg'),
  ];
  const clip = path.join(tmp, 'stream.mp4');
  await makeDemoClip(scenes, clip, { secondsPerImage: 5, width: 1280, height: 720, fps });
  const server = await startRtspServer({ file: clip, fps });
  await new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve())));

  const galleryDir = path.join(tmp, 'gallery');
  const nodes: Record<string, unknown>[] = [
    { id: 'dev', type: 'edgetpu-device', device: 'auto', performance: 'high', model: '', threads: '' },
    { id: 'gal', type: 'face-gallery', path: galleryDir, threshold: '', margin: '', device: 'dev' },
    { id: 'enrol', type: 'enrol', gallery: 'gal', minPhotos: '3', walkupSeconds: '2', wires: [['enrolled']] },
    {
      id: 'cam',
      type: 'camera-in',
      name: 'bench',
      url: server.url,
      transport: 'tcp',
      fps: String(fps),
      maxWidth: '1280',
      stallSeconds: '10',
      wires: [['align']],
    },
    {
      id: 'align',
      type: 'align',
      detector: 'full',
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
      unknownFrames: '5',
      cooldown: '60',
      maxMissed: '1.5',
      perFrame: true,
      wires: [['visits'], ['frames']],
    },
    { id: 'enrolled', type: 'helper' },
    { id: 'visits', type: 'helper' },
    { id: 'frames', type: 'helper' },
  ];
  const flow = onTab(nodes);
  await helper.load([nodeModule('camera-in'), ...NODES], flow);
  const enrolled = helper.getNode('enrolled');
  for (const name of ['Jackie_Chan', 'Meryl_Streep', 'Roger_Federer']) {
    const reply = new Promise((resolve) => enrolled.on('input', resolve));
    const dir = path.join(FACES_DIR, name);
    helper.getNode('enrol').receive({
      payload: {
        action: 'enrol',
        name,
        images: fs
          .readdirSync(dir)
          .sort()
          .slice(0, 5)
          .map((f) => path.join(dir, f)),
      },
    });
    await reply;
  }

  const latencies: number[] = [];
  let processed = 0;
  let faces = 0;
  let visits = 0;
  helper.getNode('frames').on('input', (msg: any) => {
    processed++;
    faces += msg.faces?.length ?? 0;
    latencies.push(Date.now() - msg.frame.timestamp);
  });
  helper.getNode('visits').on('input', () => {
    visits++;
  });

  // Warm up 30 s, then measure. RSS climbs for about that long while the
  // frame store and the allocator settle, then stays flat or falls: leaks
  // show as growth after that.
  const warmUp = Math.min(30, Math.max(10, seconds / 10));
  await new Promise((r) => setTimeout(r, warmUp * 1000));
  const cam = helper.getNode('cam');
  const align = helper.getNode('align') as any;
  const marker = String(server.port);
  const start = {
    time: Date.now(),
    rss: process.memoryUsage().rss,
    cpu: cpuSeconds(process.pid) + ffmpegPids(marker).reduce((s, p) => s + cpuSeconds(p), 0),
    framesIn: cam.source.stats.framesIn,
    processed,
  };
  latencies.length = 0;
  // node-red-node-test-helper records every node.send/status call in sinon
  // spies, forever: clear that history so the harness does not grow the heap.
  const harness = (helper as unknown as { _sandbox: { resetHistory(): void } })._sandbox;
  const clearHarness = setInterval(() => harness.resetHistory(), 2000);
  const serverCpuStart = cpuSeconds(server.pid() ?? 0);
  const nodeCpuStart = cpuSeconds(process.pid);
  const alignDropped = () => {
    // The align node's latest-wins queue counts what it dropped; read it from its status text.
    return Number(/(\d+) dropped/.exec(String(align.__lastStatus ?? ''))?.[1] ?? 0);
  };
  const originalStatus = align.status.bind(align);
  align.status = (s: { text?: string }) => {
    align.__lastStatus = s?.text;
    return originalStatus(s);
  };
  const droppedAtStart = alignDropped();
  if (!json)
    console.log(
      `bench:stream: 1280x720 @ ${fps} fps, 1-4 faces, ${seconds} s on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.availableParallelism()} cores)`,
    );
  let rssPeak = start.rss;
  for (let elapsed = 0; elapsed < seconds; elapsed += 10) {
    await new Promise((r) => setTimeout(r, Math.min(10, seconds - elapsed) * 1000));
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    if (!json && elapsed % 30 === 20) {
      console.log(
        `  ${elapsed + 10} s: ${processed - start.processed} frames processed, RSS ${Math.round(m.rss / 1e6)} MB ` +
          `(heap ${Math.round(m.heapUsed / 1e6)}, buffers ${Math.round(m.arrayBuffers / 1e6)})`,
      );
    }
  }
  clearInterval(clearHarness);
  const wall = (Date.now() - start.time) / 1000;
  const cpu = cpuSeconds(process.pid) + ffmpegPids(marker).reduce((s, p) => s + cpuSeconds(p), 0) - start.cpu;
  const nodeCores = (cpuSeconds(process.pid) - nodeCpuStart) / wall;
  const serverCores = (cpuSeconds(server.pid() ?? 0) - serverCpuStart) / wall;
  const result = {
    seconds: round(wall, 1),
    fpsIn: round((cam.source.stats.framesIn - start.framesIn) / wall, 2),
    fpsProcessed: round((processed - start.processed) / wall, 2),
    dropped: cam.source.stats.framesIn - start.framesIn - (processed - start.processed),
    droppedAtAlign: alignDropped() - droppedAtStart,
    cores: round(cpu / wall, 2),
    coresNodeRed: round(nodeCores, 2),
    coresFfmpeg: round(cpu / wall - nodeCores, 2),
    /** The test's RTSP server encodes H.264 live on the same 2 cores: not ours, but it competes. */
    coresRtspServer: round(serverCores, 2),
    p50Ms: round(percentile(latencies, 50), 1),
    p95Ms: round(percentile(latencies, 95), 1),
    facesPerFrame: round(faces / Math.max(1, processed), 2),
    visits,
    rssStartMb: round(start.rss / 1e6, 1),
    rssEndMb: round(process.memoryUsage().rss / 1e6, 1),
    rssPeakMb: round(rssPeak / 1e6, 1),
    warmUpSeconds: warmUp,
  };
  await helper.unload();
  await server.stop();
  await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
  if (json) console.log(JSON.stringify(result));
  else console.log(result);
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
