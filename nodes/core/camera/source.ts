/**
 * A camera source: RTSP, HTTP MJPEG, HTTP JPEG snapshots, a local video file or
 * a V4L2 device, decoded by ffmpeg (driven through fluent-ffmpeg) into raw RGB
 * frames. Framework-free: the Node-RED `camera-in` node only wraps it.
 *
 * Design choices, and why:
 *
 * - Frame size. ffmpeg scales every stream with
 *   `scale=w=trunc(min(iw,maxWidth)/2)*2:h=-2`, so the output size is a pure
 *   function of the input size, with even dimensions and the aspect kept. The
 *   actual size is read from ffmpeg's own stderr line describing the *output*
 *   stream ("Output #0 ... Stream #0:0: Video: rawvideo ..., 640x360"), which
 *   ffmpeg prints before it writes the first frame. That avoids a separate
 *   ffprobe run, which for RTSP would mean a second connection (and a second
 *   authentication) to cameras that often allow only a couple of clients.
 *   stdout and stderr are separate pipes, so bytes that happen to arrive
 *   before that line are held until the size is known.
 *   Limitation: if a camera changes resolution mid-stream, ffmpeg re-scales to
 *   a new size without saying so and frames would be cut wrongly; cameras do
 *   that only when reconfigured, which also drops the connection.
 *
 * - Every decoded frame is emitted; dropping frames a busy consumer cannot
 *   take is the consumer's job (flow/latest-wins.ts). ffmpeg is never
 *   throttled: throttling a live stream only makes the camera or the network
 *   buffer the backlog and adds latency.
 *
 * - Credentials are given apart from the URL and inserted, URL-encoded, only
 *   into ffmpeg's argv. ffmpeg offers no other way to pass RTSP credentials, so
 *   they are visible to local users through `ps`/`/proc/<pid>/cmdline`; run
 *   the host so that no untrusted user shares it. Everything this module lets
 *   out (state messages, logs, describe()) is masked with maskUrl.
 *
 * - No orphans. stop() sends SIGTERM (ffmpeg then closes cleanly), SIGKILL
 *   after 2 s, and resolves once ffmpeg has exited; a process 'exit' hook
 *   SIGKILLs any ffmpeg still running. If Node dies without running exit hooks
 *   (SIGKILL, a crash in native code, an unhandled SIGTERM), ffmpeg's stdout
 *   pipe loses its reader: ffmpeg ignores SIGPIPE, so its next frame write fails
 *   with EPIPE and it exits ("Broken pipe") within one frame interval. Closing
 *   stdin does not help: ffmpeg only reacts to a 'q' key there, not to EOF. A
 *   camera that delivers nothing would leave ffmpeg blocked in a read, so
 *   network inputs get an I/O timeout (`-timeout` for RTSP, `-rw_timeout` for
 *   HTTP streams) of stallSeconds, after which ffmpeg gives up by itself
 *   (verified on ffmpeg 5.1 with a silent RTSP server and a SIGKILLed parent).
 *   Snapshot polling cannot take that option, so a snapshot fetch that hangs
 *   forever after Node died keeps its ffmpeg until the TCP connection dies.
 */
import type { ChildProcess } from 'child_process';
import { randomUUID } from 'crypto';
import { EventEmitter } from 'events';
import { Writable } from 'stream';
import ffmpeg from 'fluent-ffmpeg';
import { maskSecrets } from '../common/secrets';
import type { RgbImage } from '../media/image';
import { addOptions, ffmpegMajorVersion, resolveFfmpeg, type ResolvedFfmpeg } from './ffmpeg';
import { explainFfmpegError, type Cause } from './ffmpeg-errors';
import { trackChild, untrackChild } from './processes';
import { detectCameraKind, withCredentials } from './url';

export type { FfmpegSource, ResolvedFfmpeg } from './ffmpeg';

export type CameraKind = 'rtsp' | 'mjpeg' | 'snapshot' | 'file' | 'v4l2';
export type CameraState = 'connecting' | 'online' | 'reconnecting' | 'error' | 'stopped';

export interface CameraOptions {
  /** rtsp://host/path, http(s)://... (MJPEG stream or JPEG snapshot), a file path, or /dev/videoN. */
  url: string;
  /** Guessed from the URL when omitted (see detectCameraKind). */
  kind?: CameraKind;
  /** Credentials, kept out of the URL so they can be masked everywhere but in ffmpeg's argv. */
  user?: string;
  password?: string;
  /** Secrets already inside the URL (a query password filled in from the credentials): masked like the password. */
  secrets?: readonly string[];
  /** RTSP only. TCP (default) survives NAT and lossy Wi-Fi; UDP has less latency on a clean LAN. */
  rtspTransport?: 'tcp' | 'udp';
  /** Frames per second delivered (ffmpeg `fps` filter); also the snapshot polling rate. Default 5. */
  fps?: number;
  /** Cap on the output width in pixels (aspect kept, even dimensions). 0 or absent: the camera's width. */
  maxWidth?: number;
  /** Restart ffmpeg when no frame arrived for this long (10 s more for the first frame). Default 10. */
  stallSeconds?: number;
  /** File sources only: loop forever (default true), for demos and tests. */
  loop?: boolean;
  /** V4L2 only: pixel format asked of the device (`-input_format`, e.g. 'mjpeg'), size ('1280x720'), rate. */
  v4l2?: { inputFormat?: string; videoSize?: string; framerate?: number };
  /** Explicit ffmpeg binary; see resolveFfmpeg for the fallbacks. */
  ffmpegPath?: string;
  /**
   * Reconnect timing. Defaults: 1 s doubling to 30 s, back to 1 s after a minute online; a refused
   * login (wrong password, no rights) every 30 s from the first failure.
   */
  backoff?: { initialMs?: number; maxMs?: number; stableMs?: number; authMs?: number };
}

export interface CameraFrame {
  image: RgbImage;
  /** Date.now() when the whole frame had arrived from ffmpeg. */
  timestamp: number;
  /** Counts every frame decoded since the source was created. */
  seq: number;
}

export interface CameraStats {
  framesIn: number;
  /** Frames per second coming from ffmpeg, measured over the last 5 s. */
  fps: number;
  reconnects: number;
  state: CameraState;
}

export interface CameraStateEvent {
  state: CameraState;
  message: string;
  /** Why the last attempt failed ('wrong user or password'), without the retry timing; '' when none did. */
  cause: string;
  /** Attempts in a row that failed with this cause (1 the first time); 0 once frames flow. */
  failures: number;
  /** The camera refused the login: retried at a fixed, slow rate (`retryMs`). */
  auth: boolean;
  /** For 'error' and 'reconnecting': the wait before the next attempt, ms. */
  retryMs?: number;
}

const KILL_GRACE_MS = 2000;
const STDERR_KEEP = 40;
/** Bytes held while the frame size is still unknown; far more than ffmpeg ever writes before its header. */
const MAX_UNSIZED_BYTES = 64 * 1024 * 1024;
const FPS_WINDOW_MS = 5000;
const FIRST_FRAME_GRACE_MS = 10_000;
/** Demuxers ffmpeg may pick for non-video content that it can still render as "video". */
const NOT_VIDEO_FORMATS = ['tty'];

interface Run {
  command: ffmpeg.FfmpegCommand;
  proc?: ChildProcess;
  done: boolean;
  exited: Promise<void>;
  markExited: () => void;
  /** Why we killed it (stop, stall, bad input); undefined when ffmpeg ended by itself. */
  killCause?: Cause;
  killTimer?: NodeJS.Timeout;
  stderr: string[];
  inOutputSection: boolean;
  inputDesc?: string;
  width: number;
  height: number;
  unsized: Buffer[];
  unsizedBytes: number;
  frame?: Buffer;
  fill: number;
  frames: number;
  startedAt: number;
  lastFrameAt: number;
}

interface CameraEvents {
  frame: [frame: CameraFrame];
  state: [event: CameraStateEvent];
  /** ffmpeg stderr lines, masked. */
  log: [line: string];
}

export class CameraSource extends EventEmitter<CameraEvents> {
  /** Unique marker placed in ffmpeg's argv (`-metadata comment=...`) so its processes can be found. */
  readonly id: string;
  readonly kind: CameraKind;
  private readonly options: CameraOptions;
  private readonly fps: number;
  private readonly stallMs: number;
  private readonly backoffInitial: number;
  private readonly backoffMax: number;
  private readonly backoffStable: number;
  private readonly backoffAuth: number;
  /** The cause of the failures in a row, and how many (reset by the first frame). */
  private failure = { cause: '', count: 0, auth: false };

  private active = false;
  private current: Run | null = null;
  private retryTimer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private attempt = 0;
  private onlineSince = 0;
  private launches = 0;
  private stopping: Promise<void> | null = null;
  /** Counts start() calls, so a stop() finishing late does not announce 'stopped' over a newer start. */
  private generation = 0;

  private seq = 0;
  private counters = { framesIn: 0, reconnects: 0 };
  private recent: number[] = [];
  private stateNow: CameraState = 'stopped';
  private lastMessage = '';
  private resolved?: ResolvedFfmpeg;
  /** Output frame size of the last run, once ffmpeg reported it. */
  size?: { width: number; height: number };

  constructor(options: CameraOptions) {
    super();
    if (!options.url) throw new Error('camera url is required');
    this.options = { ...options };
    this.kind = options.kind ?? detectCameraKind(options.url);
    this.fps = options.fps && options.fps > 0 ? options.fps : 5;
    this.stallMs = (options.stallSeconds && options.stallSeconds > 0 ? options.stallSeconds : 10) * 1000;
    this.backoffInitial = options.backoff?.initialMs ?? 1000;
    this.backoffMax = options.backoff?.maxMs ?? 30_000;
    this.backoffStable = options.backoff?.stableMs ?? 60_000;
    this.backoffAuth = options.backoff?.authMs ?? 30_000;
    this.id = `coral-face-camera-${randomUUID()}`;
  }

  get state(): CameraState {
    return this.stateNow;
  }

  get stats(): CameraStats {
    return { ...this.counters, fps: this.measuredFps(), state: this.stateNow };
  }

  /** The ffmpeg in use (after start), for status displays. */
  get ffmpeg(): ResolvedFfmpeg | undefined {
    return this.resolved;
  }

  /** A one-line, credential-free description for logs and status. */
  describe(): string {
    const parts = [`${this.kind} ${this.mask(this.options.url)}`];
    if (this.kind === 'rtsp') parts.push(`over ${this.options.rtspTransport ?? 'tcp'}`);
    if (this.options.user) parts.push(`as ${this.options.user}`);
    parts.push(`at ${this.fps} fps`);
    if (this.options.maxWidth) parts.push(`max ${this.options.maxWidth} px wide`);
    if (this.resolved) parts.push(`(ffmpeg: ${this.resolved.source} ${this.resolved.path})`);
    return parts.join(' ');
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    this.generation++;
    this.attempt = 0;
    this.onlineSince = 0;
    this.launches = 0;
    this.failure = { cause: '', count: 0, auth: false };
    this.watchdog = setInterval(() => this.checkStall(), 500);
    // The watchdog only supervises ffmpeg, whose pipes keep the process alive anyway.
    this.watchdog.unref();
    this.launch();
  }

  /** Stops ffmpeg (SIGTERM, SIGKILL after 2 s) and resolves once it has exited. */
  stop(): Promise<void> {
    // A stop already under way covers this call, unless start() came in between.
    if (this.stopping && !this.active) return this.stopping;
    this.active = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    this.retryTimer = undefined;
    this.watchdog = undefined;
    const run = this.current;
    this.current = null;
    if (run) this.kill(run, { message: 'stopped', config: false });
    const exited = run ? run.exited : Promise.resolve();
    const generation = this.generation;
    const stopping = exited.then(() => {
      if (this.stopping === stopping) this.stopping = null;
      // A start() while we waited owns the state now.
      if (generation === this.generation) this.setState('stopped', 'stopped');
    });
    this.stopping = stopping;
    return stopping;
  }

  // -------------------------------------------------------------------------

  private mask(text: string): string {
    return maskSecrets(text, [this.options.password, ...(this.options.secrets ?? [])]);
  }

  private setState(state: CameraState, message: string, retryMs?: number): void {
    const masked = this.mask(message);
    if (state === this.stateNow && masked === this.lastMessage) return;
    this.stateNow = state;
    this.lastMessage = masked;
    const { cause, count: failures, auth } = this.failure;
    this.emit('state', {
      state,
      message: masked,
      cause: this.mask(cause),
      failures,
      auth,
      ...(retryMs !== undefined ? { retryMs } : {}),
    } satisfies CameraStateEvent);
  }

  private measuredFps(): number {
    const now = Date.now();
    while (this.recent.length && now - this.recent[0] > FPS_WINDOW_MS) this.recent.shift();
    // Measured up to now (not to the last frame), so a stream that stops reads as slowing
    // down at once; over less than the full window while a connection is young.
    if (!this.onlineSince) return 0;
    const from = Math.max(now - FPS_WINDOW_MS, this.onlineSince);
    const times = this.recent.filter((t) => t >= from);
    if (times.length < 2) return 0;
    const span = now - from;
    if (span < 1000) {
      const between = times[times.length - 1] - times[0];
      return between > 0 ? Math.round(((times.length - 1) * 10_000) / between) / 10 : 0;
    }
    return Math.round((times.length * 10_000) / span) / 10;
  }

  private inputArgs(major: number): { input: string; options: string[] } {
    const o = this.options;
    const ioTimeoutUs = String(this.stallMs * 1000);
    // Global options ride along with the input options: ffmpeg accepts them anywhere.
    const common = ['-hide_banner', '-nostats', '-loglevel', 'info'];
    switch (this.kind) {
      case 'rtsp':
        return {
          input: withCredentials(o.url, o.user, o.password),
          options: [
            ...common,
            '-rtsp_transport',
            o.rtspTransport ?? 'tcp',
            // Socket I/O timeout (µs) so a silent camera ends ffmpeg by itself; see ffmpegMajorVersion.
            major >= 5 ? '-timeout' : '-stimeout',
            ioTimeoutUs,
          ],
        };
      case 'mjpeg':
        return { input: withCredentials(o.url, o.user, o.password), options: [...common, '-rw_timeout', ioTimeoutUs] };
      case 'snapshot':
        return {
          input: withCredentials(o.url, o.user, o.password),
          options: [
            ...common,
            // image2 re-opens (re-fetches) the URL for every frame when looping a single image;
            // -re paces that at -framerate, i.e. one HTTP GET per frame.
            '-f',
            'image2',
            // A percent-encoded password must not be read as a %d sequence pattern.
            '-pattern_type',
            'none',
            '-loop',
            '1',
            '-framerate',
            String(this.fps),
            '-re',
            // Without these the probe fetches ~25 snapshots in a burst at every connect.
            '-probesize',
            '32',
            '-analyzeduration',
            '0',
            // No -rw_timeout here: image2 opens each fetch itself and rejects protocol options
            // ("Option rw_timeout not found"). A hung fetch is caught by the stall watchdog.
          ],
        };
      case 'file':
        return {
          input: o.url,
          // -re: read at the native rate, like a camera would deliver it.
          options: [...common, '-re', ...(o.loop === false ? [] : ['-stream_loop', '-1'])],
        };
      case 'v4l2': {
        const v = o.v4l2 ?? {};
        return {
          input: o.url,
          options: [
            ...common,
            '-f',
            'v4l2',
            ...(v.inputFormat ? ['-input_format', v.inputFormat] : []),
            ...(v.videoSize ? ['-video_size', v.videoSize] : []),
            ...(v.framerate ? ['-framerate', String(v.framerate)] : []),
          ],
        };
      }
    }
  }

  private outputArgs(): string[] {
    // Commas inside a filter's expression must be escaped from the filtergraph parser.
    const width =
      this.options.maxWidth && this.options.maxWidth > 0 ? `min(iw\\,${Math.floor(this.options.maxWidth)})` : 'iw';
    const filters = [`fps=${this.fps}`, `scale=w=trunc(${width}/2)*2:h=-2`, 'format=rgb24'];
    return [
      '-map',
      '0:v:0',
      '-vf',
      filters.join(','),
      '-pix_fmt',
      'rgb24',
      '-f',
      'rawvideo',
      '-metadata',
      `comment=${this.id}`,
    ];
  }

  private launch(): void {
    if (!this.active) return;
    try {
      this.resolved = resolveFfmpeg({ ffmpegPath: this.options.ffmpegPath });
    } catch (error) {
      // Nothing to retry until someone installs ffmpeg; stay in 'error'.
      this.setState('error', (error as Error).message);
      return;
    }
    const resolved = this.resolved;
    void ffmpegMajorVersion(resolved.path).then((major) => {
      // stop() may have come while the version was being asked.
      if (this.active && !this.current) this.spawnFfmpeg(resolved, major);
    });
  }

  private spawnFfmpeg(resolved: ResolvedFfmpeg, major: number): void {
    if (this.launches > 0) this.counters.reconnects++;
    this.launches++;
    // fluent-ffmpeg keeps one binary path per process; every source resolves the same one in practice.
    ffmpeg.setFfmpegPath(resolved.path);
    const { input, options } = this.inputArgs(major);

    let markExited = (): void => undefined;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    // fluent-ffmpeg keeps the last 100 stderr lines (its default): bounded, unlike stdoutLines: 0.
    const command = ffmpeg();
    const run: Run = {
      command,
      done: false,
      exited,
      markExited,
      stderr: [],
      inOutputSection: false,
      width: 0,
      height: 0,
      unsized: [],
      unsizedBytes: 0,
      fill: 0,
      frames: 0,
      startedAt: Date.now(),
      lastFrameAt: 0,
    };
    this.current = run;

    command.input(input);
    addOptions((...a) => command.inputOptions(...a), options);
    addOptions((...a) => command.outputOptions(...a), this.outputArgs());

    command.on('start', () => {
      const proc = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
      if (!proc) return;
      run.proc = proc;
      trackChild(proc);
      // 'close', not 'exit': it comes after stdout has been drained, so the last frames
      // (a non-looping file's tail) are cut before the run is declared over.
      proc.once('close', (code, signal) => this.finish(run, code, signal));
      proc.once('error', (error) => this.finish(run, null, null, error.message));
      // stop() or the watchdog may have asked for the kill before ffmpeg existed.
      if (run.killCause) this.kill(run, run.killCause);
    });
    command.on('stderr', (line: string) => this.onStderr(run, line));
    command.on('error', (error: Error) => {
      // After a spawn, the process's own exit event is authoritative; before it
      // (fluent-ffmpeg's capability checks failed), this is the only signal.
      if (!run.proc) this.finish(run, null, null, error.message);
    });

    const sink = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        this.onData(run, chunk);
        callback();
      },
    });
    command.pipe(sink, { end: true });

    this.setState(
      'connecting',
      this.launches === 1
        ? `connecting to ${this.describe()}`
        : `connecting to ${this.mask(this.options.url)} (attempt ${this.attempt + 1})`,
    );
  }

  private kill(run: Run, cause: Cause): void {
    if (run.done) return;
    run.killCause ??= cause;
    const proc = run.proc;
    if (!proc) return; // the 'start' handler kills it as soon as it exists
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    if (!run.killTimer) {
      run.killTimer = setTimeout(() => {
        if (!run.done) proc.kill('SIGKILL');
      }, KILL_GRACE_MS);
      run.killTimer.unref();
    }
  }

  private finish(run: Run, code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void {
    if (run.done) return;
    run.done = true;
    clearTimeout(run.killTimer);
    if (run.proc) untrackChild(run.proc);
    run.markExited();
    if (run !== this.current || !this.active) return;
    this.current = null;

    if (run.frames > 0 && this.onlineSince && Date.now() - this.onlineSince >= this.backoffStable) this.attempt = 0;
    this.onlineSince = 0;

    let cause: Cause;
    if (run.killCause) {
      cause = run.killCause;
    } else if (spawnError) {
      cause = explainFfmpegError([spawnError]) ?? { message: `ffmpeg failed: ${spawnError}`, config: true };
    } else if (code === 0 && this.kind === 'file' && this.options.loop === false) {
      this.active = false;
      clearInterval(this.watchdog);
      this.setState('stopped', 'end of file');
      return;
    } else {
      let explained = explainFfmpegError(run.stderr);
      // ffmpeg reports its own socket timeout during the RTSP handshake as "Invalid data
      // found": when that comes after the whole timeout, the camera did not answer.
      if (
        explained?.message === 'not a video stream' &&
        run.frames === 0 &&
        (this.kind === 'rtsp' || this.kind === 'mjpeg') &&
        Date.now() - run.startedAt >= this.stallMs * 0.9
      ) {
        explained = {
          message: `camera unreachable (no answer within ${Math.round(this.stallMs / 1000)} s)`,
          config: false,
        };
      }
      const last = run.stderr.filter((l) => l.trim()).slice(-1)[0] ?? '';
      cause =
        explained ??
        (code === 0
          ? { message: 'stream ended', config: false }
          : {
              message: `ffmpeg ${signal ? `killed by ${signal}` : `exited with code ${code}`}${last ? `: ${last.trim()}` : ''}`,
              config: false,
            });
    }

    if (cause.message === this.failure.cause) this.failure.count++;
    else this.failure = { cause: cause.message, count: 1, auth: !!cause.auth };
    // A refused login does not fix itself, and cameras lock an account after a few failed logins in a
    // row: retry at a fixed slow rate from the first failure, not at the usual 1, 2, 4... s.
    const delay = cause.auth ? this.backoffAuth : Math.min(this.backoffInitial * 2 ** this.attempt, this.backoffMax);
    this.attempt++;
    const seconds = delay >= 1000 ? `${Math.round(delay / 1000)} s` : `${delay} ms`;
    if (cause.auth) this.setState('error', `${cause.message}; retrying every ${seconds}`, delay);
    else if (cause.config) this.setState('error', `${cause.message}; retrying in ${seconds}`, delay);
    else this.setState('reconnecting', `reconnecting in ${seconds}: ${cause.message}`, delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.launch();
    }, delay);
  }

  private checkStall(): void {
    const run = this.current;
    if (!run || run.done || run.killCause || !run.proc) return;
    const now = Date.now();
    if (run.frames > 0) {
      if (now - run.lastFrameAt < this.stallMs) return;
      this.kill(run, { message: `no frames for ${Math.round(this.stallMs / 1000)} s (stalled)`, config: false });
      return;
    }
    // The first frame gets longer: connecting, negotiating RTSP and probing the stream
    // (ffmpeg analyses up to 5 s of it) legitimately take several seconds.
    const firstFrameMs = this.stallMs + FIRST_FRAME_GRACE_MS;
    if (now - run.startedAt < firstFrameMs) return;
    this.kill(run, {
      message: `camera unreachable (no video within ${Math.round(firstFrameMs / 1000)} s)`,
      config: false,
    });
  }

  private onStderr(run: Run, raw: string): void {
    const line = this.mask(raw);
    run.stderr.push(line);
    if (run.stderr.length > STDERR_KEEP) run.stderr.shift();
    if (line.trim()) this.emit('log', line);

    if (/^Output #0/.test(line)) {
      run.inOutputSection = true;
      return;
    }
    const input = /^Input #0, ([\w,]+), from/.exec(line);
    if (input && NOT_VIDEO_FORMATS.some((f) => input[1].split(',').includes(f))) {
      // ffmpeg happily "plays" a text page as ANSI art (tty demuxer); no camera sends that.
      this.kill(run, { message: 'not a video stream', config: true });
      return;
    }
    const stream = /Stream #\d+:\d+.*?: Video: (\w+).*?, (\d{1,5})x(\d{1,5})[\s,[]/.exec(line);
    if (!stream) return;
    if (!run.inOutputSection) {
      run.inputDesc ??= `${stream[1]} ${stream[2]}x${stream[3]}`;
      return;
    }
    if (run.width) return;
    run.width = Number(stream[2]);
    run.height = Number(stream[3]);
    this.size = { width: run.width, height: run.height };
    const held = run.unsized;
    run.unsized = [];
    run.unsizedBytes = 0;
    for (const chunk of held) this.consume(run, chunk);
  }

  private onData(run: Run, chunk: Buffer): void {
    if (run !== this.current || run.done) return;
    if (!run.width) {
      run.unsized.push(chunk);
      run.unsizedBytes += chunk.length;
      if (run.unsizedBytes > MAX_UNSIZED_BYTES)
        this.kill(run, { message: 'ffmpeg sent video without announcing its size', config: false });
      return;
    }
    this.consume(run, chunk);
  }

  /** Cuts ffmpeg's byte stream into whole width*height*3 frames. */
  private consume(run: Run, chunk: Buffer): void {
    const frameBytes = run.width * run.height * 3;
    let offset = 0;
    while (offset < chunk.length) {
      // allocUnsafeSlow: never the shared small-buffer pool, so the Uint8Array handed out
      // owns its whole ArrayBuffer (consumers may transfer or wrap .buffer). Every byte is overwritten.
      run.frame ??= Buffer.allocUnsafeSlow(frameBytes);
      const n = Math.min(frameBytes - run.fill, chunk.length - offset);
      chunk.copy(run.frame, run.fill, offset, offset + n);
      run.fill += n;
      offset += n;
      if (run.fill === frameBytes) {
        const data = run.frame;
        run.frame = undefined;
        run.fill = 0;
        this.onFrame(run, new Uint8Array(data.buffer, data.byteOffset, data.length));
      }
    }
  }

  private onFrame(run: Run, data: Uint8Array): void {
    const now = Date.now();
    run.frames++;
    run.lastFrameAt = now;
    this.counters.framesIn++;
    this.recent.push(now);
    if (this.recent.length > 1000) this.recent.shift();
    const frame: CameraFrame = {
      image: { width: run.width, height: run.height, data },
      timestamp: now,
      seq: ++this.seq,
    };
    if (run.frames === 1) {
      this.onlineSince = now;
      this.failure = { cause: '', count: 0, auth: false };
      const from = run.inputDesc ? ` from ${run.inputDesc}` : '';
      this.setState('online', `online: ${run.width}x${run.height} at ${this.fps} fps${from}`);
    }
    this.emit('frame', frame);
  }
}

/** Creates a (not yet started) camera source. */
export function createCameraSource(options: CameraOptions): CameraSource {
  return new CameraSource(options);
}
