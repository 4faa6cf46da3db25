import type { Box } from './box.js';
import { iou } from './box.js';
import { assignMinCost } from './hungarian.js';

/**
 * Tracking accuracy against ground truth: CLEAR MOT (MOTA, identity switches) and IDF1, both
 * class-agnostic, matching a hypothesis to a true object when their boxes overlap by at least
 * `minIou`. True objects mostly hidden (visibility below `minVisibility`) are "don't care": a
 * track may cover them or not without penalty.
 */

export interface TruthBox {
  id: number;
  box: Box;
  visibility: number;
}

export interface HypothesisBox {
  id: number;
  box: Box;
}

export interface FrameTruth {
  truth: TruthBox[];
  hypotheses: HypothesisBox[];
}

export interface TrackingScores {
  mota: number;
  idf1: number;
  idSwitches: number;
  falsePositives: number;
  misses: number;
  /** True objects counted (visible enough), over all frames. */
  truthCount: number;
  /** Distinct hypothesis ids. */
  hypothesisIds: number;
}

export function scoreTracking(
  frames: FrameTruth[],
  options: { minIou?: number; minVisibility?: number } = {},
): TrackingScores {
  const minIou = options.minIou ?? 0.5;
  const minVisibility = options.minVisibility ?? 0.5;
  const lastMatch = new Map<number, number>();
  let misses = 0;
  let falsePositives = 0;
  let idSwitches = 0;
  let truthCount = 0;
  let hypothesisCount = 0;
  // Frames in which truth id and hypothesis id overlap, for IDF1.
  const together = new Map<string, number>();
  const truthFrames = new Map<number, number>();
  const hypothesisFrames = new Map<number, number>();

  for (const frame of frames) {
    const matches = matchFrame(frame.truth, frame.hypotheses, minIou, lastMatch);
    const cared = new Set(
      frame.truth.filter((t) => t.visibility >= minVisibility).map((t) => t.id),
    );
    const matchedHypotheses = new Set<number>();
    for (const [truthId, hypothesisId] of matches) {
      matchedHypotheses.add(hypothesisId);
      if (!cared.has(truthId)) continue;
      const previous = lastMatch.get(truthId);
      if (previous !== undefined && previous !== hypothesisId) idSwitches += 1;
      lastMatch.set(truthId, hypothesisId);
    }
    const matchedTruth = new Set(matches.keys());
    for (const id of cared) if (!matchedTruth.has(id)) misses += 1;
    truthCount += cared.size;
    // A hypothesis on a don't-care object is neither right nor wrong.
    const counted = frame.hypotheses.filter((h) => {
      const truthId = [...matches].find(([, hid]) => hid === h.id)?.[0];
      return truthId === undefined || cared.has(truthId);
    });
    falsePositives += counted.filter((h) => !matchedHypotheses.has(h.id)).length;
    hypothesisCount += counted.length;
    for (const h of counted) hypothesisFrames.set(h.id, (hypothesisFrames.get(h.id) ?? 0) + 1);
    for (const id of cared) truthFrames.set(id, (truthFrames.get(id) ?? 0) + 1);
    // IDF1 counts every overlapping pair, not only this frame's CLEAR matches.
    for (const t of frame.truth) {
      if (!cared.has(t.id)) continue;
      for (const h of counted) {
        if (iou(t.box, h.box) >= minIou) {
          const key = `${t.id}:${h.id}`;
          together.set(key, (together.get(key) ?? 0) + 1);
        }
      }
    }
  }

  const truthIds = [...truthFrames.keys()];
  const hypothesisIds = [...hypothesisFrames.keys()];
  const cost = truthIds.map((t) => hypothesisIds.map((h) => -(together.get(`${t}:${h}`) ?? 0)));
  const assignment = assignMinCost(cost);
  let idTruePositives = 0;
  assignment.forEach((column, row) => {
    if (column >= 0) idTruePositives -= cost[row]?.[column] ?? 0;
  });

  return {
    mota: truthCount === 0 ? 1 : 1 - (misses + falsePositives + idSwitches) / truthCount,
    idf1:
      truthCount + hypothesisCount === 0
        ? 1
        : (2 * idTruePositives) / (truthCount + hypothesisCount),
    idSwitches,
    falsePositives,
    misses,
    truthCount,
    hypothesisIds: hypothesisIds.length,
  };
}

/**
 * One frame's truth-to-hypothesis matches: a pair matched last frame stays matched while it
 * still overlaps enough; the rest are assigned for the largest total overlap.
 */
function matchFrame(
  truth: TruthBox[],
  hypotheses: HypothesisBox[],
  minIou: number,
  lastMatch: Map<number, number>,
): Map<number, number> {
  const matches = new Map<number, number>();
  const taken = new Set<number>();
  for (const t of truth) {
    const previous = lastMatch.get(t.id);
    const h = hypotheses.find((x) => x.id === previous);
    if (h && !taken.has(h.id) && iou(t.box, h.box) >= minIou) {
      matches.set(t.id, h.id);
      taken.add(h.id);
    }
  }
  const openTruth = truth.filter((t) => !matches.has(t.id));
  const openHypotheses = hypotheses.filter((h) => !taken.has(h.id));
  const cost = openTruth.map((t) => openHypotheses.map((h) => 1 - iou(t.box, h.box)));
  assignMinCost(cost).forEach((column, row) => {
    const t = openTruth[row];
    const h = openHypotheses[column];
    if (t && h && iou(t.box, h.box) >= minIou) matches.set(t.id, h.id);
  });
  return matches;
}
