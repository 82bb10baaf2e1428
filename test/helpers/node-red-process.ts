/**
 * A real Node-RED (node-red/red.js in its own process) with this package installed in a fresh
 * user dir the way `coral-face demo` does it (a node_modules link), a given flow and settings.
 * Plugins load (the face library is one), which node-red-node-test-helper does not do.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { freePort } from './rtsp-server';

const ROOT = path.resolve(__dirname, '..', '..', '..');

export interface NodeRedProcess {
  url: string;
  port: number;
  dir: string;
  log(): string;
  stop(): Promise<void>;
}

export async function startNodeRed(options: {
  flow: unknown[];
  settings?: Record<string, unknown>;
  dir?: string;
}): Promise<NodeRedProcess> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'coral-nodered-'));
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  const link = path.join(dir, 'node_modules', 'node-red-contrib-coral-face');
  if (!fs.existsSync(link)) fs.symlinkSync(ROOT, link, 'dir');
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'coral-face-test',
      private: true,
      dependencies: { 'node-red-contrib-coral-face': `file:${ROOT}` },
    }),
  );
  fs.writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(options.flow, null, 2));
  const settings = {
    uiPort: port,
    uiHost: '127.0.0.1',
    flowFile: 'flows.json',
    credentialSecret: false,
    editorTheme: { tours: false, projects: { enabled: false } },
    logging: { console: { level: 'info' } },
    ...options.settings,
  };
  fs.writeFileSync(path.join(dir, 'settings.js'), `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  const red = require.resolve('node-red/red.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [red, '--userDir', dir, '--settings', path.join(dir, 'settings.js')],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_RED_ENABLE_PROJECTS: 'false' } },
  );
  let output = '';
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!/Started flows/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Node-RED did not start:\n${output.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    dir,
    log: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** A small mosquitto on a free loopback port, anonymous (the HA test has the full one with passwords). */
export async function startMosquitto(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-mqtt-'));
  fs.chmodSync(dir, 0o755);
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  fs.chmodSync(conf, 0o644);
  const proc = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  const net = await import('net');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) break;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`mosquitto did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
