import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import { loadGraphModel } from '@tensorflow/tfjs-converter';

import type { Box, Detection } from './box.js';
import { clampBox, iou } from './box.js';
import { isCocoId, sameFamily } from './entities.js';
import { readModel } from './model.js';

/**
 * COCO-SSD on TensorFlow.js's WebAssembly backend, in the current thread. The wasm backend runs
 * on one core, so the pool runs one of these per worker thread. In Node the backend finds its
 * .wasm files next to its own module, so no `setWasmPaths` is needed.
 */

export interface DetectorOptions {
  /** Candidates below this score are dropped before suppression. */
  minScore: number;
  /** At most this many detections per frame. */
  maxDetections: number;
  /** Two boxes of one category overlapping more than this are one object. */
  nmsIou: number;
  /** Two boxes of one family (car and truck) overlapping more than this are one object. */
  familyNmsIou: number;
}

export const DEFAULT_DETECTOR_OPTIONS: DetectorOptions = {
  minScore: 0.2,
  maxDetections: 50,
  nmsIou: 0.5,
  familyNmsIou: 0.7,
};

export class Detector {
  private constructor(
    private readonly model: GraphModel,
    private readonly options: DetectorOptions,
  ) {}

  static async load(modelDir: string, options: Partial<DetectorOptions> = {}): Promise<Detector> {
    await tf.setBackend('wasm');
    await tf.ready();
    const artifacts = readModel(modelDir);
    const model = await loadGraphModel({
      load: () => Promise.resolve(artifacts as tf.io.ModelArtifacts),
    });
    return new Detector(model, { ...DEFAULT_DETECTOR_OPTIONS, ...options });
  }

  /** Runs the model on one RGB frame (`width * height * 3` bytes). */
  async detect(rgb: Uint8Array, width: number, height: number): Promise<Detection[]> {
    const input = tf.tensor4d(Int32Array.from(rgb), [1, height, width, 3], 'int32');
    let outputs: tf.Tensor[] = [];
    try {
      outputs = (await this.model.executeAsync(input)) as tf.Tensor[];
      const [scores, boxes] = outputs;
      if (!scores || !boxes) throw new Error('The model returned fewer outputs than expected.');
      const [, count = 0, classes = 0] = scores.shape;
      return this.postprocess(
        (await scores.data()) as Float32Array,
        (await boxes.data()) as Float32Array,
        count,
        classes,
      );
    } finally {
      input.dispose();
      tf.dispose(outputs);
    }
  }

  /** Best category per anchor, a score floor, then suppression of duplicates. */
  private postprocess(
    scores: Float32Array,
    boxes: Float32Array,
    count: number,
    classes: number,
  ): Detection[] {
    const candidates: Detection[] = [];
    for (let i = 0; i < count; i++) {
      let best = 0;
      let bestScore = 0;
      for (let c = 0; c < classes; c++) {
        const score = scores[i * classes + c] as number;
        if (score > bestScore) {
          bestScore = score;
          best = c;
        }
      }
      // Column c is COCO id c + 1; a few columns are ids COCO never used.
      if (bestScore < this.options.minScore || !isCocoId(best + 1)) continue;
      const box: Box = clampBox({
        top: boxes[i * 4] as number,
        left: boxes[i * 4 + 1] as number,
        bottom: boxes[i * 4 + 2] as number,
        right: boxes[i * 4 + 3] as number,
      });
      if (box.right - box.left < 1e-3 || box.bottom - box.top < 1e-3) continue;
      candidates.push({ box, score: bestScore, classId: best + 1 });
    }
    candidates.sort((a, b) => b.score - a.score);
    const kept: Detection[] = [];
    for (const candidate of candidates) {
      const duplicate = kept.some((k) => {
        const overlap = iou(k.box, candidate.box);
        if (k.classId === candidate.classId) return overlap > this.options.nmsIou;
        return sameFamily(k.classId, candidate.classId) && overlap > this.options.familyNmsIou;
      });
      if (!duplicate) kept.push(candidate);
      if (kept.length >= this.options.maxDetections) break;
    }
    return kept;
  }
}
