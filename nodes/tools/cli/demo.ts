import * as os from 'os';
import * as path from 'path';
import { packageRoot } from '../../../native/addon';
import * as net from 'net';
import { type Args, numberFlag, UsageError } from './args';

/** A demo that cannot start, said in one line (exit 1). */
export class DemoError extends Error {
  readonly code = 'ERR_DEMO';
}

/** Why the demo cannot listen on host:port, or null when it can (tried by listening and closing at once). */
export function portProblem(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE')
        resolve(
          `port ${port} is in use (another Node-RED?): start the demo on another one with --port, e.g. npm start -- --port ${port === 1880 ? 1881 : port + 1}`,
        );
      else if (error.code === 'EACCES') resolve(`port ${port} needs root on this system: use --port 1024 or higher`);
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND')
        resolve(`--host ${host} is not an address of this machine: use 127.0.0.1, 0.0.0.0 or one of its own addresses`);
      else resolve(`cannot listen on ${host}:${port}: ${error.message}`);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

function editorUrl(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '::')
    return `http://<this machine's address>:${port}/ (here: http://127.0.0.1:${port}/)`;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
}

function exposureNote(host: string): string {
  if (host === '127.0.0.1' || host === 'localhost' || host === '::1') return '';
  return (
    `Listening on ${host}: anyone who can reach this machine on the network can open the editor, change the flow and\n` +
    'run commands through it (the demo has no login). Use it on a network you trust, and stop it when done.\n\n'
  );
}

/**
 * The demo: Node-RED in its own user dir with this package and the demo flow,
 * on a clip made now from the photos @vladmandic/face-api ships in demo/ (so
 * no camera, no Coral, nothing downloaded).
 */
export async function demo(args: Args): Promise<number> {
  const dir = path.resolve(
    typeof args.flags.get('dir') === 'string'
      ? String(args.flags.get('dir'))
      : path.join(os.homedir(), '.coral-face', 'demo'),
  );
  const port = numberFlag(args, 'port') ?? 1880;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError('--port is a whole number from 1 to 65535');
  const hostFlag = args.flags.get('host');
  const host = typeof hostFlag === 'string' && hostFlag ? hostFlag : '127.0.0.1';
  // Before anything is built or printed: a URL that will not answer is worse than no URL.
  const problem = await portProblem(host, port);
  if (problem) throw new DemoError(problem);
  const fs = await import('fs');
  const { spawn } = await import('child_process');
  const { makeDemoClip } = await import('../../core/camera/demo-clip');
  const { demoFlow } = await import('../flows');
  const { demoClipSegments } = await import('../demo-clip');
  const root = packageRoot;
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  const clip = path.join(dir, 'demo.mp4');
  if (!fs.existsSync(clip)) {
    const segments = demoClipSegments();
    process.stdout.write(`making the demo clip from ${segments.length} photos...\n`);
    // Written aside and renamed, so an interrupted start never leaves half a clip behind.
    const partial = path.join(dir, 'demo.partial.mp4');
    await makeDemoClip(segments, partial, { width: 1280, height: 720, fps: 10 });
    fs.renameSync(partial, clip);
  }
  // Node-RED finds the package through its user dir's node_modules.
  const link = path.join(dir, 'node_modules', 'node-red-contrib-coral-face');
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify(
      { name: 'coral-face-demo', private: true, dependencies: { 'node-red-contrib-coral-face': `file:${root}` } },
      null,
      2,
    ),
  );
  const flowFile = path.join(dir, 'flows.json');
  if (!fs.existsSync(flowFile))
    fs.writeFileSync(flowFile, JSON.stringify(demoFlow(clip, path.join(dir, 'gallery')), null, 2));
  fs.writeFileSync(
    path.join(dir, 'settings.js'),
    `module.exports = ${JSON.stringify(
      {
        uiPort: port,
        uiHost: host,
        flowFile: 'flows.json',
        credentialSecret: false,
        editorTheme: { tours: false, projects: { enabled: false } },
        // No "Enable update notifications?" dialog on the demo's first load (and nothing sent anywhere).
        telemetry: { enabled: false, updateNotification: false },
      },
      null,
      2,
    )};\n`,
  );
  let redJs: string;
  try {
    redJs = require.resolve('node-red/red.js');
  } catch {
    throw new Error('Node-RED is not installed here: run "npm install" in the repository (it is a dev dependency)');
  }
  process.stdout.write(
    `starting Node-RED (user dir ${dir})\n\n  editor: ${editorUrl(host, port)}\n\n${exposureNote(host)}Ctrl-C stops it.\n`,
  );
  const child = spawn(process.execPath, [redJs, '--userDir', dir, '--settings', path.join(dir, 'settings.js')], {
    stdio: 'inherit',
  });
  const stop = () => child.kill('SIGINT');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 0)));
}
