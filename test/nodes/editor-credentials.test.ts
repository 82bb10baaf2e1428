/**
 * The camera-in edit dialog in a real Node-RED editor, in a real (headless)
 * Chromium: a password typed into the URL moves into the credential fields,
 * and after Deploy flows.json holds no password. Skipped, saying why, where
 * Chromium is not installed.
 */
import { strict as assert } from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { Chromium, findChromium } from '../helpers/chromium';
import { findRepoRoot } from '../helpers/fake-edgetpu';
import { freePort } from '../helpers/rtsp-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('editor: camera URL passwords move into the credentials (Chromium)', function () {
  this.timeout(240000);
  const chromium = findChromium();
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-editor-'));
  let nodeRed: ChildProcess | undefined;
  let output = '';
  let base = '';
  let browser: Chromium | undefined;

  before(async function () {
    if (!chromium) {
      console.warn('      skipping: no Chromium (apt-get install chromium, or set CHROMIUM_PATH)');
      this.skip();
    }
    // Node-RED with this package installed in its userDir, as a user would have it.
    fs.mkdirSync(path.join(userDir, 'node_modules'));
    fs.symlinkSync(findRepoRoot(), path.join(userDir, 'node_modules', 'node-red-contrib-coral-face'), 'dir');
    const port = await freePort();
    fs.writeFileSync(
      path.join(userDir, 'settings.js'),
      `module.exports = ${JSON.stringify({
        uiHost: '127.0.0.1',
        uiPort: port,
        flowFile: 'flows.json',
        credentialSecret: 'editor-test-secret',
        telemetry: { enabled: false },
        editorTheme: { tours: false },
        logging: { console: { level: 'info' } },
      })};\n`,
    );
    nodeRed = spawn(
      process.execPath,
      [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    nodeRed.stdout!.on('data', (d) => (output += d));
    nodeRed.stderr!.on('data', (d) => (output += d));
    base = `http://127.0.0.1:${port}/`;
    const deadline = Date.now() + 90000;
    for (;;) {
      const nodes = await get(`${base}nodes`).catch(() => ({ status: 0, body: '' }));
      if (nodes.status === 200 && nodes.body.includes('camera-in')) break;
      if (Date.now() > deadline || nodeRed.exitCode !== null)
        throw new Error(`Node-RED did not come up with camera-in:\n${output}`);
      await sleep(300);
    }
    browser = await Chromium.launch(chromium);
    await browser.navigate(base);
    await browser.waitFor(
      "window.RED && RED.nodes && RED.nodes.getType && RED.nodes.getType('camera-in') && window.coralFaceUrlSecrets && $('#red-ui-header-button-deploy').length",
      90000,
      'the editor with camera-in',
    );
  });

  after(async () => {
    await browser?.close();
    if (nodeRed && nodeRed.exitCode === null) {
      const exited = new Promise((r) => nodeRed!.once('exit', r));
      nodeRed.kill('SIGTERM');
      const timer = setTimeout(() => nodeRed!.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  /** Adds a camera-in node, opens its dialog, runs `fill` (page code), clicks Done; returns the fields seen before Done. */
  async function editNew(
    name: string,
    fill: string,
  ): Promise<{ url: string; user: string; password: string; note: string }> {
    const b = browser!;
    await b.evaluate(`(() => {
      RED.view.importNodes([{ id: 'cam-${name}', type: 'camera-in', name: '${name}', url: '', transport: 'tcp', fps: '5',
        maxWidth: '1280', stallSeconds: '10', x: 200, y: 100, z: RED.workspaces.active(), wires: [[], []] }]);
      RED.editor.edit(RED.nodes.node('cam-${name}'));
    })()`);
    await b.waitFor(
      "$('#node-input-url').is(':visible') && $('#node-dialog-ok').is(':visible')",
      20000,
      'the edit dialog',
    );
    await b.evaluate(`void (${fill})`);
    await sleep(100);
    const fields = await b.evaluate<{ url: string; user: string; password: string; note: string }>(`({
      url: $('#node-input-url').val(), user: $('#node-input-user').val(), password: $('#node-input-password').val(),
      note: $('#camera-in-url-note').is(':visible') ? $('#camera-in-url-note').text() : '' })`);
    await b.evaluate("void $('#node-dialog-ok').click()");
    await b.waitFor("!$('#node-dialog-ok').is(':visible')", 20000, 'the dialog to close');
    return fields;
  }

  it('user:password@ typed into the URL, and ?pwd= saved as ${password}: flows.json holds neither password', async () => {
    // Typed, then the field loses focus: 'change'.
    const typed = await editNew(
      'door',
      "$('#node-input-url').val('rtsp://admin:hunter%232@127.0.0.1:9/stream1').trigger('change')",
    );
    assert.deepEqual([typed.url, typed.user, typed.password], ['rtsp://127.0.0.1:9/stream1', 'admin', 'hunter#2']);
    assert.match(typed.note, /Moved the password from the URL into the Password field/);
    // Pasted, and Done at once: the dialog's save moves it.
    const saved = await editNew(
      'snap',
      "$('#node-input-url').val('http://127.0.0.1:9/cgi-bin/snapshot.cgi?usr=admin&pwd=s3cret-snap')",
    );
    assert.equal(
      saved.url,
      'http://127.0.0.1:9/cgi-bin/snapshot.cgi?usr=admin&pwd=s3cret-snap',
      'not moved before Done',
    );

    const browserSide = browser!;
    await browserSide.evaluate("void $('#red-ui-header-button-deploy').click()");
    await browserSide.waitFor('!RED.nodes.dirty()', 30000, 'the deploy');
    const deadline = Date.now() + 20000;
    while (!fs.existsSync(path.join(userDir, 'flows.json')) && Date.now() < deadline) await sleep(200);

    const flows = fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8');
    for (const secret of ['hunter', 's3cret-snap'])
      assert.ok(!flows.includes(secret), `${secret} in flows.json:\n${flows}`);
    const cameras = (JSON.parse(flows) as { type: string; name: string; url: string }[]).filter(
      (n) => n.type === 'camera-in',
    );
    assert.deepEqual(cameras.map((c) => [c.name, c.url]).sort(), [
      ['door', 'rtsp://127.0.0.1:9/stream1'],
      ['snap', 'http://127.0.0.1:9/cgi-bin/snapshot.cgi?usr=admin&pwd=${password}'],
    ]);
    const credentials = fs.readFileSync(path.join(userDir, 'flows_cred.json'), 'utf8');
    for (const secret of ['hunter', 's3cret-snap', 'admin'])
      assert.ok(!credentials.includes(secret), 'credentials are encrypted');
    for (const [name, user] of [
      ['door', 'admin'],
      ['snap', ''],
    ]) {
      const stored = JSON.parse((await get(`${base}credentials/camera-in/cam-${name}`)).body) as {
        user?: string;
        has_password?: boolean;
      };
      assert.deepEqual([stored.user ?? '', stored.has_password], [user, true], name);
    }
    // Deployed, the cameras start (they are unreachable here): no refusal for a password in the URL.
    await sleep(1500);
    assert.doesNotMatch(output, /carries a password or token/);
  });
});
