/**
 * The Home Assistant app (add-on) configuration rules, as a table the tests
 * check config.yaml and translations/en.yaml against. Sources:
 * - developers.home-assistant.io docs/apps/configuration.md (required and
 *   optional keys, option types, translations),
 * - home-assistant/supervisor supervisor/addons/validate.py (_SCHEMA_ADDON_CONFIG,
 *   RE_SERVICE, RE_VOLUME, the watchdog/webui patterns, SCHEMA_ADDON_TRANSLATIONS)
 *   and supervisor/addons/options.py (RE_SCHEMA_ELEMENT, how each option type
 *   is validated).
 * Stricter than the Supervisor in two ways, to catch mistakes it would only
 * log: unknown keys are errors (it drops them), and an option can't be both
 * optional ("?") and have a default (the default makes it required).
 */

export type Problems = string[];
type Check = (value: unknown, at: string, problems: Problems) => void;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const str: Check = (v, at, p) => {
  if (typeof v !== 'string' || v === '') p.push(`${at}: must be a non-empty string`);
};
const bool: Check = (v, at, p) => {
  if (typeof v !== 'boolean') p.push(`${at}: must be true or false`);
};
const oneOf =
  (...values: string[]): Check =>
  (v, at, p) => {
    if (typeof v !== 'string' || !values.includes(v)) p.push(`${at}: must be one of ${values.join('|')}`);
  };
const matches =
  (re: RegExp, what: string): Check =>
  (v, at, p) => {
    if (typeof v !== 'string' || !re.test(v)) p.push(`${at}: ${JSON.stringify(v)} is not ${what}`);
  };
const intIn =
  (min: number, max: number, also: number[] = []): Check =>
  (v, at, p) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || ((v < min || v > max) && !also.includes(v)))
      p.push(`${at}: must be an integer in ${min}..${max}`);
  };
const listOf =
  (item: Check, nonEmpty = false): Check =>
  (v, at, p) => {
    if (!Array.isArray(v)) {
      p.push(`${at}: must be a list`);
      return;
    }
    if (nonEmpty && v.length === 0) p.push(`${at}: must not be empty`);
    v.forEach((x, i) => item(x, `${at}[${i}]`, p));
  };
const dictOf =
  (key: RegExp, value: Check): Check =>
  (v, at, p) => {
    if (!isObject(v)) {
      p.push(`${at}: must be a mapping`);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (!key.test(k)) p.push(`${at}: bad key ${k}`);
      value(x, `${at}.${k}`, p);
    }
  };
const either =
  (...checks: Check[]): Check =>
  (v, at, p) => {
    const attempts = checks.map((c) => {
      const q: Problems = [];
      c(v, at, q);
      return q;
    });
    if (!attempts.some((q) => q.length === 0)) p.push(...attempts[0]);
  };
const httpUrl = matches(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'an http(s) URL');

/** Mount types: the strings validate.py's RE_VOLUME knows, and the docs' newer "app" names. */
export const MAP_TYPES = [
  'data',
  'config',
  'ssl',
  'addons',
  'backup',
  'share',
  'media',
  'homeassistant_config',
  'all_addon_configs',
  'addon_config',
  'app_config',
  'all_app_configs',
  'local_apps',
];
const RE_VOLUME =
  /^(data|config|ssl|addons|backup|share|media|homeassistant_config|all_addon_configs|addon_config)(?::(rw|ro))?$/;
const mapEntry: Check = either(matches(RE_VOLUME, 'a map entry'), (v, at, p) => {
  if (!isObject(v)) {
    p.push(`${at}: must be a string or {type, read_only, path}`);
    return;
  }
  oneOf(...MAP_TYPES)(v.type, `${at}.type`, p);
  if ('read_only' in v) bool(v.read_only, `${at}.read_only`, p);
  if ('path' in v) matches(/^\/.+/, 'an absolute path other than /')(v.path, `${at}.path`, p);
  for (const k of Object.keys(v)) if (!['type', 'read_only', 'path'].includes(k)) p.push(`${at}: unknown key ${k}`);
});

/** supervisor/addons/options.py RE_SCHEMA_ELEMENT, in JavaScript. */
export const RE_SCHEMA_ELEMENT = new RegExp(
  '^(?:' +
    '|bool' +
    '|email' +
    '|url' +
    '|port' +
    '|device(?:\\((?<filter>subsystem=[a-z]+)\\))?' +
    '|str(?:\\((?<s_min>\\d+)?,(?<s_max>\\d+)?\\))?' +
    '|password(?:\\((?<p_min>\\d+)?,(?<p_max>\\d+)?\\))?' +
    '|int(?:\\((?<i_min>\\d+)?,(?<i_max>\\d+)?\\))?' +
    '|float(?:\\((?<f_min>[\\d\\.]+)?,(?<f_max>[\\d\\.]+)?\\))?' +
    '|match\\((?<match>.*)\\)' +
    '|list\\((?<list>.+)\\)' +
    ')\\??$',
);

/** One schema entry: a type string, a list of one element, or a mapping; containers at most two deep. */
function schemaElement(v: unknown, at: string, p: Problems, containers: number): void {
  if (typeof v === 'string') {
    if (v === '' || !RE_SCHEMA_ELEMENT.test(v)) p.push(`${at}: unknown option type ${JSON.stringify(v)}`);
    return;
  }
  if (!Array.isArray(v) && !isObject(v)) {
    p.push(`${at}: must be a type string, a list or a mapping`);
    return;
  }
  if (containers + 1 > 2) {
    p.push(`${at}: options nest deeper than two levels`);
    return;
  }
  if (Array.isArray(v)) {
    if (v.length !== 1) p.push(`${at}: a list schema has exactly one element`);
    else if (Array.isArray(v[0])) p.push(`${at}: a list may not directly contain a list`);
    else schemaElement(v[0], `${at}[0]`, p, containers + 1);
  } else {
    for (const [k, x] of Object.entries(v)) schemaElement(x, `${at}.${k}`, p, containers + 1);
  }
}

interface KeyRule {
  required?: boolean;
  check: Check;
}

/** Every key config.yaml may have (docs "Required/Optional configuration options"), with its type. */
export const CONFIG_KEYS: Record<string, KeyRule> = {
  name: { required: true, check: str },
  version: { required: true, check: str },
  slug: { required: true, check: matches(/^[-_.A-Za-z0-9]+$/, 'a slug ([-_.A-Za-z0-9]+)') },
  description: { required: true, check: str },
  arch: { required: true, check: listOf(oneOf('aarch64', 'amd64'), true) },
  machine: { check: listOf(matches(/^!?[a-z0-9-]+$/, 'a machine type')) },
  url: { check: httpUrl },
  startup: { check: oneOf('initialize', 'system', 'services', 'application', 'once') },
  boot: { check: oneOf('auto', 'manual', 'manual_only') },
  init: { check: bool },
  advanced: { check: bool },
  stage: { check: oneOf('stable', 'experimental', 'deprecated') },
  ports: {
    check: dictOf(
      /^\d+\/(tcp|udp)$/,
      either(intIn(1, 65535), (v, at, p) => {
        if (v !== null) p.push(`${at}: port or null`);
      }),
    ),
  },
  ports_description: { check: dictOf(/^\d+\/(tcp|udp)$/, str) },
  watchdog: {
    check: matches(
      /^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$/,
      'a watchdog URL (http://[HOST]:[PORT:n]/path)',
    ),
  },
  webui: { check: matches(/^(?:https?|\[PROTO:\w+\]):\/\/\[HOST\]:\[PORT:\d+\].*$/, 'a webui URL') },
  ingress: { check: bool },
  ingress_port: { check: intIn(1, 65535, [0]) },
  ingress_entry: { check: str },
  ingress_stream: { check: bool },
  panel_icon: { check: matches(/^mdi:[a-z0-9-]+$/, 'an mdi: icon') },
  panel_title: { check: str },
  panel_admin: { check: bool },
  homeassistant: { check: str },
  host_network: { check: bool },
  host_pid: { check: bool },
  host_ipc: { check: bool },
  host_uts: { check: bool },
  host_dbus: { check: bool },
  devices: { check: listOf(matches(/^\/dev\/\S+$/, 'a /dev path')) },
  udev: { check: bool },
  tmpfs: { check: bool },
  map: { check: listOf(mapEntry) },
  environment: {
    check: dictOf(/^\w*$/, (v, at, p) => {
      if (typeof v !== 'string') p.push(`${at}: must be a string`);
    }),
  },
  privileged: {
    check: listOf(
      oneOf(
        'BPF',
        'CHECKPOINT_RESTORE',
        'DAC_READ_SEARCH',
        'IPC_LOCK',
        'NET_ADMIN',
        'NET_RAW',
        'PERFMON',
        'SYS_ADMIN',
        'SYS_MODULE',
        'SYS_NICE',
        'SYS_PTRACE',
        'SYS_RAWIO',
        'SYS_RESOURCE',
        'SYS_TIME',
      ),
    ),
  },
  apparmor: { check: either(bool, str) },
  full_access: { check: bool },
  audio: { check: bool },
  video: { check: bool },
  gpio: { check: bool },
  usb: { check: bool },
  uart: { check: bool },
  devicetree: { check: bool },
  kernel_modules: { check: bool },
  realtime: { check: bool },
  hassio_api: { check: bool },
  hassio_role: { check: oneOf('default', 'homeassistant', 'backup', 'manager', 'admin') },
  homeassistant_api: { check: bool },
  stdin: { check: bool },
  legacy: { check: bool },
  docker_api: { check: bool },
  auth_api: { check: bool },
  services: {
    check: listOf(matches(/^(mqtt|mysql):(provide|want|need)$/, 'service:function (mqtt|mysql : provide|want|need)')),
  },
  discovery: { check: listOf(str) },
  backup_exclude: { check: listOf(str) },
  backup_pre: { check: str },
  backup_post: { check: str },
  backup: { check: oneOf('hot', 'cold') },
  options: {
    check: (v, at, p) => {
      if (!isObject(v)) p.push(`${at}: must be a mapping`);
    },
  },
  schema: {
    check: (v, at, p) => {
      if (v === false) return;
      if (!isObject(v)) {
        p.push(`${at}: must be a mapping or false`);
        return;
      }
      for (const [k, x] of Object.entries(v)) schemaElement(x, `${at}.${k}`, p, 0);
    },
  },
  image: { check: matches(/^([a-zA-Z\-.:\d{}]+\/)*?([-\w{}]+)\/([-\w{}]+)$/, 'an image name') },
  timeout: { check: intIn(10, 300) },
  journald: { check: bool },
  breaking_versions: { check: listOf(str) },
  ulimits: {
    check: (v, at, p) => {
      if (!isObject(v)) p.push(`${at}: must be a mapping`);
    },
  },
};

export function validateConfig(config: unknown): Problems {
  const p: Problems = [];
  if (!isObject(config)) return ['config.yaml: must be a mapping'];
  for (const [key, rule] of Object.entries(CONFIG_KEYS)) {
    if (rule.required && !(key in config)) p.push(`${key}: required key is missing`);
  }
  for (const [key, value] of Object.entries(config)) {
    const rule = CONFIG_KEYS[key];
    if (!rule) p.push(`${key}: not a documented app configuration key`);
    else rule.check(value, key, p);
  }
  if (config.full_access === true && (config.devices || config.usb || config.uart || config.gpio)) {
    p.push('full_access: do not combine with devices/usb/uart/gpio');
  }
  if (isObject(config.options) && isObject(config.schema)) {
    for (const key of Object.keys(config.options))
      if (!(key in config.schema)) p.push(`options.${key}: has no schema entry`);
    for (const [key, type] of Object.entries(config.schema)) {
      if (typeof type === 'string' && type.endsWith('?') && key in config.options) {
        p.push(`schema.${key}: optional ("?") but options gives a default, which makes it required`);
      }
    }
    p.push(...validateOptions(config.schema, config.options, 'options', true));
  }
  return p;
}

const TRUE = new Set([true, 'true', 'yes', 'on', 'enable', '1', 1]);
const FALSE = new Set([false, 'false', 'no', 'off', 'disable', '0', 0]);

/** A value as a check reads it: strings as they are, anything else as JSON. */
const asText = (value: unknown): string => (typeof value === 'string' ? value : (JSON.stringify(value) ?? 'undefined'));

/** One option value against its type string, the way options.py _single_validate does. */
function validateValue(type: string, value: unknown, at: string, p: Problems): void {
  const m = RE_SCHEMA_ELEMENT.exec(type);
  if (!m || !m.groups) {
    p.push(`${at}: unknown type ${type}`);
    return;
  }
  if (value === null || value === undefined) {
    p.push(`${at}: missing required option`);
    return;
  }
  const g = m.groups;
  const range = (n: number, min?: string, max?: string) =>
    (min === undefined || n >= Number(min)) && (max === undefined || n <= Number(max));
  if (type.startsWith('str') || type.startsWith('password')) {
    if (typeof value !== 'string' && typeof value !== 'number') p.push(`${at}: must be a string`);
    else if (!range(String(value).length, g.s_min ?? g.p_min, g.s_max ?? g.p_max)) p.push(`${at}: length out of range`);
  } else if (type.startsWith('int')) {
    const n = Number(value);
    if (!Number.isInteger(n) || !range(n, g.i_min, g.i_max))
      p.push(`${at}: ${JSON.stringify(value)} is not an int in range`);
  } else if (type.startsWith('float')) {
    const n = Number(value);
    if (typeof value === 'boolean' || !Number.isFinite(n) || !range(n, g.f_min, g.f_max))
      p.push(`${at}: ${JSON.stringify(value)} is not a float in range`);
  } else if (type.startsWith('bool')) {
    if (!TRUE.has(value as never) && !FALSE.has(value as never))
      p.push(`${at}: ${JSON.stringify(value)} is not a boolean`);
  } else if (type.startsWith('email')) {
    if (!/^[^@\s]+@[^@\s]+$/.test(asText(value))) p.push(`${at}: not an email`);
  } else if (type.startsWith('url')) {
    if (!/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+/i.test(asText(value))) p.push(`${at}: not a URL`);
  } else if (type.startsWith('port')) {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 65535) p.push(`${at}: not a port`);
  } else if (type.startsWith('match')) {
    // re.match: anchored at the start only
    if (!new RegExp(`^(?:${g.match})`).test(asText(value)))
      p.push(`${at}: ${JSON.stringify(value)} does not match ${g.match}`);
  } else if (type.startsWith('list')) {
    if (!g.list.split('|').includes(asText(value))) p.push(`${at}: ${JSON.stringify(value)} is not one of ${g.list}`);
  } else if (type.startsWith('device')) {
    if (!asText(value).startsWith('/dev/')) p.push(`${at}: not a device path`);
  }
}

function validateElement(type: unknown, value: unknown, at: string, p: Problems): void {
  if (Array.isArray(type)) {
    if (!Array.isArray(value)) {
      p.push(`${at}: must be a list`);
      return;
    }
    value.forEach((x, i) => validateElement(type[0], x, `${at}[${i}]`, p));
  } else if (isObject(type)) {
    if (!isObject(value)) {
      p.push(`${at}: must be a mapping`);
      return;
    }
    for (const [k, x] of Object.entries(value)) {
      if (!(k in type)) p.push(`${at}.${k}: not in the schema`);
      else validateElement(type[k], x, `${at}.${k}`, p);
    }
    missing(type, value, at, p);
  } else {
    validateValue(String(type), value, at, p);
  }
}

function missing(schema: Record<string, unknown>, values: Record<string, unknown>, at: string, p: Problems): void {
  for (const [k, type] of Object.entries(schema)) {
    if (k in values) continue;
    const t = Array.isArray(type) ? type[0] : type;
    if (typeof t === 'string' && t.endsWith('?')) continue;
    p.push(`${at}.${k}: required option is missing`);
  }
}

/**
 * options.json values against the schema (supervisor/addons/options.py
 * AddonOptions.__call__). With `partial`, options missing from `values` are
 * not reported (config.yaml's defaults may leave out options without one).
 */
export function validateOptions(
  schema: Record<string, unknown>,
  values: Record<string, unknown>,
  at = 'options',
  partial = false,
): Problems {
  const p: Problems = [];
  for (const [k, x] of Object.entries(values)) {
    if (!(k in schema)) p.push(`${at}.${k}: not in the schema`);
    else validateElement(schema[k], x, `${at}.${k}`, p);
  }
  if (!partial) missing(schema, values, at, p);
  return p;
}

/** translations/<lang>.yaml: SCHEMA_ADDON_TRANSLATIONS, plus "every option has a name and a description". */
export function validateTranslations(translations: unknown, schema: Record<string, unknown>): Problems {
  const p: Problems = [];
  if (!isObject(translations)) return ['translations: must be a mapping'];
  for (const key of Object.keys(translations))
    if (!['configuration', 'network'].includes(key)) p.push(`translations.${key}: unknown section`);
  const configuration = translations.configuration;
  if (!isObject(configuration)) return [...p, 'translations.configuration: missing'];
  const walk = (entries: Record<string, unknown>, keys: Record<string, unknown>, at: string) => {
    for (const [key, type] of Object.entries(keys)) {
      const entry = entries[key];
      if (!isObject(entry)) {
        p.push(`${at}.${key}: no translation`);
        continue;
      }
      if (typeof entry.name !== 'string' || !entry.name.trim()) p.push(`${at}.${key}.name: missing`);
      if (typeof entry.description !== 'string' || !entry.description.trim())
        p.push(`${at}.${key}.description: missing`);
      for (const k of Object.keys(entry))
        if (!['name', 'description', 'fields'].includes(k)) p.push(`${at}.${key}.${k}: unknown key`);
      const nested = Array.isArray(type) ? type[0] : type;
      if (isObject(nested)) {
        if (!isObject(entry.fields)) p.push(`${at}.${key}.fields: missing for a nested option`);
        else walk(entry.fields, nested, `${at}.${key}.fields`);
      } else if (entry.fields !== undefined) {
        p.push(`${at}.${key}.fields: only nested options have fields`);
      }
    }
    for (const key of Object.keys(entries))
      if (!(key in keys)) p.push(`${at}.${key}: translation for an option that is not in the schema`);
  };
  walk(configuration, schema, 'configuration');
  return p;
}
