/** This package's own name and version (for Home Assistant's sw_version, the add-on's checks, the CLI). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PACKAGE_NAME = 'node-red-contrib-coral-face';

/** Found by walking up from here, so it works from the sources and from build/. */
export function packageVersion(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here; keep walking up
    }
    dir = path.dirname(dir);
  }
  return '0.0.0';
}
