import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { LabError } from '../../src/errors.js';
import { decodeFrames, probeVideo } from '../../src/vision/decode.js';
import { Detector } from '../../src/vision/detector.js';
import { entityFor } from '../../src/vision/entities.js';
import { defaultModelDir, MODEL_FILES, verifyModel } from '../../src/vision/model.js';

/** One real detection with the shipped model, and the model's integrity checks. */

describe('COCO-SSD detector', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-model-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the cat and the bicycle in the sample clips', async () => {
    verifyModel(defaultModelDir());
    const detector = await Detector.load(defaultModelDir());
    const found: string[] = [];
    for (const clip of ['cat', 'bicycle']) {
      const file = join(process.cwd(), 'sample-data', 'videos', `${clip}.mp4`);
      const info = await probeVideo(file);
      for await (const frame of decodeFrames(file, info, { sampleFps: 1 })) {
        const detections = await detector.detect(frame.rgb, frame.width, frame.height);
        for (const d of detections) {
          expect(d.box.left).toBeLessThan(d.box.right);
          expect(d.box.top).toBeLessThan(d.box.bottom);
          expect(d.box.left).toBeGreaterThanOrEqual(0);
          expect(d.box.bottom).toBeLessThanOrEqual(1);
          if (d.score >= 0.6) found.push(entityFor(d.classId).description);
        }
        break;
      }
    }
    expect(found).toContain('cat');
    expect(found).toContain('bicycle');
  }, 120_000);

  it('refuses a missing or altered model file with a way out', () => {
    for (const name of Object.keys(MODEL_FILES)) {
      copyFileSync(join(defaultModelDir(), name), join(dir, name));
    }
    verifyModel(dir);
    writeFileSync(join(dir, 'group1-shard3of5'), 'not the weights');
    expect(() => verifyModel(dir)).toThrow(/damaged/);
    rmSync(join(dir, 'model.json'));
    let error: unknown;
    try {
      verifyModel(dir);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(LabError);
    expect((error as LabError).message).toContain('missing');
    expect((error as LabError).hint).toContain('assets/model');
  });
});
