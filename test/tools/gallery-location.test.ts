/** The CLI's default gallery: the one Node-RED's nodes use by default for the same user. */
import { strict as assert } from 'node:assert';
import { defaultGalleryDir } from '../../nodes/tools/cli/gallery-location';

describe('tools/cli gallery location', () => {
  const hints: string[] = [];
  const hint = (t: string) => hints.push(t);
  beforeEach(() => {
    hints.length = 0;
  });

  it("is <home>/.node-red/coral-face/gallery, the face-gallery default under Node-RED's default userDir", () => {
    assert.equal(
      defaultGalleryDir({}, '/home/pi', () => false, hint),
      '/home/pi/.node-red/coral-face/gallery',
    );
    assert.deepEqual(hints, []);
  });

  it('follows $CORAL_FACE_GALLERY', () => {
    assert.equal(
      defaultGalleryDir({ CORAL_FACE_GALLERY: '/data/gallery' }, '/home/pi', () => true, hint),
      '/data/gallery',
    );
  });

  it('keeps using a gallery in the old default, with a hint, rather than looking empty', () => {
    const exists = (d: string) => d === '/home/pi/.coral-face/gallery';
    assert.equal(defaultGalleryDir({}, '/home/pi', exists, hint), '/home/pi/.coral-face/gallery');
    assert.match(hints[0], /old default.*\/home\/pi\/\.node-red\/coral-face\/gallery/);
    // Once the Node-RED one exists, it wins.
    assert.equal(
      defaultGalleryDir({}, '/home/pi', () => true, hint),
      '/home/pi/.node-red/coral-face/gallery',
    );
  });
});
