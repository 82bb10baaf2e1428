/** Demo and test clips: still images made into a looping H.264 MP4 by ffmpeg. */
import ffmpeg from 'fluent-ffmpeg';
import { addOptions, resolveFfmpeg, type ResolvedFfmpeg } from './ffmpeg';

/**
 * One still of a clip, optionally a square region of it slowly zoomed into
 * (someone walking up to the camera). Shown pillarboxed when it is a region.
 */
export interface ClipSegment {
  image: string;
  /** Default: the clip's secondsPerImage. */
  seconds?: number;
  /** A square region of the image, in its pixels. */
  region?: { x: number; y: number; size: number };
  /** How far the region is zoomed into by the segment's end (1 = not at all). Default 1. */
  zoomTo?: number;
}

export interface DemoClipOptions {
  /** How long each still is shown. Default 2. */
  secondsPerImage?: number;
  /** Frame size (rounded down to even, as H.264 in yuv420p needs). Default 640x480. */
  width?: number;
  height?: number;
  fps?: number;
  ffmpegPath?: string;
}

/**
 * Builds an H.264 MP4 from still images (each letterboxed into width x height
 * and shown secondsPerImage), for the demo source and the tests. A keyframe
 * every second keeps looping and RTSP joins quick.
 */
export function makeDemoClip(
  images: (string | ClipSegment)[],
  outFile: string,
  options: DemoClipOptions = {},
): Promise<void> {
  if (images.length === 0) return Promise.reject(new Error('makeDemoClip needs at least one image'));
  const seconds = options.secondsPerImage ?? 2;
  const width = Math.max(2, Math.floor((options.width ?? 640) / 2) * 2);
  const height = Math.max(2, Math.floor((options.height ?? 480) / 2) * 2);
  const fps = options.fps ?? 10;
  let resolved: ResolvedFfmpeg;
  try {
    resolved = resolveFfmpeg({ ffmpegPath: options.ffmpegPath });
  } catch (error) {
    return Promise.reject(error);
  }
  ffmpeg.setFfmpegPath(resolved.path);

  const segments = images.map((s) => (typeof s === 'string' ? { image: s } : s));
  const command = ffmpeg();
  for (const segment of segments) {
    command.input(segment.image);
    addOptions(
      (...a) => command.inputOptions(...a),
      ['-loop', '1', '-framerate', String(fps), '-t', String(segment.seconds ?? seconds)],
    );
  }
  const chains = segments.map((segment, i) => {
    if (!segment.region) {
      return (
        `[${i}:v]scale=${width}:${height}:force_original_aspect_ratio=decrease,` +
        `pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=${fps},format=yuv420p[v${i}]`
      );
    }
    const { x, y, size } = segment.region;
    const frames = Math.max(1, Math.round((segment.seconds ?? seconds) * fps));
    const side = Math.min(width, height);
    const zoom = segment.zoomTo ?? 1;
    return (
      `[${i}:v]crop=${size}:${size}:${x}:${y},scale=${side}:${side},` +
      `zoompan=z='1+${zoom - 1}*on/${frames}':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:s=${side}x${side}:fps=${fps},` +
      `pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v${i}]`
    );
  });
  const graph = `${chains.join(';')};${segments.map((_s, i) => `[v${i}]`).join('')}concat=n=${segments.length}:v=1:a=0[v]`;
  addOptions(
    (...a) => command.outputOptions(...a),
    [
      '-hide_banner',
      '-filter_complex',
      graph,
      '-map',
      '[v]',
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      '-g',
      String(fps),
      '-r',
      String(fps),
      '-movflags',
      '+faststart',
    ],
  );
  command.output(outFile);
  return new Promise<void>((resolve, reject) => {
    command.on('end', () => resolve());
    command.on('error', (error: Error, _stdout: string | null, stderr: string | null) => {
      const tail = (stderr ?? '').trim().split('\n').slice(-3).join(' | ');
      reject(new Error(`makeDemoClip failed: ${error.message}${tail ? ` (${tail})` : ''}`));
    });
    command.run();
  });
}
