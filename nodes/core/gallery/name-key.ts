/**
 * What two names must share to be easily taken for one another: case,
 * accents, spaces, underscores and punctuation folded away ("andre_agassi",
 * "André Agassi" and "ANDRE-AGASSI" all give "andreagassi"). Names that
 * collide this way never silently mean the same person, nor two people.
 * On its own, with no imports, so that the face library page bundles the
 * same rule as the gallery.
 */
export function looseNameKey(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '');
}
