/**
 * The demo as a new user meets it: `coral-face demo` (what `npm start` runs)
 * in a fresh dir, the editor opened in a real headless Chromium (Debian's
 * chromium, driven by playwright-core), the camera's live view opened, the
 * walk-up inject clicked in the editor, and a `recognized` Alice arriving in
 * the debug sidebar. Screenshots of the editor, the live view and the debug
 * sidebar go to test/artifacts/ (git ignores it) for a person to look at.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../helpers/rtsp-server';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'build', 'nodes', 'tools', 'cli', 'main.js');
const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');
const CHROMIUM = '/usr/bin/chromium';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

interface DebugMessage {
  name?: string;
  msg?: string;
  format?: string;
}

describe('the demo in a browser: walk-up, then recognized', function () {
  // Clip, Node-RED, models, a 20 s walk-up and up to a loop more: minutes on a busy machine.
  this.timeout(900000);
  let demo: ChildProcess | null = null;
  let output = '';
  let browser: Browser | null = null;
  let page: Page;
  let port: number;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-demo-e2e-'));

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    port = await freePort();
    demo = spawn(process.execPath, [CLI, 'demo', '--port', String(port), '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo.stdout!.on('data', (d) => {
      output += d;
    });
    demo.stderr!.on('data', (d) => {
      output += d;
    });
    await until('the editor URL', async () => output.includes(`editor: http://127.0.0.1:${port}/`), 300000);
    await until('Node-RED to answer', async () => (await fetch(`http://127.0.0.1:${port}/flows`)).ok, 300000);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (demo && demo.exitCode === null) {
      demo.kill('SIGINT');
      await Promise.race([new Promise((r) => demo!.once('exit', r)), sleep(10000)]);
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
    fs.writeFileSync(path.join(ARTIFACTS, 'demo-output.log'), output);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('opens the editor without dialogs, shows the live view, enrols Alice by walk-up and recognizes her', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#demo-walkup', { timeout: 120000 });
    // Collect what the debug sidebar receives, from the editor's own connection.
    await page.evaluate(() => {
      const w = window as unknown as { RED: any; debugMessages: unknown[] };
      w.debugMessages = [];
      w.RED.comms.subscribe('debug', (_topic: string, msg: unknown) => {
        w.debugMessages.push(msg);
      });
    });
    // No "Enable update notifications?" (or any other) notification on a first load.
    await sleep(3000);
    assert.equal(await page.locator('.red-ui-notification').count(), 0, 'a notification was shown on the first load');
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-editor.png') });

    // The live view inside the camera node's dialog, with boxes on faces.
    await page.dblclick('#demo-camera');
    await page.waitForSelector('img[src*="live.mjpeg"]', { timeout: 60000 });
    await sleep(6000);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-live-view.png') });
    await page.click('#node-dialog-cancel');

    // The walk-up inject, clicked as a user does.
    await page.evaluate(() => (window as unknown as { RED: any }).RED.sidebar.show('debug'));
    await page.click('#demo-walkup .red-ui-flow-node-button');
    const messages = async () =>
      page.evaluate(() => (window as unknown as { debugMessages: DebugMessage[] }).debugMessages);
    const report = await until(
      'the enrolment report',
      async () => (await messages()).find((m) => m.name === 'enrolment report'),
      240000,
    );
    const result = JSON.parse(report.msg!);
    assert.equal(result.ok, true, report.msg);
    assert.equal(result.name, 'Alice');
    assert.equal(result.people, 1);
    const seen = await until(
      'a recognized Alice',
      async () =>
        (await messages())
          .filter((m) => m.name === 'visits')
          .map((m) => JSON.parse(m.msg!))
          .find((v) => v.event === 'recognized'),
      240000,
    );
    assert.equal(seen.name, 'Alice');
    await sleep(1500);
    // The newest messages are at the bottom of the sidebar.
    await page.evaluate(() =>
      document.querySelectorAll('.red-ui-debug-content').forEach((el) => {
        el.scrollTop = el.scrollHeight;
      }),
    );
    await sleep(500);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-debug-sidebar.png') });
    // The sidebar shows visits and the report only: no per-frame flood.
    const names = new Set((await messages()).map((m) => m.name));
    assert.deepEqual([...names].sort(), ['enrolment report', 'visits']);
  });

  it('refuses a second demo on the same port before printing a URL, and says --port', async () => {
    const second = spawn(process.execPath, [CLI, 'demo', '--port', String(port), '--dir', path.join(dir, 'second')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    second.stdout.on('data', (d) => {
      text += d;
    });
    second.stderr.on('data', (d) => {
      text += d;
    });
    const code = await new Promise((r) => second.once('exit', r));
    assert.equal(code, 1);
    assert.doesNotMatch(text, /editor: http/);
    assert.match(text, new RegExp(`port ${port} is in use.*--port`));
  });
});
