/** The gallery commands: enrol, identify, list, forget, rename, repair. */
import { decodeImage, ImageError } from '../../core/media/decode';
import { EnrolError, enrolPerson } from '../../core/gallery/enrol';
import { Gallery } from '../../core/gallery/gallery';
import { SETTINGS } from '../../core/flow/settings';
import type { RgbImage } from '../../core/media/image';
import { Recognizer } from '../../core/identify/recognizer';
import { type Args, galleryDir, numberFlag, recognitionFlags, UsageError } from './args';
import { print, round, withPipeline } from './output';

/**
 * Opens the gallery a command names. Only enrol creates one: a reading or
 * changing command on a folder that holds no gallery (a typo in --gallery)
 * is an error, not an empty gallery that reports everyone as unknown.
 * What the gallery had to repair or could not save is said on stderr.
 */
async function openGallery(args: Args, create = false): Promise<Gallery> {
  const gallery = await Gallery.open(galleryDir(args), { create });
  gallery.on('warning', (warning) => process.stderr.write(`coral-face: warning: ${warning}\n`));
  if (gallery.recovery) {
    const r = gallery.recovery;
    process.stderr.write(`coral-face: ${r.reason}: rebuilt it from the person folders (${r.people} people, ${r.crops} crops)` +
      `${r.saved ? '' : ', in memory only (the gallery is read-only)'}\n`);
  }
  return gallery;
}

export async function enrol(args: Args): Promise<number> {
  const [name, ...images] = args.positional;
  if (!name || images.length === 0) throw new UsageError('enrol needs a name and at least one image');
  if (args.flags.has('add') && args.flags.has('new')) throw new UsageError('--add and --new exclude each other');
  const mode = args.flags.has('add') ? 'add' : args.flags.has('new') ? 'new' : 'auto';
  const options = { minPhotos: numberFlag(args, 'min-photos', SETTINGS.enrol.minPhotos), mode, ...recognitionFlags(args) } as const;
  const gallery = await openGallery(args, true);
  return withPipeline(args, async (pipeline) => {
    try {
      const result = await enrolPerson(pipeline, gallery, name, images, options);
      print({ name, id: result.person?.id, accepted: result.accepted, rejected: result.rejected, photos: result.photos.map(photoSummary) });
      return 0;
    } catch (error) {
      if (!(error instanceof EnrolError)) throw error;
      print({ name, error: { code: error.code, message: error.message }, photos: error.result.photos.map(photoSummary) });
      return 1;
    }
  });
}

function photoSummary(p: { source: string; accepted: boolean; faces: number; reasons: { code: string; message: string }[] }) {
  return { source: p.source, accepted: p.accepted, faces: p.faces, reasons: p.reasons };
}

export async function identify(args: Args): Promise<number> {
  if (args.positional.length === 0) throw new UsageError('identify needs at least one image');
  const thresholds = recognitionFlags(args);
  const gallery = await openGallery(args);
  return withPipeline(args, async (pipeline) => {
    const recognizer = await Recognizer.open(gallery, pipeline.embedder, thresholds);
    let status = 0;
    for (const source of args.positional) {
      let image: RgbImage;
      try {
        image = await decodeImage(source);
      } catch (error) {
        const e = error as ImageError;
        print({ source, error: { code: e.code, message: e.message } });
        status = 1;
        continue;
      }
      const { faces } = await pipeline.analyse(image, { qualityGate: false });
      print({
        source,
        width: image.width,
        height: image.height,
        faces: faces.map((f) => {
          const id = recognizer.identify(f.embedding!);
          return {
            box: { x: Math.round(f.box.x), y: Math.round(f.box.y), width: Math.round(f.box.width), height: Math.round(f.box.height) },
            score: round(f.score, 3),
            name: id.name,
            known: id.known,
            cosine: round(id.cosine),
            confidence: round(id.confidence),
            ...(id.known ? {} : { unknownReason: id.unknownReason, closest: id.closest }),
            quality: { ok: f.quality.ok, reasons: f.quality.reasons.map((r) => r.code) },
          };
        }),
      });
    }
    recognizer.close();
    return status;
  });
}

export async function list(args: Args): Promise<number> {
  const gallery = await openGallery(args);
  print(gallery.listPeople().map((p) => ({ id: p.id, name: p.name, photos: p.crops.length, updatedAt: p.updatedAt })));
  return 0;
}

export async function forget(args: Args): Promise<number> {
  const [name] = args.positional;
  if (!name) throw new UsageError('forget needs a name');
  const gallery = await openGallery(args);
  const person = await gallery.forget(name);
  print({ forgotten: person.name, id: person.id });
  return 0;
}

export async function rename(args: Args): Promise<number> {
  const [from, to] = args.positional;
  if (!from || !to) throw new UsageError('rename needs the old and the new name');
  const gallery = await openGallery(args);
  const person = await gallery.rename(from, to);
  print({ renamed: from, name: person.name, id: person.id });
  return 0;
}

export async function repair(args: Args): Promise<number> {
  const report = await Gallery.repair(galleryDir(args));
  print({ repaired: galleryDir(args), reason: report.reason, people: report.people, crops: report.crops, damagedIndex: report.damagedIndex ?? null });
  return 0;
}
