import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Frame } from '../../src/vision/decode.js';
import { decodeFrames, ffmpegPath, probeVideo, VideoError } from '../../src/vision/decode.js';

const videos = join(process.cwd(), 'sample-data', 'videos');

async function all(file: string, sampleFps?: number, width?: number): Promise<Frame[]> {
  const info = await probeVideo(file);
  const frames: Frame[] = [];
  const options = { ...(sampleFps ? { sampleFps } : {}), ...(width ? { width } : {}) };
  for await (const frame of decodeFrames(file, info, options)) frames.push(frame);
  return frames;
}

async function failure(promise: Promise<unknown>): Promise<VideoError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VideoError) return error;
    throw error;
  }
  throw new Error('Expected a VideoError.');
}

describe('decoding with ffmpeg', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-decode-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('probes a sample clip', async () => {
    const info = await probeVideo(join(videos, 'crossing.mp4'));
    expect(info).toMatchObject({ width: 640, height: 360, fps: 30, codec: 'h264', still: false });
    expect(info.durationSec).toBeCloseTo(10, 1);
  });

  it('samples RGB frames at the asked rate and size', async () => {
    const frames = await all(join(videos, 'crossing.mp4'));
    expect(frames).toHaveLength(50);
    expect(frames[7]).toMatchObject({ index: 7, width: 320, height: 180 });
    expect(frames[7]?.timeSec).toBeCloseTo(1.4);
    expect(frames[7]?.rgb.length).toBe(320 * 180 * 3);
    const faster = await all(join(videos, 'crossing.mp4'), 10, 160);
    expect(faster).toHaveLength(100);
    expect(faster[0]?.rgb.length).toBe(160 * 90 * 3);
    // The same instant decodes to nearly the same picture at either rate.
    const a = frames[5]?.rgb ?? Buffer.alloc(0);
    const b = (await all(join(videos, 'crossing.mp4'), 10))[10]?.rgb ?? Buffer.alloc(0);
    let difference = 0;
    for (let i = 0; i < a.length; i++) difference += Math.abs((a[i] ?? 0) - (b[i] ?? 0));
    expect(difference / a.length).toBeLessThan(6);
  });

  it('reads a still picture as one frame', async () => {
    const png = join(dir, 'still.png');
    execFileSync(ffmpegPath(), [
      '-v',
      'error',
      '-i',
      join(videos, 'cat.mp4'),
      '-frames:v',
      '1',
      png,
    ]);
    const info = await probeVideo(png);
    expect(info.still).toBe(true);
    expect(await all(png)).toHaveLength(1);
  });

  it('gives typed errors for a missing file, a text file and a truncated video', async () => {
    expect((await failure(probeVideo(join(dir, 'absent.mp4')))).kind).toBe('missing');

    const text = join(dir, 'notes.mp4');
    writeFileSync(text, 'these are notes, not a video\n');
    const notVideo = await failure(probeVideo(text));
    expect(notVideo.kind).toBe('not-video');
    expect(notVideo.message).toContain('notes.mp4 is not a video');

    // Half an MP4 whose index sits at the end: ffmpeg cannot find the stream's layout.
    const whole = readFileSync(join(videos, 'people.mp4'));
    const truncated = join(dir, 'truncated.mp4');
    writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    const broken = await failure(all(truncated));
    expect(broken.kind).toBe('corrupt');
    expect(broken.message).toMatch(/truncated\.mp4 could not be decoded after \d+ frames/);
  });
});
