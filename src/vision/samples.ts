import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import type { Box } from './box.js';
import { ffmpegPath } from './decode.js';

/**
 * Builds sample-data/videos from real photographs and footage shipped in Debian packages
 * (opencv-doc, python3-skimage, darknet; see sample-data/videos/SOURCES.md), with ffmpeg:
 *
 * - people.mp4: ten seconds of OpenCV's pedestrian clip;
 * - cat.mp4 and bicycle.mp4: slow pans over still photographs;
 * - crossing.mp4 and passing.mp4, each with a .truth.json: objects cut from photographs moving
 *   over a street photograph along fixed paths, crossing and hiding each other, with the true
 *   box, identity
 *   and visible fraction of every object at every sampled frame.
 *
 * Everything is computed from fixed numbers, so a second run writes the same ground truth; the
 * videos are the same too with the same ffmpeg build.
 *
 * Usage: node dist/src/vision/samples.js <folder the Debian packages were extracted into> [out]
 */

const run = promisify(execFile);

export const CROSSING = { width: 640, height: 360, fps: 30, seconds: 10, sampleFps: 5 };

interface Sprite {
  id: number;
  label: string;
  /** Source photograph, relative to the extraction folder. */
  file: string;
  crop: { x: number; y: number; w: number; h: number };
  mirror?: boolean;
  /** Size on the canvas. */
  w: number;
  h: number;
  /** Top-left corner on the canvas at time t (seconds). */
  at: (t: number) => { x: number; y: number };
}

const DARKNET = 'usr/share/darknet/data';
const OPENCV = 'usr/share/doc/opencv-doc/examples/data';
const SKIMAGE = 'usr/lib/python3/dist-packages/skimage/data';

interface Scene {
  /** Base name of the clip and of its ground truth. */
  name: string;
  background: string;
  /** Shows the background mirrored, so that a scene looks different from another. */
  mirrorBackground?: boolean;
  /** Back to front: later sprites hide earlier ones. */
  sprites: Sprite[];
}

/** The scene the tracker was tuned on. */
const CROSSING_SPRITES: Sprite[] = [
  {
    id: 1,
    label: 'car',
    file: `${DARKNET}/dog.jpg`,
    crop: { x: 454, y: 76, w: 240, h: 100 },
    w: 200,
    h: 83,
    at: (t) => ({ x: 660 - 88 * t, y: 40 }),
  },
  {
    id: 2,
    label: 'horse',
    file: `${DARKNET}/horses.jpg`,
    crop: { x: 4, y: 196, w: 328, h: 214 },
    w: 210,
    h: 137,
    at: (t) => ({ x: -220 + 60 * t, y: 168 }),
  },
  {
    id: 3,
    label: 'dog',
    file: `${DARKNET}/person.jpg`,
    crop: { x: 70, y: 258, w: 136, h: 94 },
    w: 120,
    h: 83,
    at: (t) => ({ x: 330 + 30 * t, y: 268 + 4 * Math.sin(t * 3) }),
  },
  {
    id: 4,
    label: 'person',
    file: `${DARKNET}/person.jpg`,
    crop: { x: 186, y: 96, w: 92, h: 290 },
    mirror: true,
    w: 56,
    h: 176,
    at: (t) => ({ x: 20 + 58 * t, y: 150 + 3 * Math.sin(t * 9) }),
  },
  {
    id: 5,
    label: 'person',
    file: `${DARKNET}/person.jpg`,
    crop: { x: 186, y: 96, w: 92, h: 290 },
    w: 60,
    h: 190,
    at: (t) => ({ x: 560 - 52 * t, y: 140 + 3 * Math.sin(t * 8 + 1) }),
  },
];

/**
 * A second scene, kept out of tuning: other objects, other paths (a diagonal walk, a bird
 * across the top), a cat passing in front of a horse and a zebra passing behind both.
 */
const PASSING_SPRITES: Sprite[] = [
  {
    id: 1,
    label: 'zebra',
    file: `${DARKNET}/giraffe.jpg`,
    crop: { x: 298, y: 198, w: 126, h: 242 },
    w: 64,
    h: 123,
    at: (t) => ({ x: 590 - 45 * t, y: 170 }),
  },
  {
    id: 2,
    label: 'horse',
    file: `${DARKNET}/person.jpg`,
    crop: { x: 398, y: 130, w: 206, h: 214 },
    w: 150,
    h: 156,
    at: (t) => ({ x: -150 + 70 * t, y: 180 }),
  },
  {
    id: 3,
    label: 'cat',
    file: `${SKIMAGE}/chelsea.png`,
    crop: { x: 0, y: 0, w: 404, h: 300 },
    w: 150,
    h: 111,
    at: (t) => ({ x: 640 - 80 * t, y: 235 + 5 * Math.sin(t * 2) }),
  },
  {
    id: 4,
    label: 'person',
    file: `${DARKNET}/person.jpg`,
    crop: { x: 186, y: 96, w: 92, h: 290 },
    w: 50,
    h: 158,
    at: (t) => ({ x: 120 + 28 * t, y: 40 + 12 * t }),
  },
  {
    id: 5,
    label: 'bird',
    file: `${DARKNET}/eagle.jpg`,
    crop: { x: 127, y: 85, w: 478, h: 365 },
    w: 120,
    h: 92,
    at: (t) => ({ x: 560 - 55 * t, y: 10 + 8 * Math.sin(t * 1.5) }),
  },
];

export const SCENES: Scene[] = [
  { name: 'crossing', background: `${OPENCV}/leuvenA.jpg`, sprites: CROSSING_SPRITES },
  // leuvenB.jpg would suit too, but its parked bicycles are objects the truth does not list.
  {
    name: 'passing',
    background: `${OPENCV}/leuvenA.jpg`,
    mirrorBackground: true,
    sprites: PASSING_SPRITES,
  },
];

export interface TruthObject {
  id: number;
  label: string;
  /** The whole object's box, clipped to the frame, normalized. */
  box: Box;
  /** Share of the whole object's box that is in the frame and not hidden, 0..1. */
  visibility: number;
}

export interface TruthFrame {
  index: number;
  timeSec: number;
  objects: TruthObject[];
}

export interface GroundTruth {
  video: string;
  width: number;
  height: number;
  fps: number;
  sampleFps: number;
  frames: TruthFrame[];
}

/** Reads a region of a picture as RGB at the given size. */
async function readRgb(
  file: string,
  filters: string,
  width: number,
  height: number,
): Promise<Buffer> {
  const { stdout } = await run(
    ffmpegPath(),
    ['-v', 'error', '-i', file, '-vf', `${filters},scale=${width}:${height}:flags=lanczos`].concat([
      '-frames:v',
      '1',
      '-pix_fmt',
      'rgb24',
      '-f',
      'rawvideo',
      'pipe:1',
    ]),
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

async function encode(output: string, args: string[], frames?: Iterable<Buffer>): Promise<void> {
  const child = spawn(ffmpegPath(), ['-v', 'error', '-y', ...args, output], {
    stdio: [frames ? 'pipe' : 'ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`ffmpeg failed on ${output}: ${stderr}`)),
    );
  });
  if (frames && child.stdin) {
    for (const frame of frames) {
      if (!child.stdin.write(frame)) await new Promise((r) => child.stdin?.once('drain', r));
    }
    child.stdin.end();
  }
  await done;
}

/** Same settings for every clip: H.264, one thread (reproducible), web-friendly. */
const H264 = ['-c:v', 'libx264', '-preset', 'medium', '-threads', '1', '-pix_fmt', 'yuv420p'];

export async function makeScene(
  scene: Scene,
  sourceDir: string,
  outDir: string,
): Promise<GroundTruth> {
  const { width, height, fps, seconds, sampleFps } = CROSSING;
  const background = await readRgb(
    join(sourceDir, scene.background),
    `crop=iw:iw*9/16:0:ih-iw*9/16${scene.mirrorBackground ? ',hflip' : ''}`,
    width,
    height,
  );
  const pixels = await Promise.all(
    scene.sprites.map((s) =>
      readRgb(
        join(sourceDir, s.file),
        `crop=${s.crop.w}:${s.crop.h}:${s.crop.x}:${s.crop.y}${s.mirror ? ',hflip' : ''}`,
        s.w,
        s.h,
      ),
    ),
  );
  const truth: GroundTruth = {
    video: `${scene.name}.mp4`,
    width,
    height,
    fps,
    sampleFps,
    frames: [],
  };
  const step = fps / sampleFps;

  function* frames(): Generator<Buffer> {
    for (let index = 0; index < fps * seconds; index++) {
      const t = index / fps;
      const canvas = Buffer.from(background);
      // Which sprite owns each pixel, to measure how much of each stays visible.
      const owner = new Int8Array(width * height).fill(-1);
      const placed = scene.sprites.map((sprite, s) => {
        const { x, y } = sprite.at(t);
        const left = Math.round(x);
        const top = Math.round(y);
        const source = pixels[s] as Buffer;
        for (let row = 0; row < sprite.h; row++) {
          const cy = top + row;
          if (cy < 0 || cy >= height) continue;
          for (let col = 0; col < sprite.w; col++) {
            const cx = left + col;
            if (cx < 0 || cx >= width) continue;
            source.copy(
              canvas,
              (cy * width + cx) * 3,
              (row * sprite.w + col) * 3,
              (row * sprite.w + col) * 3 + 3,
            );
            owner[cy * width + cx] = s;
          }
        }
        return { left, top };
      });
      if (index % step === 0) {
        const visible = new Array<number>(scene.sprites.length).fill(0);
        for (const s of owner) if (s >= 0) visible[s] = (visible[s] as number) + 1;
        const objects: TruthObject[] = [];
        scene.sprites.forEach((sprite, s) => {
          const { left, top } = placed[s] as { left: number; top: number };
          const visibility = (visible[s] as number) / (sprite.w * sprite.h);
          if (visibility <= 0) return;
          objects.push({
            id: sprite.id,
            label: sprite.label,
            box: {
              left: round(Math.max(0, left) / width),
              top: round(Math.max(0, top) / height),
              right: round(Math.min(width, left + sprite.w) / width),
              bottom: round(Math.min(height, top + sprite.h) / height),
            },
            visibility: round(visibility),
          });
        });
        truth.frames.push({ index: index / step, timeSec: round(t), objects });
      }
      yield canvas;
    }
  }

  await encode(
    join(outDir, `${scene.name}.mp4`),
    ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps)].concat([
      '-i',
      'pipe:0',
      ...H264,
      '-crf',
      '26',
      '-movflags',
      '+faststart',
    ]),
    frames(),
  );
  writeFileSync(join(outDir, `${scene.name}.truth.json`), `${JSON.stringify(truth, null, 1)}\n`);
  return truth;
}

/** A slow pan across a still photograph, scaled so the pan has room to move. */
async function makePan(
  input: string,
  output: string,
  scaleWidth: number,
  pan: { x0: number; x1: number; y0: number; y1: number },
): Promise<void> {
  const seconds = 6;
  const x = `${pan.x0}+(${pan.x1 - pan.x0})*t/${seconds}`;
  const y = `${pan.y0}+(${pan.y1 - pan.y0})*t/${seconds}`;
  await encode(output, [
    ...['-loop', '1', '-framerate', '25', '-i', input, '-t', String(seconds)],
    ...['-vf', `scale=${scaleWidth}:-2,crop=640:360:'${x}':'${y}'`],
    ...H264,
    ...['-crf', '28', '-movflags', '+faststart'],
  ]);
}

export async function makeSamples(sourceDir: string, outDir: string): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  await encode(join(outDir, 'people.mp4'), [
    ...['-i', join(sourceDir, OPENCV, 'vtest.avi'), '-t', '10', '-an'],
    ...['-vf', 'scale=640:480', ...H264, '-crf', '28', '-movflags', '+faststart'],
  ]);
  await makePan(join(sourceDir, SKIMAGE, 'chelsea.png'), join(outDir, 'cat.mp4'), 760, {
    x0: 0,
    x1: 120,
    y0: 80,
    y1: 130,
  });
  await makePan(join(sourceDir, DARKNET, 'dog.jpg'), join(outDir, 'bicycle.mp4'), 800, {
    x0: 40,
    x1: 140,
    y0: 120,
    y1: 100,
  });
  for (const scene of SCENES) await makeScene(scene, sourceDir, outDir);
}

function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [source, out = 'sample-data/videos'] = process.argv.slice(2);
  if (!source) {
    process.stderr.write(
      'Usage: node dist/src/vision/samples.js <extracted Debian packages> [out]\n',
    );
    process.exitCode = 1;
  } else {
    await makeSamples(source, out);
  }
}
