import { describe, expect, it } from '@jest/globals';

import { assignMinCost } from '../../src/vision/hungarian.js';

/** The assignment is checked against every permutation on small random matrices. */

function bruteForce(cost: number[][]): number {
  const rows = cost.length;
  const cols = cost[0]?.length ?? 0;
  let best = Infinity;
  const used = new Array<boolean>(cols).fill(false);
  const walk = (row: number, total: number, assigned: number): void => {
    if (row === rows) {
      if (assigned === Math.min(rows, cols)) best = Math.min(best, total);
      return;
    }
    // A row may stay out only when there are more rows than columns.
    if (rows - row > cols - assigned) walk(row + 1, total, assigned);
    for (let c = 0; c < cols; c++) {
      if (used[c]) continue;
      used[c] = true;
      walk(row + 1, total + (cost[row]?.[c] ?? 0), assigned + 1);
      used[c] = false;
    }
  };
  walk(0, 0, 0);
  return best;
}

function totalOf(cost: number[][], assignment: number[]): number {
  return assignment.reduce((sum, c, r) => (c >= 0 ? sum + (cost[r]?.[c] ?? 0) : sum), 0);
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1664525 + 1013904223) % 2 ** 32;
    return state / 2 ** 32;
  };
}

describe('assignMinCost', () => {
  it('solves a textbook case', () => {
    const cost = [
      [4, 1, 3],
      [2, 0, 5],
      [3, 2, 2],
    ];
    const assignment = assignMinCost(cost);
    expect(assignment).toEqual([1, 0, 2]);
    expect(totalOf(cost, assignment)).toBe(5);
  });

  it('finds the optimum on random square and rectangular matrices', () => {
    const next = random(42);
    for (let trial = 0; trial < 200; trial++) {
      const rows = 1 + Math.floor(next() * 6);
      const cols = 1 + Math.floor(next() * 6);
      const cost = Array.from({ length: rows }, () =>
        Array.from({ length: cols }, () => Math.round(next() * 100) / 10),
      );
      const assignment = assignMinCost(cost);
      const columns = assignment.filter((c) => c >= 0);
      expect(new Set(columns).size).toBe(columns.length);
      expect(columns.length).toBe(Math.min(rows, cols));
      expect(totalOf(cost, assignment)).toBeCloseTo(bruteForce(cost), 9);
    }
  });

  it('handles empty input and forbidden pairs', () => {
    expect(assignMinCost([])).toEqual([]);
    expect(assignMinCost([[], []])).toEqual([-1, -1]);
    // Infinity marks a pair that must not be chosen when another choice exists.
    expect(
      assignMinCost([
        [Infinity, 1],
        [2, Infinity],
      ]),
    ).toEqual([1, 0]);
  });
});
