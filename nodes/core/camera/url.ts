/** Camera URLs: what kind of source a URL names, and the URL ffmpeg is given with the credentials in it. */
import type { CameraKind } from './source';

/** The URL ffmpeg is given: credentials inserted URL-encoded (ffmpeg decodes %XX in userinfo). */
export function withCredentials(url: string, user: string | undefined, password: string | undefined): string {
  if (!user && !password) return url;
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/?#]*@)?(.*)$/is.exec(url);
  if (!match) return url;
  const userinfo = encodeURIComponent(user ?? '') + (password ? `:${encodeURIComponent(password)}` : '');
  return `${match[1]}${userinfo}@${match[2]}`;
}

/** Guesses the kind of source from its URL. */
export function detectCameraKind(url: string): CameraKind {
  if (/^rtsps?:\/\//i.test(url)) return 'rtsp';
  if (/^https?:\/\//i.test(url)) {
    const pathAndQuery = url.replace(/^https?:\/\/[^/]*/i, '');
    return /\.(jpe?g|png)(\?|#|$)|snapshot|snap\.cgi|still|image\.cgi|\/jpg\//i.test(pathAndQuery)
      ? 'snapshot'
      : 'mjpeg';
  }
  if (/^\/dev\/(video\d+|v4l\/)/.test(url)) return 'v4l2';
  return 'file';
}

/**
 * A URL that cannot be a real camera: empty, or a host from the address
 * ranges and domains reserved for documentation (RFC 5737: 192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24; RFC 2606: example.com/.net/.org), as in
 * the examples. camera-in asks for an edit instead of retrying forever.
 */
export function isPlaceholderUrl(url: string): boolean {
  const trimmed = url.trim();
  if (!trimmed) return true;
  const host = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?(\[[^\]]*\]|[^/:?#]+)/i.exec(trimmed)?.[1]?.toLowerCase();
  if (!host) return false;
  return /^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}$/.test(host) || /(^|\.)example\.(com|net|org)$/.test(host);
}
