/** Decodes a video file's frames with the real ffmpeg, as fast as it can, at a given rate. */
import { spawn } from 'node:child_process';
import { resolveFfmpeg } from '../../nodes/core/camera/ffmpeg';
import type { RgbImage } from '../../nodes/core/media/image';

export async function* clipFrames(
  file: string,
  options: { fps: number; width: number; height: number; loops?: number },
): AsyncGenerator<RgbImage> {
  const { path: ffmpeg } = resolveFfmpeg({});
  const frameBytes = options.width * options.height * 3;
  const child = spawn(
    ffmpeg,
    [
      '-v',
      'error',
      '-stream_loop',
      String((options.loops ?? 1) - 1),
      '-i',
      file,
      '-vf',
      `fps=${options.fps},scale=${options.width}:${options.height}`,
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  // Chunks are gathered until a frame's worth is there, then copied once.
  let chunks: Buffer[] = [];
  let have = 0;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      have += chunk.length;
      while (have >= frameBytes) {
        const all = Buffer.concat(chunks, have);
        yield {
          width: options.width,
          height: options.height,
          data: new Uint8Array(all.buffer, all.byteOffset, frameBytes),
        };
        chunks = have > frameBytes ? [all.subarray(frameBytes)] : [];
        have -= frameBytes;
      }
    }
  } finally {
    child.kill();
  }
}
