import { describe, expect, it } from '@jest/globals';

import type { Box } from '../../src/vision/box.js';
import type { FrameTruth } from '../../src/vision/metrics.js';
import { scoreTracking } from '../../src/vision/metrics.js';

const at = (x: number): Box => ({ left: x, top: 0.4, right: x + 0.1, bottom: 0.6 });

describe('scoreTracking', () => {
  it('scores a perfect tracker 1 and counts an identity swap', () => {
    const perfect: FrameTruth[] = [0, 1, 2, 3].map((i) => ({
      truth: [
        { id: 1, box: at(0.1 + i * 0.01), visibility: 1 },
        { id: 2, box: at(0.6 - i * 0.01), visibility: 1 },
      ],
      hypotheses: [
        { id: 7, box: at(0.1 + i * 0.01) },
        { id: 8, box: at(0.6 - i * 0.01) },
      ],
    }));
    expect(scoreTracking(perfect)).toMatchObject({ mota: 1, idf1: 1, idSwitches: 0 });

    // From frame 2 on, the tracker swaps the two identities.
    const swapped = perfect.map((frame, i) =>
      i < 2
        ? frame
        : {
            ...frame,
            hypotheses: frame.hypotheses.map((h) => ({ ...h, id: h.id === 7 ? 8 : 7 })),
          },
    );
    const scores = scoreTracking(swapped);
    expect(scores.idSwitches).toBe(2);
    expect(scores.mota).toBeCloseTo(1 - 2 / 8);
    expect(scores.idf1).toBeCloseTo(0.5);
  });

  it('does not count mostly hidden objects', () => {
    const frames: FrameTruth[] = [
      { truth: [{ id: 1, box: at(0.1), visibility: 0.2 }], hypotheses: [] },
      { truth: [{ id: 1, box: at(0.1), visibility: 0.2 }], hypotheses: [{ id: 3, box: at(0.1) }] },
    ];
    expect(scoreTracking(frames)).toMatchObject({ misses: 0, falsePositives: 0, truthCount: 0 });
  });
});
