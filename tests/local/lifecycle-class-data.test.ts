import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { silentLogger } from '../../src/log.js';
import { buildClassDataArchive, classDataArchive } from '../../src/local/pubsub/class-data.js';
import type { RunningEmulator } from '../../src/local/pubsub/emulator.js';
import { startEmulator } from '../../src/local/pubsub/emulator.js';
import { locateEmulator } from '../../src/local/pubsub/locate.js';

let dir: string;
let emulator: RunningEmulator | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cymbal-class-data-'));
});

afterAll(async () => {
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('emulator class-data archive', () => {
  // A few seconds on an idle machine; the limit leaves room for a busy one.
  it('is built in the background once, then used by every emulator start', async () => {
    const env = { ...process.env, CYMBAL_LAB_CACHE_DIR: join(dir, 'cache') };
    const command = locateEmulator(env);
    const archive = classDataArchive(command, env);
    expect(archive?.exists).toBe(false);

    await buildClassDataArchive(command, archive!, join(dir, 'work'), silentLogger).done;
    expect(statSync(archive!.file).size).toBeGreaterThan(1024 * 1024);
    expect(readdirSync(join(dir, 'cache')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(classDataArchive(command, env)?.exists).toBe(true);

    emulator = await startEmulator({ port: 0, dataDir: join(dir, 'data'), log: silentLogger, env });
    const cmdline = readFileSync(`/proc/${emulator.supervisor.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain(`-XX:SharedArchiveFile=${archive!.file}`);
  }, 150_000);
});
