import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Detection } from '../src/vision/box.js';
import { iou } from '../src/vision/box.js';
import { annotateVideo } from '../src/vision/annotate.js';
import type { FrameTruth, HypothesisBox, TrackingScores } from '../src/vision/metrics.js';
import { scoreTracking } from '../src/vision/metrics.js';
import { DetectorPool } from '../src/vision/pool.js';
import type { GroundTruth } from '../src/vision/samples.js';
import type { TrackResult } from '../src/vision/track.js';
import { Tracker } from '../src/vision/track.js';

/**
 * Tracking accuracy on the ground-truth clip (sample-data/videos/crossing.mp4): our tracker
 * against plain IoU matching, both fed the same detections.
 *
 * Run: npx tsc -p . && node dist/bench/tracking.js
 */

const videos = join(process.cwd(), 'sample-data', 'videos');
/** `crossing` is the scene the tracker was tuned on; `passing` was kept out of tuning. */
const scenes = ['crossing', 'passing'];
const readTruth = (scene: string): GroundTruth =>
  JSON.parse(readFileSync(join(videos, `${scene}.truth.json`), 'utf8')) as GroundTruth;

/** The baseline: each confident detection joins the best-overlapping box of the last frame. */
function iouTracks(frames: Detection[][], minScore = 0.5, minIou = 0.3): HypothesisBox[][] {
  let previous: HypothesisBox[] = [];
  let nextId = 1;
  return frames.map((detections) => {
    const current: HypothesisBox[] = [];
    const candidates = detections
      .filter((d) => d.score >= minScore)
      .flatMap((d) => previous.map((p) => ({ d, p, overlap: iou(d.box, p.box) })))
      .filter((c) => c.overlap >= minIou)
      .sort((a, b) => b.overlap - a.overlap);
    const used = new Set<Detection>();
    const taken = new Set<number>();
    for (const { d, p } of candidates) {
      if (used.has(d) || taken.has(p.id)) continue;
      used.add(d);
      taken.add(p.id);
      current.push({ id: p.id, box: d.box });
    }
    for (const d of detections) {
      if (d.score >= minScore && !used.has(d)) current.push({ id: nextId++, box: d.box });
    }
    previous = current;
    return current;
  });
}

function perFrame(tracks: TrackResult[], frameCount: number): HypothesisBox[][] {
  const frames: HypothesisBox[][] = Array.from({ length: frameCount }, () => []);
  for (const track of tracks) {
    for (const o of track.observations) frames[o.frameIndex]?.push({ id: track.id, box: o.box });
  }
  return frames;
}

function withTruth(truth: GroundTruth, hypotheses: HypothesisBox[][]): FrameTruth[] {
  return truth.frames.map((frame, i) => ({
    truth: frame.objects.map((o) => ({ id: o.id, box: o.box, visibility: o.visibility })),
    hypotheses: hypotheses[i] ?? [],
  }));
}

/** How many visible objects any detection (score >= 0.2) covers: the ceiling for tracking. */
function detectorRecall(truth: GroundTruth, detections: Detection[][]): string {
  let visible = 0;
  let covered = 0;
  let confident = 0;
  truth.frames.forEach((frame, i) => {
    for (const object of frame.objects) {
      if (object.visibility < 0.5) continue;
      visible += 1;
      const overlaps = (detections[i] ?? []).filter((d) => iou(d.box, object.box) >= 0.5);
      if (overlaps.length > 0) covered += 1;
      if (overlaps.some((d) => d.score >= 0.5)) confident += 1;
    }
  });
  const share = (n: number): string => `${((100 * n) / Math.max(1, visible)).toFixed(0)}%`;
  return `${share(covered)} of visible objects detected at all, ${share(confident)} with score >= 0.5`;
}

function line(name: string, s: TrackingScores, truth: GroundTruth): string {
  return (
    `${name.padEnd(22)} MOTA ${s.mota.toFixed(3)}  IDF1 ${s.idf1.toFixed(3)}  ` +
    `ID switches ${s.idSwitches}  FP ${s.falsePositives}  misses ${s.misses}  ` +
    `ids ${s.hypothesisIds} (truth: ${new Set(truth.frames.flatMap((f) => f.objects.map((o) => o.id))).size} objects, ${s.truthCount} boxes)`
  );
}

const pool = new DetectorPool();
const print = (text: string): boolean => process.stdout.write(`${text}\n`);
try {
  let met = true;
  for (const scene of scenes) {
    const truth = readTruth(scene);
    const result = await annotateVideo(join(videos, truth.video), {
      pool,
      sampleFps: truth.sampleFps,
    });
    if (result.frameCount !== truth.frames.length) {
      throw new Error(`Decoded ${result.frameCount} frames, the truth has ${truth.frames.length}.`);
    }
    const tracker = new Tracker();
    result.detections.forEach((d, i) => tracker.update(i, i / truth.sampleFps, d));
    const hypotheses = perFrame(tracker.results(), result.frameCount);
    const ours = scoreTracking(withTruth(truth, hypotheses));
    const baseline = scoreTracking(withTruth(truth, iouTracks(result.detections)));
    print(`clip: ${truth.video}, ${result.frameCount} frames at ${truth.sampleFps} fps`);
    print(line('Kalman + Hungarian', ours, truth));
    print(line('IoU matching', baseline, truth));
    print(`detector alone: ${detectorRecall(truth, result.detections)}`);
    met &&= ours.mota >= 0.8 && ours.idf1 >= 0.8 && ours.idSwitches < baseline.idSwitches;
  }
  // The pedestrian clip has no ground truth; how many identities each method hands out for
  // its ten or so people shows the fragmentation.
  const people = await annotateVideo(join(videos, 'people.mp4'), { pool });
  const iouIds = new Set(iouTracks(people.detections).flatMap((f) => f.map((h) => h.id))).size;
  print(
    `people.mp4 (${people.frameCount} frames, no ground truth): ${people.tracks.length} ` +
      `tracks with Kalman + Hungarian, ${iouIds} ids with IoU matching`,
  );
  print(
    `targets on every clip (MOTA >= 0.8, IDF1 >= 0.8, fewer switches): ${met ? 'met' : 'NOT met'}`,
  );
} finally {
  await pool.close();
}
