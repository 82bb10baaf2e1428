/**
 * Where the command line's gallery is when --gallery is not given: the one
 * the Node-RED nodes use by default for the same user (face-gallery's
 * default is <userDir>/coral-face/gallery, and Node-RED's default userDir is
 * ~/.node-red), so `coral-face enrol` teaches the flows' classifiers.
 * $CORAL_FACE_GALLERY overrides it. A gallery already in the CLI's old
 * default (~/.coral-face/gallery) keeps being used, with a hint, rather than
 * looking lost.
 */
import * as path from 'path';

export function defaultGalleryDir(
  env: NodeJS.ProcessEnv,
  home: string,
  exists: (dir: string) => boolean,
  hint: (text: string) => void,
): string {
  if (env.CORAL_FACE_GALLERY) return path.resolve(env.CORAL_FACE_GALLERY);
  const nodeRed = path.join(home, '.node-red', 'coral-face', 'gallery');
  const legacy = path.join(home, '.coral-face', 'gallery');
  if (!exists(nodeRed) && exists(legacy)) {
    hint(
      `coral-face: using ${legacy} (the old default). Node-RED's nodes use ${nodeRed} by default: ` +
        'move the folder there to share it, or pass --gallery.',
    );
    return legacy;
  }
  return nodeRed;
}
