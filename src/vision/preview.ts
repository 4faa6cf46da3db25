import { spawn } from 'node:child_process';
import { extname } from 'node:path';

import { LabError } from '../errors.js';
import type { VideoInfo } from './decode.js';
import { decodeFrames, ffmpegPath } from './decode.js';
import type { RgbImage } from './draw.js';
import { drawBox, drawLabel, trackColor } from './draw.js';
import { entityFor } from './entities.js';
import type { TrackResult } from './track.js';

/**
 * A picture of what was tracked: the sampled frames with each track's box, id and label drawn
 * on them, either as a contact sheet (PNG, up to 12 frames in a grid) or as a video (MP4, every
 * sampled frame at the sampling rate).
 */

const PREVIEW_WIDTH = 480;
const SHEET_COLUMNS = 4;
const SHEET_FRAMES = 12;

/** The preview's format from its file name; a LabError for anything but .png and .mp4. */
export function previewKind(output: string): '.png' | '.mp4' {
  const kind = extname(output).toLowerCase();
  if (kind !== '.png' && kind !== '.mp4') {
    throw new LabError(
      `Cannot write a preview as ${output}: name it .png (a contact sheet) or .mp4 (a video).`,
    );
  }
  return kind;
}

export async function writePreview(
  file: string,
  info: VideoInfo,
  sampleFps: number,
  tracks: TrackResult[],
  output: string,
): Promise<void> {
  const kind = previewKind(output);
  const byFrame = new Map<number, { track: TrackResult; index: number }[]>();
  for (const track of tracks) {
    track.observations.forEach((o, index) => {
      const list = byFrame.get(o.frameIndex) ?? [];
      list.push({ track, index });
      byFrame.set(o.frameIndex, list);
    });
  }
  const frames: RgbImage[] = [];
  let width = 0;
  let height = 0;
  const total = Math.max(1, Math.round(info.durationSec * sampleFps));
  const step = kind === '.png' ? Math.max(1, Math.ceil(total / SHEET_FRAMES)) : 1;
  for await (const frame of decodeFrames(file, info, { sampleFps, width: PREVIEW_WIDTH })) {
    if (frame.index % step !== 0) continue;
    width = frame.width;
    height = frame.height;
    const image: RgbImage = { width, height, data: frame.rgb };
    for (const { track, index } of byFrame.get(frame.index) ?? []) {
      const o = track.observations[index];
      if (!o) continue;
      const color = trackColor(track.id);
      drawBox(image, o.box, color);
      const label = `#${track.id} ${entityFor(track.classId).description}`;
      drawLabel(image, label, o.box.left * width, o.box.top * height - 10, color);
    }
    drawLabel(image, `${frame.timeSec.toFixed(1)}S`, 2, height - 11, [0, 0, 0]);
    frames.push(image);
  }
  if (frames.length === 0) throw new LabError(`No frames could be read from ${file}.`);

  const input = ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`];
  if (kind === '.png') {
    const rows = Math.ceil(frames.length / SHEET_COLUMNS);
    const columns = Math.min(SHEET_COLUMNS, frames.length);
    await encode(
      [...input, '-i', 'pipe:0', '-vf', `tile=${columns}x${rows}:padding=4`, '-frames:v', '1'],
      frames,
      output,
    );
  } else {
    await encode(
      [...input, '-r', String(sampleFps), '-i', 'pipe:0'].concat([
        '-c:v',
        'libx264',
        '-pix_fmt',
        'yuv420p',
        '-movflags',
        '+faststart',
      ]),
      frames,
      output,
    );
  }
}

function encode(args: string[], frames: RgbImage[], output: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), ['-v', 'error', '-y', ...args, output], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new LabError(`ffmpeg could not write ${output}: ${stderr.trim()}`)),
    );
    // Ignored: a failed write shows up as ffmpeg's exit status above.
    child.stdin.on('error', () => undefined);
    for (const frame of frames) child.stdin.write(frame.data);
    child.stdin.end();
  });
}
