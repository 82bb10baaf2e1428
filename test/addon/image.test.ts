/**
 * The app image recipe (addon/Dockerfile), without a Docker engine:
 * - linted by dockerfile-utils (the linter behind the Docker language server),
 *   with broken copies proving the lint bites;
 * - every file it copies is in the build context: the committed addon/ folder
 *   plus the package tarball that `npm run addon:context` writes into it;
 *   every COPY --from names a stage defined above it;
 * - it installs this package from that tarball (never from the registry), with
 *   no compiler, and the versions of config.yaml, package.json, the image and
 *   the changelog agree (the image build itself refuses another tarball version).
 * What is not verified here: that the image builds and runs (no Docker engine).
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DockerfileParser, Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { parse } from 'yaml';
import { ADDON, ROOT } from './sandbox';

const DOCKERFILE = path.join(ADDON, 'Dockerfile');
const TARBALL = 'node-red-contrib-coral-face.tgz';

const read = (file: string) => fs.readFileSync(file, 'utf8');
const lint = (text: string) =>
  validate(text).map(
    (d) => `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`,
  );

/** Files in the build context: what git has under addon/ (or the folder itself outside git), plus the tarball. */
function buildContext(): Set<string> {
  const listed = spawnSync('git', ['ls-files', '--', 'addon'], { cwd: ROOT, encoding: 'utf8' });
  const files =
    listed.status === 0 && listed.stdout.trim()
      ? listed.stdout
          .trim()
          .split('\n')
          .map((f) => path.relative('addon', f))
      : fs.readdirSync(ADDON, { recursive: true, encoding: 'utf8' });
  return new Set([...files, TARBALL]);
}

function copies(text: string): { instruction: Instruction; from?: string; sources: string[]; line: number }[] {
  const dockerfile = DockerfileParser.parse(text);
  return dockerfile
    .getInstructions()
    .filter((i) => i.getKeyword() === 'COPY' || i.getKeyword() === 'ADD')
    .map((instruction) => {
      const flags = (
        instruction as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }
      ).getFlags();
      const args = instruction.getArguments().map((a) => a.getValue());
      return {
        instruction,
        from: flags.find((f) => f.getName() === 'from')?.getValue() ?? undefined,
        sources: args.slice(0, -1),
        line: instruction.getRange().start.line + 1,
      };
    });
}

/** Problems with what the Dockerfile copies, given the files of its build context. */
function copyProblems(text: string, context: Set<string>): string[] {
  const problems: string[] = [];
  const stages: string[] = [];
  const dockerfile = DockerfileParser.parse(text);
  const fromLines = dockerfile.getFROMs().map((f) => ({ line: f.getRange().start.line + 1, stage: f.getBuildStage() }));
  for (const copy of copies(text)) {
    for (const f of fromLines) if (f.line < copy.line && f.stage && !stages.includes(f.stage)) stages.push(f.stage);
    if (copy.from !== undefined) {
      if (!stages.includes(copy.from))
        problems.push(`line ${copy.line}: COPY --from=${copy.from} names no stage defined above it`);
      continue;
    }
    for (const source of copy.sources) {
      const clean = source.replace(/^\.\//, '').replace(/\/$/, '');
      const inContext = [...context].some((f) => f === clean || f.startsWith(`${clean}/`));
      if (!inContext) problems.push(`line ${copy.line}: ${source} is not in the build context (addon/)`);
    }
  }
  return problems;
}

describe('Home Assistant app: the image recipe, checked without Docker', () => {
  const text = read(DOCKERFILE);

  it('dockerfile-utils finds nothing wrong, and does find a broken copy', () => {
    assert.deepEqual(lint(text), []);
    const broken = text.replace(/^COPY --from=package/m, 'COPY --frm=package').replace(/^CMD \[.*$/m, 'USER');
    const problems = lint(broken);
    assert.ok(
      problems.some((p) => /Unknown flag: frm/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /no arguments/.test(p)),
      problems.join('\n'),
    );
  });

  it('every file it copies is in the build context, and every COPY --from names an earlier stage', () => {
    const context = buildContext();
    assert.ok(context.has('rootfs/usr/bin/coral-face-start'), 'the committed files are listed');
    assert.deepEqual(copyProblems(text, context), []);
    // The check bites: a file outside addon/, a missing tarball, a stage that does not exist.
    assert.match(
      copyProblems(text.replace(/^COPY rootfs \/$/m, 'COPY ../native/prebuilds /opt/'), context).join('\n'),
      /\.\.\/native\/prebuilds is not in the build context/,
    );
    assert.match(
      copyProblems(text, new Set([...context].filter((f) => f !== TARBALL))).join('\n'),
      new RegExp(`${TARBALL.replace(/\./g, '\\.')} is not in the build context`),
    );
    assert.match(
      copyProblems(text.replace(/^COPY --from=package/m, 'COPY --from=pakage'), context).join('\n'),
      /--from=pakage names no stage/,
    );
  });

  it('the tarball it copies is the one npm run addon:context writes', async () => {
    const script = await import(path.join(ROOT, 'native', 'scripts', 'addon-context.mjs'));
    assert.equal(script.ADDON_TARBALL, TARBALL);
    const fromContext = copies(text)
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    assert.ok(
      fromContext.includes(TARBALL),
      `the Dockerfile copies ${TARBALL} from the context: ${fromContext.join(', ')}`,
    );
    assert.match(
      read(path.join(ROOT, '.gitignore')),
      new RegExp(`^addon/${TARBALL.replace(/\./g, '\\.')}$`, 'm'),
      'not committed on the development branch',
    );
  });

  it('installs this package from the tarball, with no compiler and no registry version of it', () => {
    const runs = DockerfileParser.parse(text)
      .getInstructions()
      .filter((i) => i.getKeyword() === 'RUN')
      .map((i) => i.getArgumentsContent() ?? '');
    const install = runs.find((r) => r.includes('npm install'));
    assert.ok(install, 'one RUN installs the packages');
    assert.match(install, /\/tmp\/node-red-contrib-coral-face\.tgz/);
    assert.match(install, /"node-red@\$\{NODE_RED_VERSION\}"/);
    assert.doesNotMatch(text, /node-red-contrib-coral-face@/, 'never a registry version');
    const aptInstalls = runs.flatMap((r) => r.split('&&')).filter((step) => /apt-get install/.test(step));
    assert.ok(aptInstalls.length > 0);
    for (const step of aptInstalls)
      assert.doesNotMatch(step, /\b(g\+\+|gcc|make|python3|build-essential)\b/, `no compiler: ${step.trim()}`);
    // It refuses a tarball of another version, and fails unless the prebuilt addon is what loads.
    assert.match(
      install,
      /tar -xzOf \/tmp\/node-red-contrib-coral-face\.tgz package\/package\.json \| jq -r \.version/,
    );
    assert.match(install, /"\$\{packaged\}" != "\$\{BUILD_VERSION\}"/);
    assert.match(install, /addonInfo\(\)[^"]*if \(!a\.prebuilt\) process\.exit\(1\)/);
  });

  it('config.yaml, package.json, the image and the changelog carry one version', () => {
    const config = parse(read(path.join(ADDON, 'config.yaml')));
    const pkg = JSON.parse(read(path.join(ROOT, 'package.json')));
    const buildVersion = /^ARG BUILD_VERSION=(.+)$/m.exec(text)?.[1];
    assert.equal(config.version, pkg.version, 'config.yaml and package.json');
    assert.equal(buildVersion, pkg.version, "the Dockerfile's default BUILD_VERSION");
    assert.match(
      read(path.join(ADDON, 'CHANGELOG.md')),
      new RegExp(`^## \\[?${pkg.version.replace(/\./g, '\\.')}\\]?`, 'm'),
    );
    const tarball = path.join(ADDON, TARBALL);
    if (fs.existsSync(tarball)) {
      const inside = spawnSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' });
      assert.equal(inside.status, 0, inside.stderr);
      assert.equal(
        JSON.parse(inside.stdout).version,
        pkg.version,
        `addon/${TARBALL} is another version: run npm run addon:context`,
      );
    }
  });

  it('repository.yaml at the repository root names the app repository for Home Assistant', () => {
    const repository = parse(read(path.join(ROOT, 'repository.yaml')));
    assert.deepEqual(Object.keys(repository).sort(), ['maintainer', 'name', 'url']);
    for (const key of ['name', 'url', 'maintainer'])
      assert.ok(typeof repository[key] === 'string' && repository[key].trim(), `${key} is set`);
    assert.match(repository.url, /^https:\/\//);
    // The app folder is where Home Assistant looks for it: a folder with config.yaml beside repository.yaml.
    assert.ok(fs.existsSync(path.join(ROOT, 'addon', 'config.yaml')));
  });
});
