/**
 * Camera passwords in real Node-RED: never run from a URL that would keep
 * them in plain text in flows.json, fill ${password} / ${NAME} placeholders
 * at runtime (masked everywhere), and a wrong password is logged once, not
 * on every retry, with the status saying how often it is retried.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { makeDemoClip } from '../../nodes/core/camera/demo-clip';
import helper, { nodeModule, onTab } from '../helpers/node-red';
import { RtspServer, startRtspServer } from '../helpers/rtsp-server';
import { FACES_DIR } from '../models';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything a node lets out: statuses, log lines, errors, its output messages. */
class Outlet {
  readonly statuses: string[] = [];
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  readonly logs: string[] = [];
  readonly sent: string[] = [];
  constructor(readonly node: any) {
    node.on('call:status', (c: { args: any[] }) => this.statuses.push(String(c.args[0]?.text ?? '')));
    node.on('call:warn', (c: { args: any[] }) => this.warnings.push(String(c.args[0])));
    node.on('call:error', (c: { args: any[] }) => this.errors.push(String(c.args[0]?.message ?? c.args[0])));
    node.on('call:log', (c: { args: any[] }) => this.logs.push(String(c.args[0])));
    node.on('call:send', (c: { args: any[] }) => this.sent.push(JSON.stringify(c.args[0])));
  }

  get all(): string[] {
    return [...this.statuses, ...this.warnings, ...this.errors, ...this.logs, ...this.sent];
  }

  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; statuses: ${[...new Set(this.statuses)].join(' | ')}; errors: ${this.errors.join(' | ')}`,
        );
      await sleep(50);
    }
  }
}

describe('nodes: camera-in passwords', function () {
  this.timeout(180000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-cam-creds-'));
  let rtsp: RtspServer;
  let snapshots: http.Server;
  let snapshotBase: string;
  const passwordsSeen: string[] = [];
  const SNAPSHOT_PASSWORD = 'pa ss&1/é';

  before(async () => {
    await new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve())));
    const dir = path.join(FACES_DIR, 'Tony_Blair');
    const images = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.jpg'))
      .sort()
      .slice(0, 2)
      .map((f) => path.join(dir, f));
    const clip = path.join(tmp, 'clip.mp4');
    await makeDemoClip(images, clip, { secondsPerImage: 1, width: 320, height: 240, fps: 10 });
    rtsp = await startRtspServer({ file: clip, user: 'viewer', password: 'right-pass' });
    // A camera whose snapshot URL takes the password in the query, as many do (?usr=…&pwd=…).
    const jpeg = await sharp(images[0]).jpeg().toBuffer();
    snapshots = http.createServer((req, res) => {
      const pwd = new URL(req.url ?? '/', 'http://x').searchParams.get('pwd');
      passwordsSeen.push(pwd ?? '');
      if (pwd !== SNAPSHOT_PASSWORD) {
        res.writeHead(401, { 'Content-Type': 'text/plain' });
        res.end('401 Unauthorized');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': jpeg.length });
      res.end(jpeg);
    });
    await new Promise<void>((resolve) => snapshots.listen(0, '127.0.0.1', resolve));
    snapshotBase = `http://127.0.0.1:${(snapshots.address() as { port: number }).port}`;
  });

  after(async () => {
    snapshots?.closeAllConnections();
    await new Promise((r) => snapshots?.close(r));
    await rtsp?.stop();
    await new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve())));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  afterEach(async () => {
    delete process.env.CORAL_TEST_CAM_PWD;
    await helper.unload();
  });

  async function load(url: string, credentials?: Record<string, string>): Promise<Outlet> {
    await helper.load(
      [nodeModule('camera-in')],
      onTab([
        {
          id: 'cam',
          type: 'camera-in',
          name: 'door',
          url,
          transport: 'tcp',
          fps: '5',
          maxWidth: '640',
          stallSeconds: '10',
          wires: [[], []],
        },
      ]),
      credentials ? { cam: credentials } : {},
    );
    return new Outlet(helper.getNode('cam'));
  }

  it('a URL with user:password@ or ?pwd= written out is refused with a hint, never started, never echoed', async () => {
    for (const url of [
      `rtsp://viewer:right-pass@127.0.0.1:${rtsp.port}/cam`,
      `${snapshotBase}/snap.jpg?usr=admin&pwd=right-pass`,
    ]) {
      const outlet = await load(url);
      await outlet.until(() => outlet.errors.length > 0, 5000, 'the refusal');
      const node = helper.getNode('cam');
      assert.equal(node.source, undefined, 'no camera source started');
      assert.ok(outlet.statuses.includes('password in URL: use the Password field'), outlet.statuses.join(' | '));
      assert.match(outlet.errors[0], /saves in plain text in flows\.json.*Password field.*\$\{password\}/);
      for (const text of outlet.all) assert.ok(!text.includes('right-pass'), `the password leaked: ${text}`);
      await helper.unload();
    }
  });

  it('${password} in the query takes the Password credential, URL-encoded; ${NAME} an environment variable; both masked', async () => {
    let outlet = await load(`${snapshotBase}/snap.jpg?usr=admin&pwd=\${password}`, {
      user: 'admin',
      password: SNAPSHOT_PASSWORD,
    });
    await outlet.until(() => outlet.statuses.some((s) => / fps$/.test(s)), 30000, 'frames');
    assert.ok(passwordsSeen.includes(SNAPSHOT_PASSWORD), 'the camera got the password, decoded');
    const seen = passwordsSeen.length;
    for (const text of outlet.all)
      assert.ok(
        !text.includes(SNAPSHOT_PASSWORD) && !text.includes(encodeURIComponent(SNAPSHOT_PASSWORD)),
        `leaked: ${text}`,
      );
    await helper.unload();

    process.env.CORAL_TEST_CAM_PWD = SNAPSHOT_PASSWORD;
    outlet = await load(`${snapshotBase}/snap.jpg?pwd=\${CORAL_TEST_CAM_PWD}`);
    await outlet.until(() => outlet.statuses.some((s) => / fps$/.test(s)), 30000, 'frames');
    assert.ok(passwordsSeen.slice(seen).every((p) => p === SNAPSHOT_PASSWORD));
    for (const text of outlet.all) assert.ok(!text.includes(encodeURIComponent(SNAPSHOT_PASSWORD)), `leaked: ${text}`);
    await helper.unload();

    delete process.env.CORAL_TEST_CAM_PWD;
    outlet = await load(`${snapshotBase}/snap.jpg?pwd=\${CORAL_TEST_CAM_PWD}`);
    await outlet.until(() => outlet.statuses.includes('${CORAL_TEST_CAM_PWD} not set'), 5000, 'the missing variable');
    assert.equal(helper.getNode('cam').source, undefined);
  });

  it('a wrong password: one warning, the status says "wrong password · retrying every 30 s", retries 30 s apart', async () => {
    const outlet = await load(rtsp.url, { user: 'viewer', password: 'WRONG-pass-123' });
    const node = helper.getNode('cam');
    const failures: number[] = [];
    node.source.on('state', (e: { state: string; failures: number }) => {
      if (e.state === 'error') failures.push(e.failures);
    });
    await outlet.until(
      () => outlet.statuses.includes('wrong password · retrying every 30 s'),
      20000,
      'the wrong-password status',
    );
    await outlet.until(() => failures.length >= 1 && outlet.warnings.length >= 1, 5000, 'the first warning');
    // The next attempt comes 30 s later; meanwhile (and after it) nothing more is logged.
    await sleep(33000);
    assert.ok(failures.includes(2), `failures seen: ${failures.join(', ')}`);
    assert.equal(outlet.warnings.length, 1, outlet.warnings.join(' | '));
    assert.match(outlet.warnings[0], /^door: wrong user or password; retrying every 30 s$/);
    // The status stayed on the problem through the retry (no "connecting…" flashing in between).
    const afterFirst = outlet.statuses.slice(outlet.statuses.indexOf('wrong password · retrying every 30 s'));
    assert.ok(!afterFirst.includes('connecting…'), afterFirst.join(' | '));
    for (const text of outlet.all) assert.ok(!text.includes('WRONG-pass-123'));
  });
});
