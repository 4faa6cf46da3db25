import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { LabError } from '../../src/errors.js';
import { Logger } from '../../src/log.js';
import { runAnnotate } from '../../src/vision/cli.js';
import { ffmpegPath } from '../../src/vision/decode.js';

/** `cymbal-lab annotate` on a two-second cut of the cat clip: summary, JSON and a preview. */

describe('runAnnotate', () => {
  let dir: string;
  let clip: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-annotate-test-'));
    clip = join(dir, 'cat.mp4');
    const source = join(process.cwd(), 'sample-data', 'videos', 'cat.mp4');
    execFileSync(ffmpegPath(), ['-v', 'error', '-i', source, '-t', '2', '-c', 'copy', clip]);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a summary and writes the annotations and a contact sheet', async () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'info', write: (line) => lines.push(line) });
    const json = join(dir, 'out.json');
    const preview = join(dir, 'sheet.png');
    await runAnnotate(clip, { json, preview }, log);

    expect(lines.join('\n')).toMatch(/Entities: .*cat \(1 track\)/);
    expect(lines.join('\n')).toMatch(/track 1 +cat +\/m\/01yrx/);
    const result = JSON.parse(readFileSync(json, 'utf8')) as {
      objectAnnotations: { entity: { entityId: string }; frames: unknown[]; trackId: string }[];
    };
    const cat = result.objectAnnotations.find((a) => a.entity.entityId === '/m/01yrx');
    expect(cat?.frames.length).toBeGreaterThanOrEqual(8);
    expect(cat?.trackId).toBe('1');
    expect(existsSync(preview)).toBe(true);
    // A PNG starts with its signature.
    expect(readFileSync(preview).subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(preview).size).toBeGreaterThan(10_000);
  }, 120_000);

  it('explains a preview it cannot write and a model it does not have', async () => {
    const log = new Logger({ level: 'error', write: () => undefined });
    await expect(runAnnotate(clip, { model: 'yolo' }, log)).rejects.toThrow(LabError);
    await expect(runAnnotate(clip, { preview: join(dir, 'x.gif') }, log)).rejects.toThrow(
      /\.png .*\.mp4/,
    );
  });
});
