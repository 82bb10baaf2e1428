/**
 * `npm run bench:face-library`: the face library's figures, printed (a command, not a test).
 *
 * - Storage per visit, with face images and without (embeddings only).
 * - Clustering cost per unknown visit, with the number of clusters it ends with.
 * - Opening a store of N visits (what Node-RED does at the first visit after a start).
 * - Page load with N stored visits (N = 10 and 10,000 by default): a real Node-RED with the
 *   plugin, the API's response times (first page, a deep page, clusters, people), and in Chromium
 *   the time from navigation to the first page of faces rendered with their images.
 *
 * Crops and embeddings are real (dev photos through the pipeline), reused in turn: strangers are
 * the dev identities, each seen many times with its own photos, so the clusters are realistic.
 * Usage: node build/test/bench/face-library.js [--visits 10000] [--no-browser]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Gallery } from '../../nodes/core/gallery/gallery';
import { UnknownClusters } from '../../nodes/core/library/clusters';
import { VisitStore, type VisitInput } from '../../nodes/core/library/visit-store';
import { encodeJpeg } from '../../nodes/core/media/decode';
import { startNodeRed } from '../helpers/node-red-process';
import { disposeSharedPipeline, facesOf, identities, type Face } from '../core/library/faces';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const VISITS = flag('visits', 10_000);
const BROWSER = !args.includes('--no-browser');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(full) : fs.statSync(full).size;
  }
  return total;
}

async function fill(dir: string, faces: Face[], jpegs: Buffer[], count: number, keepImages: boolean): Promise<void> {
  const store = await VisitStore.open(dir, { maxVisits: Math.max(count, 10), keepImages });
  const start = Date.now() - count * 1000;
  for (let i = 0; i < count; i++) {
    const k = i % faces.length;
    const input: VisitInput = {
      time: start + i * 1000,
      camera: i % 3 ? 'front_door' : 'garden',
      kind: 'unknown',
      name: 'unknown',
      personId: null,
      reason: 'below-threshold',
      closest: null,
      cosine: 0.2,
      margin: null,
      trackId: `front_door-${i}`,
      box: { x: 100, y: 80, width: 120, height: 150 },
      quality: { sharpness: faces[k].sharpness, yawDeg: faces[k].yawDeg },
      embedding: faces[k].embedding,
      crop: jpegs[k],
    };
    await store.add(input);
  }
  await store.flush();
}

async function main(): Promise<void> {
  const people = identities().slice(0, 24);
  const faces: Face[] = [];
  for (const person of people) faces.push(...(await facesOf(person, 5)));
  const jpegs = await Promise.all(faces.map((f) => encodeJpeg(f.crop, 92)));
  await disposeSharedPipeline();
  process.stdout.write(
    `face library figures (${faces.length} real crops of ${people.length} people, reused in turn; timings are on this machine, noisy)\n\n`,
  );

  // Storage per visit.
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-bench-library-'));
  const sample = 2000;
  for (const keepImages of [true, false]) {
    const dir = path.join(work, `store-${keepImages}`);
    await fill(dir, faces, jpegs, sample, keepImages);
    const bytes = folderBytes(dir);
    process.stdout.write(
      `storage per visit, face images ${keepImages ? 'on ' : 'off'}: ${(bytes / sample / 1024).toFixed(2)} KB ` +
        `(${sample} visits: ${(bytes / 1024 / 1024).toFixed(1)} MB; ${(((bytes / sample) * 10_000) / 1024 / 1024).toFixed(0)} MB per 10,000)\n`,
    );
  }

  // Clustering cost per unknown visit.
  const clusters = new UnknownClusters();
  const order = Array.from({ length: VISITS }, (_, i) => faces[(i * 7919) % faces.length]);
  const t0 = process.hrtime.bigint();
  order.forEach((face, i) => clusters.add(`v${i}`, face.embedding, i));
  const perVisitUs = Number(process.hrtime.bigint() - t0) / 1000 / VISITS;
  process.stdout.write(
    `clustering: ${perVisitUs.toFixed(1)} µs per unknown visit on average over ${VISITS} visits ` +
      `(${clusters.size} clusters for ${people.length} people, 192-d embeddings)\n`,
  );

  // Store open and page load, for 10 and VISITS visits.
  for (const count of [10, VISITS]) {
    const galleryDir = path.join(work, `gallery-${count}`);
    await Gallery.open(galleryDir, { create: true });
    await fill(path.join(galleryDir, 'library', 'visits'), faces, jpegs, count, true);
    const opened: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      await VisitStore.open(path.join(galleryDir, 'library', 'visits'), { maxVisits: Math.max(count, 10) });
      opened.push(Date.now() - t);
    }
    fs.mkdirSync(path.join(galleryDir, 'library'), { recursive: true });
    fs.writeFileSync(
      path.join(galleryDir, 'library', 'settings.json'),
      JSON.stringify({
        format: 'coral-face-library-settings',
        version: 1,
        visits: { maxVisits: Math.max(count, 10), maxAgeDays: 3650, keepImages: true },
        recognition: {},
      }),
    );
    const red = await startNodeRed({
      flow: [
        { id: 'dev', type: 'edgetpu-device', device: 'cpu', performance: 'high', model: '', threads: '' },
        { id: 'gal', type: 'face-gallery', name: 'people', path: galleryDir, threshold: '', margin: '', device: 'dev' },
      ],
    });
    try {
      const timed = async (route: string) => {
        const times: number[] = [];
        let body: any;
        for (let i = 0; i < 5; i++) {
          const t = performance.now();
          body = await (await fetch(`${red.url}coral-face/api/${route}`)).json();
          times.push(performance.now() - t);
        }
        return { ms: median(times.slice(1)), body };
      };
      const first = await timed('visits?limit=48');
      let cursor = first.body.next as string | null;
      for (let page = 0; page < 50 && cursor; page++)
        cursor = (await (await fetch(`${red.url}coral-face/api/visits?limit=48&before=${cursor}`)).json()).next;
      const deep = cursor ? await timed(`visits?limit=48&before=${cursor}`) : { ms: NaN };
      const clustersTimed = await timed('clusters');
      const peopleTimed = await timed('people');
      process.stdout.write(
        `\n${count} stored visits: store opens in ${median(opened)} ms; API (median of 4): first page ${first.ms.toFixed(1)} ms, ` +
          `page 51 ${Number.isNaN(deep.ms) ? '–' : `${deep.ms.toFixed(1)} ms`}, clusters ${clustersTimed.ms.toFixed(1)} ms ` +
          `(${clustersTimed.body.clusters.length} groups), people ${peopleTimed.ms.toFixed(1)} ms\n`,
      );
      if (BROWSER) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { chromium } = require('playwright-core') as typeof import('playwright-core');
        const browser = await chromium.launch({
          executablePath: '/usr/bin/chromium',
          args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
        });
        const renders: number[] = [];
        for (let i = 0; i < 4; i++) {
          // bypassCSP: the page's CSP forbids eval, which Playwright's string predicate needs (not the page).
          const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, bypassCSP: true });
          const t = performance.now();
          await page.goto(`${red.url}coral-face/`);
          await page.locator('li.visit img').first().waitFor();
          // Rendered: the first screen of cards with their images decoded.
          await page.waitForFunction(
            "Array.from(document.querySelectorAll('li.visit img')).slice(0, 12).every((img) => img.complete && img.naturalWidth > 0)",
          );
          renders.push(performance.now() - t);
          await page.close();
        }
        await browser.close();
        process.stdout.write(
          `  page: first screen of faces rendered ${median(renders.slice(1)).toFixed(0)} ms after navigation (median of 3, warm)\n`,
        );
      }
    } finally {
      await red.stop();
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
