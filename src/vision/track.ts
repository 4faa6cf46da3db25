import type { Box, Detection } from './box.js';
import { area, iou } from './box.js';
import { sameFamily } from './entities.js';
import { assignMinCost } from './hungarian.js';
import type { MotionNoise } from './kalman.js';
import { BoxFilter, DEFAULT_MOTION_NOISE } from './kalman.js';

/**
 * Multi-object tracking by detection. Each frame:
 *
 * 1. every track's Kalman filter predicts where its box is now;
 * 2. confident detections are assigned to tracks by minimum total cost (Hungarian method), the
 *    cost mixing overlap, centre distance, a relabelling penalty and how long the track has
 *    been unseen, with impossible pairs gated out;
 * 3. tracks still unmatched that were seen in the previous frame get a second chance with the
 *    weak detections (scores between `lowScore` and `highScore`), which is what keeps a track
 *    alive while the object is half hidden;
 * 4. unmatched confident detections start tentative tracks, which become reportable after
 *    `minHits` matches, and tracks unseen for more than `maxAge` frames end.
 *
 * Tracks that miss a few frames keep coasting on their velocity, so an object that passes behind
 * another and comes out the other side keeps its identity.
 */

export interface TrackerOptions {
  /** Detections at or above this score take part in the first pass and may start tracks. */
  highScore: number;
  /** Weaker detections below this are ignored entirely. */
  lowScore: number;
  /** A detection must score this much to start a new track. */
  newTrackScore: number;
  /** Matches needed before a track is reported. */
  minHits: number;
  /** Frames a track may go unseen before it ends. */
  maxAge: number;
  /** Lowest overlap for a second-pass (weak detection) match. */
  lowScoreIou: number;
  /** Largest centre distance, in box diagonals, for a first-pass match without overlap. */
  maxCentreDistance: number;
  noise: MotionNoise;
}

export const DEFAULT_TRACKER_OPTIONS: TrackerOptions = {
  highScore: 0.5,
  lowScore: 0.2,
  newTrackScore: 0.55,
  minHits: 3,
  maxAge: 12,
  lowScoreIou: 0.3,
  maxCentreDistance: 0.75,
  noise: DEFAULT_MOTION_NOISE,
};

/** One frame in which a track's object was observed. */
export interface Observation {
  frameIndex: number;
  timeSec: number;
  /** The detector's box for this frame. */
  box: Box;
  score: number;
  classId: number;
  /** True for a frame the detector missed, filled in between two observations. */
  interpolated?: boolean;
}

export interface TrackResult {
  /** 1, 2, 3... in order of creation, per tracker instance. */
  id: number;
  /** The category most of its observations carried, weighted by score. */
  classId: number;
  /** Mean detection score over its observations. */
  score: number;
  observations: Observation[];
}

const FORBIDDEN = Number.POSITIVE_INFINITY;
/** Added per class change within a family (a horse seen as a cow for a frame). */
const RELABEL_COST = 0.3;
/** Added per frame a track went unseen, so recently seen tracks win close calls. */
const UNSEEN_COST = 0.03;
const MAX_FIRST_PASS_COST = 1.6;
/** Share of a detection inside a track's box that makes it part of that track's object. */
const INSIDE_SHARE = 0.8;

class Track {
  readonly id: number;
  readonly filter: BoxFilter;
  readonly observations: Observation[] = [];
  readonly votes = new Map<number, number>();
  predicted: Box;
  hits = 0;
  unseen = 0;
  confirmed = false;

  constructor(id: number, filter: BoxFilter, first: Box) {
    this.id = id;
    this.filter = filter;
    this.predicted = first;
  }

  get classId(): number {
    let best = 0;
    let bestVotes = -1;
    for (const [classId, votes] of this.votes) {
      if (votes > bestVotes) {
        best = classId;
        bestVotes = votes;
      }
    }
    return best;
  }

  observe(detection: Detection, frameIndex: number, timeSec: number): void {
    this.filter.update(detection.box);
    this.observations.push({
      frameIndex,
      timeSec,
      box: detection.box,
      score: detection.score,
      classId: detection.classId,
    });
    this.votes.set(detection.classId, (this.votes.get(detection.classId) ?? 0) + detection.score);
    this.hits += 1;
    this.unseen = 0;
  }

  result(): TrackResult {
    const total = this.observations.reduce((sum, o) => sum + o.score, 0);
    return {
      id: this.id,
      classId: this.classId,
      score: total / Math.max(1, this.observations.length),
      observations: fillGaps(this.observations),
    };
  }
}

export class Tracker {
  private readonly options: TrackerOptions;
  private tracks: Track[] = [];
  private readonly finished: Track[] = [];
  private nextId = 1;

  constructor(options: Partial<TrackerOptions> = {}) {
    this.options = { ...DEFAULT_TRACKER_OPTIONS, ...options };
  }

  /**
   * Takes one frame's detections (frames must come in order) and returns the confirmed tracks
   * observed in this frame.
   */
  update(frameIndex: number, timeSec: number, detections: readonly Detection[]): TrackResult[] {
    const o = this.options;
    for (const track of this.tracks) {
      track.predicted = track.filter.predict();
      track.unseen += 1;
    }
    const strong = detections.filter((d) => d.score >= o.highScore);
    const weak = detections.filter((d) => d.score >= o.lowScore && d.score < o.highScore);

    const firstPass = this.match(this.tracks, strong, (t, d) => this.firstPassCost(t, d));
    for (const [track, detection] of firstPass.pairs) track.observe(detection, frameIndex, timeSec);

    // Only tracks seen last frame look at weak detections; a long-lost track would grab noise.
    const recent = firstPass.unmatchedTracks.filter((t) => t.unseen === 1);
    const secondPass = this.match(recent, weak, (t, d) => this.secondPassCost(t, d));
    for (const [track, detection] of secondPass.pairs)
      track.observe(detection, frameIndex, timeSec);

    for (const detection of firstPass.unmatchedDetections) {
      if (detection.score < o.newTrackScore || this.insideTrack(detection)) continue;
      const track = new Track(this.nextId++, new BoxFilter(detection.box, o.noise), detection.box);
      track.observe(detection, frameIndex, timeSec);
      this.tracks.push(track);
    }

    const duplicates = this.youngDuplicates();
    const alive: Track[] = [];
    for (const track of this.tracks) {
      if (duplicates.has(track)) continue;
      if (track.hits >= o.minHits) track.confirmed = true;
      // A tentative track that misses a frame was most likely a false detection.
      const lost = track.confirmed ? track.unseen > o.maxAge : track.unseen > 1;
      if (!lost) alive.push(track);
      else if (track.confirmed) this.finished.push(track);
    }
    this.tracks = alive;
    return alive.filter((t) => t.confirmed && t.unseen === 0).map((t) => t.result());
  }

  /** Every confirmed track, ended or still open, ordered by id. */
  results(): TrackResult[] {
    return [...this.finished, ...this.tracks.filter((t) => t.confirmed)]
      .sort((a, b) => a.id - b.id)
      .map((t) => t.result());
  }

  /**
   * Young tracks seen this frame whose box lies inside an older track's box of the same family:
   * a half-hidden object detected as two pieces gives birth to such a track, which would
   * otherwise take over the object's identity once it reappears whole.
   */
  private youngDuplicates(): Set<Track> {
    const duplicates = new Set<Track>();
    const seen = this.tracks.filter((t) => t.unseen === 0);
    for (const young of seen) {
      if (young.hits >= 2 * this.options.minHits) continue;
      const youngBox = young.observations.at(-1)?.box;
      if (!youngBox) continue;
      const older = seen.find(
        (t) =>
          t.id < young.id &&
          t.confirmed &&
          !duplicates.has(t) &&
          sameFamily(t.classId, young.classId) &&
          insideShare(youngBox, t.observations.at(-1)?.box ?? t.predicted) >= INSIDE_SHARE,
      );
      if (older) duplicates.add(young);
    }
    return duplicates;
  }

  /**
   * A detection lying mostly inside a confirmed track's box of the same family is a piece of
   * that object (the part on one side of whatever hides its middle), not a new object.
   */
  private insideTrack(detection: Detection): boolean {
    return this.tracks.some(
      (track) =>
        track.confirmed &&
        sameFamily(track.classId, detection.classId) &&
        insideShare(detection.box, track.predicted) >= INSIDE_SHARE,
    );
  }

  private firstPassCost(track: Track, detection: Detection): number {
    if (!sameFamily(track.classId, detection.classId)) return FORBIDDEN;
    const a = track.predicted;
    const b = detection.box;
    const overlap = iou(a, b);
    const distance = centreDistance(a, b);
    if (overlap <= 0 && distance > this.options.maxCentreDistance) return FORBIDDEN;
    const relabel = track.classId === detection.classId ? 0 : RELABEL_COST;
    const cost = 1 - overlap + 0.5 * distance + relabel + UNSEEN_COST * (track.unseen - 1);
    return cost > MAX_FIRST_PASS_COST ? FORBIDDEN : cost;
  }

  private secondPassCost(track: Track, detection: Detection): number {
    if (!sameFamily(track.classId, detection.classId)) return FORBIDDEN;
    const overlap = iou(track.predicted, detection.box);
    return overlap < this.options.lowScoreIou ? FORBIDDEN : 1 - overlap;
  }

  private match(
    tracks: Track[],
    detections: readonly Detection[],
    costOf: (track: Track, detection: Detection) => number,
  ): { pairs: [Track, Detection][]; unmatchedTracks: Track[]; unmatchedDetections: Detection[] } {
    const cost = tracks.map((t) => detections.map((d) => costOf(t, d)));
    const assigned = tracks.length && detections.length ? assignMinCost(cost) : [];
    const pairs: [Track, Detection][] = [];
    const usedDetections = new Set<number>();
    const unmatchedTracks: Track[] = [];
    tracks.forEach((track, i) => {
      const column = assigned[i] ?? -1;
      const detection = detections[column];
      if (column >= 0 && detection && Number.isFinite(cost[i]?.[column])) {
        pairs.push([track, detection]);
        usedDetections.add(column);
      } else {
        unmatchedTracks.push(track);
      }
    });
    const unmatchedDetections = detections.filter((_, j) => !usedDetections.has(j));
    return { pairs, unmatchedTracks, unmatchedDetections };
  }
}

/**
 * Frames the detector missed while the track coasted are filled by linear interpolation between
 * the observations either side, so a track reads as one continuous presence, as the API's do.
 */
function fillGaps(observations: Observation[]): Observation[] {
  const filled: Observation[] = [];
  observations.forEach((o, i) => {
    const previous = observations[i - 1];
    if (previous) {
      const gap = o.frameIndex - previous.frameIndex;
      for (let k = 1; k < gap; k++) {
        const f = k / gap;
        const mix = (a: number, b: number): number => a + (b - a) * f;
        filled.push({
          frameIndex: previous.frameIndex + k,
          timeSec: mix(previous.timeSec, o.timeSec),
          box: {
            left: mix(previous.box.left, o.box.left),
            top: mix(previous.box.top, o.box.top),
            right: mix(previous.box.right, o.box.right),
            bottom: mix(previous.box.bottom, o.box.bottom),
          },
          score: Math.min(previous.score, o.score),
          classId: previous.classId,
          interpolated: true,
        });
      }
    }
    filled.push(o);
  });
  return filled;
}

/** The share of box `a`'s area that lies inside box `b`. */
function insideShare(a: Box, b: Box): number {
  const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  const size = area(a);
  return w > 0 && h > 0 && size > 0 ? (w * h) / size : 0;
}

/** Distance between two boxes' centres, in units of their mean diagonal. */
function centreDistance(a: Box, b: Box): number {
  const dx = (a.left + a.right - b.left - b.right) / 2;
  const dy = (a.top + a.bottom - b.top - b.bottom) / 2;
  const diagonal =
    (Math.hypot(a.right - a.left, a.bottom - a.top) +
      Math.hypot(b.right - b.left, b.bottom - b.top)) /
    2;
  return Math.hypot(dx, dy) / Math.max(diagonal, 1e-6);
}
