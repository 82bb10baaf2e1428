/**
 * One face library per gallery folder in the process, shared by whoever needs it: the face-gallery
 * node (negatives, ignored people and an applied threshold for its recognizer), ha-face-entities
 * (ignored people get no person entities) and the face library's HTTP routes. Like the gallery
 * pool, it outlives redeploys: the library's dependencies are looked up per call.
 */
import * as path from 'node:path';
import { FaceLibrary, type FaceLibraryDeps } from './library';
import { readLibrarySettings, type LibrarySettings } from './settings';
import { acquireGallery, releaseGallery } from '../flow/resources';
import { GalleryExtras } from './gallery-extras';

const extras = new Map<string, Promise<GalleryExtras>>();
const libraries = new Map<string, Promise<FaceLibrary>>();

function key(dir: string): string {
  return path.resolve(dir);
}

/**
 * The gallery's ignored flags and negatives, as the library uses them. It
 * holds the shared gallery of the folder for as long as the process runs:
 * the library serves every flow, whatever is deployed.
 */
export function extrasFor(galleryDir: string): Promise<GalleryExtras> {
  const k = key(galleryDir);
  let entry = extras.get(k);
  if (!entry) {
    entry = acquireGallery(k).then((gallery) => new GalleryExtras(gallery));
    extras.set(k, entry);
    entry.catch(() => {
      if (extras.get(k) === entry) extras.delete(k);
    });
  }
  return entry;
}

/** Threshold/margin applied from the Health page, if any (they win over the node's fields). */
export async function appliedRecognition(galleryDir: string): Promise<LibrarySettings['recognition']> {
  return (await readLibrarySettings(key(galleryDir))).recognition;
}

/** The library of a gallery folder; `deps` is used only when the library is first opened. */
export function libraryFor(galleryDir: string, deps: FaceLibraryDeps): Promise<FaceLibrary> {
  const k = key(galleryDir);
  let entry = libraries.get(k);
  if (!entry) {
    entry = extrasFor(k).then((e) => FaceLibrary.open(k, e, deps));
    libraries.set(k, entry);
    entry.catch(() => {
      if (libraries.get(k) === entry) libraries.delete(k);
    });
  }
  return entry;
}

/**
 * A person was forgotten through the gallery (the enrol node, the CLI in this process, the page):
 * their negatives and flag go, and so do the stored visits recognised or named as them.
 */
export async function personForgotten(galleryDir: string, personId: string): Promise<void> {
  const k = key(galleryDir);
  const library = await libraries.get(k)?.catch(() => null);
  await library?.forgetVisitsOf(personId);
}

export function openLibraries(): string[] {
  return [...libraries.keys()];
}

/** For tests: forget every open library (their files stay). */
export async function resetLibraries(): Promise<void> {
  for (const entry of libraries.values()) (await entry.catch(() => null))?.close();
  libraries.clear();
  for (const [dir, entry] of extras) {
    const held = await entry.catch(() => null);
    held?.close();
    if (held) await releaseGallery(dir);
  }
  extras.clear();
}
