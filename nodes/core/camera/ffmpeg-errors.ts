/** ffmpeg's stderr turned into a cause a person can act on ("wrong user or password", "camera unreachable"). */

export interface Cause {
  message: string;
  /** A configuration problem: state 'error' (retries go on, slowly, in case the camera is being fixed). */
  config: boolean;
  /** The camera refused the login: retried at a fixed slow rate (cameras lock accounts after repeated failed logins). */
  auth?: boolean;
}

const CAUSES: Array<{ re: RegExp; message: string; config: boolean; auth?: boolean }> = [
  {
    re: /401 Unauthorized|authorization failed|401 Authorization Required/i,
    message: 'wrong user or password',
    config: true,
    auth: true,
  },
  {
    re: /403 Forbidden/i,
    message: "access forbidden (check the user's rights on the camera)",
    config: true,
    auth: true,
  },
  {
    re: /404 Not Found|404 File not found|454 Session Not Found|Stream not found/i,
    message: 'stream path not found',
    config: true,
  },
  {
    re: /Invalid data found when processing input|matches no streams|does not contain any stream|no video stream/i,
    message: 'not a video stream',
    config: true,
  },
  {
    re: /Name or service not known|Failed to resolve hostname|Temporary failure in name resolution|nodename nor servname/i,
    message: 'camera unreachable (host name not found)',
    config: false,
  },
  { re: /Connection refused/i, message: 'camera unreachable (connection refused)', config: false },
  { re: /timed out|Connection timeout/i, message: 'camera unreachable (timed out)', config: false },
  {
    re: /No route to host|Network is unreachable|Host is unreachable/i,
    message: 'camera unreachable (no route to host)',
    config: false,
  },
  { re: /Connection reset by peer|End of file|Broken pipe/i, message: 'connection lost', config: false },
  { re: /Device or resource busy/i, message: 'device busy (used by another program)', config: true },
  { re: /No such file or directory/i, message: 'file or device not found', config: true },
  { re: /Permission denied/i, message: 'permission denied', config: true },
  {
    re: /Protocol not found|Unknown input format|Option \S+ not found/i,
    message: 'this ffmpeg does not support the source type',
    config: true,
  },
];

/** The clearest cause found in ffmpeg's last stderr lines, if any. */
export function explainFfmpegError(lines: readonly string[]): Cause | undefined {
  for (const cause of CAUSES) {
    if (lines.some((line) => cause.re.test(line)))
      return { message: cause.message, config: cause.config, ...(cause.auth ? { auth: true } : {}) };
  }
  return undefined;
}
