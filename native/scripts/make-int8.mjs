// Build step (package.json "build", after copy-models.mjs): makes the
// full-int8 MobileFaceNet, build/models/mobilefacenet_int8.tflite, from the
// float model copy-models.mjs put in build/models/ (checked there against its
// pinned hash) and the calibration record native/models/mobilefacenet_int8.calibration.json.
// No photos and no inference: the record holds the numbers calibration
// measured, and the quantiser (build/native/quantize, compiled by tsc just
// before) turns them into the same bytes every time. The record says which
// bytes; a mismatch (another quantiser version) is reported, since the
// accuracy figures belong to those bytes.
//
//   node native/scripts/make-int8.mjs     (part of "npm run build")
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'package.json'));
const { quantizeFromRecord } = require(join(root, 'build', 'native', 'quantize', 'index.js'));

const recordFile = join(root, 'native', 'models', 'mobilefacenet_int8.calibration.json');
const floatModel = join(root, 'build', 'models', 'mobilefacenet.tflite');
const out = join(root, 'build', 'models', 'mobilefacenet_int8.tflite');

let floatBytes;
try {
  floatBytes = new Uint8Array(readFileSync(floatModel));
} catch {
  throw new Error(`make-int8: ${floatModel} is missing: native/scripts/copy-models.mjs puts it there (npm run build)`);
}
const record = JSON.parse(readFileSync(recordFile, 'utf8'));
const { bytes, identical } = quantizeFromRecord(floatBytes, record);
mkdirSync(dirname(out), { recursive: true });
const temp = `${out}.${process.pid}.tmp`;
writeFileSync(temp, bytes);
renameSync(temp, out);
// The int8 model is a derived work of the float one: the notice copy-models.mjs wrote says where it came from.
const notice = join(dirname(out), 'NOTICE.md');
if (!readFileSync(notice, 'utf8').includes('## `mobilefacenet_int8.tflite`'))
  appendFileSync(
    notice,
    "\n## `mobilefacenet_int8.tflite`\n\nMade at build time from `mobilefacenet.tflite` (above, MIT) by this package's own " +
      'post-training quantiser and the calibration record `native/models/mobilefacenet_int8.calibration.json` ' +
      '(activation ranges only, no photos). The MIT licence of `mobilefacenet.tflite` applies to it too.\n',
  );
if (!identical) {
  console.warn(
    `make-int8: ${out} differs from the model the record was measured on (sha256 ${record.result.sha256.slice(0, 12)}…): ` +
      're-run the calibration (native/README.md, "Quantiser") so that the accuracy figures match',
  );
}
