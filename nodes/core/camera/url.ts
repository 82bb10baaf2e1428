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
    return /\.(jpe?g|png)(\?|#|$)|snapshot|snap\.cgi|still|image\.cgi|\/jpg\//i.test(pathAndQuery) ? 'snapshot' : 'mjpeg';
  }
  if (/^\/dev\/(video\d+|v4l\/)/.test(url)) return 'v4l2';
  return 'file';
}
