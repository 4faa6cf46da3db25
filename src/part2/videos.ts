import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';

import { execa } from 'execa';

import { ffmpegPath } from '../vision/decode.js';

/** The sample clips the lab uploads, from sample-data/videos. */
export async function sampleVideos(assetsRoot: string): Promise<string[]> {
  const folder = join(assetsRoot, 'sample-data/videos');
  return (await readdir(folder))
    .filter((f) => f.endsWith('.mp4'))
    .sort()
    .map((f) => join(folder, f));
}

/** The seconds of each part when videos are split, as the lab splits them. */
export const PART_SECONDS = 5;

/**
 * Cuts a video into 5-second parts named `name~N.mp4`, the names the pipeline stitches back
 * together (part N starts at 5×N seconds). Returns the parts' paths and a cleanup.
 */
export async function splitVideo(
  file: string,
): Promise<{ parts: string[]; cleanup: () => Promise<void> }> {
  const folder = await mkdtemp(join(tmpdir(), 'cymbal-split-'));
  const stem = basename(file, extname(file));
  // Keyframes every 5 s make each part exactly 5 s long, so its offsets line up when the
  // pipeline stitches the parts back together; copying the stream would cut at whatever
  // keyframes the source happens to have.
  await execa(ffmpegPath(), [
    ...['-v', 'error', '-i', file, '-map', '0:v', '-c:v', 'libx264', '-preset', 'veryfast'],
    ...['-force_key_frames', `expr:gte(t,n_forced*${PART_SECONDS})`, '-f', 'segment'],
    ...['-segment_time', String(PART_SECONDS), '-reset_timestamps', '1'],
    join(folder, `${stem}~%d.mp4`),
  ]);
  const parts = (await readdir(folder)).sort().map((f) => join(folder, f));
  return { parts, cleanup: () => rm(folder, { recursive: true, force: true }) };
}
