/**
 * ha-face-entities in a real Node-RED 4.1 against a real mosquitto started
 * here (127.0.0.1, a free port, password auth), watched by an MQTT client
 * that subscribes the way Home Assistant does. Every discovery payload is
 * checked against a schema table written from the HA docs; visits must give
 * exactly one event and one trigger; gallery changes, HA's birth message, a
 * broker restart and a redeploy must all leave HA with the right entities.
 */
import { strict as assert } from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { connectAsync, MqttClient } from 'mqtt';
import { Gallery } from '../../nodes/core/gallery/gallery';
import { maskSecrets } from '../../nodes/core/common/secrets';
import { slugId } from '../../nodes/core/ha/discovery';
import type { VisitPayload } from '../../nodes/core/flow/messages';
import helper from '../helpers/node-red';
import { freePort } from '../helpers/rtsp-server';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const NODES = ['face-gallery', 'ha-face-entities'].map((type) => require(`../../nodes/${type}/${type}`));

const MOSQUITTO = '/usr/sbin/mosquitto';
const NODE_USER = 'nodered';
const NODE_PASSWORD = 'N0de-R3d:s3cret';
const HA_USER = 'homeassistant';
const HA_PASSWORD = 'ha-pass';
const PREFIX = 'homeassistant';
const BASE = 'coral-face';

// ---------------------------------------------------------------- HA schema, from the docs
// home-assistant.io/integrations/mqtt/#device-discovery-payload and the platform pages
// (event.mqtt, binary_sensor.mqtt, sensor.mqtt, image.mqtt, device_trigger.mqtt).
interface PlatformSchema {
  /** Keys the platform page marks required (plus unique_id: required with device-based discovery). */
  required: string[];
  /** Exactly one of these must be set (image: image_topic | url_topic). */
  exactlyOne?: string[];
  /** Keys holding topics HA subscribes to. */
  topics: string[];
  deviceClasses?: string[];
  entity: boolean;
}
const SCHEMA: Record<string, PlatformSchema> = {
  event: {
    required: ['state_topic', 'event_types', 'unique_id'],
    topics: ['state_topic', 'json_attributes_topic'],
    deviceClasses: ['button', 'doorbell', 'motion'],
    entity: true,
  },
  binary_sensor: {
    required: ['state_topic', 'unique_id'],
    topics: ['state_topic', 'json_attributes_topic'],
    entity: true,
    deviceClasses: [
      'battery',
      'battery_charging',
      'carbon_monoxide',
      'cold',
      'connectivity',
      'door',
      'garage_door',
      'gas',
      'heat',
      'light',
      'lock',
      'moisture',
      'motion',
      'moving',
      'occupancy',
      'opening',
      'plug',
      'power',
      'presence',
      'problem',
      'running',
      'safety',
      'smoke',
      'sound',
      'tamper',
      'update',
      'vibration',
      'window',
    ],
  },
  sensor: {
    required: ['state_topic', 'unique_id'],
    topics: ['state_topic', 'json_attributes_topic'],
    entity: true,
    deviceClasses: [
      'apparent_power',
      'aqi',
      'area',
      'atmospheric_pressure',
      'battery',
      'carbon_dioxide',
      'carbon_monoxide',
      'current',
      'data_rate',
      'data_size',
      'date',
      'distance',
      'duration',
      'energy',
      'energy_storage',
      'enum',
      'frequency',
      'gas',
      'humidity',
      'illuminance',
      'irradiance',
      'moisture',
      'monetary',
      'power',
      'power_factor',
      'precipitation',
      'pressure',
      'signal_strength',
      'sound_pressure',
      'speed',
      'temperature',
      'timestamp',
      'voltage',
      'volume',
      'water',
      'weight',
      'wind_speed',
    ],
  },
  image: {
    required: ['unique_id'],
    exactlyOne: ['image_topic', 'url_topic'],
    topics: ['image_topic', 'url_topic'],
    entity: true,
  },
  device_automation: { required: ['automation_type', 'topic', 'type', 'subtype'], topics: ['topic'], entity: false },
};
const TOPIC_ID = /^[a-zA-Z0-9_-]+$/;

interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

/** Checks one device payload; returns every topic it declares (for the state-topic consistency check). */
function validateDevice(topic: string, payload: any, uniqueIds: Set<string>): Set<string> {
  const m = /^homeassistant\/device\/([^/]+)\/config$/.exec(topic);
  assert.ok(m && TOPIC_ID.test(m[1]), `discovery topic ${topic}`);
  const deviceId = m[1];
  assert.ok(Array.isArray(payload.dev?.ids) && payload.dev.ids.length > 0, 'dev.ids');
  for (const key of ['name', 'mf', 'mdl', 'sw']) assert.equal(typeof payload.dev[key], 'string', `dev.${key}`);
  assert.equal(typeof payload.o?.name, 'string', 'o.name (origin is mandatory for device discovery)');
  assert.deepEqual(payload.availability, [
    { topic: `${BASE}/status`, payload_available: 'online', payload_not_available: 'offline' },
  ]);
  assert.ok(payload.cmps && typeof payload.cmps === 'object', 'cmps');
  const topics = new Set<string>();
  const triggers = new Set<string>();
  for (const [key, c] of Object.entries<any>(payload.cmps)) {
    assert.ok(TOPIC_ID.test(key), `component id ${key}`);
    const schema = SCHEMA[c.p];
    assert.ok(schema, `${key}: platform ${c.p} is one we validate`);
    assert.ok(Object.keys(c).length > 1, `${key}: a component needs an option besides p (else it is a removal)`);
    for (const r of schema.required)
      assert.ok(c[r] !== undefined && c[r] !== '', `${key} (${c.p}) lacks required ${r}`);
    if (schema.exactlyOne)
      assert.equal(
        schema.exactlyOne.filter((k) => c[k] !== undefined).length,
        1,
        `${key}: exactly one of ${schema.exactlyOne}`,
      );
    assert.ok(!('device' in c) && !('dev' in c), `${key}: device is set at the root only (docs: cannot be overridden)`);
    if (c.device_class !== undefined)
      assert.ok(schema.deviceClasses?.includes(c.device_class), `${key}: device_class ${c.device_class}`);
    if (c.entity_category !== undefined)
      assert.equal(c.entity_category, 'diagnostic', `${key}: sensors may only be diagnostic`);
    if (schema.entity) {
      assert.ok(!uniqueIds.has(c.unique_id), `unique_id ${c.unique_id} used twice`);
      uniqueIds.add(c.unique_id);
    }
    for (const k of schema.topics) {
      if (c[k] === undefined) continue;
      assert.ok(c[k].startsWith(`${BASE}/${deviceId}/`) && !/[+#]/.test(c[k]), `${key}.${k} = ${c[k]}`);
      topics.add(c[k]);
    }
    switch (c.p) {
      case 'event':
        assert.ok(
          Array.isArray(c.event_types) &&
            c.event_types.length > 0 &&
            c.event_types.every((t: unknown) => typeof t === 'string'),
        );
        assert.equal(new Set(c.event_types).size, c.event_types.length, 'event_types unique');
        assert.ok(c.event_types.includes('unknown'));
        break;
      case 'sensor':
        if (c.device_class === 'duration')
          assert.ok(['d', 'h', 'min', 's', 'ms', 'µs'].includes(c.unit_of_measurement), 'duration unit');
        break;
      case 'binary_sensor':
        if (c.off_delay !== undefined)
          assert.ok(Number.isInteger(c.off_delay) && c.off_delay >= 0, 'off_delay is an integer');
        break;
      case 'image':
        if (c.image_topic) assert.equal(c.content_type, 'image/jpeg');
        break;
      case 'device_automation': {
        assert.equal(c.automation_type, 'trigger');
        const pair = `${c.type}\u0000${c.subtype}`;
        assert.ok(!triggers.has(pair), `${key}: type+subtype must be unique per device`);
        triggers.add(pair);
        break;
      }
    }
  }
  return topics;
}

// ---------------------------------------------------------------- broker and HA side

class Broker {
  private proc: ChildProcess | null = null;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-ha-mqtt-'));
  private stderr = '';
  /** With `tls`, the listener speaks TLS with a server certificate signed by a fresh CA (`caFile`). */
  constructor(
    readonly port: number,
    tls = false,
  ) {
    // mosquitto started as root reads its files as the "mosquitto" user: mkdtemp's 0700 would lock it out.
    fs.chmodSync(this.dir, 0o755);
    const pw = path.join(this.dir, 'passwd');
    spawnSync('/usr/bin/mosquitto_passwd', ['-b', '-c', pw, NODE_USER, NODE_PASSWORD]);
    spawnSync('/usr/bin/mosquitto_passwd', ['-b', pw, HA_USER, HA_PASSWORD]);
    let tlsLines = '';
    if (tls) {
      const f = (name: string) => path.join(this.dir, name);
      const openssl = (...args: string[]) => {
        const r = spawnSync('openssl', args, { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
      };
      openssl(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        f('ca.key'),
        '-out',
        f('ca.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=coral-face test CA',
      );
      openssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        f('server.key'),
        '-out',
        f('server.csr'),
        '-subj',
        '/CN=127.0.0.1',
      );
      fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
      openssl(
        'x509',
        '-req',
        '-in',
        f('server.csr'),
        '-CA',
        f('ca.pem'),
        '-CAkey',
        f('ca.key'),
        '-CAcreateserial',
        '-out',
        f('server.pem'),
        '-days',
        '2',
        '-extfile',
        f('ext.cnf'),
      );
      for (const name of ['ca.pem', 'server.pem', 'server.key']) fs.chmodSync(f(name), 0o644);
      tlsLines = `cafile ${f('ca.pem')}\ncertfile ${f('server.pem')}\nkeyfile ${f('server.key')}\n`;
    }
    fs.writeFileSync(
      path.join(this.dir, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\n${tlsLines}allow_anonymous false\npassword_file ${pw}\npersistence false\n`,
    );
  }

  get caFile(): string {
    return path.join(this.dir, 'ca.pem');
  }

  async start(): Promise<void> {
    this.proc = spawn(MOSQUITTO, ['-c', path.join(this.dir, 'mosquitto.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc.stderr!.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-2000);
    });
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = net.connect(this.port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (ok) return;
      await sleep(50);
    }
    throw new Error(`mosquitto did not start: ${this.stderr}`);
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 8000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** An MQTT client subscribed like Home Assistant (discovery + birth) plus our state topics. */
class HaWatcher {
  messages: Received[] = [];
  constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => this.messages.push({ topic, payload, retain: packet.retain }));
  }

  static async connect(port: number): Promise<HaWatcher> {
    const client = await connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: HA_USER,
      password: HA_PASSWORD,
      reconnectPeriod: 200,
    });
    const watcher = new HaWatcher(client);
    await client.subscribeAsync([`${PREFIX}/#`, `${BASE}/#`], { qos: 1 });
    return watcher;
  }

  on(topic: string, since = 0): Received[] {
    return this.messages.slice(since).filter((m) => m.topic === topic);
  }

  last(topic: string, since = 0): Received | undefined {
    return this.on(topic, since).at(-1);
  }

  json(topic: string, since = 0): any {
    const m = this.last(topic, since);
    return m && m.payload.length ? JSON.parse(m.payload.toString()) : undefined;
  }

  mark(): number {
    return this.messages.length;
  }
}

/** The retained message a fresh subscriber gets for one topic (undefined: none). */
async function retained(port: number, topic: string): Promise<Buffer | undefined> {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { username: HA_USER, password: HA_PASSWORD });
  try {
    let got: Buffer | undefined;
    client.on('message', (t, payload, packet) => {
      if (t === topic && packet.retain) got = payload;
    });
    await client.subscribeAsync(topic, { qos: 1 });
    await sleep(300);
    return got;
  } finally {
    await client.endAsync();
  }
}

// ---------------------------------------------------------------- the flow

function flow(port: number, galleryDir: string, extra: Record<string, unknown> = {}) {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'gal', type: 'face-gallery', path: galleryDir, threshold: '', margin: '', device: '' },
    {
      id: 'ha',
      type: 'ha-face-entities',
      z: 'tab',
      x: 100,
      y: 100,
      wires: [],
      broker: `mqtt://127.0.0.1:${port}`,
      caFile: '',
      rejectUnauthorized: true,
      discoveryPrefix: PREFIX,
      baseTopic: BASE,
      camera: '',
      deviceId: '',
      gallery: 'gal',
      offDelay: '30',
      retainImage: true,
      ...extra,
    },
  ];
}
const CREDENTIALS = { ha: { user: NODE_USER, password: NODE_PASSWORD } };

let trackSeq = 0;
function visit(event: VisitPayload['event'], name: string, camera = 'front_door', trackId = `${camera}-${++trackSeq}`) {
  const payload: VisitPayload = { event, name, camera, trackId, time: new Date().toISOString() };
  if (event !== 'left')
    Object.assign(payload, { cosine: 0.71, confidence: 0.93, box: { x: 1, y: 2, width: 50, height: 60 } });
  const msg: Record<string, unknown> = { topic: `${camera}/${event}`, payload };
  if (event !== 'left') msg.image = Buffer.from([0xff, 0xd8, 0xff, 0xe0, trackSeq & 0xff, 0xff, 0xd9]);
  return msg;
}

const crop = () => ({ image: { width: 4, height: 4, data: new Uint8Array(48).fill(128) } });

describe('nodes: ha-face-entities catalog', () => {
  it('has a message for every key the runtime and the editor use', () => {
    const root = path.join(__dirname, '..', '..', '..');
    const dir = path.join(root, 'nodes', 'ha-face-entities');
    const catalog = JSON.parse(fs.readFileSync(path.join(dir, 'locales', 'en-US', 'ha-face-entities.json'), 'utf8'));
    const source =
      fs.readFileSync(path.join(dir, 'ha-face-entities.ts'), 'utf8') +
      fs.readFileSync(path.join(dir, 'ha-face-entities.html'), 'utf8');
    const keys = new Set([...source.matchAll(/['"\]]ha-face-entities\.([a-zA-Z.]+[a-zA-Z])/g)].map((m) => m[1]));
    // The one key built at run time: `status.${visit.event}` for the two events that show a status.
    keys.add('status.recognized');
    keys.add('status.unknown');
    assert.ok(keys.size > 20);
    for (const key of keys) {
      const value = key.split('.').reduce((o: any, k) => o?.[k], catalog['ha-face-entities']);
      assert.equal(typeof value, 'string', `catalog lacks ha-face-entities.${key}`);
    }
  });
});

describe('nodes: ha-face-entities against mosquitto', function () {
  this.timeout(60000);
  let broker: Broker;
  let ha: HaWatcher;
  let galleryDir: string;
  const device = 'front_door';
  const discovery = `${PREFIX}/device/${device}/config`;
  const topic = (rest: string) => `${BASE}/${device}/${rest}`;

  before(async () => {
    broker = new Broker(await freePort());
    await broker.start();
    ha = await HaWatcher.connect(broker.port);
    galleryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-ha-gallery-'));
    const gallery = await Gallery.open(galleryDir, { create: true });
    await gallery.addCrops('Alice', [crop()]);
    await gallery.addCrops('Bob', [crop()]);
    await new Promise<void>((resolve, reject) => helper.startServer((e) => (e ? reject(e) : resolve())));
  });

  afterEach(() => helper.unload());

  after(async () => {
    await helper.unload().catch(() => undefined);
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
    await ha?.client.endAsync(true).catch(() => undefined);
    await broker?.stop();
  });

  async function load(
    extra: Record<string, unknown> = {},
    credentials: unknown = CREDENTIALS,
  ): Promise<{ gallery: Gallery }> {
    await helper.load(NODES, flow(broker.port, galleryDir, extra), credentials as Record<string, unknown>);
    const gallery = (await (helper.getNode('gal') as any).gallery()) as Gallery;
    return { gallery };
  }

  it('announces a schema-valid device; a visit fires exactly one event and one trigger; left and off_delay clear presence', async () => {
    const since = ha.mark();
    await load({ offDelay: '2' });
    const node = helper.getNode('ha');

    const alice = visit('recognized', 'Alice');
    node.receive(alice);
    node.receive(alice); // the same visit wired in twice: still one event
    const event = await waitFor('event', () => ha.last(topic('event'), since));
    await sleep(300);

    const config = ha.json(discovery, since);
    const uniqueIds = new Set<string>();
    const declared = validateDevice(discovery, config, uniqueIds);
    assert.equal((await retained(broker.port, discovery))?.toString(), JSON.stringify(config), 'discovery is retained');
    assert.deepEqual(config.cmps.face_event.event_types, ['Alice', 'Bob', 'unknown']);
    assert.equal(config.dev.name, 'Front door');
    assert.equal(config.cmps.person_alice_presence.off_delay, 2);
    assert.equal(config.cmps.person_alice_trigger.subtype, 'Alice');
    assert.equal(config.cmps.person_alice_trigger.type, 'recognized');

    // Exactly one event and one trigger, for Alice only.
    assert.equal(ha.on(topic('event'), since).length, 1);
    assert.equal(ha.on(topic('trigger/person/alice'), since).length, 1);
    assert.equal(ha.messages.slice(since).filter((m) => m.topic.startsWith(topic('trigger/'))).length, 1);
    assert.equal(
      await retained(broker.port, topic('event')),
      undefined,
      'events are never retained (HA drops replayed ones)',
    );
    assert.equal(
      await retained(broker.port, topic('trigger/person/alice')),
      undefined,
      'a replayed trigger would re-fire',
    );
    const body = JSON.parse(event.payload.toString());
    assert.equal(body.event_type, 'Alice');
    assert.equal(body.camera, 'front_door');
    assert.equal(body.track_id, (alice.payload as VisitPayload).trackId);
    assert.equal(body.cosine, 0.71);
    assert.equal(body.person_id, 'alice');
    assert.ok(config.cmps.face_event.event_types.includes(body.event_type));

    await waitFor('presence on', () => ha.last(topic('presence/alice'), since)?.payload.toString() === 'ON');
    assert.equal((await retained(broker.port, topic('presence/alice')))?.toString(), 'ON', 'states are retained');
    assert.equal(ha.last(topic('presence/bob'), since)!.payload.toString(), 'OFF');
    assert.equal(ha.last(topic('last_person'), since)!.payload.toString(), 'Alice');
    assert.deepEqual(ha.last(topic('face'), since)!.payload, alice.image);
    assert.equal(ha.last(`${BASE}/status`)?.payload.toString(), 'online');

    // left → presence OFF.
    const mark = ha.mark();
    node.receive(visit('left', 'Alice', 'front_door', (alice.payload as VisitPayload).trackId));
    await waitFor('presence off', () => ha.last(topic('presence/alice'), mark)?.payload.toString() === 'OFF');

    // A stranger: one event "unknown" and the unknown trigger.
    const before = ha.mark();
    node.receive(visit('unknown', 'unknown'));
    await waitFor('unknown event', () => ha.last(topic('trigger/unknown'), before));
    await sleep(200);
    assert.equal(ha.on(topic('event'), before).length, 1);
    assert.equal(ha.json(topic('event'), before).event_type, 'unknown');
    assert.equal(ha.messages.slice(before).filter((m) => m.topic.startsWith(topic('trigger/'))).length, 1);

    // off_delay: a visit that never "leaves" turns off after 2 s, as HA's off_delay does.
    const bobSince = ha.mark();
    node.receive(visit('recognized', 'Bob'));
    await waitFor('bob on', () => ha.last(topic('presence/bob'), bobSince)?.payload.toString() === 'ON');
    await waitFor(
      'bob off by off_delay',
      () => ha.last(topic('presence/bob'), bobSince)?.payload.toString() === 'OFF',
      4000,
    );

    // Diagnostics: backend and speed from msg.embedder, stream from a camera status message.
    node.receive({
      embedder: { id: 'mobilefacenet', backend: 'Edge TPU usb:0', msPerFace: 3.217 },
      frame: { camera: 'front_door' },
      faces: [],
    });
    node.receive({ topic: 'front_door/status', payload: { online: false } });
    await waitFor('stream off', () => ha.last(topic('diagnostics/stream'), bobSince)?.payload.toString() === 'OFF');
    assert.equal(ha.last(topic('diagnostics/backend'))!.payload.toString(), 'Edge TPU usb:0');
    assert.equal(ha.last(topic('diagnostics/inference_time'))!.payload.toString(), '3.22');

    // Every state we published goes to a topic the discovery declares; every event_type is announced.
    const ours = ha.messages
      .slice(since)
      .filter((m) => m.topic.startsWith(`${BASE}/${device}/`) && m.payload.length > 0);
    for (const m of ours) assert.ok(declared.has(m.topic), `published to undeclared ${m.topic}`);
    for (const m of ha.on(topic('event'), since)) {
      assert.ok(config.cmps.face_event.event_types.includes(JSON.parse(m.payload.toString()).event_type));
    }
  });

  it('follows a corrected track: unknown then Alice, Alice then Bob, each trigger once and presence right', async () => {
    await load({ offDelay: '60' });
    const node = helper.getNode('ha');
    const send = (event: VisitPayload['event'], name: string, trackId: string, extra: Partial<VisitPayload> = {}) => {
      const msg = visit(event, name, 'front_door', trackId);
      Object.assign(msg.payload as VisitPayload, extra);
      node.receive(msg);
    };
    // What imprint-classify sends when a stranger's track turns out to be Alice (enrolled while in view).
    const since = ha.mark();
    send('unknown', 'unknown', 'front_door-900');
    await waitFor('unknown trigger', () => ha.last(topic('trigger/unknown'), since));
    send('left', 'unknown', 'front_door-900', { revisedTo: 'Alice' });
    send('recognized', 'Alice', 'front_door-900', { revises: 'unknown' });
    send('recognized', 'Alice', 'front_door-900', { revises: 'unknown' }); // wired twice
    await waitFor('alice on', () => ha.last(topic('presence/alice'), since)?.payload.toString() === 'ON');
    await sleep(300);
    assert.equal(ha.on(topic('trigger/unknown'), since).length, 1);
    assert.equal(ha.on(topic('trigger/person/alice'), since).length, 1);
    assert.deepEqual(
      ha
        .on(topic('event'), since)
        .map((m) => JSON.parse(m.payload.toString()))
        .map((e) => [e.event_type, e.track_id, e.revises]),
      [
        ['unknown', 'front_door-900', null],
        ['Alice', 'front_door-900', 'unknown'],
      ],
    );

    // A wrong name corrected: Alice's presence goes off at once, Bob's on; his left turns him off.
    const mark = ha.mark();
    send('recognized', 'Bob', 'front_door-901');
    await waitFor('bob on', () => ha.last(topic('presence/bob'), mark)?.payload.toString() === 'ON');
    send('left', 'Bob', 'front_door-901', { revisedTo: 'Alice' });
    await waitFor('bob off', () => ha.last(topic('presence/bob'), mark)?.payload.toString() === 'OFF');
    send('left', 'Alice', 'front_door-900');
    await waitFor('alice off', () => ha.last(topic('presence/alice'), mark)?.payload.toString() === 'OFF');
    // Without the left (not wired, or lost), a correction still moves presence to the new name.
    const third = ha.mark();
    send('recognized', 'Alice', 'front_door-902');
    await waitFor('alice on again', () => ha.last(topic('presence/alice'), third)?.payload.toString() === 'ON');
    send('recognized', 'Bob', 'front_door-902', { revises: 'Alice' });
    await waitFor(
      'alice off by correction',
      () => ha.last(topic('presence/alice'), third)?.payload.toString() === 'OFF',
    );
    // Alice's OFF and Bob's ON are two publishes: wait for the second rather than race it.
    await waitFor('bob on by correction', () => ha.last(topic('presence/bob'), third)?.payload.toString() === 'ON');
    assert.equal(ha.on(topic('trigger/person/bob'), third).length, 1);
  });

  it('enrol, rename and forget through the gallery update event_types and add/remove components as the HA docs say', async () => {
    const s0 = ha.mark();
    const { gallery } = await load();
    const node = helper.getNode('ha');
    node.receive({ topic: 'front_door/status', payload: { state: 'online' } });
    await waitFor('discovery', () => ha.last(discovery, s0));
    await sleep(500);

    let since = ha.mark();
    await gallery.addCrops('Zoë 山田', [crop()]);
    const zoe = gallery.getPerson('Zoë 山田')!;
    const added = await waitFor('enrol republish', () => {
      const c = ha.json(discovery, since);
      return c?.cmps[`person_${zoe.id}_presence`] ? c : undefined;
    });
    validateDevice(discovery, added, new Set());
    assert.deepEqual(added.cmps.face_event.event_types, ['Alice', 'Bob', 'Zoë 山田', 'unknown']);
    assert.equal(added.cmps[`person_${zoe.id}_trigger`].subtype, 'Zoë 山田');

    // Rename: same component keys and unique_id (HA keeps entity ids), new names; the trigger keeps
    // its subtype, since HA (>= 2024.2) finds an automation's device trigger by type + subtype.
    since = ha.mark();
    const aliceUid = added.cmps.person_alice_presence.unique_id;
    await gallery.rename('Alice', 'Alicia');
    const renamed = await waitFor('rename republish', () => {
      const c = ha.json(discovery, since);
      return c?.cmps.person_alice_presence?.name === 'Alicia' ? c : undefined;
    });
    assert.equal(renamed.cmps.person_alice_presence.unique_id, aliceUid);
    assert.equal(renamed.cmps.person_alice_trigger.subtype, 'Alice', 'automations on "Alice recognized" keep firing');
    assert.ok(
      renamed.cmps.face_event.event_types.includes('Alicia') && !renamed.cmps.face_event.event_types.includes('Alice'),
    );
    // A visit under the new name fires the same trigger topic (keyed by person id).
    const v = ha.mark();
    node.receive(visit('recognized', 'Alicia'));
    await waitFor('renamed trigger', () => ha.last(topic('trigger/person/alice'), v));
    // Someone new called Alice gets a trigger of their own, distinct from the renamed one.
    since = ha.mark();
    await gallery.addCrops('Alice', [crop()]);
    const twoAlices = await waitFor('second Alice', () => {
      const c = ha.json(discovery, since);
      return c?.cmps['person_alice-2_trigger'] ? c : undefined;
    });
    validateDevice(discovery, twoAlices, new Set());
    assert.equal(twoAlices.cmps['person_alice-2_trigger'].subtype, 'Alice (alice-2)');
    assert.equal(twoAlices.cmps.person_alice_trigger.subtype, 'Alice');
    since = ha.mark();
    await gallery.forget('alice-2');
    await waitFor('second Alice forgotten', () => {
      const c = ha.json(discovery, since);
      return c && !c.cmps['person_alice-2_trigger'] && !c.cmps['person_alice-2_presence'] ? c : undefined;
    });

    // Forget: first the payload with Bob's components reduced to their platform, then without them.
    since = ha.mark();
    await gallery.forget('Bob');
    await waitFor('forget republish', () => ha.on(discovery, since).length >= 2);
    const [removal, final] = ha.on(discovery, since).map((m) => JSON.parse(m.payload.toString()));
    assert.deepEqual(removal.cmps.person_bob_presence, { p: 'binary_sensor' });
    assert.deepEqual(removal.cmps.person_bob_trigger, { p: 'device_automation' });
    assert.ok(removal.cmps.person_alice_presence.unique_id, 'the others stay whole in the removal step');
    assert.ok(!('person_bob_presence' in final.cmps) && !('person_bob_trigger' in final.cmps));
    assert.ok(!final.cmps.face_event.event_types.includes('Bob'));
    validateDevice(discovery, final, new Set());
    assert.equal(await retained(broker.port, topic('presence/bob')), undefined, 'no retained ghost state');
    assert.equal((await retained(broker.port, discovery))?.toString(), JSON.stringify(final));
  });

  it("republishes discovery and states on Home Assistant's birth message", async () => {
    const s0 = ha.mark();
    await load();
    await waitFor('connected', () => ha.last(discovery, s0));
    await sleep(800);
    const since = ha.mark();
    // HA's birth (not retained by default); two in a row coalesce into one republish.
    await ha.client.publishAsync(`${PREFIX}/status`, 'online', { qos: 1 });
    await ha.client.publishAsync(`${PREFIX}/status`, 'online', { qos: 1 });
    await waitFor('republished discovery', () => ha.last(discovery, since), 3000);
    await waitFor('republished states', () => ha.last(topic('presence/alice'), since), 3000);
    validateDevice(discovery, ha.json(discovery, since), new Set());
    await sleep(1000);
    assert.equal(ha.on(discovery, since).length, 1, 'one republish per birth burst');
  });

  it('reconnects after a broker restart and announces everything again', async () => {
    const s0 = ha.mark();
    await load();
    await waitFor('connected', () => ha.last(discovery, s0));
    await broker.stop();
    await sleep(500);
    const since = ha.mark();
    await broker.start(); // same port; persistence off: the broker forgot every retained message
    await waitFor('discovery after restart', () => ha.last(discovery, since), 15000);
    await waitFor(
      'online after restart',
      () => ha.last(`${BASE}/status`, since)?.payload.toString() === 'online',
      5000,
    );
    validateDevice(discovery, ha.json(discovery, since), new Set());
    assert.equal((await retained(broker.port, `${BASE}/status`))?.toString(), 'online');
    assert.ok(await retained(broker.port, discovery), 'discovery retained again');
  });

  it('keeps ids across a redeploy, says offline on close, and removes people forgotten while it was stopped', async () => {
    const s0 = ha.mark();
    const { gallery } = await load();
    await waitFor('connected', () => ha.last(discovery, s0));
    await sleep(300);
    const first = ha.json(discovery);
    const ids = (c: any) =>
      Object.fromEntries(Object.entries<any>(c.cmps).map(([k, v]) => [k, v.unique_id ?? v.topic]));

    let since = ha.mark();
    await helper.unload();
    await waitFor('offline on close', () => ha.last(`${BASE}/status`, since)?.payload.toString() === 'offline');
    await gallery.forget('Zoë 山田'); // while no node is running

    since = ha.mark();
    await load();
    await waitFor('discovery after redeploy', () => ha.on(discovery, since).length >= 2);
    const [removal, second] = ha.on(discovery, since).map((m) => JSON.parse(m.payload.toString()));
    const zoeKey = Object.keys(removal.cmps).find((k) => /^person_zo.*_presence$/.test(k))!;
    assert.deepEqual(
      removal.cmps[zoeKey],
      { p: 'binary_sensor' },
      'read back from the broker and removed the documented way',
    );
    const expected = ids(first);
    for (const key of Object.keys(expected)) if (key.startsWith('person_zo')) delete expected[key];
    assert.deepEqual(ids(second), expected, 'same component ids, unique_ids and topics');
    assert.deepEqual(second.dev.ids, first.dev.ids);
    await waitFor('online', () => ha.last(`${BASE}/status`, since)?.payload.toString() === 'online');
  });

  it('connects over TLS (mqtts://) with a CA file, and refuses an unverified certificate', async () => {
    const tls = new Broker(await freePort(), true);
    await tls.start();
    let watcher: MqttClient | undefined;
    try {
      // No CA file: the self-signed chain does not verify, so no connection.
      await load({ broker: `mqtts://127.0.0.1:${tls.port}` });
      const bad = helper.getNode('ha') as any;
      const statuses: string[] = [];
      const status = bad.status.bind(bad);
      bad.status = (x: any) => {
        statuses.push(JSON.stringify(x));
        return status(x);
      };
      await waitFor('certificate refused', () => statuses.some((x) => x.includes('disconnected')), 8000);
      await helper.unload();

      const seen: Received[] = [];
      watcher = await connectAsync(`mqtts://127.0.0.1:${tls.port}`, {
        ca: fs.readFileSync(tls.caFile),
        username: HA_USER,
        password: HA_PASSWORD,
      });
      watcher.on('message', (t, payload, packet) => seen.push({ topic: t, payload, retain: packet.retain }));
      await watcher.subscribeAsync([`${PREFIX}/#`, `${BASE}/#`], { qos: 1 });
      await load({ broker: `mqtts://127.0.0.1:${tls.port}`, caFile: tls.caFile, camera: 'front_door' });
      const found = await waitFor('discovery over TLS', () => seen.find((m) => m.topic === discovery));
      validateDevice(discovery, JSON.parse(found.payload.toString()), new Set());
      await waitFor('online over TLS', () =>
        seen.some((m) => m.topic === `${BASE}/status` && m.payload.toString() === 'online'),
      );
    } finally {
      await helper.unload();
      await watcher?.endAsync(true).catch(() => undefined);
      await tls.stop();
    }
  });

  it('slugs unicode camera names into valid ids, and never shows the password', async () => {
    const statuses: string[] = [];
    const logs: string[] = [];
    // A wrong password in the credentials and a password in the URL: neither may appear anywhere.
    await load(
      { broker: `mqtt://${NODE_USER}:url-pw-XYZ@127.0.0.1:${broker.port}` },
      { ha: { user: NODE_USER, password: 'wrong-Secret-123' } },
    );
    const bad = helper.getNode('ha') as any;
    const status = bad.status.bind(bad);
    bad.status = (s: any) => {
      statuses.push(JSON.stringify(s));
      return status(s);
    };
    for (const level of ['warn', 'error', 'log']) {
      const original = bad[level].bind(bad);
      bad[level] = (m: unknown) => {
        logs.push(String(m));
        return original(m);
      };
    }
    await waitFor('refused', () => statuses.some((s) => s.includes('disconnected')), 8000);
    for (const text of [...statuses, ...logs]) {
      assert.ok(!text.includes('wrong-Secret-123') && !text.includes('url-pw-XYZ'), `leaked: ${text}`);
    }
    await helper.unload();

    const since = ha.mark();
    await load({ camera: '玄関 カメラ' });
    const id = slugId('玄関 カメラ');
    assert.match(id, /^[a-z0-9_]+$/);
    const unicodeDiscovery = `${PREFIX}/device/${id}/config`;
    helper.getNode('ha').receive(visit('recognized', 'Alicia', 'whatever'));
    const c = await waitFor('unicode device', () => ha.json(unicodeDiscovery, since));
    validateDevice(unicodeDiscovery, c, new Set());
    assert.equal(c.dev.name, '玄関 カメラ');
    await waitFor('unicode event', () => ha.last(`${BASE}/${id}/trigger/person/alice`, since));
    assert.notEqual(slugId('玄関'), slugId('車庫'), 'different non-Latin names, different ids');
    assert.equal(slugId('Front door'), 'front_door');
    assert.equal(slugId('Haustür'), 'haustur');
    assert.equal(maskSecrets('connect mqtt://bob:hunter2@host failed', []), 'connect mqtt://bob:***@host failed');
    assert.equal(maskSecrets('auth hunter2 refused', ['hunter2']), 'auth *** refused');
  });
});
