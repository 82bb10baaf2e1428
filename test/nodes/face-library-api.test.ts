/**
 * The face library's HTTP API in a real Node-RED (its own process, adminAuth on) running a real
 * recognition flow: camera-in plays a clip made from dev photos of two strangers, so the visits,
 * clusters and images the API serves are real. Every route, with bad input, login and permissions.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { makeDemoClip } from '../../nodes/core/camera/demo-clip';
import { FACES_DIR } from '../models';
import { startNodeRed, type NodeRedProcess } from '../helpers/node-red-process';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const bcrypt = require('bcryptjs') as { hashSync(text: string, rounds: number): string };

const photos = (person: string, n: number) =>
  fs
    .readdirSync(path.join(FACES_DIR, person))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .slice(0, n)
    .map((f) => path.join(FACES_DIR, person, f));

export function recognitionFlow(
  clip: string,
  galleryDir: string,
  extra: Record<string, unknown>[] = [],
  classifyWires: string[] = [],
) {
  return [
    { id: 'tab', type: 'tab', label: 'test' },
    { id: 'dev', type: 'edgetpu-device', device: 'cpu', performance: 'high', model: '', threads: '' },
    { id: 'gal', type: 'face-gallery', name: 'people', path: galleryDir, threshold: '', margin: '', device: 'dev' },
    {
      id: 'cam',
      type: 'camera-in',
      z: 'tab',
      x: 100,
      y: 100,
      name: 'door',
      url: clip,
      transport: 'tcp',
      fps: '4',
      maxWidth: '',
      stallSeconds: '',
      wires: [['align'], []],
    },
    {
      id: 'align',
      type: 'align',
      z: 'tab',
      x: 300,
      y: 100,
      detector: 'short',
      minFaceSize: '',
      minScore: '',
      maxFaces: '',
      tiles: false,
      wires: [['embed']],
    },
    {
      id: 'embed',
      type: 'edgetpu-embed',
      z: 'tab',
      x: 500,
      y: 100,
      device: 'dev',
      embedAll: false,
      reuseMs: '',
      wires: [['classify']],
    },
    {
      id: 'classify',
      type: 'imprint-classify',
      z: 'tab',
      x: 700,
      y: 100,
      gallery: 'gal',
      confirmFrames: '2',
      unknownFrames: '3',
      cooldown: '5',
      maxMissed: '0.6',
      perFrame: false,
      wires: [classifyWires, []],
    },
    ...extra,
  ];
}

describe('nodes: face library API in a real Node-RED with adminAuth', function () {
  this.timeout(400000);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-library-api-'));
  const galleryDir = path.join(work, 'gallery');
  let red: NodeRedProcess;
  let admin = '';
  let viewer = '';

  const api = (route: string) => `${red.url}coral-face/api/${route}`;
  const as = (token: string, extra: Record<string, string> = {}) => ({ Authorization: `Bearer ${token}`, ...extra });
  const write = (token: string) => as(token, { 'X-Coral-Face': '1', 'Content-Type': 'application/json' });
  async function json(response: Response): Promise<any> {
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  async function login(username: string, password: string, scope = '*'): Promise<string> {
    const response = await fetch(`${red.url}auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'node-red-admin', grant_type: 'password', scope, username, password }),
    });
    assert.equal(response.status, 200, `login ${username}`);
    return (await response.json()).access_token;
  }
  async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 300_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${red.log().slice(-1500)}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  before(async function () {
    this.timeout(240000);
    // Two strangers, two photos each, 2 s per photo with an empty frame between them (so each photo
    // is its own track: the faces sit at the same place in every photo): a repeat visitor every 16 s.
    const [a, b] = [photos('Jacques_Chirac', 2), photos('Serena_Williams', 2)];
    const clip = path.join(work, 'door.mp4');
    const blank = path.join(work, 'empty.png');
    await sharp({ create: { width: 250, height: 250, channels: 3, background: { r: 90, g: 90, b: 90 } } })
      .png()
      .toFile(blank);
    await makeDemoClip([a[0], blank, b[0], blank, a[1], blank, b[1], blank], clip, {
      secondsPerImage: 2,
      width: 640,
      height: 480,
      fps: 4,
    });
    red = await startNodeRed({
      flow: recognitionFlow(clip, galleryDir),
      settings: {
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'admin', password: bcrypt.hashSync('admin-pass', 8), permissions: '*' },
            { username: 'viewer', password: bcrypt.hashSync('viewer-pass', 8), permissions: 'read' },
          ],
        },
      },
    });
    admin = await login('admin', 'admin-pass');
    viewer = await login('viewer', 'viewer-pass', 'read');
  });
  after(async () => {
    await red?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('needs a login for every route that holds data; the page itself loads and asks for it', async () => {
    for (const route of [
      'galleries',
      'cameras',
      'visits',
      'clusters',
      'people',
      'health',
      'settings',
      'export',
      'visits/0mx4k307l-3ebd91b2/crop.jpg',
    ]) {
      assert.equal((await fetch(api(route))).status, 401, route);
    }
    assert.equal(
      (await fetch(api('clusters/x/name'), { method: 'POST', headers: { 'X-Coral-Face': '1' } })).status,
      401,
    );
    const page = await fetch(`${red.url}coral-face/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="app.js">/);
    assert.equal((await fetch(`${red.url}coral-face/app.js`)).status, 200);
    const redirect = await fetch(`${red.url}coral-face`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), 'coral-face/', 'a relative redirect: right behind any proxy path');
    // A token in the query works for images (as the live view does).
    assert.equal((await fetch(`${api('galleries')}?access_token=${encodeURIComponent(admin)}`)).status, 200);
  });

  it('lets a read-only user view but not change, and refuses changes without the page header', async () => {
    assert.equal((await fetch(api('galleries'), { headers: as(viewer) })).status, 200);
    assert.equal((await fetch(api('settings'), { method: 'PUT', headers: write(viewer), body: '{}' })).status, 401);
    const noHeader = await fetch(api('settings'), {
      method: 'PUT',
      headers: as(admin, { 'Content-Type': 'application/json' }),
      body: '{}',
    });
    assert.equal(noHeader.status, 403);
    assert.equal((await json(noHeader)).error.code, 'ERR_CROSS_SITE');
    const crossSite = await fetch(api('settings'), {
      method: 'PUT',
      headers: { ...write(admin), 'Sec-Fetch-Site': 'cross-site' },
      body: '{}',
    });
    assert.equal(crossSite.status, 403);
    // Another port of the same host is "same-site" to a browser, and still another site for the page.
    assert.equal(
      (
        await fetch(api('settings'), {
          method: 'PUT',
          headers: { ...write(admin), 'Sec-Fetch-Site': 'same-site' },
          body: '{}',
        })
      ).status,
      403,
    );
    // Node-RED's CORS would let any site read: face data is refused to other sites, by Sec-Fetch-Site or Origin.
    assert.equal((await fetch(api('visits'), { headers: as(admin, { 'Sec-Fetch-Site': 'cross-site' }) })).status, 403);
    assert.equal((await fetch(api('visits'), { headers: as(admin, { Origin: 'http://evil.example' }) })).status, 403);
    assert.equal(
      (await fetch(api('visits'), { headers: as(admin, { Origin: red.url.replace(/\/$/, '') }) })).status,
      200,
    );
    assert.equal(
      (
        await fetch(api('settings'), {
          method: 'PUT',
          headers: { ...write(admin), 'Sec-Fetch-Site': 'same-origin' },
          body: '{}',
        })
      ).status,
      200,
    );
  });

  it('lists galleries and cameras of the running flow, and visits as the camera sees strangers', async () => {
    const galleries = await json(await fetch(api('galleries'), { headers: as(admin) }));
    assert.deepEqual(
      galleries.galleries.map((g: { id: string; directory: string }) => [g.id, g.directory]),
      [['gal', galleryDir]],
    );
    const cameras = await json(await fetch(api('cameras'), { headers: as(admin) }));
    assert.deepEqual(cameras.cameras, [{ id: 'cam', name: 'door' }]);
    const clusters = await until('two stranger groups with repeat visits', async () => {
      const body = await json(await fetch(api('clusters'), { headers: as(admin) }));
      const repeat = body.clusters.filter((c: { visits: number }) => c.visits >= 2);
      return repeat.length >= 2 ? repeat : undefined;
    });
    assert.ok(
      clusters.every((c: { crops: string[]; cameras: string[] }) => c.crops.length >= 2 && c.cameras[0] === 'door'),
    );
    const page = await json(await fetch(`${api('visits')}?limit=2`, { headers: as(admin) }));
    assert.equal(page.visits.length, 2);
    assert.ok(page.next);
    assert.equal(page.visits[0].kind, 'unknown');
    assert.ok(!('embedding' in page.visits[0]), 'embeddings stay on the server');
    const older = await json(await fetch(`${api('visits')}?limit=2&before=${page.next}`, { headers: as(admin) }));
    assert.ok(older.visits.every((v: { time: number }) => v.time <= page.visits[1].time));
    const crop = await fetch(api(`visits/${page.visits[0].id}/crop.jpg`), { headers: as(admin) });
    assert.equal(crop.status, 200);
    assert.equal(crop.headers.get('content-type'), 'image/jpeg');
    assert.match(crop.headers.get('cache-control')!, /private/);
    const bytes = Buffer.from(await crop.arrayBuffer());
    assert.equal(bytes[0], 0xff);
    assert.equal(bytes[1], 0xd8);
  });

  it('answers bad input with a clear error and a status, never a stack', async () => {
    const cases: [string, RequestInit, number, RegExp][] = [
      ['visits?limit=0', {}, 400, /limit must be/],
      ['visits?kind=bogus', {}, 400, /kind must be/],
      ['visits?gallery=nope', {}, 404, /No deployed face-gallery 'nope'/],
      ['visits/0000000zz-00000000/crop.jpg', {}, 404, /No such face image/],
      ['visits/..%2F..%2Fsettings/crop.jpg', {}, 404, /No such face image/],
      ['people/nobody', {}, 404, /No person 'nobody'/],
      ['people/nobody/photos/x.png', {}, 404, /No person/],
      ['no/such/route', {}, 404, /No face library API route/],
      ['clusters/nope/name', { method: 'POST', body: JSON.stringify({ name: 'X' }) }, 404, /No unknown group/],
      ['clusters/nope/name', { method: 'POST', body: JSON.stringify({}) }, 400, /name is required/],
      [
        'clusters/nope/name',
        { method: 'POST', body: JSON.stringify({ name: 'X', mode: 'maybe' }) },
        400,
        /mode must be/,
      ],
      ['visits/0000000zz-00000000/not', { method: 'POST', body: '{}' }, 404, /No visit/],
      ['people/nobody/rename', { method: 'POST', body: JSON.stringify({ name: 'Y' }) }, 404, /No person/],
      [
        'people/nobody/ignored',
        { method: 'POST', body: JSON.stringify({ ignored: 'yes' }) },
        400,
        /ignored must be true or false/,
      ],
      ['people/nobody', { method: 'DELETE' }, 400, /confirm/],
      ['settings', { method: 'PUT', body: JSON.stringify({ visits: { maxVisits: -5 } }) }, 400, /maxVisits must be/],
      [
        'settings',
        { method: 'PUT', body: JSON.stringify({ recognition: { threshold: 7 } }) },
        400,
        /threshold must be/,
      ],
      ['people/photos', { method: 'POST', body: '{}' }, 400, /multipart/],
    ];
    for (const [route, init, status, message] of cases) {
      const response = await fetch(api(route), { ...init, headers: { ...write(admin), ...(init.headers as object) } });
      const body = await json(response);
      assert.equal(response.status, status, `${init.method ?? 'GET'} ${route}: ${JSON.stringify(body)}`);
      assert.match(body.error.message, message, route);
      assert.ok(!/at .*\.js:\d+/.test(body.error.message), 'no stack trace');
    }
    const notJson = await fetch(api('import'), {
      method: 'POST',
      headers: { ...write(admin), 'Content-Type': 'application/octet-stream' },
      body: 'nope',
    });
    assert.equal(notJson.status, 400);
    assert.match((await json(notJson)).error.message, /not a coral-face export/);
  });

  it('uploads: too large or too many files are refused whole, a bad photo among good ones is reported', async () => {
    const form = (files: [string, Buffer][], name = 'Uma') => {
      const data = new FormData();
      data.append('name', name);
      data.append('mode', 'new');
      for (const [file, bytes] of files) data.append('photos', new Blob([new Uint8Array(bytes)]), file);
      return data;
    };
    const headers = as(admin, { 'X-Coral-Face': '1' });
    const big = await fetch(api('people/photos'), {
      method: 'POST',
      headers,
      body: form([['huge.jpg', Buffer.alloc(21 * 1024 * 1024)]]),
    });
    assert.equal(big.status, 413);
    assert.match((await json(big)).error.message, /huge\.jpg is larger than 20 MB: nothing was saved/);
    const many = await fetch(api('people/photos'), {
      method: 'POST',
      headers,
      body: form(Array.from({ length: 31 }, (_, i) => [`p${i}.jpg`, Buffer.from('x')])),
    });
    assert.equal(many.status, 413);
    const good = photos('Tony_Blair', 4).map((f): [string, Buffer] => [path.basename(f), fs.readFileSync(f)]);
    const mixed = await fetch(api('people/photos'), {
      method: 'POST',
      headers,
      body: form([...good.slice(0, 2), ['notes.txt', Buffer.from('hello')], ...good.slice(2)]),
    });
    const report = await json(mixed);
    assert.equal(mixed.status, 200, JSON.stringify(report));
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.photos.map((p: { file: string }) => p.file),
      [good[0][0], good[1][0], 'notes.txt', good[2][0], good[3][0]],
    );
    assert.equal(report.photos[2].accepted, false);
    assert.equal(report.photos[2].reasons[0].code, 'ERR_IMAGE_UNSUPPORTED');
    const people = await json(await fetch(api('people'), { headers: as(admin) }));
    assert.deepEqual(
      people.people.map((p: { name: string }) => p.name),
      ['Uma'],
    );
    const again = await fetch(api('people/photos'), { method: 'POST', headers, body: form(good.slice(0, 1), 'uma') });
    assert.equal(again.status, 409, 'a new person under an existing name is refused (add to them instead)');
  });

  it('names a stranger group; the next visit of that face is recognised by name; "not" corrects it', async () => {
    const [group] = (await json(await fetch(api('clusters'), { headers: as(admin) }))).clusters.filter(
      (c: { visits: number }) => c.visits >= 2,
    );
    const named = await fetch(api(`clusters/${group.id}/name`), {
      method: 'POST',
      headers: write(admin),
      body: JSON.stringify({ name: 'Gerd', mode: 'new' }),
    });
    const result = await json(named);
    assert.equal(named.status, 200, JSON.stringify(result));
    assert.equal(result.person.name, 'Gerd');
    // The clip shows the same photo on every loop: its identical faces count once.
    assert.ok(result.accepted >= 1, JSON.stringify(result));
    assert.equal(result.crops.length, result.accepted + result.rejected);
    const recognised = await until('a visit recognised as Gerd', async () => {
      const page = await json(await fetch(`${api('visits')}?person=Gerd&kind=recognized`, { headers: as(admin) }));
      return page.visits[0];
    });
    assert.equal(recognised.kind, 'recognized');
    const person = await json(await fetch(api('people/gerd'), { headers: as(admin) }));
    assert.equal(person.photos.length, result.accepted);
    const photo = await fetch(api(`people/gerd/photos/${person.photos[0].file}`), { headers: as(admin) });
    assert.equal(photo.headers.get('content-type'), 'image/png');

    const not = await fetch(api(`visits/${recognised.id}/not`), { method: 'POST', headers: write(admin), body: '{}' });
    assert.equal(not.status, 200, JSON.stringify(await json(not.clone())));
    const corrected = (await json(await fetch(`${api('visits')}?limit=500`, { headers: as(admin) }))).visits.find(
      (v: { id: string }) => v.id === recognised.id,
    );
    assert.equal(corrected.kind, 'unknown');
    assert.equal(corrected.corrected, true);
    const after = await json(await fetch(api('people/gerd'), { headers: as(admin) }));
    assert.equal(after.negatives.length, 1);
    const negative = await fetch(api(`people/gerd/negatives/${after.negatives[0].file}`), { headers: as(admin) });
    assert.equal(negative.status, 200);
    assert.equal(
      (
        await fetch(api(`people/gerd/negatives/${after.negatives[0].file}`), {
          method: 'DELETE',
          headers: write(admin),
        })
      ).status,
      200,
    );

    // Delete one photo (of Uma, uploaded with four): gone from the person and from disk.
    const uma = await json(await fetch(api('people/uma'), { headers: as(admin) }));
    const file = uma.photos[0].file;
    assert.equal(
      (await fetch(api(`people/uma/photos/${file}`), { method: 'DELETE', headers: write(admin) })).status,
      200,
    );
    const fewer = await json(await fetch(api('people/uma'), { headers: as(admin) }));
    assert.equal(fewer.photos.length, uma.photos.length - 1);
    assert.equal(fs.existsSync(path.join(galleryDir, 'people', 'uma', file)), false);
    assert.equal(
      (await fetch(api(`people/uma/photos/${file}`), { method: 'DELETE', headers: write(admin) })).status,
      404,
    );
  });

  it('deletes a stranger group: its visits and their face images', async () => {
    const { clusters } = await json(await fetch(api('clusters'), { headers: as(admin) }));
    const group = clusters.find((c: { crops: string[] }) => c.crops.length > 0);
    assert.ok(group, 'a group to delete');
    const response = await fetch(api(`clusters/${group.id}`), { method: 'DELETE', headers: write(admin) });
    assert.equal(response.status, 200);
    assert.equal((await json(response)).deleted, group.visits);
    for (const id of group.crops) {
      assert.equal(fs.existsSync(path.join(galleryDir, 'library', 'visits', 'crops', `${id}.jpg`)), false);
      assert.equal((await fetch(api(`visits/${id}/crop.jpg`), { headers: as(admin) })).status, 404);
    }
    assert.equal((await fetch(api(`clusters/${group.id}`), { method: 'DELETE', headers: write(admin) })).status, 404);
  });

  it('health, settings, ignore, rename, export, import and forget', async () => {
    const health = await json(await fetch(api('health'), { headers: as(admin) }));
    assert.ok(Array.isArray(health.curve) && health.curve.length > 50);
    assert.equal(typeof health.threshold, 'number');
    assert.ok(health.people.some((p: { name: string }) => p.name === 'Uma'));
    const applied = await fetch(api('settings'), {
      method: 'PUT',
      headers: write(admin),
      body: JSON.stringify({ recognition: { threshold: 0.61 } }),
    });
    assert.equal(applied.status, 200);
    assert.equal(
      (await json(await fetch(api('health'), { headers: as(admin) }))).threshold,
      0.61,
      'applied to the running recognizer',
    );
    await fetch(api('settings'), { method: 'PUT', headers: write(admin), body: JSON.stringify({ recognition: null }) });
    assert.notEqual(
      (await json(await fetch(api('health'), { headers: as(admin) }))).threshold,
      0.61,
      'back to the node setting',
    );
    const settings = await json(
      await fetch(api('settings'), {
        method: 'PUT',
        headers: write(admin),
        body: JSON.stringify({ visits: { maxVisits: 5000, maxAgeDays: 7, keepImages: true } }),
      }),
    );
    assert.deepEqual(settings.visits, { maxVisits: 5000, maxAgeDays: 7, keepImages: true });

    assert.equal(
      (
        await fetch(api('people/uma/ignored'), {
          method: 'POST',
          headers: write(admin),
          body: JSON.stringify({ ignored: true }),
        })
      ).status,
      200,
    );
    assert.equal((await json(await fetch(api('people/uma'), { headers: as(admin) }))).ignored, true);
    const renamed = await json(
      await fetch(api('people/uma/rename'), {
        method: 'POST',
        headers: write(admin),
        body: JSON.stringify({ name: 'Uma T' }),
      }),
    );
    assert.deepEqual(renamed, { id: 'uma', name: 'Uma T' });
    const bad = await fetch(api('people/uma/rename'), {
      method: 'POST',
      headers: write(admin),
      body: JSON.stringify({ name: '   ' }),
    });
    assert.equal(bad.status, 400);

    const exported = await fetch(`${api('export')}?people=uma`, { headers: as(admin) });
    assert.match(exported.headers.get('content-disposition')!, /attachment; filename="coral-face-uma.json"/);
    const file = Buffer.from(await exported.arrayBuffer());
    const doc = JSON.parse(file.toString());
    assert.equal(doc.people[0].name, 'Uma T');
    assert.equal(doc.people[0].ignored, true);

    const forget = await fetch(`${api('people/uma')}?confirm=uma`, { method: 'DELETE', headers: write(admin) });
    assert.equal(forget.status, 200);
    assert.equal(fs.existsSync(path.join(galleryDir, 'people', 'uma')), false, 'her photos are gone from disk');
    const imported = await json(
      await fetch(api('import'), {
        method: 'POST',
        headers: { ...write(admin), 'Content-Type': 'application/octet-stream' },
        body: file,
      }),
    );
    assert.deepEqual(
      imported.people.map((p: { outcome: string }) => p.outcome),
      ['created'],
    );
    const back = await json(
      await fetch(api('people/uma-t'), { headers: as(admin) }).then((r) =>
        r.status === 200 ? r : fetch(api('people/Uma T'), { headers: as(admin) }),
      ),
    );
    assert.equal(back.name, 'Uma T');
    assert.equal(back.ignored, true, 'the ignored flag comes along');
  });
});
