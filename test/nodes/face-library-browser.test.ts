/**
 * The face library page in a real browser (Debian's Chromium driven by playwright-core; no browser
 * download) against a real Node-RED started by `coral-face demo` (the command behind `npm start`)
 * with the demo flow, plus ha-face-entities on a real mosquitto: the demo clip's strangers become
 * unknown groups; one is named on the page, its next visit is recognised by name and Home Assistant
 * gets the event; photos are uploaded with a bad file among them; "not X", ignore and forget are
 * done on the page; with adminAuth set, the page asks for a login. Screenshots of the main views go
 * to test/artifacts/face-library/ (gitignored).
 */
import { strict as assert } from 'assert';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { connectAsync, type MqttClient } from 'mqtt';
import { demoFlow } from '../../nodes/tools/flows';
import { freePort } from '../helpers/rtsp-server';
import { startMosquitto, startNodeRed } from '../helpers/node-red-process';
import { FACES_DIR } from '../models';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { chromium } = require('playwright-core') as typeof import('playwright-core');
type Page = import('playwright-core').Page;
type Browser = import('playwright-core').Browser;

const CHROMIUM = '/usr/bin/chromium';
const ROOT = path.resolve(__dirname, '..', '..', '..');
const ARTIFACTS = path.join(ROOT, 'test', 'artifacts', 'face-library');
const MAIN = path.join(ROOT, 'build', 'nodes', 'tools', 'cli', 'main.js');

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

describe('nodes: face library page in Chromium, on the demo', function () {
  this.timeout(600000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-library-demo-'));
  let demo: ChildProcess;
  let output = '';
  let base = '';
  let browser: Browser;
  let page: Page;
  let mosquitto: Awaited<ReturnType<typeof startMosquitto>>;
  let ha: MqttClient;
  const events: { topic: string; payload: any }[] = [];

  const shot = async (name: string, target: Page = page) => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // The faces on screen, decoded (lazy images below the fold do not count).
    await target
      .waitForFunction(
        'Array.from(document.images).filter((i) => i.getBoundingClientRect().top < innerHeight && !i.src.includes("live.mjpeg")).every((i) => i.complete)',
        null,
        { timeout: 10_000 },
      )
      .catch(() => undefined);
    await target.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: false });
  };
  const tab = async (label: string) => {
    await page.getByRole('button', { name: label, exact: true }).click();
  };

  before(async function () {
    if (!fs.existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
    mosquitto = await startMosquitto();
    ha = await connectAsync(mosquitto.url, { clientId: 'home-assistant-test' });
    await ha.subscribeAsync('coral-face/#');
    ha.on('message', (topic, payload) => {
      if (!/\/(event|trigger\/.+)$/.test(topic)) return;
      try {
        events.push({ topic, payload: JSON.parse(payload.toString()) });
      } catch {
        /* not ours */
      }
    });
    // The demo flow as `coral-face demo` writes it, with Home Assistant wired to the visits.
    const port = await freePort();
    const flow = demoFlow(path.join(dir, 'demo.mp4'), path.join(dir, 'gallery'));
    const classify = flow.find((n) => n.type === 'imprint-classify')! as unknown as { wires: string[][] };
    classify.wires[0].push('demo-ha');
    flow.push({
      id: 'demo-ha',
      type: 'ha-face-entities',
      z: 'demo',
      x: 900,
      y: 400,
      name: '',
      broker: mosquitto.url,
      caFile: '',
      rejectUnauthorized: true,
      discoveryPrefix: 'homeassistant',
      baseTopic: 'coral-face',
      camera: '',
      deviceId: '',
      gallery: 'demo-gallery',
      offDelay: '',
      retainImage: true,
      wires: [],
    });
    fs.writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(flow, null, 2));
    demo = spawn(process.execPath, [MAIN, 'demo', '--dir', dir, '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo.stdout!.on('data', (d) => {
      output += d;
    });
    demo.stderr!.on('data', (d) => {
      output += d;
    });
    const deadline = Date.now() + 180_000;
    while (!/Started flows/.test(output)) {
      if (demo.exitCode !== null || Date.now() > deadline)
        throw new Error(`the demo did not start:\n${output.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    base = `http://127.0.0.1:${port}/`;
    browser = await launchChromium();
    // bypassCSP only for the test's own probes (waitForFunction evaluates strings); the page is unchanged.
    page = await browser.newPage({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', bypassCSP: true });
    page.on('dialog', (dialog) => void dialog.accept(dialog.type() === 'prompt' ? (pendingPrompt ?? '') : undefined));
  });
  let pendingPrompt: string | null = null;
  afterEach(async function () {
    // A failed step leaves its picture and the page's text behind, to see what the user saw.
    if (this.currentTest?.state === 'failed' && page) {
      await shot(`failed-${this.currentTest.title.slice(0, 40).replace(/[^a-z0-9]+/gi, '-')}`).catch(() => undefined);
      process.stdout.write(
        `page text: ${(
          await page
            .locator('main')
            .innerText()
            .catch(() => '')
        ).slice(0, 1500)}\n`,
      );
    }
  });

  after(async () => {
    await browser?.close();
    if (demo && demo.exitCode === null) {
      const exited = new Promise((resolve) => demo.once('exit', resolve));
      demo.kill('SIGINT');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15000))]);
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
    await ha?.endAsync();
    await mosquitto?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows the demo strangers, grouped; naming one makes its next visit recognised and Home Assistant gets the event', async () => {
    await page.goto(`${base}coral-face/`);
    await page.locator('li.visit').first().waitFor({ timeout: 120_000 });
    await shot('recent-faces-light');
    await tab('Unknown people');
    // A group with two visits: the same face on two loops of the clip.
    const group = page
      .locator('li.cluster')
      .filter({ hasText: /\b([2-9]|\d\d+) visit\(s\)/ })
      .first();
    await group.waitFor({ timeout: 180_000 });
    await shot('unknown-people-light');
    await group.getByLabel('Name').fill('Bob');
    await group.getByRole('button', { name: 'Name as new person' }).click();
    await page.getByText(/face\(s\) enrolled as Bob/).waitFor({ timeout: 60_000 });

    await tab('Recent faces');
    await page.getByLabel('Who').selectOption('Bob');
    const bob = page.locator('li.visit[data-kind="recognized"]', { hasText: 'Bob' }).first();
    await bob.waitFor({ timeout: 120_000 });
    await shot('recent-faces-recognised');
    const deadline = Date.now() + 30_000;
    while (!events.some((e) => e.payload.event_type === 'Bob') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    const event = events.find((e) => e.topic === 'coral-face/demo/event' && e.payload.event_type === 'Bob');
    assert.ok(event, `HA event for Bob: ${JSON.stringify(events.map((e) => [e.topic, e.payload.event_type]))}`);
    assert.equal(event.payload.event, 'recognized');
    assert.ok(
      events.some((e) => e.topic === 'coral-face/demo/trigger/person/bob'),
      'Bob got a device trigger',
    );
  });

  it('"Not Bob" on a recognised visit turns it back into a stranger', async () => {
    const bob = page.locator('li.visit[data-kind="recognized"]', { hasText: 'Bob' }).first();
    const id = await bob.getAttribute('data-visit');
    await bob.getByRole('button', { name: 'Not Bob' }).click();
    await page.getByText(/Noted: this is not Bob/).waitFor();
    await page.getByLabel('Who').selectOption('');
    await page.locator(`li.visit[data-visit="${id}"][data-kind="unknown"]`).waitFor();
    const person = await (await fetch(`${base}coral-face/api/people/bob`)).json();
    assert.equal(person.negatives.length, 1);
  });

  it('uploads photos with a bad file among them and shows per photo what was accepted and why not', async () => {
    await tab('People');
    await page.getByLabel("New person's name").fill('Tony');
    const dirOf = path.join(FACES_DIR, 'Tony_Blair');
    const files = fs
      .readdirSync(dirOf)
      .filter((f) => f.endsWith('.jpg'))
      .sort()
      .slice(0, 4)
      .map((f) => path.join(dirOf, f));
    const bad = path.join(dir, 'holiday-notes.jpg');
    fs.writeFileSync(bad, 'not a photo at all');
    await page.getByLabel('Photos').setInputFiles([...files.slice(0, 2), bad, ...files.slice(2)]);
    const report = page.locator('.report', { hasText: 'holiday-notes.jpg' });
    await report.waitFor({ timeout: 120_000 });
    assert.match(await report.innerText(), /Saved\./);
    assert.match(
      await report.locator('li', { hasText: 'holiday-notes.jpg' }).innerText(),
      /rejected .*(not an image|could not be decoded)/,
    );
    assert.equal(await report.locator('li.ok').count(), 4);
    await shot('people-upload-report');
  });

  it('ignores a stranger group: recognised as ignored, an "ignored" event in HA, no trigger', async () => {
    await tab('Unknown people');
    // A group of someone already enrolled (Bob, seen before he was named) is refused, rightly: take the next.
    const groups = page.locator('li.cluster');
    await groups.first().waitFor({ timeout: 120_000 });
    // The button follows the gallery's name rule: "  BOB_" is Bob, so it offers to add to him.
    await groups.first().getByLabel('Name').fill('  BOB_');
    await groups.first().getByRole('button', { name: 'Add to Bob' }).waitFor();
    await groups.first().getByLabel('Name').fill('');
    let enrolled = false;
    const refusals: string[] = [];
    for (let i = 0; i < (await groups.count()) && !enrolled; i++) {
      const group = groups.nth(i);
      await group.getByLabel('Name').fill('Postman');
      await group.getByRole('button', { name: 'Ignore as this name' }).click();
      const done = page.getByText(/enrolled as Postman \(ignored\)/);
      await done
        .or(group.getByText(/Not enrolled/))
        .first()
        .waitFor({ timeout: 60_000 });
      enrolled = await done.isVisible();
      if (!enrolled) refusals.push(await group.innerText());
    }
    assert.ok(enrolled, `no group could be enrolled as Postman:\n${refusals.join('\n')}`);
    assert.ok(
      refusals.every((r) => /already in the gallery/.test(r)),
      refusals.join('\n'),
    );
    await tab('Recent faces');
    await page.getByLabel('Who').selectOption('ignored');
    await page.locator('li.visit[data-kind="ignored"]').first().waitFor({ timeout: 120_000 });
    const deadline = Date.now() + 30_000;
    while (!events.some((e) => e.payload.event === 'ignored') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    const ignored = events.find((e) => e.payload.event === 'ignored');
    assert.ok(ignored, 'an ignored event');
    assert.equal(ignored.topic, 'coral-face/demo/event');
    assert.equal(ignored.payload.event_type, 'ignored');
    assert.equal(ignored.payload.name, 'Postman');
    assert.ok(
      !events.some((e) => /trigger\/person\/postman$/.test(e.topic)),
      'no person trigger for an ignored person',
    );
  });

  it('health, live and settings render; dark theme; then forget Bob after confirming', async () => {
    await tab('Health');
    await page.locator('.chart canvas').first().waitFor({ timeout: 120_000 });
    await page.locator('table.health tbody tr').first().waitFor();
    await shot('health-light');
    await tab('Live');
    await page.locator('figure.live img').first().waitFor();
    await page.waitForTimeout(2500);
    await shot('live-light');
    await tab('Settings');
    await page.getByText('Keep face images').waitFor();
    const dark = await browser.newPage({
      viewport: { width: 1280, height: 860 },
      colorScheme: 'dark',
      bypassCSP: true,
    });
    await dark.goto(`${base}coral-face/#unknown`);
    await dark.locator('li.cluster, p.empty').first().waitFor({ timeout: 60_000 });
    const background = await dark.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(background, 'rgb(17, 17, 17)', 'dark theme follows the system');
    await shot('unknown-people-dark', dark);
    await dark.goto(`${base}coral-face/#health`);
    await dark.locator('.chart canvas').first().waitFor({ timeout: 60_000 });
    await shot('health-dark', dark);
    // Face-free views for README (no face image leaves the test machine).
    await dark.addStyleTag({ content: 'img { visibility: hidden !important; }' });
    await shot('readme-health', dark);
    await dark.close();

    await tab('People');
    await page.getByRole('button', { name: 'Bob', exact: true }).click();
    pendingPrompt = 'Bob';
    await page.getByRole('button', { name: 'Forget…' }).click();
    await page.locator('section[aria-label="People"]').waitFor();
    pendingPrompt = null;
    assert.equal((await fetch(`${base}coral-face/api/people/bob`)).status, 404);
    assert.equal(fs.existsSync(path.join(dir, 'gallery', 'people', 'bob')), false);
  });

  it("asks for a login when adminAuth is set, and works with the editor's token, under another httpAdminRoot", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const bcrypt = require('bcryptjs') as { hashSync(text: string, rounds: number): string };
    const red = await startNodeRed({
      flow: [
        {
          id: 'gal',
          type: 'face-gallery',
          name: 'people',
          path: path.join(dir, 'auth-gallery'),
          threshold: '',
          margin: '',
          device: 'dev',
        },
        { id: 'dev', type: 'edgetpu-device', device: 'cpu', performance: 'high', model: '', threads: '' },
      ],
      // Not at the root: the page's URLs are relative, as behind Home Assistant's ingress.
      settings: {
        httpAdminRoot: '/admin/',
        adminAuth: {
          type: 'credentials',
          users: [{ username: 'admin', password: bcrypt.hashSync('pw-123456', 8), permissions: '*' }],
        },
      },
    });
    const admin = `${red.url}admin/`;
    try {
      const guest = await browser.newPage();
      await guest.goto(`${admin}coral-face`); // without the slash: redirected to it
      await guest.getByText(/Log in first/).waitFor();
      await shot('login-required', guest);
      assert.equal(guest.url().split('#')[0], `${admin}coral-face/`);
      const token = await (
        await fetch(`${admin}auth/token`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            client_id: 'node-red-admin',
            grant_type: 'password',
            scope: '*',
            username: 'admin',
            password: 'pw-123456',
          }),
        })
      ).json();
      // What the editor stores after its login form (same origin, so the page reads it).
      await guest.evaluate((t) => localStorage.setItem('auth-tokens', JSON.stringify(t)), token);
      await guest.reload();
      await guest
        .getByText(/Nobody enrolled yet|No visits yet/)
        .first()
        .waitFor({ timeout: 30_000 });
      assert.equal(await guest.getByText(/Log in first/).count(), 0);
      assert.equal(await guest.getByRole('link', { name: 'Node-RED editor' }).getAttribute('href'), '../');
      await guest.close();
    } finally {
      await red.stop();
    }
  });
});
