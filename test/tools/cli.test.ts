/**
 * The coral-face command, run as a user would (a child process), on real
 * photos from ../shared/faces/dev.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { hugePngHeader } from '../helpers/images';
import { DEFAULT_MARGIN, DEFAULT_THRESHOLD } from '../../nodes/core/identify/imprint';
import { FACES_DIR } from '../models';

const CLI = path.resolve(__dirname, '..', '..', 'nodes', 'tools', 'cli', 'main.js');

/** Runs the CLI for machines (--json); `human` runs it as a person would. */
function run(...args: string[]): { status: number | null; stdout: string; stderr: string; json: any[] } {
  return human(...args, '--json');
}

function human(...args: string[]): { status: number | null; stdout: string; stderr: string; json: any[] } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120000 });
  const json = result.stdout
    .split('\n')
    .filter((l) => l.startsWith('{') || l.startsWith('['))
    .map((l) => JSON.parse(l));
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, json };
}

function photos(person: string): string[] {
  const dir = path.join(FACES_DIR, person);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => path.join(dir, f));
}

describe('coral-face CLI', function () {
  this.timeout(180000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-cli-'));
  const gallery = path.join(tmp, 'gallery');
  const people = ['Jackie_Chan', 'Meryl_Streep', 'Roger_Federer'];

  it('enrols three people from five photos each', () => {
    for (const person of people) {
      const result = run('enrol', person.replace('_', ' '), ...photos(person).slice(0, 5), '--gallery', gallery);
      assert.equal(result.status, 0, result.stderr + result.stdout);
      const [report] = result.json;
      assert.equal(report.accepted + report.rejected, 5);
      assert.ok(report.accepted >= 4, JSON.stringify(report));
      assert.equal(report.photos.length, 5);
    }
    const list = run('list', '--gallery', gallery);
    assert.equal(list.status, 0);
    assert.deepEqual(list.json[0].map((p: { name: string }) => p.name).sort(), [
      'Jackie Chan',
      'Meryl Streep',
      'Roger Federer',
    ]);
  });

  it('identifies held-out photos of them, and a stranger as unknown', () => {
    const probes = people.map((p) => photos(p)[6]);
    const stranger = path.join(FACES_DIR, '_unknown', fs.readdirSync(path.join(FACES_DIR, '_unknown')).sort()[0]);
    const result = run('identify', ...probes, stranger, '--gallery', gallery);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.json.length, 4);
    result.json.slice(0, 3).forEach((line, i) => {
      assert.equal(line.source, probes[i]);
      const face = line.faces.reduce((a: any, b: any) => (a.box.width > b.box.width ? a : b));
      assert.equal(face.name, people[i].replace('_', ' '));
      assert.equal(face.known, true);
      assert.ok(face.cosine >= DEFAULT_THRESHOLD && face.lead > 0.05, JSON.stringify(face));
      assert.equal(face.confidence, undefined, 'no softmax confidence: it says nothing with a few people');
      for (const key of ['x', 'y', 'width', 'height']) assert.equal(typeof face.box[key], 'number');
    });
    const strangerFaces = result.json[3].faces;
    assert.ok(strangerFaces.length >= 1);
    for (const face of strangerFaces) {
      assert.equal(face.name, 'unknown');
      assert.equal(face.known, false);
      assert.ok(['below-threshold', 'ambiguous'].includes(face.unknownReason));
    }
  });

  it('renames and forgets', () => {
    assert.equal(run('rename', 'Jackie Chan', 'Jackie', '--gallery', gallery).status, 0);
    const clash = run('rename', 'Jackie', 'Meryl Streep', '--gallery', gallery);
    assert.equal(clash.status, 1);
    assert.equal(clash.json[0].error.code, 'ERR_PERSON_EXISTS');
    assert.equal(clash.stderr, '');
    const clashForPeople = human('rename', 'Jackie', 'Meryl Streep', '--gallery', gallery);
    assert.equal(clashForPeople.status, 1);
    assert.match(clashForPeople.stderr, /^coral-face: .* \[ERR_PERSON_EXISTS\]\n$/);
    assert.equal(clashForPeople.stdout, '');
    const probe = run('identify', photos('Jackie_Chan')[7], '--gallery', gallery);
    assert.equal(probe.json[0].faces[0].name, 'Jackie');
    assert.equal(run('forget', 'Jackie', '--gallery', gallery).status, 0);
    const after = run('identify', photos('Jackie_Chan')[7], '--gallery', gallery);
    assert.equal(after.json[0].faces[0].name, 'unknown');
    const missing = run('forget', 'Nobody', '--gallery', gallery);
    assert.equal(missing.status, 1);
    assert.equal(missing.json[0].error.code, 'ERR_PERSON_NOT_FOUND');
    assert.match(human('forget', 'Nobody', '--gallery', gallery).stderr, /ERR_PERSON_NOT_FOUND/);
  });

  it('eval --aligned runs the protocol on a folder of aligned crops', async () => {
    // A dataset laid out like ../shared/faces/dev, of 112x112 crops made with identify's own pipeline.
    const { FacePipeline, mainFace } = await import('../../nodes/core/pipeline');
    const { decodeImage, encodePng } = await import('../../nodes/core/media/decode');
    const dataset = path.join(tmp, 'aligned');
    const pipeline = await FacePipeline.open();
    const write = async (from: string, to: string) => {
      const image = await decodeImage(from);
      const face = mainFace(await pipeline.detect(image), image)!;
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.writeFileSync(to, await encodePng(pipeline.align(image, face).crop));
    };
    for (const person of ['Tony_Blair', 'Hans_Blix', 'Serena_Williams']) {
      for (const [i, file] of photos(person).slice(0, 8).entries())
        await write(file, path.join(dataset, person, `${i}.png`));
    }
    const unknownDir = path.join(FACES_DIR, '_unknown');
    for (const file of fs.readdirSync(unknownDir).sort().slice(0, 6))
      await write(path.join(unknownDir, file), path.join(dataset, '_unknown', `${file}.png`));
    await pipeline.dispose();
    // Two shot counts in one run, each photo embedded once: one JSON line each, the rest of each person's photos probing.
    const result = run('eval', dataset, '--aligned', '--json', '--shots', '5,1');
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(
      result.json.map((r) => [r.shots, r.probes]),
      [
        [1, 21],
        [5, 9],
      ],
    );
    const report = result.json[1];
    assert.equal(report.identities, 3);
    assert.equal(report.impostors, 6);
    assert.equal(report.detectFailures, 0);
    assert.ok(report.top1 >= 8 / 9, `top-1 ${report.top1}`);
    assert.ok(result.json[0].top1 >= 18 / 21, `1-shot top-1 ${result.json[0].top1}`);
    assert.equal(report.peer, null);
    assert.deepEqual(Object.keys(report.atDefault), ['threshold', 'margin', 'tpir', 'fpir']);
    assert.equal(report.atDefault.threshold, DEFAULT_THRESHOLD);
    assert.equal(report.atDefault.margin, DEFAULT_MARGIN);
    const badShots = run('eval', dataset, '--aligned', '--shots', '0');
    assert.equal(badShots.status, 2);
    assert.equal(badShots.json[0].error.code, 'ERR_USAGE');
    assert.match(badShots.json[0].error.message, /--shots is a whole number/);
    const wrongSize = run('eval', path.join(FACES_DIR), '--aligned', '--json');
    assert.equal(wrongSize.status, 1);
    assert.match(wrongSize.json[0].error.message, /--aligned expects 112x112 crops/);
  });

  describe('bad input', () => {
    const bad = path.join(tmp, 'bad');
    before(async () => {
      fs.mkdirSync(bad, { recursive: true });
      fs.writeFileSync(path.join(bad, 'corrupt.jpg'), fs.readFileSync(photos('Tony_Blair')[0]).subarray(0, 2500));
      fs.writeFileSync(path.join(bad, 'notes.jpg'), 'this is a text file\n');
      fs.writeFileSync(path.join(bad, 'huge.png'), hugePngHeader());
      await sharp({ create: { width: 320, height: 240, channels: 3, background: '#7f8f9f' } })
        .png()
        .toFile(path.join(bad, 'wall.png'));
    });

    it('identify reports each bad image with a code and carries on', () => {
      const files = ['corrupt.jpg', 'notes.jpg', 'huge.png', 'wall.png'].map((f) => path.join(bad, f));
      const result = run('identify', ...files, photos('Meryl_Streep')[8], '--gallery', gallery);
      assert.equal(result.status, 1);
      assert.equal(result.json.length, 5);
      assert.equal(result.json[0].error.code, 'ERR_IMAGE_CORRUPT');
      assert.equal(result.json[1].error.code, 'ERR_IMAGE_UNSUPPORTED');
      assert.equal(result.json[2].error.code, 'ERR_IMAGE_TOO_LARGE');
      assert.match(result.json[2].error.message, /larger than 40 megapixels/);
      assert.deepEqual(result.json[3].faces, []);
      assert.equal(result.json[4].faces[0].name, 'Meryl Streep');
    });

    it('enrol refuses bad photos with reasons, and saves nothing when too few are usable', () => {
      const files = ['corrupt.jpg', 'notes.jpg', 'huge.png', 'wall.png'].map((f) => path.join(bad, f));
      const result = run('enrol', 'Nobody', ...files, photos('Tony_Blair')[0], '--gallery', gallery);
      assert.equal(result.status, 1);
      const [report] = result.json;
      assert.equal(report.error.code, 'ERR_TOO_FEW_PHOTOS');
      assert.deepEqual(
        report.photos.map((p: any) => p.reasons[0]?.code ?? 'ok'),
        ['ERR_IMAGE_CORRUPT', 'ERR_IMAGE_UNSUPPORTED', 'ERR_IMAGE_TOO_LARGE', 'no-face', 'ok'],
      );
      const list = run('list', '--gallery', gallery);
      assert.ok(!list.json[0].some((p: any) => p.name === 'Nobody'));
    });

    it('a name like ../../etc stays inside the gallery', () => {
      const result = run('enrol', '../../etc', ...photos('Tony_Blair').slice(0, 3), '--gallery', gallery);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.json[0].id, 'etc');
      assert.ok(fs.existsSync(path.join(gallery, 'people', 'etc')));
      assert.ok(
        !fs.existsSync(path.join(tmp, 'etc')) && !fs.existsSync(path.join(gallery, '..', '..', 'etc', 'gallery.json')),
      );
      assert.equal(run('forget', '../../etc', '--gallery', gallery).status, 0);
    });

    it('a mistyped --gallery is an error, never a new empty gallery that calls everyone unknown', () => {
      const typo = path.join(tmp, 'galery');
      for (const args of [
        ['list'],
        ['identify', photos('Meryl_Streep')[8]],
        ['forget', 'Meryl Streep'],
        ['rename', 'a', 'b'],
      ]) {
        const result = human(...args, '--gallery', typo);
        assert.equal(result.status, 1, `${args[0]}: ${result.stderr}`);
        assert.match(result.stderr, /No gallery at .*galery/s);
        assert.equal(run(...args, '--gallery', typo).json[0].error.code, 'ERR_GALLERY_NOT_FOUND');
      }
      assert.ok(!fs.existsSync(typo), 'nothing was created');
    });

    it('values out of range are usage errors: thresholds, margins, --min-photos, and a value forgotten before the next option', () => {
      for (const args of [
        ['identify', 'x.jpg', '--threshold', '-1'],
        ['identify', 'x.jpg', '--margin', '-1'],
        ['identify', 'x.jpg', '--threshold', '1.5'],
        ['enrol', 'A', 'x.jpg', '--min-photos', '0'],
        ['enrol', 'A', 'x.jpg', '--min-photos', '-3'],
        ['enrol', 'A', 'x.jpg', '--min-photos', '2.5'],
        ['list', '--gallery', '--gallery', path.join(tmp, 'x')],
        ['enrol', 'A', 'x.jpg', '--add', '--new'],
      ]) {
        const result = run(...args);
        assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      }
      assert.match(
        human('identify', 'x.jpg', '--threshold', '-1').stderr,
        /--threshold must be a number from 0 to 1 \(got -1\)/,
      );
      assert.ok(!fs.existsSync(path.join(process.cwd(), '--gallery')));
    });

    it('a lost index: list says it rebuilt it from the person folders, and everyone is still there', () => {
      const before = run('list', '--gallery', gallery).json[0];
      fs.renameSync(path.join(gallery, 'gallery.json'), path.join(tmp, 'lost.json'));
      const after = run('list', '--gallery', gallery);
      assert.equal(after.status, 0, after.stderr);
      assert.match(after.stderr, /rebuilt it from the person folders/);
      assert.deepEqual(
        after.json[0].map((p: any) => [p.id, p.name, p.photos]),
        before.map((p: any) => [p.id, p.name, p.photos]),
      );
      fs.writeFileSync(path.join(gallery, 'gallery.json'), '{"format": "coral-face-gall');
      const damaged = human('list', '--gallery', gallery);
      assert.equal(damaged.status, 1);
      assert.match(damaged.stderr, /damaged.*coral-face repair/s);
      const repaired = run('repair', '--gallery', gallery);
      assert.equal(repaired.status, 0, repaired.stderr);
      assert.deepEqual(
        run('list', '--gallery', gallery).json[0].map((p: any) => p.name),
        before.map((p: any) => p.name),
      );
    });

    it('speaks to people by default: per photo accepted or rejected and why, per face a name or unknown and why', () => {
      const files = [path.join(bad, 'notes.jpg'), ...photos('Serena_Williams').slice(0, 4)];
      const enrolled = human('enrol', 'Serena Williams', ...files, '--gallery', gallery);
      assert.equal(enrolled.status, 0, enrolled.stderr);
      const lines = enrolled.stdout.trim().split('\n');
      assert.match(lines[0], /^Serena Williams: \d of 5 photos accepted, saved in .* \(id serena-williams\)$/);
      assert.match(lines[1], /^ {2}rejected {2}.*notes\.jpg: .*not an image/);
      assert.ok(
        lines.slice(2).every((l) => /^ {2}(accepted|rejected) {2}/.test(l)),
        enrolled.stdout,
      );
      // TFLite's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." stays out of the way...
      assert.doesNotMatch(enrolled.stderr, /XNNPACK|INFO:/);
      const stranger = path.join(FACES_DIR, '_unknown', fs.readdirSync(path.join(FACES_DIR, '_unknown')).sort()[1]);
      const seen = human('identify', photos('Serena_Williams')[9], stranger, '--gallery', gallery, '--verbose');
      assert.equal(seen.status, 0, seen.stderr);
      const threshold = DEFAULT_THRESHOLD.toFixed(2).replace('.', '\\.');
      assert.match(
        seen.stdout,
        new RegExp(
          `: 1 face\\n {2}Serena Williams +cosine 0\\.\\d\\d \\(accepted from ${threshold}\\), 0\\.\\d\\d ahead of the next person`,
        ),
      );
      assert.match(seen.stdout, new RegExp(`\\n {2}unknown +closest is .* at cosine -?0\\.\\d\\d, below ${threshold}`));
      // ...unless asked for.
      assert.match(seen.stderr, /XNNPACK delegate/);
      const listed = human('list', '--gallery', gallery);
      assert.match(listed.stdout, /people in .*:\n {2}.*\(id .*\): \d+ photos/);
    });

    it('answers --help fast: no native runtime, no sharp', () => {
      const started = Date.now();
      const help = human('--help');
      assert.equal(help.status, 0);
      // A child process with only args.ts loaded; 8.9 s when it loaded the runtime (generous for a busy machine).
      assert.ok(Date.now() - started < 3000, `--help took ${Date.now() - started} ms`);
      const loaded = spawnSync(
        process.execPath,
        [
          '-e',
          `process.argv=[process.argv[0],'x','--help'];require(${JSON.stringify(CLI)}).main(['--help']).then(()=>{const m=Object.keys(require.cache);console.log(JSON.stringify(m.filter(f=>/sharp|native[\\/]index|addon/.test(f))))})`,
        ],
        { encoding: 'utf8' },
      );
      assert.deepEqual(JSON.parse(loaded.stdout.trim().split('\n').pop()!), []);
    });

    it('usage errors exit 2', () => {
      assert.equal(run().status, 2);
      assert.equal(run('enrol').status, 2);
      assert.equal(run('identify', '--detector', 'huge').status, 2);
      assert.equal(run('frobnicate').status, 2);
      const help = run('--help');
      assert.equal(help.status, 0);
      assert.match(help.stdout, /coral-face <command>/);
    });
  });
});
