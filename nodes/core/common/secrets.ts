/**
 * One masker for every secret that could reach a log line, a node status or
 * an error message: camera passwords, MQTT passwords, tokens in URLs.
 */

const USERINFO_RE = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*)@/gi;
const SECRET_PARAM_RE =
  /([?&;](?:password|passwd|pass|pwd|token|access_token|auth|key|apikey|api_key|secret|sig)=)[^&;#\s]*/gi;
/**
 * Secrets shorter than this are masked only where they sit in a URL:
 * replacing a two-letter password everywhere would mangle ordinary words, and
 * URLs are masked structurally anyway.
 */
const MIN_FREE_TEXT_SECRET = 4;

/**
 * Masks credentials in a URL, or in every URL inside a piece of text (ffmpeg
 * prints its input URL in errors): `rtsp://user:pass@host/x` becomes
 * `rtsp://user:***@host/x`; a user-only userinfo (often a token) becomes
 * `***@`; secret-looking query parameters (`password=`, `token=`, ...) are
 * masked too, as snapshot URLs of many cameras carry them there.
 */
export function maskUrl(text: string): string {
  return text
    .replace(USERINFO_RE, (_all, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return colon >= 0 ? `${scheme}${userinfo.slice(0, colon)}:***@` : `${scheme}***@`;
    })
    .replace(SECRET_PARAM_RE, '$1***');
}

/**
 * maskUrl, and each given secret wherever it appears (as typed and
 * URL-encoded), for text that may echo a secret outside a URL.
 */
export function maskSecrets(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = maskUrl(text);
  for (const secret of secrets) {
    if (!secret || secret.length < MIN_FREE_TEXT_SECRET) continue;
    out = out.split(secret).join('***');
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join('***');
  }
  return out;
}
