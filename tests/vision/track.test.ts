import { describe, expect, it } from '@jest/globals';

import type { Detection } from '../../src/vision/box.js';
import type { TrackResult } from '../../src/vision/track.js';
import { Tracker } from '../../src/vision/track.js';

/** Synthetic detections along known paths, fed to the tracker frame by frame. */

const PERSON = 1;
const DOG = 18;

function det(x: number, y: number, score = 0.9, classId = PERSON, w = 0.08, h = 0.3): Detection {
  return { box: { left: x, top: y, right: x + w, bottom: y + h }, score, classId };
}

function run(frames: Detection[][], tracker = new Tracker()): TrackResult[] {
  frames.forEach((detections, i) => tracker.update(i, i / 5, detections));
  return tracker.results();
}

const xAt = (track: TrackResult, frame: number): number | undefined =>
  track.observations.find((o) => o.frameIndex === frame)?.box.left;

describe('Tracker', () => {
  it('keeps two identities through a crossing', () => {
    const frames = Array.from({ length: 30 }, (_, i) => [
      det(0.1 + i * 0.025, 0.4),
      det(0.825 - i * 0.025, 0.42),
    ]);
    const tracks = run(frames);
    expect(tracks).toHaveLength(2);
    for (const track of tracks) expect(track.observations).toHaveLength(30);
    const [rightward, leftward] = [...tracks].sort((a, b) => (xAt(a, 0) ?? 0) - (xAt(b, 0) ?? 0));
    // Each track ends on the side its own object was heading to.
    expect(xAt(rightward as TrackResult, 29)).toBeCloseTo(0.1 + 29 * 0.025);
    expect(xAt(leftward as TrackResult, 29)).toBeCloseTo(0.825 - 29 * 0.025);
  });

  it('survives a short occlusion without changing identity and fills the gap', () => {
    const frames = Array.from({ length: 30 }, (_, i) =>
      i >= 10 && i < 15 ? [] : [det(0.05 + i * 0.02, 0.3)],
    );
    const tracks = run(frames);
    expect(tracks).toHaveLength(1);
    const track = tracks[0] as TrackResult;
    expect(track.observations).toHaveLength(30);
    const filled = track.observations.filter((o) => o.interpolated).map((o) => o.frameIndex);
    expect(filled).toEqual([10, 11, 12, 13, 14]);
    expect(xAt(track, 12)).toBeCloseTo(0.05 + 12 * 0.02);
  });

  it('keeps a track on weak detections of a half-hidden object', () => {
    const frames = Array.from({ length: 20 }, (_, i) => [
      det(0.1 + i * 0.02, 0.3, i >= 8 && i < 13 ? 0.3 : 0.9, DOG, 0.12, 0.12),
    ]);
    const tracks = run(frames);
    expect(tracks).toHaveLength(1);
    const weak = tracks[0]?.observations.filter((o) => o.score < 0.5) ?? [];
    expect(weak.map((o) => o.frameIndex)).toEqual([8, 9, 10, 11, 12]);
    expect(weak.every((o) => !o.interpolated)).toBe(true);
    // Weak detections alone never start a track.
    expect(run(Array.from({ length: 10 }, () => [det(0.5, 0.5, 0.3)]))).toHaveLength(0);
  });

  it('ends a track that left, starts a new one for a newcomer, ignores one-frame noise', () => {
    const frames: Detection[][] = [];
    for (let i = 0; i < 10; i++) frames.push([det(0.7 + i * 0.03, 0.3)]);
    for (let i = 0; i < 20; i++) frames.push([]);
    frames[25] = [det(0.4, 0.6, 0.95, DOG)]; // a single false detection
    for (let i = 0; i < 10; i++) frames.push([det(0.9 - i * 0.03, 0.3)]);
    const tracks = run(frames);
    expect(tracks.map((t) => t.classId)).toEqual([PERSON, PERSON]);
    expect(tracks[0]?.observations.at(-1)?.frameIndex).toBe(9);
    expect(tracks[1]?.observations[0]?.frameIndex).toBe(30);
    expect(tracks[1]?.id).not.toBe(tracks[0]?.id);
  });

  it('reports a track only after enough matches, with its state per instance', () => {
    const first = new Tracker({ minHits: 3 });
    expect(first.update(0, 0, [det(0.2, 0.2)])).toHaveLength(0);
    expect(first.update(1, 0.2, [det(0.21, 0.2)])).toHaveLength(0);
    expect(first.update(2, 0.4, [det(0.22, 0.2)])).toHaveLength(1);
    const second = new Tracker();
    run([[det(0.5, 0.5)], [det(0.5, 0.5)], [det(0.5, 0.5)]], second);
    expect(second.results()[0]?.id).toBe(1);
    expect(first.results()[0]?.id).toBe(1);
    // A cow-labelled frame of a horse keeps the horse's track, which keeps its majority label.
    const horse = 19;
    const cow = 21;
    const relabelled = run(
      Array.from({ length: 8 }, (_, i) => [det(0.1 + i * 0.02, 0.5, 0.8, i === 4 ? cow : horse)]),
    );
    expect(relabelled).toHaveLength(1);
    expect(relabelled[0]?.classId).toBe(horse);
  });
});
