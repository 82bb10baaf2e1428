/**
 * Loaded by mocha before any test (.mocharc.json "require"): many tests run
 * on real photos that are not in the repository. Without them, say at once
 * what is needed and where it comes from, instead of a page of ENOENTs.
 */
import * as fs from 'fs';
import { FACES_DIR } from './models';

export function mochaGlobalSetup(): void {
  const missing = ['_unknown', '_group'].filter((d) => !fs.existsSync(`${FACES_DIR}/${d}`));
  if (!fs.existsSync(FACES_DIR) || missing.length > 0) {
    throw new Error(
      `the tests need the face photos at ${FACES_DIR} (not found${missing.length && fs.existsSync(FACES_DIR) ? `: no ${missing.join(', ')}` : ''}).\n` +
        '  Set CORAL_FACES_DIR to a folder laid out as <Person_Name>/<photo>.jpg (10 or more photos per person, from\n' +
        '  Labeled Faces in the Wild: http://vis-www.cs.umass.edu/lfw/), plus _unknown/ (photos of people not among\n' +
        '  them) and _group/ (a few group photos), e.g.  CORAL_FACES_DIR=/data/faces/dev npm test\n' +
        '  test/README.md says exactly what is used; the photos are never committed to the repository.',
    );
  }
}
