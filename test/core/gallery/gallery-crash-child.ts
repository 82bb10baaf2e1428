/**
 * Child process for the gallery crash and concurrency tests.
 *
 *   node gallery-crash-child.js crash <galleryDir> <runNumber>
 *     Changes the gallery in a loop (adds, grows, renames, forgets) and prints
 *     {"op":"begin",...} before and {"op":"done",...} after each change, i.e.
 *     once it is committed. The parent SIGKILLs it at a random moment and
 *     checks that every done change survived, and that the one in flight
 *     either happened whole or not at all.
 *
 *   node gallery-crash-child.js write <galleryDir> <prefix> <count>
 *     Adds <count> people named "<prefix> <i>" and exits: two of these at once
 *     must not lose each other's people.
 */
import { writeSync } from 'node:fs';
import { Gallery } from '../../../nodes/core/gallery/gallery';
import type { RgbImage } from '../../../nodes/core/media/image';

function noiseCrop(seed: number): RgbImage {
  // Noise makes PNGs of realistic size (~37 kB), so kills often land mid-write.
  const data = new Uint8Array(112 * 112 * 3);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    data[i] = state & 0xff;
  }
  return { width: 112, height: 112, data };
}

function report(line: object): void {
  // Synchronous, so a line is out before the next operation starts.
  writeSync(1, JSON.stringify(line) + '\n');
}

async function crashLoop(dir: string, run: number): Promise<void> {
  const gallery = await Gallery.open(dir, { create: true });
  report({ op: 'ready' });
  const mine: string[] = [];
  for (let i = 0; ; i++) {
    const name = `Run ${run} person ${i}`;
    report({ op: 'begin', kind: 'add', name });
    const person = await gallery.addCrops(name, [
      { image: noiseCrop(run * 1000 + i * 2), source: `run${run}` },
      { image: noiseCrop(run * 1000 + i * 2 + 1), source: `run${run}`, quality: { sharpness: i } },
    ]);
    report({ op: 'done', kind: 'add', name, id: person.id, files: person.crops.map((c) => c.file) });
    mine.push(name);

    if (i % 3 === 2) {
      // Grow an earlier person, so kills also hit updates of existing entries.
      const earlier = mine[0];
      const before = new Set(gallery.getPerson(earlier)!.crops.map((crop) => crop.file));
      report({ op: 'begin', kind: 'grow', name: earlier });
      const grown = await gallery.addCrops(earlier, [{ image: noiseCrop(run * 1000 + 500 + i) }]);
      report({
        op: 'done',
        kind: 'grow',
        name: earlier,
        files: grown.crops.map((c) => c.file).filter((f) => !before.has(f)),
      });
    }
    if (i % 4 === 3) {
      const from = mine[mine.length - 2];
      const to = `${from} renamed`;
      report({ op: 'begin', kind: 'rename', name: from, to });
      await gallery.rename(from, to);
      report({ op: 'done', kind: 'rename', name: from, to });
      mine[mine.length - 2] = to;
    }
    if (i % 5 === 4) {
      const gone = mine.splice(1, 1)[0];
      const id = gallery.getPerson(gone)!.id;
      report({ op: 'begin', kind: 'forget', name: gone, id });
      await gallery.forget(gone);
      report({ op: 'done', kind: 'forget', name: gone, id });
    }
  }
}

async function writeMany(dir: string, prefix: string, count: number): Promise<void> {
  const gallery = await Gallery.open(dir, { create: true });
  for (let i = 0; i < count; i++) {
    await gallery.addCrops(`${prefix} ${i}`, [{ image: noiseCrop(prefix.length * 7919 + i) }]);
  }
}

async function main(): Promise<void> {
  const [mode, dir, ...rest] = process.argv.slice(2);
  if (mode === 'crash') await crashLoop(dir, Number(rest[0]));
  else if (mode === 'write') await writeMany(dir, rest[0], Number(rest[1]));
  else throw new Error(`unknown mode ${mode}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
