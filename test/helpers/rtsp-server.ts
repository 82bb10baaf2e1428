/**
 * A real RTSP server for tests: rtsp_server.py (Debian's GStreamer RTSP server
 * through python3-gi) serving a video file in a loop, optionally behind basic
 * auth. Needs: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good
 * gstreamer1.0-plugins-ugly (x264enc) gstreamer1.0-libav (decoding the clip).
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';

export interface RtspServerOptions {
  /** The video to serve (decoded once, looped forever). */
  file: string;
  /** Default: a free port picked now and kept across restart(). */
  port?: number;
  /** Mount path, default '/cam'. */
  path?: string;
  user?: string;
  password?: string;
  /** Frames per second pushed. Default 10. */
  fps?: number;
}

export interface RtspServer {
  /** rtsp://127.0.0.1:<port><path>, without credentials. */
  url: string;
  port: number;
  /** The server process, e.g. to SIGSTOP it and simulate a camera that hangs. */
  pid(): number | undefined;
  stop(): Promise<void>;
  /** Kills the server and starts it again on the same port (clients see the connection drop). */
  restart(): Promise<void>;
}

/** Beside this file when run from source; in the source tree when run from build/. */
const SCRIPT =
  [
    path.join(__dirname, 'rtsp_server.py'),
    path.resolve(__dirname, '..', '..', '..', 'test', 'helpers', 'rtsp_server.py'),
  ].find((p) => fs.existsSync(p)) ?? path.join(__dirname, 'rtsp_server.py');

/**
 * The interpreter that has the `gi` bindings: Debian's python3-gi is installed
 * for /usr/bin/python3, and a python3 earlier on PATH (pyenv, venv) lacks it.
 */
function pythonWithGi(): string {
  const candidates = [process.env.RTSP_SERVER_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', 'import gi'], { stdio: 'ignore', timeout: 10_000 });
    if (probe.status === 0) return candidate;
  }
  throw new Error('no python3 with gi (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0)');
}

/** Why the RTSP server cannot run here, or null when it can (for skipping with a reason). */
export function rtspServerUnavailable(): string | null {
  try {
    const python = pythonWithGi();
    const probe = spawnSync(
      python,
      ['-c', "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"],
      { encoding: 'utf8', timeout: 20_000 },
    );
    return probe.status === 0 ? null : `GstRtspServer missing: ${probe.stderr.trim().split('\n').pop()}`;
  } catch (error) {
    return (error as Error).message;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRtspServer(options: RtspServerOptions): Promise<RtspServer> {
  if (!fs.existsSync(options.file)) throw new Error(`no such file: ${options.file}`);
  if (!fs.existsSync(SCRIPT))
    throw new Error(`missing rtsp_server.py (looked beside ${__dirname} and in test/helpers)`);
  const python = pythonWithGi();
  const port = options.port ?? (await freePort());
  const mount = options.path ?? '/cam';
  const args = [
    SCRIPT,
    '--file',
    options.file,
    '--port',
    String(port),
    '--path',
    mount,
    '--fps',
    String(options.fps ?? 10),
  ];
  if (options.user !== undefined) args.push('--user', options.user, '--password', options.password ?? '');

  let child: ChildProcess | null = null;

  async function launch(): Promise<void> {
    // stdin stays an open pipe: the server exits when it closes, i.e. when this process dies.
    const proc = spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    let exited = false;
    proc.once('exit', () => (exited = true));
    const deadline = Date.now() + 30_000;
    // READY is printed once GStreamer listens; the connect check proves it from the outside.
    while (!(output.includes('READY') && (await canConnect(port)))) {
      if (exited) throw new Error(`rtsp server exited: ${output.trim()}`);
      if (Date.now() > deadline) {
        await kill(proc);
        throw new Error(`rtsp server did not start in 30 s: ${output.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  function kill(proc: ChildProcess): Promise<void> {
    if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = null;
    if (proc) await kill(proc);
  }

  await launch();
  return {
    url: `rtsp://127.0.0.1:${port}${mount}`,
    port,
    pid: () => child?.pid,
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}
