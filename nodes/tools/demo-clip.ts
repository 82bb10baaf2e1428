/**
 * The demo's clip, made at `npm start` from the photos @vladmandic/face-api
 * ships in demo/ (nothing downloaded). One loop is 20 s:
 * - 8 s of one person walking up to the camera (a zoom into one face of
 *   sample3.jpg, cropped so nobody else is in the picture): the walk-up
 *   segment, so the demo's walk-up enrolment has one person to take;
 * - four group photos, 3 s each: strangers, 3-4 comparable faces each.
 * The demo's walk-up inject lasts one loop, so it always sees the whole
 * walk-up segment wherever the loop is when it is clicked.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ClipSegment } from '../core/camera/demo-clip';

export const DEMO_LOOP_SECONDS = 20;
export const DEMO_WALKUP_SECONDS = 8;

export function faceApiDemoDir(): string {
  try {
    return path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
  } catch {
    throw new Error(
      'the demo clip is made from @vladmandic/face-api/demo photos: run "npm install" in the repository first',
    );
  }
}

export function demoClipSegments(dir = faceApiDemoDir()): ClipSegment[] {
  const photo = (n: number) => {
    const file = path.join(dir, `sample${n}.jpg`);
    if (!fs.existsSync(file))
      throw new Error(`the demo clip needs ${file} (from @vladmandic/face-api): run "npm install" in the repository`);
    return file;
  };
  return [
    // sample3.jpg is 1920x1350; the middle woman's face is at x 1039-1294, y 250-505; her neighbours' faces
    // end at x 801 and start at x 1482, so this square holds her face only.
    { image: photo(3), seconds: DEMO_WALKUP_SECONDS, region: { x: 812, y: 40, size: 664 }, zoomTo: 1.45 },
    ...[1, 4, 5, 6].map((n) => ({ image: photo(n), seconds: 3 })),
  ];
}
