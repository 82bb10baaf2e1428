/**
 * Child process for the gallery crash test: enrols people in a loop and prints
 * one JSON line after each operation has returned, i.e. after it is committed.
 * The parent SIGKILLs it at a random moment and checks that every printed
 * operation survived.
 *
 * Usage: node gallery-crash-child.js <galleryDir> <runNumber>
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

async function main(): Promise<void> {
  const [dir, runText] = process.argv.slice(2);
  const run = Number(runText);
  const gallery = await Gallery.open(dir, { create: true });
  report({ op: 'ready' });
  for (let i = 0; ; i++) {
    const name = `Run ${run} person ${i}`;
    const before = new Set(gallery.getPerson(name)?.crops.map((crop) => crop.file));
    const person = await gallery.addCrops(name, [
      { image: noiseCrop(run * 1000 + i * 2), source: `run${run}` },
      { image: noiseCrop(run * 1000 + i * 2 + 1), source: `run${run}`, quality: { sharpness: i } },
    ]);
    report({ op: 'add', name, files: person.crops.map((c) => c.file).filter((f) => !before.has(f)) });

    // Now and then, grow an earlier person, so kills also hit updates of existing entries.
    if (i % 3 === 2) {
      const earlier = `Run ${run} person 0`;
      const known = new Set(gallery.getPerson(earlier)!.crops.map((crop) => crop.file));
      const grown = await gallery.addCrops(earlier, [{ image: noiseCrop(run * 1000 + 500 + i) }]);
      report({ op: 'add', name: earlier, files: grown.crops.map((c) => c.file).filter((f) => !known.has(f)) });
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
