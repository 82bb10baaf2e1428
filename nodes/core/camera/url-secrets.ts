/**
 * Passwords and tokens written into a camera URL, and how to keep them out
 * of Node-RED's flows.json (which holds node properties in plain text; only
 * credentials go, encrypted, to flows_cred.json).
 *
 * - `rtsp://user:password@host/...`: the editor moves user and password into
 *   the node's credential fields and strips them from the URL.
 * - `http://cam/snapshot.cgi?user=admin&pwd=secret`: many snapshot URLs need
 *   the secret in the query. The editor moves it into the Password field and
 *   leaves the placeholder `${password}` in its place; camera-in puts the
 *   password (URL-encoded) back in at runtime. `${user}` works the same way.
 *   When the URL says where the credentials go, they are not also added as
 *   `user:password@`.
 * - A second secret (the Password field already holds the login's password):
 *   `${NAME}` takes the value of Node-RED's environment variable NAME (flow,
 *   group or process environment).
 * - At runtime camera-in refuses a URL that still has a password or token
 *   written out, with a hint, rather than run with it in flows.json.
 *
 * This file is also served, as is, to the editor (camera-in.html), so that
 * the editor moves exactly what the runtime refuses: it must stay free of
 * imports and of Node-only APIs.
 */

/** Query parameters whose value is a secret, as cameras name them (compared case-insensitively). */
export const SECRET_QUERY_PARAMS = [
  'password',
  'passwd',
  'pass',
  'pwd',
  'psw',
  'token',
  'access_token',
  'auth',
  'apikey',
  'api_key',
  'secret',
];

const PLACEHOLDER_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
/** scheme://, userinfo (up to the last @ before the path), then the rest. */
const URL_RE = /^([a-z][a-z0-9+.-]*:\/\/)(?:([^/?#]*)@)?([^?#]*)(\?[^#]*)?(#.*)?$/i;

export interface UrlSecret {
  where: 'userinfo' | 'query';
  /** 'password' for userinfo, the parameter's name for the query. */
  name: string;
}

function isPlaceholder(value: string): boolean {
  return /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(value);
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

function isSecretParam(name: string): boolean {
  return SECRET_QUERY_PARAMS.indexOf(decode(name).toLowerCase()) >= 0;
}

interface Parts {
  scheme: string;
  userinfo: string | null;
  rest: string;
  /** Query parameters as written, without '?'. */
  params: string[];
  fragment: string;
}

function split(url: string): Parts | null {
  const m = URL_RE.exec(url.trim());
  if (!m) return null;
  return {
    scheme: m[1],
    userinfo: m[2] ?? null,
    rest: m[3],
    params: m[4] ? m[4].slice(1).split('&') : [],
    fragment: m[5] ?? '',
  };
}

function join(p: Parts): string {
  return `${p.scheme}${p.userinfo !== null ? `${p.userinfo}@` : ''}${p.rest}${p.params.length ? `?${p.params.join('&')}` : ''}${p.fragment}`;
}

/** The password of `user:password@`, when one is written out (not a placeholder). */
function userinfoPassword(userinfo: string | null): string | null {
  if (userinfo === null) return null;
  const colon = userinfo.indexOf(':');
  if (colon < 0) return null;
  const password = userinfo.slice(colon + 1);
  return password && !isPlaceholder(password) ? password : null;
}

/** The secrets written out in a URL (placeholders are not secrets). */
export function findUrlSecrets(url: string): UrlSecret[] {
  const p = split(url);
  if (!p) return [];
  const found: UrlSecret[] = [];
  if (userinfoPassword(p.userinfo) !== null) found.push({ where: 'userinfo', name: 'password' });
  for (const param of p.params) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const name = param.slice(0, eq);
    const value = param.slice(eq + 1);
    if (isSecretParam(name) && value && !isPlaceholder(value)) found.push({ where: 'query', name: decode(name) });
  }
  return found;
}

/** Whether the URL says itself where the node's credentials go (`${user}`, `${password}`). */
export function usesCredentialPlaceholders(url: string): boolean {
  return /\$\{(user|password)\}/.test(url);
}

export interface MovedUrl {
  /** The URL without its written-out secrets (or as it was, when nothing could move). */
  url: string;
  user: string;
  password: string;
  /** Secrets moved into the fields, e.g. ['password', 'pwd']. */
  moved: string[];
  /** Query secrets that could not move (the Password field holds another secret): use `${NAME}`. */
  unmovable: string[];
}

/**
 * What the editor does with a URL as it is entered: moves its written-out
 * secrets into the user and password fields (`fields`: their current
 * values; a stored password the editor cannot see is '__PWRD__';
 * `passwordForUrl`: the URL saved before this edit referred to
 * `${password}`, so the field holds the URL's secret, not a login's).
 *
 * A userinfo password always moves (it is what the user just typed). A
 * query secret takes the Password field when the field is free for it:
 * empty, holding the same value, the URL's own, or not used for a login (no
 * user); never when another secret of this same URL just took it.
 */
export function moveUrlSecrets(
  url: string,
  fields: { user: string; password: string; passwordForUrl?: boolean },
): MovedUrl {
  const out: MovedUrl = { url, user: fields.user, password: fields.password, moved: [], unmovable: [] };
  const p = split(url);
  if (!p) return out;
  let fromUserinfo = false;
  const written = userinfoPassword(p.userinfo);
  if (written !== null && p.userinfo !== null) {
    const colon = p.userinfo.indexOf(':');
    out.user = decode(p.userinfo.slice(0, colon));
    out.password = decode(written);
    fromUserinfo = true;
    p.userinfo = null;
    out.moved.push('password');
  }
  let queryUsesPassword = false;
  p.params = p.params.map((param) => {
    const eq = param.indexOf('=');
    if (eq < 0) return param;
    const name = param.slice(0, eq);
    const value = param.slice(eq + 1);
    if (!isSecretParam(name) || !value || isPlaceholder(value)) return param;
    const secret = decode(value);
    const free =
      out.password === secret ||
      (out.moved.length === 0 && (out.password === '' || fields.passwordForUrl === true || out.user === ''));
    if (!free) {
      out.unmovable.push(decode(name));
      return param;
    }
    out.password = secret;
    out.moved.push(decode(name));
    queryUsesPassword = true;
    return `${name}=\${password}`;
  });
  // The password now goes into the query: the login (if any) must be said explicitly too.
  if (queryUsesPassword && fromUserinfo) p.userinfo = '${user}:${password}';
  if (out.moved.length) out.url = join(p);
  return out;
}

export interface ExpandedUrl {
  url: string;
  /** The values put in, for masking wherever the URL could show. */
  values: string[];
  /** Placeholders with no value. */
  missing: string[];
}

/** Puts each `${NAME}` placeholder's value (URL-encoded) into the URL; `lookup` gives the values. */
export function expandUrlPlaceholders(url: string, lookup: (name: string) => string | undefined): ExpandedUrl {
  const values: string[] = [];
  const missing: string[] = [];
  const expanded = url.replace(PLACEHOLDER_RE, (_all, name: string) => {
    const value = lookup(name);
    if (value === undefined || value === '') {
      if (missing.indexOf(name) < 0) missing.push(name);
      return '';
    }
    values.push(value);
    return encodeURIComponent(value);
  });
  return { url: expanded, values, missing };
}
