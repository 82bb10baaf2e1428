/** The gallery commands: enrol, identify, list, forget, rename, repair. */
import { decodeImage, ImageError } from '../../core/media/decode';
import { EnrolError, enrolPerson, type PhotoReport } from '../../core/gallery/enrol';
import { Gallery } from '../../core/gallery/gallery';
import { SETTINGS } from '../../core/flow/settings';
import type { RgbImage } from '../../core/media/image';
import { Recognizer } from '../../core/identify/recognizer';
import { type Args, galleryDir, numberFlag, recognitionFlags, UsageError } from './args';
import { emit, emitError, outputOf, round, withPipeline } from './output';

function photoSummary(p: PhotoReport) {
  return { source: p.source, accepted: p.accepted, faces: p.faces, reasons: p.reasons };
}

function photoLine(p: PhotoReport): string {
  if (p.accepted) return `  accepted  ${p.source}${p.faces > 1 ? ` (the largest of ${p.faces} faces)` : ''}`;
  return `  rejected  ${p.source}: ${p.reasons.map((r) => r.message).join('; ') || 'no reason given'}`;
}

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
    process.stderr.write(
      `coral-face: ${r.reason}: rebuilt it from the person folders (${r.people} people, ${r.crops} crops)` +
        `${r.saved ? '' : ', in memory only (the gallery is read-only)'}\n`,
    );
  }
  return gallery;
}

export async function enrol(args: Args): Promise<number> {
  const out = outputOf(args);
  const [name, ...images] = args.positional;
  if (!name || images.length === 0) throw new UsageError('enrol needs a name and at least one image');
  if (args.flags.has('add') && args.flags.has('new')) throw new UsageError('--add and --new exclude each other');
  const mode = args.flags.has('add') ? 'add' : args.flags.has('new') ? 'new' : 'auto';
  const options = {
    minPhotos: numberFlag(args, 'min-photos', SETTINGS.enrol.minPhotos),
    mode,
    ...recognitionFlags(args),
  } as const;
  const dir = galleryDir(args);
  const gallery = await openGallery(args, true);
  return withPipeline(args, async (pipeline) => {
    try {
      const result = await enrolPerson(pipeline, gallery, name, images, options);
      emit(
        out,
        {
          name,
          id: result.person?.id,
          accepted: result.accepted,
          rejected: result.rejected,
          photos: result.photos.map(photoSummary),
        },
        () =>
          [
            `${name}: ${result.accepted} of ${result.photos.length} photos accepted, saved in ${dir} (id ${result.person?.id})`,
            ...result.photos.map(photoLine),
          ].join('\n'),
      );
      return 0;
    } catch (error) {
      if (!(error instanceof EnrolError)) throw error;
      // The per-photo report is the result; why nothing was saved is the error.
      if (!out.json) process.stdout.write(`${[`${name}:`, ...error.result.photos.map(photoLine)].join('\n')}\n`);
      emitError(out, error, { name, photos: error.result.photos.map(photoSummary) });
      return 1;
    }
  });
}

export async function identify(args: Args): Promise<number> {
  const out = outputOf(args);
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
        emitError(
          out,
          { code: e.code, message: e.message.includes(source) ? e.message : `${source}: ${e.message}` },
          { source },
        );
        status = 1;
        continue;
      }
      // A photo is one decision on one frame: every face aligned on the mesh and embedded with its mirror image.
      const { faces } = await pipeline.analyse(image, { qualityGate: false, careful: true });
      const rows = faces.map((f) => {
        const id = recognizer.identify(f.embedding!);
        // The lead over the runner-up is what the margin rule checks; a softmax "confidence" over a
        // handful of people says little (it is 1.0 with one person enrolled), so it is not shown.
        const lead = id.secondCosine > -1 ? round(id.cosine - id.secondCosine) : null;
        return {
          box: {
            x: Math.round(f.box.x),
            y: Math.round(f.box.y),
            width: Math.round(f.box.width),
            height: Math.round(f.box.height),
          },
          score: round(f.score, 3),
          name: id.name,
          known: id.known,
          cosine: round(id.cosine),
          lead,
          ...(id.known ? {} : { unknownReason: id.unknownReason, closest: id.closest }),
          quality: { ok: f.quality.ok, reasons: f.quality.reasons.map((r) => r.code) },
          why: explain(
            id,
            lead,
            recognizer.threshold,
            f.quality.reasons.map((r) => r.message),
          ),
        };
      });
      emit(
        out,
        { source, width: image.width, height: image.height, faces: rows.map(({ why: _why, ...r }) => r) },
        () => {
          if (rows.length === 0) return `${source}: no face found`;
          const width = Math.max(...rows.map((r) => r.name.length));
          return [
            `${source}: ${rows.length} face${rows.length === 1 ? '' : 's'}`,
            ...rows.map(
              (r) => `  ${r.name.padEnd(width)}  ${r.why}  (box ${r.box.x},${r.box.y} ${r.box.width}x${r.box.height})`,
            ),
          ].join('\n');
        },
      );
    }
    recognizer.close();
    return status;
  });
}

function explain(
  id: { known: boolean; cosine: number; closest: string | null; unknownReason: string | null },
  lead: number | null,
  threshold: number,
  qualityNotes: string[],
): string {
  const c = id.cosine.toFixed(2);
  let why: string;
  if (id.known)
    why = `cosine ${c} (accepted from ${threshold.toFixed(2)})${lead !== null ? `, ${lead.toFixed(2)} ahead of the next person` : ''}`;
  else if (id.unknownReason === 'no-people') why = 'nobody is enrolled in this gallery';
  else if (id.unknownReason === 'ambiguous')
    why = `as close to ${id.closest} as to another person (cosine ${c}, lead ${lead?.toFixed(2)}): not sure`;
  else why = `closest is ${id.closest} at cosine ${c}, below ${threshold.toFixed(2)}`;
  return qualityNotes.length ? `${why}; poor face: ${qualityNotes.join('; ')}` : why;
}

export async function list(args: Args): Promise<number> {
  const out = outputOf(args);
  const dir = galleryDir(args);
  const gallery = await openGallery(args);
  const people = gallery
    .listPeople()
    .map((p) => ({ id: p.id, name: p.name, photos: p.crops.length, updatedAt: p.updatedAt }));
  emit(out, people, () =>
    people.length === 0
      ? `nobody enrolled yet in ${dir}\n(enrol with: coral-face enrol "Name" photo1.jpg photo2.jpg photo3.jpg --gallery ${dir})`
      : [
          `${people.length} ${people.length === 1 ? 'person' : 'people'} in ${dir}:`,
          ...people.map(
            (p) => `  ${p.name} (id ${p.id}): ${p.photos} photo${p.photos === 1 ? '' : 's'}, updated ${p.updatedAt}`,
          ),
        ].join('\n'),
  );
  return 0;
}

export async function forget(args: Args): Promise<number> {
  const out = outputOf(args);
  const [name] = args.positional;
  if (!name) throw new UsageError('forget needs a name');
  const gallery = await openGallery(args);
  const person = await gallery.forget(name);
  emit(
    out,
    { forgotten: person.name, id: person.id },
    () => `forgot ${person.name} (id ${person.id}) and their photos`,
  );
  return 0;
}

export async function rename(args: Args): Promise<number> {
  const out = outputOf(args);
  const [from, to] = args.positional;
  if (!from || !to) throw new UsageError('rename needs the old and the new name');
  const gallery = await openGallery(args);
  const person = await gallery.rename(from, to);
  emit(
    out,
    { renamed: from, name: person.name, id: person.id },
    () => `renamed ${from} to ${person.name} (id ${person.id}, unchanged)`,
  );
  return 0;
}

export async function repair(args: Args): Promise<number> {
  const dir = galleryDir(args);
  const report = await Gallery.repair(dir);
  emit(
    outputOf(args),
    {
      repaired: dir,
      reason: report.reason,
      people: report.people,
      crops: report.crops,
      damagedIndex: report.damagedIndex ?? null,
    },
    () =>
      `${dir}: ${report.reason}; rebuilt from the person folders: ${report.people} people, ${report.crops} crops` +
      (report.damagedIndex ? `\nthe damaged index was kept as ${report.damagedIndex}` : ''),
  );
  return 0;
}
