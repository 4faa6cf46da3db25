import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

import { LabError } from '../errors.js';

/**
 * Video in, RGB frames out, through ffmpeg and a pipe. ffmpeg is looked for in this order:
 * `CYMBAL_LAB_FFMPEG`, an `ffmpeg` on PATH, then the static binary that `@ffmpeg-installer/ffmpeg`
 * ships inside node_modules.
 */

export type VideoErrorKind = 'missing' | 'not-video' | 'corrupt' | 'no-ffmpeg';

/** A video that cannot be read; `kind` tells a caller which API status to answer with. */
export class VideoError extends LabError {
  readonly kind: VideoErrorKind;

  constructor(kind: VideoErrorKind, message: string, options: { hint?: string; cause?: unknown }) {
    super(message, options);
    this.name = 'VideoError';
    this.kind = kind;
  }
}

export interface VideoInfo {
  /** Seconds; 0 when the container does not say (a single image). */
  durationSec: number;
  width: number;
  height: number;
  /** Frames per second the stream declares; 0 when unknown. */
  fps: number;
  codec: string;
  /** A single picture (PNG, JPEG...) rather than a moving video; it decodes to one frame. */
  still: boolean;
}

export interface Frame {
  /** Position among the sampled frames, from 0. */
  index: number;
  /** Seconds from the start of the video. */
  timeSec: number;
  width: number;
  height: number;
  /** `width * height * 3` bytes, row by row, R G B. */
  rgb: Buffer;
}

export interface DecodeOptions {
  /** Frames sampled per second of video; 5 unless set. */
  sampleFps?: number;
  /** Width of the frames handed out; 320 unless set. The height keeps the aspect ratio. */
  width?: number;
  /** Stops decoding when aborted. */
  signal?: AbortSignal;
}

export const DEFAULT_SAMPLE_FPS = 5;
export const DEFAULT_FRAME_WIDTH = 320;

let cachedFfmpeg: string | undefined;

/** The ffmpeg binary to run; throws a VideoError naming the three places it looked. */
export function ffmpegPath(): string {
  if (cachedFfmpeg) return cachedFfmpeg;
  const fromEnv = process.env['CYMBAL_LAB_FFMPEG'];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new VideoError(
        'no-ffmpeg',
        `CYMBAL_LAB_FFMPEG points at ${fromEnv}, which cannot run.`,
        {
          hint: 'Point CYMBAL_LAB_FFMPEG at an ffmpeg binary, or unset it.',
        },
      );
    }
    return (cachedFfmpeg = fromEnv);
  }
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'ffmpeg');
    if (dir && isExecutable(candidate)) return (cachedFfmpeg = candidate);
  }
  try {
    const require = createRequire(import.meta.url);
    const installer = require('@ffmpeg-installer/ffmpeg') as { path: string };
    if (isExecutable(installer.path)) return (cachedFfmpeg = installer.path);
  } catch {
    // Falls through to the error below, which says what to install.
  }
  throw new VideoError('no-ffmpeg', 'No ffmpeg binary was found.', {
    hint: 'Run `npm install` in the cymbal-lab folder, install ffmpeg, or set CYMBAL_LAB_FFMPEG.',
  });
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Reads a video's size, duration and frame rate from ffmpeg's description of its input. */
export async function probeVideo(file: string): Promise<VideoInfo> {
  assertReadable(file);
  const { stderr } = await runFfmpeg(['-hide_banner', '-nostdin', '-i', file]);
  const stream = /Stream #\d+:\d+[^:]*: Video: ([^\n]+)/.exec(stderr);
  if (!stream?.[1]) {
    const reason = /Invalid data found|could not find codec|moov atom not found/i.test(stderr)
      ? 'ffmpeg cannot read it as a video'
      : 'it has no video stream';
    throw new VideoError('not-video', `${file} is not a video: ${reason}.`, {
      hint: 'Give a video file such as MP4, AVI, WebM or MOV.',
    });
  }
  const details = stream[1];
  const size = /, (\d{2,5})x(\d{2,5})/.exec(details);
  if (!size) {
    throw new VideoError('corrupt', `${file}: ffmpeg did not report the video's frame size.`, {
      hint: 'Re-encode the video (for example with `ffmpeg -i in -c:v libx264 out.mp4`).',
    });
  }
  const duration = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(stderr);
  const fps = /, (\d+(?:\.\d+)?) fps/.exec(details) ?? /, (\d+(?:\.\d+)?) tbr/.exec(details);
  return {
    durationSec: duration
      ? Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3])
      : 0,
    width: Number(size[1]),
    height: Number(size[2]),
    fps: fps ? Number(fps[1]) : 0,
    codec: details.split(/[ ,]/)[0] ?? 'unknown',
    still: /Input #0, (image2|\w+_pipe),/.test(stderr),
  };
}

/** The frame height that keeps the aspect ratio at `width`, rounded to an even number. */
export function scaledHeight(info: Pick<VideoInfo, 'width' | 'height'>, width: number): number {
  return Math.max(2, Math.round((width * info.height) / info.width / 2) * 2);
}

/**
 * Yields sampled RGB frames in order. A stream that breaks part way raises a `corrupt`
 * VideoError after the frames that could be read.
 */
export async function* decodeFrames(
  file: string,
  info: VideoInfo,
  options: DecodeOptions = {},
): AsyncGenerator<Frame> {
  const sampleFps = options.sampleFps ?? DEFAULT_SAMPLE_FPS;
  const width = options.width ?? DEFAULT_FRAME_WIDTH;
  const height = scaledHeight(info, width);
  const frameBytes = width * height * 3;
  const child = spawn(
    ffmpegPath(),
    [
      ...['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-an', '-sn'],
      // The fps filter drops a lone picture, which has no duration to sample.
      ...(info.still ? ['-frames:v', '1'] : []),
      ...['-vf', `${info.still ? '' : `fps=${sampleFps},`}scale=${width}:${height}:flags=bilinear`],
      ...['-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 8192) stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => resolve(code));
    child.on('error', () => resolve(null));
  });

  let pending: Buffer = Buffer.alloc(0);
  let index = 0;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= frameBytes) {
        const rgb = Buffer.from(pending.subarray(0, frameBytes));
        pending = pending.subarray(frameBytes);
        yield { index, timeSec: index / sampleFps, width, height, rgb };
        index += 1;
      }
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const code = await exited;
  options.signal?.throwIfAborted();
  // ffmpeg often exits 0 on a truncated or damaged stream, after saying so on stderr.
  const damaged = /partial file|Invalid data found|Invalid NAL unit|corrupt/i.test(stderr);
  if (code !== 0 || index === 0 || damaged) {
    const detail = stderr.trim().split('\n').slice(-3).join(' ') || `ffmpeg exited with ${code}`;
    throw new VideoError(
      'corrupt',
      `${file} could not be decoded after ${index} frames: ${detail}`,
      {
        hint: 'The file may be truncated or damaged; re-encode or upload it again.',
      },
    );
  }
}

function assertReadable(file: string): void {
  if (!existsSync(file)) {
    throw new VideoError('missing', `${file} does not exist.`, { hint: 'Check the path.' });
  }
  if (!statSync(file).isFile()) {
    throw new VideoError('not-video', `${file} is not a file.`, { hint: 'Give a video file.' });
  }
}

function runFfmpeg(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) =>
      reject(
        new VideoError('no-ffmpeg', `ffmpeg could not start: ${error.message}`, { cause: error }),
      ),
    );
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
