/**
 * Runs the app's start script (addon/rootfs/usr/bin/coral-face-start) for
 * real in a temporary root: /data, the Supervisor URL, the generate.js folder,
 * the package folder (this checkout), the port and the libedgetpu1-max folder
 * come from env overrides, and a fake
 * `node-red` first on PATH records the argv and environment it was exec'd
 * with, then exits.
 */
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const ADDON = path.join(ROOT, 'addon');
export const START_SCRIPT = path.join(ADDON, 'rootfs', 'usr', 'bin', 'coral-face-start');
export const LIB_DIR = path.join(ADDON, 'rootfs', 'usr', 'lib', 'coral-face');

export interface NodeRedRecord {
  argv: string[];
  env: Record<string, string | undefined>;
}

export interface RunResult {
  status: number | null;
  stderr: string;
  record: NodeRedRecord | null;
}

export class Sandbox {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-face-app-'));
  readonly data = path.join(this.root, 'data');
  readonly bin = path.join(this.root, 'bin');
  readonly maxDir = path.join(this.root, 'opt', 'libedgetpu-max');
  readonly userDir = path.join(this.data, 'node-red');
  readonly flowsFile = path.join(this.userDir, 'flows.json');
  readonly credFile = path.join(this.userDir, 'flows_cred.json');
  readonly settingsFile = path.join(this.userDir, 'settings.js');
  readonly secretFile = path.join(this.data, 'coral-face', 'credential-secret');
  private readonly recordFile = path.join(this.root, 'node-red-record.json');

  constructor() {
    fs.mkdirSync(this.data, { recursive: true });
    fs.mkdirSync(this.bin, { recursive: true });
    const fake = [
      `#!${process.execPath}`,
      "// Fake node-red: records how coral-face-start exec'd it.",
      "const keys = ['CORAL_EDGETPU_LIBRARY', 'CORAL_FACE_MQTT', 'NODE_RED_DISABLE_TELEMETRY', 'SUPERVISOR_TOKEN'];",
      'const env = Object.fromEntries(keys.map((k) => [k, process.env[k]]));',
      `require('fs').writeFileSync(${JSON.stringify(this.recordFile)}, JSON.stringify({ argv: process.argv.slice(2), env }));`,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(this.bin, 'node-red'), fake, { mode: 0o755 });
  }

  writeOptions(options: unknown): void {
    fs.writeFileSync(path.join(this.data, 'options.json'), JSON.stringify(options, null, 2));
  }

  /** Runs the start script; async, so a stand-in server in this process can answer it. */
  async run(env: Record<string, string | undefined> = {}): Promise<RunResult> {
    fs.rmSync(this.recordFile, { force: true });
    const cleanEnv: Record<string, string> = {
      PATH: `${this.bin}${path.delimiter}${process.env.PATH ?? ''}`,
      HOME: this.root,
      LANG: 'C.UTF-8',
    };
    const all = {
      CORAL_FACE_DATA: this.data,
      CORAL_FACE_LIB: LIB_DIR,
      // The package generate.js takes the camera chain from: this checkout, built.
      CORAL_FACE_PACKAGE: ROOT,
      CORAL_FACE_PORT: '1880',
      CORAL_FACE_EDGETPU_MAX_DIR: this.maxDir,
      ...env,
    };
    for (const [k, v] of Object.entries(all)) if (v !== undefined) cleanEnv[k] = v;
    const child = spawn('bash', [START_SCRIPT], { env: cleanEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    const status = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code));
    }).finally(() => clearTimeout(timer));
    const record = fs.existsSync(this.recordFile)
      ? (JSON.parse(fs.readFileSync(this.recordFile, 'utf8')) as NodeRedRecord)
      : null;
    return { status, stderr, record };
  }

  flows(): Record<string, any>[] {
    return JSON.parse(fs.readFileSync(this.flowsFile, 'utf8'));
  }

  writeFlows(flows: unknown[]): void {
    fs.writeFileSync(this.flowsFile, JSON.stringify(flows, null, 4));
  }

  secret(): string {
    return fs.readFileSync(this.secretFile, 'utf8').trim();
  }

  /** Decrypts flows_cred.json independently of the app's code (Node-RED's format). */
  credentials(): Record<string, Record<string, string>> {
    const stored = JSON.parse(fs.readFileSync(this.credFile, 'utf8'));
    const key = crypto.createHash('sha256').update(this.secret()).digest();
    const decipher = crypto.createDecipheriv('aes-256-ctr', key, Buffer.from(stored.$.slice(0, 32), 'hex'));
    return JSON.parse(decipher.update(stored.$.slice(32), 'base64', 'utf8') + decipher.final('utf8'));
  }

  /** Writes credentials the way a Node-RED deploy would. */
  writeCredentials(credentials: unknown): void {
    const key = crypto.createHash('sha256').update(this.secret()).digest();
    const iv = crypto.randomBytes(16);
    const cipher = crypto.createCipheriv('aes-256-ctr', key, iv);
    const body = cipher.update(JSON.stringify(credentials), 'utf8', 'base64') + cipher.final('base64');
    fs.writeFileSync(this.credFile, JSON.stringify({ $: iv.toString('hex') + body }));
  }

  /** Fake libedgetpu1-max unpacked the way the image does (dpkg-deb -x). */
  fakeMaxRuntime(): string {
    const dir = path.join(this.maxDir, 'usr', 'lib', 'x86_64-linux-gnu');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'libedgetpu.so.1.0'), 'not a real library');
    fs.symlinkSync('libedgetpu.so.1.0', path.join(dir, 'libedgetpu.so.1'));
    return path.join(dir, 'libedgetpu.so.1');
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** The id generate.js gives an owned node (sha256 of role and camera id, 16 hex). */
export function ownedId(role: string, camera = ''): string {
  return crypto.createHash('sha256').update(`coral-face:${role}:${camera}`).digest('hex').slice(0, 16);
}
