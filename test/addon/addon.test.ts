/**
 * The Home Assistant app (add-on) in addon/:
 * - config.yaml and translations/en.yaml against the documented schema
 *   (test/addon/ha-schema.ts), with mutated copies proving the checks bite;
 * - shellcheck on every script, the AppArmor profile, the image recipe's pins,
 *   the documentation and the images;
 * - the start script run for real in a temporary root against a stand-in
 *   Supervisor, its output loaded into a real Node-RED (node-red-node-test-helper,
 *   and the node-red binary with the generated settings.js), user changes kept
 *   on the next start, and no password ever in flows.json.
 */
import { strict as assert } from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { parse } from 'yaml';
import helper from '../helpers/node-red';
import { validateConfig, validateOptions, validateTranslations } from './ha-schema';
import { ADDON, LIB_DIR, ownedId, ROOT, Sandbox, START_SCRIPT } from './sandbox';
import { startSupervisorStub, SupervisorStub } from './supervisor-stub';
import { freePort } from '../helpers/rtsp-server';

const readYaml = (file: string) => parse(fs.readFileSync(path.join(ADDON, file), 'utf8'));
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));
const ROLES = ['camera-in', 'align', 'edgetpu-embed', 'imprint-classify', 'ha-face-entities'];

/** Every script in the app: files with a shell shebang anywhere under addon/. */
function shellScripts(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (
        /\.(sh|bash)$/.test(entry.name) ||
        /^#!.*\b(ba|da)?sh\b/.test(fs.readFileSync(file, 'latin1').slice(0, 80))
      )
        found.push(file);
    }
  };
  walk(ADDON);
  return found;
}

function pngSize(file: string): { width: number; height: number } {
  const data = fs.readFileSync(file);
  assert.equal(data.subarray(1, 4).toString('latin1'), 'PNG', `${file} is not a PNG`);
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('Home Assistant app: config.yaml and translations', () => {
  const config = readYaml('config.yaml');
  const translations = readYaml('translations/en.yaml');

  it('config.yaml passes the documented schema table', () => {
    assert.deepEqual(validateConfig(config), []);
  });

  it('the schema table catches missing keys, wrong types and malformed values', () => {
    const mutations: [string, (c: any) => void, RegExp][] = [
      ['no slug', (c) => delete c.slug, /slug: required/],
      ['no arch', (c) => delete c.arch, /arch: required/],
      ['version as a number', (c) => (c.version = 1.5), /version: must be a non-empty string/],
      ['retired arch', (c) => (c.arch = ['armv7', 'amd64']), /arch\[0\]: must be one of aarch64\|amd64/],
      ['usb as a string', (c) => (c.usb = 'yes'), /usb: must be true or false/],
      ['ingress_port out of range', (c) => (c.ingress_port = 70000), /ingress_port: must be an integer/],
      ['watchdog without [HOST]', (c) => (c.watchdog = 'http://localhost:1880/'), /watchdog: .* is not a watchdog URL/],
      ['service typo', (c) => (c.services = ['mqtt:needs']), /services\[0\]/],
      ['device not under /dev', (c) => (c.devices = ['apex_0']), /devices\[0\]/],
      ['unknown key', (c) => (c.ingres = true), /ingres: not a documented/],
      ['unknown option type', (c) => (c.schema.threshold = 'floaty?'), /schema.threshold: unknown option type/],
      ['option without schema', (c) => (c.options.extra = 1), /options.extra: has no schema entry/],
      ['optional with a default', (c) => (c.options.threshold = 0.5), /schema.threshold: optional/],
      [
        'default of the wrong type',
        (c) => (c.options.detector = 'sideways'),
        /options.detector: "sideways" is not one of near\|far/,
      ],
      ['map type typo', (c) => (c.map = [{ type: 'medias', read_only: true }]), /map\[0\]/],
      ['three levels of options', (c) => (c.schema.cameras[0].extra = { deeper: ['str'] }), /deeper than two levels/],
    ];
    for (const [what, mutate, expected] of mutations) {
      const copy = clone(config);
      mutate(copy);
      const problems = validateConfig(copy);
      assert.ok(
        problems.some((p) => expected.test(p)),
        `${what}: expected ${expected} in ${JSON.stringify(problems)}`,
      );
    }
  });

  it('declares what the Coral, MQTT and ingress need, and nothing it does not', () => {
    assert.equal(config.slug, 'coral_face');
    assert.equal(config.version, JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
    assert.deepEqual([...config.arch].sort(), ['aarch64', 'amd64']);
    assert.equal(config.init, false, 's6-overlay v3 base image needs init: false');
    assert.equal(config.startup, 'application');
    assert.equal(config.usb, true);
    assert.deepEqual(config.devices, ['/dev/apex_0', '/dev/apex_1', '/dev/apex_2', '/dev/apex_3']);
    assert.deepEqual(config.services, ['mqtt:need']);
    assert.equal(config.ingress, true);
    // The panel opens the face library (served by the package at <httpAdminRoot>/coral-face/).
    assert.equal(config.ingress_entry, 'coral-face/');
    assert.equal(config.panel_icon, 'mdi:face-recognition');
    // The watchdog and ingress hit the same Node-RED port, which is generate.js's default.
    const port = Number(/\[PORT:(\d+)\]/.exec(config.watchdog)![1]);
    assert.equal(config.ingress_port, port);
    assert.equal(port, 1880);
    assert.match(fs.readFileSync(START_SCRIPT, 'utf8'), /CORAL_FACE_PORT:-1880/);
    assert.match(config.watchdog, /^http:\/\/\[HOST\]:\[PORT:1880\]\/coral-face\/health$/);
    // Ingress only: no published port, no extra APIs, no full access.
    for (const key of [
      'ports',
      'webui',
      'host_network',
      'full_access',
      'privileged',
      'docker_api',
      'hassio_api',
      'homeassistant_api',
      'auth_api',
    ]) {
      assert.ok(!config[key], `${key} is not needed`);
    }
    // /data is always mapped (and backed up); photos for enrolment come read-only from media/share.
    for (const entry of config.map) assert.equal(entry.read_only, true, `${entry.type} is read-only`);
  });

  it('the default options and a full options.json validate against the schema', () => {
    assert.deepEqual(validateOptions(config.schema, config.options), []);
    const full = {
      ...config.options,
      cameras: [
        { name: 'Front door', url: 'rtsp://192.0.2.10/stream1', user: 'admin', password: 'pw' },
        { name: 'Garden', url: 'rtsp://192.0.2.11/s' },
      ],
      threshold: 0.55,
      margin: 0.05,
      coral_device: 'usb:1',
      performance: 'max',
      accept_max_frequency_terms: true,
    };
    assert.deepEqual(validateOptions(config.schema, full), []);
    const problems = validateOptions(config.schema, {
      ...full,
      threshold: 1.5,
      coral_device: 'tpu',
      cameras: [{ url: 'rtsp://x' }],
    });
    assert.ok(
      problems.some((p) => /threshold/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /coral_device/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /cameras\[0\]\.name: required/.test(p)),
      problems.join('\n'),
    );
  });

  it('translations/en.yaml names and describes every option, nested fields included', () => {
    assert.deepEqual(validateTranslations(translations, config.schema), []);
    const missing = clone(translations);
    delete missing.configuration.margin;
    delete missing.configuration.cameras.fields.password;
    missing.configuration.bogus = { name: 'x', description: 'y' };
    const problems = validateTranslations(missing, config.schema);
    assert.ok(problems.includes('configuration.margin: no translation'), problems.join('\n'));
    assert.ok(problems.includes('configuration.cameras.fields.password: no translation'), problems.join('\n'));
    assert.ok(
      problems.some((p) => /configuration.bogus: translation for an option/.test(p)),
      problems.join('\n'),
    );
  });

  it('DOCS.md has a section per option and says what was not verified; CHANGELOG has this version', () => {
    const docs = fs.readFileSync(path.join(ADDON, 'DOCS.md'), 'utf8');
    for (const key of Object.keys(config.schema)) {
      assert.match(docs, new RegExp(`^#+ .*\`${key}\``, 'm'), `DOCS.md has no heading for option ${key}`);
    }
    assert.match(docs, /^#+ What was not verified/m);
    const changelog = fs.readFileSync(path.join(ADDON, 'CHANGELOG.md'), 'utf8');
    assert.match(changelog, new RegExp(`^## \\[?${config.version.replace(/\./g, '\\.')}\\]?`, 'm'));
  });

  it('icon.png is 128x128 and logo.png 250x100', () => {
    assert.deepEqual(pngSize(path.join(ADDON, 'icon.png')), { width: 128, height: 128 });
    assert.deepEqual(pngSize(path.join(ADDON, 'logo.png')), { width: 250, height: 100 });
    for (const f of ['icon.png', 'logo.png']) assert.ok(fs.statSync(path.join(ADDON, f)).size < 50000, `${f} is small`);
  });
});

describe('Home Assistant app: scripts, AppArmor and image recipe', () => {
  it('shellcheck finds nothing in any script', function () {
    const version = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0, 'shellcheck is not installed (apt-get install -y shellcheck); .ci/run installs it');
    const scripts = shellScripts();
    assert.ok(scripts.includes(START_SCRIPT), `the start script is found: ${scripts.join(', ')}`);
    const result = spawnSync('shellcheck', ['--severity=style', '--external-sources', ...scripts], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, `shellcheck:\n${result.stdout}${result.stderr}`);
  });

  it('the start script and generate.js are executable', () => {
    for (const file of [START_SCRIPT, path.join(LIB_DIR, 'generate.js')]) {
      assert.ok(fs.statSync(file).mode & 0o111, `${file} is executable`);
    }
  });

  it('the AppArmor profile is named after the slug and allows the Coral devices', function () {
    const profile = fs.readFileSync(path.join(ADDON, 'apparmor.txt'), 'utf8');
    assert.match(profile, /^profile coral_face flags=\(attach_disconnected,mediate_deleted\) \{/m);
    for (const rule of [
      '/dev/apex_* rw,',
      '/dev/bus/usb/** rw,',
      '/sys/bus/usb/** r,',
      '/usr/bin/** ix,',
      '/opt/libedgetpu-max/** rm,',
      '/data/{,**} rwk,',
      'network inet stream,',
    ]) {
      assert.ok(profile.includes(rule), `apparmor.txt has ${rule}`);
    }
    const parser = spawnSync('apparmor_parser', ['--version'], { encoding: 'utf8' });
    if (parser.error) {
      console.log('      (apparmor_parser not installed: apt-get install -y apparmor to parse the profile too)');
      return;
    }
    const parsed = spawnSync('apparmor_parser', ['-Q', '-K', path.join(ADDON, 'apparmor.txt')], { encoding: 'utf8' });
    assert.equal(parsed.status, 0, `apparmor_parser:\n${parsed.stderr}`);
  });

  it('the Dockerfile pins the base, Node.js 22, Node-RED and libedgetpu, and labels the image', () => {
    const dockerfile = fs.readFileSync(path.join(ADDON, 'Dockerfile'), 'utf8');
    const config = readYaml('config.yaml');
    const build = readYaml('build.yaml');
    const arg = (name: string) => new RegExp(`^ARG ${name}=(.+)$`, 'm').exec(dockerfile)?.[1];
    assert.equal(arg('BUILD_FROM'), 'ghcr.io/home-assistant/${BUILD_ARCH}-base-debian:bookworm');
    assert.match(dockerfile, /^FROM \$\{BUILD_FROM\}$/m);
    for (const a of config.arch) assert.equal(build.build_from[a], `ghcr.io/home-assistant/${a}-base-debian:bookworm`);
    assert.equal(arg('BUILD_VERSION'), config.version);
    assert.equal(arg('NODE_MAJOR'), '22');
    assert.equal(arg('NODE_RED_VERSION'), '4.1.8');
    assert.equal(arg('LIBEDGETPU_VERSION'), '16.0');
    assert.match(dockerfile, /"libedgetpu1-std=\$\{LIBEDGETPU_VERSION\}"/);
    assert.match(dockerfile, /apt-mark hold libedgetpu1-std/);
    assert.match(dockerfile, /apt-get download "libedgetpu1-max=\$\{LIBEDGETPU_VERSION\}"/);
    assert.match(dockerfile, /packages\.cloud\.google\.com\/apt coral-edgetpu-stable main/);
    assert.match(dockerfile, /deb\.nodesource\.com\/node_\$\{NODE_MAJOR\}\.x/);
    assert.match(dockerfile, /"node-red@\$\{NODE_RED_VERSION\}"/);
    for (const pkg of ['ffmpeg', 'libusb-1.0-0']) assert.ok(dockerfile.includes(pkg), `installs ${pkg}`);
    // This package comes from the build context's tarball: test/addon/image.test.ts.
    assert.match(dockerfile, /^CMD \["\/usr\/bin\/coral-face-start"\]$/m);
    assert.match(dockerfile, /io\.hass\.type="addon"/);
    assert.match(dockerfile, /io\.hass\.version="\$\{BUILD_VERSION\}"/);
    assert.match(dockerfile, /io\.hass\.arch="\$\{BUILD_ARCH\}"/);
    // What the image copies is what the tests run.
    assert.match(dockerfile, /^COPY rootfs \/$/m);
  });
});

describe('Home Assistant app: start script, generated flow, real Node-RED', function () {
  this.timeout(120000);
  const TOKEN = 'supervisor-token-for-tests';
  const MQTT = { host: '127.0.0.1', port: 9, username: 'addons', password: 'mqtt-password-from-supervisor' };
  const PASSWORDS = ['inline-url-password', 'back-camera-password', 'garden-camera-password', MQTT.password];
  let supervisor: SupervisorStub;
  let sandbox: Sandbox;

  const options = (overrides: Record<string, unknown> = {}) => ({
    cameras: [
      { name: 'Front door', url: 'rtsp://viewer:inline-url-password@127.0.0.1:9/stream1' },
      { name: 'Back yard', url: 'rtsp://127.0.0.1:9/back', user: 'back-user', password: 'back-camera-password' },
    ],
    threshold: 0.55,
    detector: 'far',
    coral_device: 'cpu',
    performance: 'high',
    accept_max_frequency_terms: false,
    log_level: 'info',
    manage_flow: true,
    ...overrides,
  });
  const env = () => ({ SUPERVISOR_TOKEN: TOKEN, CORAL_FACE_SUPERVISOR_URL: supervisor.url });
  const byId = (flows: Record<string, any>[]) => new Map(flows.map((n) => [n.id, n]));
  const assertNoPasswords = () => {
    for (const file of [sandbox.flowsFile, sandbox.settingsFile]) {
      const text = fs.readFileSync(file, 'utf8');
      for (const secret of PASSWORDS)
        assert.ok(!text.includes(secret), `${path.basename(file)} must not contain ${secret}`);
    }
    assert.ok(
      !fs.readFileSync(sandbox.settingsFile, 'utf8').includes(sandbox.secret()),
      'settings.js reads the secret, never holds it',
    );
  };

  before(async () => {
    for (const tool of ['bash', 'jq', 'curl']) {
      assert.equal(
        spawnSync(tool, ['--version']).status,
        0,
        `${tool} is needed to run the start script (apt-get install -y ${tool})`,
      );
    }
    supervisor = await startSupervisorStub(TOKEN, MQTT);
  });
  after(() => supervisor.close());
  beforeEach(() => {
    sandbox = new Sandbox();
    supervisor.mqtt = MQTT;
    supervisor.requests.length = 0;
  });
  afterEach(() => sandbox.remove());

  it('writes settings.js, flows.json and encrypted flows_cred.json, then execs node-red', async () => {
    sandbox.writeOptions(options());
    const run = await sandbox.run(env());
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.record, `node-red was exec'd\n${run.stderr}`);
    assert.deepEqual(run.record.argv, ['--userDir', sandbox.userDir, '--settings', sandbox.settingsFile]);
    assert.equal(run.record.env.CORAL_FACE_MQTT, undefined, "the MQTT password does not reach Node-RED's environment");
    assert.equal(run.record.env.CORAL_EDGETPU_LIBRARY, undefined);
    assert.equal(run.record.env.NODE_RED_DISABLE_TELEMETRY, '1');
    // It asked the Supervisor with its token.
    assert.deepEqual(supervisor.requests, [
      { method: 'GET', path: '/services/mqtt', authorization: `Bearer ${TOKEN}`, status: 200 },
    ]);

    for (const file of [sandbox.settingsFile, sandbox.flowsFile, sandbox.credFile])
      assert.ok(fs.existsSync(file), file);
    assert.equal(fs.statSync(sandbox.secretFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(sandbox.credFile).mode & 0o777, 0o600);
    assert.match(sandbox.secret(), /^[0-9a-f]{64}$/);
    assert.ok(fs.statSync(path.join(sandbox.data, 'gallery')).isDirectory());
    assert.ok(typeof JSON.parse(fs.readFileSync(sandbox.credFile, 'utf8')).$ === 'string', 'credentials are encrypted');
    assertNoPasswords();

    const flows = byId(sandbox.flows());
    const tab = ownedId('tab');
    const device = flows.get(ownedId('edgetpu-device'))!;
    const gallery = flows.get(ownedId('face-gallery'))!;
    assert.equal(flows.get(tab)!.type, 'tab');
    assert.deepEqual(
      { device: device.device, performance: device.performance },
      { device: 'cpu', performance: 'high' },
    );
    assert.deepEqual(
      { path: gallery.path, threshold: gallery.threshold, margin: gallery.margin, device: gallery.device },
      { path: path.join(sandbox.data, 'gallery'), threshold: '0.55', margin: '', device: device.id },
    );
    for (const camera of ['front_door', 'back_yard']) {
      const [cam, align, embed, classify, ha] = ROLES.map((r) => flows.get(ownedId(r, camera))!);
      for (const n of [cam, align, embed, classify, ha]) assert.equal(n.z, tab, `${n.type} is on the app's tab`);
      assert.equal(cam.name, camera);
      assert.deepEqual(cam.wires, [[align.id], [ha.id]], 'frames to align, stream status to Home Assistant');
      assert.equal(align.detector, 'full');
      assert.deepEqual(align.wires, [[embed.id]]);
      assert.equal(embed.device, device.id);
      assert.deepEqual(embed.wires, [[classify.id]]);
      assert.equal(classify.gallery, gallery.id);
      assert.deepEqual(classify.wires, [[ha.id], []]);
      assert.deepEqual(
        {
          broker: ha.broker,
          discoveryPrefix: ha.discoveryPrefix,
          baseTopic: ha.baseTopic,
          camera: ha.camera,
          gallery: ha.gallery,
        },
        {
          broker: 'mqtt://127.0.0.1:9',
          discoveryPrefix: 'homeassistant',
          baseTopic: 'coral-face',
          camera,
          gallery: gallery.id,
        },
      );
    }
    assert.equal(
      flows.get(ownedId('camera-in', 'front_door'))!.url,
      'rtsp://127.0.0.1:9/stream1',
      'login taken out of the URL',
    );

    const creds = sandbox.credentials();
    assert.deepEqual(creds[ownedId('camera-in', 'front_door')], { user: 'viewer', password: 'inline-url-password' });
    assert.deepEqual(creds[ownedId('camera-in', 'back_yard')], { user: 'back-user', password: 'back-camera-password' });
    assert.deepEqual(creds[ownedId('ha-face-entities', 'front_door')], { user: 'addons', password: MQTT.password });
  });

  it('loads into Node-RED: every node created and wired, credentials decrypted by Node-RED itself', async () => {
    sandbox.writeOptions(options());
    const run = await sandbox.run(env());
    assert.equal(run.status, 0, run.stderr);
    const flows = sandbox.flows();
    const storedCredentials = JSON.parse(fs.readFileSync(sandbox.credFile, 'utf8'));

    // The real node modules where they exist (build/nodes/<type>/<type>.js), else a recording stand-in.
    const standIns: string[] = [];
    const modules = [...new Set(flows.map((n) => n.type).filter((t) => t !== 'tab'))].map((type) => {
      const file = path.join(ROOT, 'build', 'nodes', type, `${type}.js`);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      if (fs.existsSync(file)) return require(file);
      standIns.push(type);
      return (RED: any) =>
        RED.nodes.registerType(
          type,
          function (this: any, config: any) {
            RED.nodes.createNode(this, config);
            this.config = config;
          },
          { credentials: { user: { type: 'text' }, password: { type: 'password' } } },
        );
    });
    if (standIns.length) console.log(`      (stand-ins for node types not built yet: ${standIns.join(', ')})`);

    // Node-RED decrypts flows_cred.json with settings.credentialSecret: give it the secret the app generated.
    const secret = sandbox.secret();
    const runtimeSettings = (helper as any)._RED.settings;
    (helper as any).settings({
      get: (key: string) => (key === 'credentialSecret' ? secret : runtimeSettings.get(key)),
    });
    await new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve())));
    try {
      await helper.load(modules, flows, storedCredentials);
      for (const n of flows.filter((x) => x.type !== 'tab')) {
        const node = helper.getNode(n.id);
        assert.ok(node, `${n.type} ${n.id} was created`);
        assert.equal(node.type, n.type);
        if (n.wires) assert.deepEqual(node.wires, n.wires, `${n.type} wires`);
      }
      assert.deepEqual(helper.getNode(ownedId('camera-in', 'back_yard')).credentials, {
        user: 'back-user',
        password: 'back-camera-password',
      });
      assert.deepEqual(helper.getNode(ownedId('camera-in', 'front_door')).credentials, {
        user: 'viewer',
        password: 'inline-url-password',
      });
      assert.deepEqual(helper.getNode(ownedId('ha-face-entities', 'back_yard')).credentials, {
        user: 'addons',
        password: MQTT.password,
      });
      // A message through the chain's wiring: align -> embed is connected in the running flow.
      const embedId = ownedId('edgetpu-embed', 'front_door');
      const reached = new Promise<void>((resolve) => helper.getNode(embedId).on('input', () => resolve()));
      helper.getNode(ownedId('align', 'front_door')).send({ faces: [], frame: undefined, payload: 'wiring check' });
      await reached;
    } finally {
      await helper.unload();
      await new Promise<void>((resolve, reject) => helper.stopServer((e) => (e ? reject(e) : resolve())));
      (helper as any).settings({});
    }
  });

  it('the generated settings.js runs the real node-red: health URL, editor, flows, ingress-only access', async () => {
    const port = await freePort();
    sandbox.writeOptions(options());
    const run = await sandbox.run({ ...env(), CORAL_FACE_PORT: String(port) });
    assert.equal(run.status, 0, run.stderr);

    delete require.cache[sandbox.settingsFile];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const settings = require(sandbox.settingsFile);
    assert.equal(settings.uiPort, port);
    assert.equal(settings.uiHost, '0.0.0.0');
    assert.equal(settings.httpAdminRoot, '/');
    assert.equal(settings.httpNodeRoot, '/endpoint');
    assert.equal(settings.credentialSecret, sandbox.secret());
    assert.equal(settings.userDir, sandbox.userDir);
    assert.equal(settings.adminAuth, undefined, 'Home Assistant ingress authenticates users');
    assert.deepEqual(settings.httpServerOptions, { 'trust proxy': '172.30.32.2' });
    for (const [address, allowed] of [
      ['172.30.32.2', true],
      ['::ffff:172.30.32.2', true],
      ['127.0.0.1', true],
      ['172.30.32.1', false],
      ['192.168.1.50', false],
    ] as const) {
      assert.equal(settings.coralFace.clientAllowed(address), allowed, address);
    }

    const child: ChildProcess = spawn(process.execPath, [require.resolve('node-red/red.js'), ...run.record!.argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    try {
      const deadline = Date.now() + 60000;
      while (!/Started flows|Waiting for missing types/.test(output)) {
        if (Date.now() > deadline || child.exitCode !== null) assert.fail(`node-red did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const health = await get(`http://127.0.0.1:${port}/coral-face/health`);
      assert.equal(health.status, 200);
      assert.equal(JSON.parse(health.body).status, 'ok');
      const editor = await get(`http://127.0.0.1:${port}/`);
      assert.equal(editor.status, 200);
      assert.match(editor.body, /<title>Coral Face<\/title>/);
      const served = await get(`http://127.0.0.1:${port}/flows`);
      assert.equal(served.status, 200);
      assert.deepEqual(
        JSON.parse(served.body)
          .map((n: any) => n.id)
          .sort(),
        sandbox
          .flows()
          .map((n) => n.id)
          .sort(),
      );
      assert.doesNotMatch(output, /credentials|decrypt/i, 'Node-RED read flows_cred.json without complaint');
      // Any address other than ingress/loopback is refused, editor and health alike.
      const external = Object.values(os.networkInterfaces())
        .flat()
        .find((i) => i && i.family === 'IPv4' && !i.internal);
      if (external) {
        assert.equal((await get(`http://${external.address}:${port}/`)).status, 403);
        assert.equal((await get(`http://${external.address}:${port}/coral-face/health`)).status, 403);
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  });

  it("a second start keeps the user's changes, follows changed options and drops removed cameras", async () => {
    sandbox.writeOptions(options());
    assert.equal((await sandbox.run(env())).status, 0);
    const tab = ownedId('tab');
    const front = (role: string) => ownedId(role, 'front_door');
    const back = (role: string) => ownedId(role, 'back_yard');

    // What a user might do in the editor, then deploy.
    const flows = sandbox.flows();
    const node = (id: string) => flows.find((n) => n.id === id)!;
    node(tab).label = 'My faces';
    node(front('align')).minFaceSize = '80';
    node(front('camera-in')).fps = '2';
    node(front('camera-in')).url = 'rtsp://127.0.0.1:9/edited-in-the-editor';
    node(front('imprint-classify')).wires = [[front('ha-face-entities')], ['user-debug']];
    node(back('imprint-classify')).wires[0].push('user-debug');
    flows.push(
      {
        id: 'user-debug',
        type: 'debug',
        z: tab,
        name: 'mine',
        active: true,
        tosidebar: true,
        complete: 'payload',
        x: 900,
        y: 300,
        wires: [],
      },
      {
        id: 'user-fn',
        type: 'function',
        z: tab,
        name: 'to back align',
        func: 'return msg;',
        outputs: 1,
        x: 100,
        y: 300,
        wires: [[back('align'), 'user-debug']],
      },
      { id: 'user-broker', type: 'mqtt-broker', name: 'my broker', broker: '192.0.2.5', port: '1883' },
    );
    sandbox.writeFlows(flows);
    sandbox.writeCredentials({
      ...sandbox.credentials(),
      'user-broker': { user: 'me', password: 'user-broker-password' },
    });

    // The user also changes the app options: new threshold, one camera gone, one added.
    sandbox.writeOptions(
      options({
        threshold: 0.6,
        cameras: [
          { name: 'Front door', url: 'rtsp://viewer:inline-url-password@127.0.0.1:9/stream1' },
          { name: 'Garden', url: 'rtsp://127.0.0.1:9/garden', user: 'g', password: 'garden-camera-password' },
        ],
      }),
    );
    const run = await sandbox.run(env());
    assert.equal(run.status, 0, run.stderr);
    assertNoPasswords();
    const after = byId(sandbox.flows());

    // Kept: everything that is not a managed property.
    assert.equal(after.get(tab)!.label, 'My faces');
    assert.equal(after.get(front('align'))!.minFaceSize, '80');
    assert.equal(after.get(front('camera-in'))!.fps, '2');
    assert.deepEqual(after.get(front('imprint-classify'))!.wires, [[front('ha-face-entities')], ['user-debug']]);
    assert.ok(after.get('user-debug') && after.get('user-broker'));
    // Managed: reset from the options.
    assert.equal(after.get(front('camera-in'))!.url, 'rtsp://127.0.0.1:9/stream1');
    assert.equal(after.get(ownedId('face-gallery'))!.threshold, '0.6');
    // Removed camera: its nodes, credentials and the wires pointing at them are gone.
    for (const role of ROLES) assert.ok(!after.has(back(role)), `${role} of the removed camera`);
    assert.deepEqual(after.get('user-fn')!.wires, [['user-debug']]);
    // New camera: a full chain.
    assert.deepEqual(after.get(ownedId('camera-in', 'garden'))!.wires, [
      [ownedId('align', 'garden')],
      [ownedId('ha-face-entities', 'garden')],
    ]);
    const creds = sandbox.credentials();
    assert.deepEqual(creds['user-broker'], { user: 'me', password: 'user-broker-password' });
    assert.equal(creds[back('camera-in')], undefined);
    assert.deepEqual(creds[ownedId('camera-in', 'garden')], { user: 'g', password: 'garden-camera-password' });
    assert.deepEqual(creds[front('camera-in')], { user: 'viewer', password: 'inline-url-password' });
    assert.ok(fs.existsSync(`${sandbox.flowsFile}.coral-face.bak`), 'the previous flow is kept as a backup');

    // A third start with the same options changes nothing.
    const before = fs.readFileSync(sandbox.flowsFile, 'utf8');
    assert.equal((await sandbox.run(env())).status, 0);
    assert.equal(fs.readFileSync(sandbox.flowsFile, 'utf8'), before);
    assert.deepEqual(sandbox.credentials(), creds);

    // Only a managed property edited: reset, and the edited flow saved as the backup first.
    const edited = sandbox.flows();
    edited.find((n) => n.id === front('align'))!.detector = 'short';
    sandbox.writeFlows(edited);
    const editedText = fs.readFileSync(sandbox.flowsFile, 'utf8');
    assert.equal((await sandbox.run(env())).status, 0);
    assert.equal(byId(sandbox.flows()).get(front('align'))!.detector, 'full');
    assert.equal(fs.readFileSync(`${sandbox.flowsFile}.coral-face.bak`, 'utf8'), editedText);

    // Deleting an owned node in the editor: it comes back at the next start (DOCS.md says so).
    sandbox.writeFlows(sandbox.flows().filter((n) => n.id !== front('align')));
    assert.equal((await sandbox.run(env())).status, 0);
    assert.ok(byId(sandbox.flows()).has(front('align')));
  });

  it('manage_flow: false leaves an existing flow and its credentials alone', async () => {
    sandbox.writeOptions(options());
    assert.equal((await sandbox.run(env())).status, 0);
    const flows = sandbox.flows().filter((n) => n.id !== ownedId('align', 'front_door'));
    sandbox.writeFlows(flows);
    const flowsText = fs.readFileSync(sandbox.flowsFile, 'utf8');
    const credText = fs.readFileSync(sandbox.credFile, 'utf8');
    sandbox.writeOptions(options({ manage_flow: false, threshold: 0.9, cameras: [] }));
    const run = await sandbox.run(env());
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /manage_flow is off/);
    assert.equal(fs.readFileSync(sandbox.flowsFile, 'utf8'), flowsText);
    assert.equal(fs.readFileSync(sandbox.credFile, 'utf8'), credText);
    assert.ok(run.record, 'Node-RED still starts');
  });

  it('without MQTT from the Supervisor it still starts and keeps the broker it had', async () => {
    sandbox.writeOptions(options());
    assert.equal((await sandbox.run(env())).status, 0);
    const ha = ownedId('ha-face-entities', 'front_door');
    const brokerBefore = byId(sandbox.flows()).get(ha)!.broker;

    supervisor.mqtt = null; // Mosquitto stopped: "Service not enabled"
    let run = await sandbox.run(env());
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /no MQTT broker from the Supervisor \(Service not enabled\)/);
    assert.equal(byId(sandbox.flows()).get(ha)!.broker, brokerBefore);
    assert.deepEqual(sandbox.credentials()[ha], { user: 'addons', password: MQTT.password });

    run = await sandbox.run({ ...env(), SUPERVISOR_TOKEN: 'wrong-token' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /no MQTT broker from the Supervisor \(Forbidden\)/);
    assert.equal(supervisor.requests.at(-1)!.status, 403);

    run = await sandbox.run({ ...env(), CORAL_FACE_SUPERVISOR_URL: 'http://127.0.0.1:1' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /could not reach the Supervisor/);
    assert.equal(byId(sandbox.flows()).get(ha)!.broker, brokerBefore);

    run = await sandbox.run({ ...env(), SUPERVISOR_TOKEN: undefined });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /SUPERVISOR_TOKEN is not set/);
    assert.ok(run.record);
  });

  it('performance max uses libedgetpu1-max only once its terms are accepted', async () => {
    const maxLib = sandbox.fakeMaxRuntime();
    sandbox.writeOptions(options({ performance: 'max', accept_max_frequency_terms: false }));
    let run = await sandbox.run(env());
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /needs accept_max_frequency_terms/);
    assert.equal(run.record!.env.CORAL_EDGETPU_LIBRARY, undefined);
    assert.equal(byId(sandbox.flows()).get(ownedId('edgetpu-device'))!.performance, 'high');

    sandbox.writeOptions(options({ performance: 'max', accept_max_frequency_terms: true }));
    run = await sandbox.run(env());
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.record!.env.CORAL_EDGETPU_LIBRARY, maxLib);
    assert.equal(byId(sandbox.flows()).get(ownedId('edgetpu-device'))!.performance, 'max');
  });

  it('refuses options it cannot turn into a flow, with a message that says why', async () => {
    sandbox.writeOptions(
      options({
        cameras: [
          { name: 'Front door', url: 'rtsp://a/1' },
          { name: 'front-door', url: 'rtsp://a/2' },
        ],
      }),
    );
    let run = await sandbox.run(env());
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /give the same id "front_door"/);
    assert.equal(run.record, null, 'node-red is not started');

    fs.writeFileSync(path.join(sandbox.data, 'options.json'), '{not json');
    run = await sandbox.run(env());
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /not a JSON object/);
  });
});
