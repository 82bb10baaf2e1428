#!/usr/bin/env node
/**
 * Coral Face app (add-on): turns /data/options.json into Node-RED's
 * settings.js, flows.json and flows_cred.json. Called by coral-face-start
 * before it execs Node-RED. Plain Node.js; the nodes of each camera's chain
 * and their defaults come from the installed node-red-contrib-coral-face
 * package (its homeAssistantChain builder), so the app and the package
 * cannot disagree about them. CORAL_FACE_PACKAGE names the package folder
 * (default: where the image installs it, beside Node-RED).
 *
 * Flow rule (see DOCS.md, "Your changes to the flow"):
 *  - No flows.json yet: the whole flow is written.
 *  - manage_flow: false: an existing flows.json and flows_cred.json are left
 *    alone.
 *  - manage_flow: true (default): the app owns the nodes it created. They
 *    have deterministic ids (a hash of role and camera), listed in
 *    <data>/coral-face/flow-state.json. At each start it
 *      - creates owned nodes that are missing (new camera, or deleted by you),
 *      - removes owned nodes of cameras no longer in the options (and wires
 *        pointing at them),
 *      - overwrites only the MANAGED properties of owned nodes (the ones the
 *        options decide: URL, camera name, detector, device, thresholds,
 *        broker...) and their managed credentials,
 *      - adds its pipeline wires if they are missing, keeping wires you added,
 *      - never touches any other node, property or credential.
 *
 * Credentials are written encrypted the way Node-RED 4 does it (aes-256-ctr,
 * key = sha256(credentialSecret), {"$": hex(iv) + base64(ciphertext)}), with
 * the secret generated once and kept in <data>/coral-face/credential-secret.
 */
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const TAB_ROLE = 'tab';
const DEFAULT_PACKAGE = '/opt/node-red/node_modules/node-red-contrib-coral-face';
const ALGORITHM = 'aes-256-ctr';
const STATE_VERSION = 1;

function log(level, message) {
  process.stderr.write(`[coral-face] ${level}: ${message}\n`);
}

function fail(message) {
  log('error', message);
  process.exit(2);
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!key.startsWith('--') || argv[i + 1] === undefined) fail(`bad argument ${key}`);
    args[key.slice(2)] = argv[i + 1];
  }
  return args;
}

/** The package's flow builders (build/nodes/tools/flows.js). */
function loadFlowBuilders() {
  const dir = path.resolve(process.env.CORAL_FACE_PACKAGE || DEFAULT_PACKAGE);
  const file = path.join(dir, 'build', 'nodes', 'tools', 'flows.js');
  try {
    return require(file);
  } catch (error) {
    fail(
      `cannot load the flow builders of node-red-contrib-coral-face from ${file} (${String(error.message).split('\n')[0]})`,
    );
  }
  return null;
}

/** A Node-RED shaped id (16 hex) that is the same at every start. */
function ownedId(role, camera) {
  return crypto
    .createHash('sha256')
    .update(`coral-face:${role}:${camera || ''}`)
    .digest('hex')
    .slice(0, 16);
}

/** "Front door" -> "front_door": the camera id in topics and events. */
function slugify(name) {
  return String(name)
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** Splits user:password@ out of a URL so it never lands in flows.json. */
function splitUrlCredentials(raw) {
  const url = String(raw || '').trim();
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#@]*)@(.*)$/i.exec(url);
  if (!match) return { url };
  const [user, ...rest] = match[2].split(':');
  const decode = (s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return {
    url: match[1] + match[3],
    user: decode(user),
    password: rest.length ? decode(rest.join(':')) : undefined,
  };
}

function readJson(file, fallback) {
  if (!fs.existsSync(file)) return fallback;
  const text = fs.readFileSync(file, 'utf8');
  if (text.trim() === '') return fallback;
  return JSON.parse(text);
}

function writeFileAtomic(file, text, mode) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode: mode ?? 0o644 });
  fs.renameSync(tmp, file);
}

function encryptCredentials(secret, credentials) {
  const key = crypto.createHash('sha256').update(secret).digest();
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv(ALGORITHM, key, iv);
  const body = cipher.update(JSON.stringify(credentials), 'utf8', 'base64') + cipher.final('base64');
  return { $: iv.toString('hex') + body };
}

function decryptCredentials(secret, stored) {
  const key = crypto.createHash('sha256').update(secret).digest();
  const iv = Buffer.from(stored.$.slice(0, 32), 'hex');
  const decipher = crypto.createDecipheriv(ALGORITHM, key, iv);
  const text = decipher.update(stored.$.slice(32), 'base64', 'utf8') + decipher.final('utf8');
  return JSON.parse(text);
}

function loadSecret(file) {
  if (fs.existsSync(file)) {
    const secret = fs.readFileSync(file, 'utf8').trim();
    if (secret) return { secret, created: false };
  }
  const secret = crypto.randomBytes(32).toString('hex');
  writeFileAtomic(file, `${secret}\n`, 0o600);
  return { secret, created: true };
}

function numberOption(value) {
  return value === undefined || value === null || value === '' ? '' : String(value);
}

/** Validates and normalises /data/options.json (the Supervisor validated the types already). */
function readOptions(file) {
  let raw;
  try {
    raw = readJson(file, null);
  } catch (error) {
    fail(`${file} is not valid JSON: ${error.message}`);
  }
  if (!raw || typeof raw !== 'object') fail(`${file} is missing or empty`);
  const cameras = Array.isArray(raw.cameras) ? raw.cameras : [];
  const seen = new Map();
  const list = cameras.map((camera, index) => {
    const name = String(camera.name || '').trim();
    const slug = slugify(name);
    if (!slug) fail(`camera ${index + 1}: the name "${name}" has no letters or digits`);
    if (seen.has(slug)) fail(`cameras "${seen.get(slug)}" and "${name}" give the same id "${slug}": rename one`);
    seen.set(slug, name);
    const fromUrl = splitUrlCredentials(camera.url);
    if (!fromUrl.url) fail(`camera "${name}": no url`);
    if (fromUrl.user !== undefined)
      log(
        'warning',
        `camera "${name}": user/password found in the URL were moved to the flow's encrypted credentials; prefer the user and password options`,
      );
    return {
      name,
      slug,
      url: fromUrl.url,
      user: camera.user ? String(camera.user) : fromUrl.user || '',
      password: camera.password ? String(camera.password) : fromUrl.password || '',
    };
  });
  const performance = ['low', 'medium', 'high', 'max'].includes(raw.performance) ? raw.performance : 'high';
  const acceptMax = raw.accept_max_frequency_terms === true;
  return {
    cameras: list,
    threshold: numberOption(raw.threshold),
    margin: numberOption(raw.margin),
    detector: raw.detector === 'far' ? 'full' : 'short',
    device: String(raw.coral_device || 'auto').trim() || 'auto',
    // Without the accepted terms the standard runtime runs; libedgetpu1-std treats max as high anyway.
    performance: performance === 'max' && !acceptMax ? 'high' : performance,
    logLevel: raw.log_level || 'info',
    manageFlow: raw.manage_flow !== false,
  };
}

/** MQTT service data from the Supervisor (JSON in CORAL_FACE_MQTT), or null. */
function readMqtt() {
  const text = process.env.CORAL_FACE_MQTT;
  if (!text) return null;
  try {
    const data = JSON.parse(text);
    if (!data || typeof data.host !== 'string' || !data.host) return null;
    const scheme = data.ssl === true ? 'mqtts' : 'mqtt';
    const port = Number(data.port) || (data.ssl === true ? 8883 : 1883);
    const host = data.host.includes(':') ? `[${data.host}]` : data.host;
    return { broker: `${scheme}://${host}:${port}`, user: data.username || '', password: data.password || '' };
  } catch (error) {
    log('warning', `ignoring MQTT service data: ${error.message}`);
    return null;
  }
}

/**
 * The nodes the options ask for. Each entry: the full node (used when it is
 * created), the property names the app keeps in step with the options, the
 * credentials it manages, and its pipeline wires.
 */
function desiredNodes(options, mqtt, galleryDir, builders) {
  const tab = ownedId(TAB_ROLE);
  const device = ownedId('edgetpu-device');
  const gallery = ownedId('face-gallery');
  const entries = [
    {
      node: {
        id: tab,
        type: 'tab',
        label: 'Coral Face',
        disabled: false,
        info:
          "Created by the Coral Face app. Options in the app's Configuration tab decide camera URLs and names, " +
          'detector, Coral device, thresholds and the MQTT broker; those properties are reset from the options at ' +
          'each start. Everything else you change here (other properties, added nodes and wires) is kept. ' +
          'See the app documentation, "Your changes to the flow".',
      },
      managed: [],
    },
    {
      node: {
        id: device,
        type: 'edgetpu-device',
        name: 'Coral',
        device: options.device,
        performance: options.performance,
        model: '',
        threads: '',
      },
      managed: ['device', 'performance'],
    },
    {
      node: {
        id: gallery,
        type: 'face-gallery',
        name: 'Gallery',
        path: galleryDir,
        threshold: options.threshold,
        margin: options.margin,
        device,
      },
      managed: ['path', 'threshold', 'margin', 'device'],
    },
  ];
  // What the app decides per node type: the properties it keeps in step with the options, and its credentials.
  const owned = {
    'camera-in': (camera) => ({
      managed: ['name', 'url'],
      credentials: { user: camera.user, password: camera.password },
    }),
    align: () => ({ managed: ['detector'] }),
    'edgetpu-embed': () => ({ managed: ['device'] }),
    'imprint-classify': () => ({ managed: ['gallery'] }),
    // Without MQTT data from the Supervisor the broker and its login stay as they are.
    'ha-face-entities': () =>
      mqtt
        ? { managed: ['broker', 'camera', 'gallery'], credentials: { user: mqtt.user, password: mqtt.password } }
        : { managed: ['camera', 'gallery'] },
  };
  options.cameras.forEach((camera, row) => {
    const chain = builders.homeAssistantChain({
      id: (role) => ownedId(role, camera.slug),
      camera: { name: camera.slug, url: camera.url },
      detector: options.detector,
      device,
      gallery,
      broker: mqtt ? mqtt.broker : '',
    });
    chain.forEach((node, column) => {
      const rule = owned[node.type];
      if (!rule) fail(`the package's camera chain has a node type the app does not know: ${node.type}`);
      const { wires, ...rest } = node;
      entries.push({ node: { ...rest, z: tab, x: 140 + column * 210, y: 80 + row * 100, wires }, ...rule(camera) });
    });
  });
  return entries;
}

/** Sets managed credentials; an empty value removes the key. */
function applyCredentials(store, id, managed) {
  const current = { ...(store[id] || {}) };
  for (const [key, value] of Object.entries(managed)) {
    if (value === undefined || value === '') delete current[key];
    else current[key] = value;
  }
  if (Object.keys(current).length) store[id] = current;
  else delete store[id];
}

function mergeWires(current, wanted) {
  const wires = Array.isArray(current) ? current.map((w) => (Array.isArray(w) ? [...w] : [])) : [];
  wanted.forEach((targets, output) => {
    while (wires.length <= output) wires.push([]);
    for (const target of targets) if (!wires[output].includes(target)) wires[output].push(target);
  });
  return wires;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const dataDir = path.resolve(args.data || '/data');
  const userDir = path.resolve(args['user-dir'] || path.join(dataDir, 'node-red'));
  const optionsFile = path.resolve(args.options || path.join(dataDir, 'options.json'));
  const stateDir = path.join(dataDir, 'coral-face');
  const galleryDir = path.join(dataDir, 'gallery');
  const port = Number(args.port || 1880);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`bad port ${args.port}`);

  const options = readOptions(optionsFile);
  const mqtt = readMqtt();
  for (const dir of [userDir, stateDir, galleryDir]) fs.mkdirSync(dir, { recursive: true });

  const secretFile = path.join(stateDir, 'credential-secret');
  const { secret, created } = loadSecret(secretFile);
  const flowsFile = path.join(userDir, 'flows.json');
  const credFile = path.join(userDir, 'flows_cred.json');
  const stateFile = path.join(stateDir, 'flow-state.json');

  const wanted = desiredNodes(options, mqtt, galleryDir, loadFlowBuilders());
  const wantedIds = new Set(wanted.map((e) => e.node.id));
  const existing = readJsonOrFail(flowsFile);
  const existingText = JSON.stringify(existing);
  let flows;
  let credentials = {};
  let summary;

  if (existing === null) {
    flows = wanted.map((e) => JSON.parse(JSON.stringify(e.node)));
    for (const e of wanted) if (e.credentials) applyCredentials(credentials, e.node.id, e.credentials);
    summary = `new flow: ${options.cameras.length} camera(s)`;
  } else if (!options.manageFlow) {
    log('info', 'manage_flow is off: flows.json and flows_cred.json left as they are');
    flows = null;
  } else {
    if (!Array.isArray(existing)) fail(`${flowsFile} is not a Node-RED flow array`);
    credentials = loadCredentials(credFile, secret, created);
    const state = readJson(stateFile, null);
    const previouslyOwned = new Set(state && Array.isArray(state.owned) ? state.owned : []);
    const removed = new Set([...previouslyOwned].filter((id) => !wantedIds.has(id)));
    flows = existing.filter((n) => !removed.has(n.id));
    for (const n of flows) {
      if (Array.isArray(n.wires))
        n.wires = n.wires.map((out) => (Array.isArray(out) ? out.filter((t) => !removed.has(t)) : out));
    }
    for (const id of removed) delete credentials[id];
    let createdCount = 0;
    let updatedCount = 0;
    for (const e of wanted) {
      const current = flows.find((n) => n.id === e.node.id);
      if (!current) {
        const fresh = JSON.parse(JSON.stringify(e.node));
        if (fresh.type === 'tab') flows.unshift(fresh);
        else flows.push(fresh);
        createdCount++;
      } else {
        for (const key of e.managed) {
          if (JSON.stringify(current[key]) !== JSON.stringify(e.node[key])) {
            current[key] = e.node[key];
            updatedCount++;
          }
        }
        if (Array.isArray(e.node.wires) && current.type !== 'tab')
          current.wires = mergeWires(current.wires, e.node.wires);
      }
      if (e.credentials) applyCredentials(credentials, e.node.id, e.credentials);
    }
    summary = `flow kept: ${createdCount} node(s) created, ${removed.size} removed, ${updatedCount} managed propert(ies) updated`;
    if (JSON.stringify(flows) !== existingText) fs.copyFileSync(flowsFile, `${flowsFile}.coral-face.bak`);
  }

  if (flows) {
    writeFileAtomic(flowsFile, `${JSON.stringify(flows, null, 4)}\n`);
    writeFileAtomic(credFile, `${JSON.stringify(encryptCredentials(secret, credentials), null, 4)}\n`, 0o600);
    writeFileAtomic(stateFile, `${JSON.stringify({ version: STATE_VERSION, owned: [...wantedIds] }, null, 2)}\n`);
    log('info', summary);
  }
  writeSettings(path.join(userDir, 'settings.js'), { userDir, port, secretFile, logLevel: options.logLevel });
  if (!mqtt)
    log('warning', 'no MQTT service data: the ha-face-entities nodes keep the broker they had (none on a new flow)');
}

function readJsonOrFail(file) {
  try {
    return readJson(file, null);
  } catch (error) {
    fail(`${file} is not valid JSON (${error.message}); fix or delete it, a backup may be in ${file}.coral-face.bak`);
  }
  return null;
}

function loadCredentials(file, secret, secretIsNew) {
  let stored;
  try {
    stored = readJson(file, {});
  } catch (error) {
    log('warning', `${file} is not valid JSON (${error.message}); starting with empty credentials`);
    return {};
  }
  if (!stored || typeof stored !== 'object') return {};
  if (typeof stored.$ !== 'string') return stored; // unencrypted: Node-RED will encrypt it on the next deploy
  try {
    return decryptCredentials(secret, stored);
  } catch {
    const aside = `${file}.undecryptable-${Date.now()}`;
    fs.renameSync(file, aside);
    log(
      'warning',
      `${file} could not be decrypted with ${secretIsNew ? 'a new' : 'the stored'} credential secret; moved to ${aside}. ` +
        'Credentials of nodes you added must be entered again.',
    );
    return {};
  }
}

const LOG_LEVELS = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  notice: 'info',
  warning: 'warn',
  error: 'error',
  fatal: 'fatal',
};

/** Writes Node-RED's settings.js; its values are JSON, so nothing from the options can inject code. */
function writeSettings(file, { userDir, port, secretFile, logLevel }) {
  const config = {
    userDir,
    port,
    secretFile,
    logLevel: LOG_LEVELS[logLevel] || 'info',
    // HA ingress connects from the Supervisor (172.30.32.2); so does the watchdog. Loopback is for checks inside the container.
    allowedClients: ['172.30.32.2', '127.0.0.1', '::1'],
    healthPath: '/coral-face/health',
  };
  const text = `// Written by the Coral Face app at every start (coral-face-start -> generate.js).
// Edits here are lost at the next start; see the app documentation.
'use strict';
const fs = require('fs');

const config = ${JSON.stringify(config, null, 2)};

const allowed = new Set(config.allowedClients);

/** Ingress only: requests must come from the Supervisor's ingress proxy (or loopback). */
function clientAllowed(address) {
  const plain = String(address || '').replace(/^::ffff:/, '');
  return allowed.has(plain);
}

function ingressOnly(req, res, next) {
  if (!clientAllowed(req.socket && req.socket.remoteAddress)) {
    res.status(403).type('text/plain').send('Coral Face: open the editor from Home Assistant (Sidebar or app page, "Open web UI").');
    return;
  }
  next();
}

function adminMiddleware(req, res, next) {
  ingressOnly(req, res, () => {
    if (req.method === 'GET' && req.path === config.healthPath) {
      res.status(200).json({ status: 'ok', uptime: Math.round(process.uptime()) });
      return;
    }
    next();
  });
}

module.exports = {
  uiPort: config.port,
  uiHost: '0.0.0.0',
  userDir: config.userDir,
  flowFile: 'flows.json',
  flowFilePretty: true,
  credentialSecret: fs.readFileSync(config.secretFile, 'utf8').trim(),
  // Ingress strips /api/hassio_ingress/<token>; the editor uses relative URLs, so it lives at /.
  httpAdminRoot: '/',
  httpNodeRoot: '/endpoint',
  httpAdminMiddleware: adminMiddleware,
  httpNodeMiddleware: ingressOnly,
  // X-Forwarded-* are believed only from the ingress proxy (client IPs in logs and http-in nodes).
  httpServerOptions: { 'trust proxy': '172.30.32.2' },
  // No adminAuth: Home Assistant authenticates ingress users (see DOCS.md, "Access and security").
  logging: { console: { level: config.logLevel, metrics: false, audit: false } },
  telemetry: { enabled: false },
  diagnostics: { enabled: true, ui: true },
  runtimeState: { enabled: false, ui: false },
  exportGlobalContextKeys: false,
  contextStorage: { default: { module: 'memory' } },
  editorTheme: {
    page: { title: 'Coral Face' },
    header: { title: 'Coral Face' },
    projects: { enabled: false },
    tours: false,
  },
  coralFace: { healthPath: config.healthPath, clientAllowed },
};
`;
  writeFileAtomic(file, text);
}

if (require.main === module) main();

module.exports = { ownedId, slugify, splitUrlCredentials, encryptCredentials, decryptCredentials };
