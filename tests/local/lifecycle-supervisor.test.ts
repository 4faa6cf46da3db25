import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LabError } from '../../src/errors.js';
import type { ExitInfo } from '../../src/local/supervisor.js';
import {
  Supervisor,
  backoffDelay,
  DEFAULT_RESTART,
  isProcessAlive,
} from '../../src/local/supervisor.js';

let dir: string;
const running: Supervisor[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cymbal-supervisor-'));
});

afterAll(async () => {
  await Promise.all(running.map((s) => s.stop('SIGKILL', 0)));
  rmSync(dir, { recursive: true, force: true });
});

function supervise(
  name: string,
  script: string,
  extra: Partial<ConstructorParameters<typeof Supervisor>[0]> = {},
) {
  const s = new Supervisor({
    name,
    command: process.execPath,
    args: ['-e', script],
    logFile: join(dir, `${name}.log`),
    ...extra,
  });
  running.push(s);
  return s;
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('Supervisor', () => {
  it('starts a child, logs its output, reads its memory and stops it', async () => {
    const s = supervise(
      'echo',
      "console.log('hello out'); console.error('hello', 'err'); setInterval(() => {}, 1000)",
    );
    await s.start({ probe: () => readFileSync(s.logFile, 'utf8').includes('hello err\n') });
    expect(s.state).toBe('running');
    const pid = s.pid!;
    expect(isProcessAlive(pid)).toBe(true);
    expect(s.memoryBytes()).toBeGreaterThan(1024 * 1024);
    const log = readFileSync(s.logFile, 'utf8');
    expect(log).toContain('hello out');
    const exits: ExitInfo[] = [];
    s.on('exit', (info) => exits.push(info));
    await s.stop();
    expect(s.state).toBe('stopped');
    expect(s.pid).toBeUndefined();
    expect(isProcessAlive(pid)).toBe(false);
    expect(exits).toHaveLength(1);
    expect(exits[0]!.expected).toBe(true);
  });

  it('kills a child that ignores SIGTERM after the grace period', async () => {
    const s = supervise(
      'stubborn',
      "process.on('SIGTERM', () => console.log('ignoring')); console.log('u' + 'p'); setInterval(() => {}, 1000)",
    );
    await s.start({ probe: () => readFileSync(s.logFile, 'utf8').includes('\nup\n') });
    const began = Date.now();
    await s.stop('SIGTERM', 300);
    expect(Date.now() - began).toBeGreaterThanOrEqual(250);
    expect(s.state).toBe('stopped');
  });

  it('fails start with the log tail when the child exits before it is ready', async () => {
    const s = supervise('crash', "console.error('boom: bad config'); process.exit(3)");
    const error = await s.start({ probe: () => false, timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LabError);
    expect((error as LabError).message).toMatch(/exited \(code 3\) before it was ready/);
    expect((error as LabError).message).toContain('boom: bad config');
    expect(s.state).toBe('failed');
  });

  it('fails start when the probe times out, and stops the child', async () => {
    const s = supervise('slow', 'setInterval(() => {}, 1000)');
    const error = await s.start({ probe: () => false, timeoutMs: 300 }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/not ready after 0.3 s/);
    expect(s.pid).toBeUndefined();
  });

  it('reports a command that does not exist', async () => {
    const s = new Supervisor({
      name: 'missing',
      command: join(dir, 'no-such-binary'),
      logFile: join(dir, 'missing.log'),
    });
    const error = await s.start({ probe: () => false, timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/ENOENT/);
  });

  it('restarts a child that dies, with growing delays', async () => {
    const s = supervise('flaky', "console.log('run'); setTimeout(() => process.exit(1), 50)", {
      restart: { initialDelayMs: 50, factor: 2, maxRestarts: 3, resetAfterMs: 60_000 },
    });
    const delays: number[] = [];
    s.on('restart', (_attempt, ms) => delays.push(ms));
    let failed = false;
    s.on('failed', () => (failed = true));
    await s.start();
    await until(() => failed);
    expect(delays).toEqual([50, 100, 200]);
    expect(s.state).toBe('failed');
    const runs = readFileSync(s.logFile, 'utf8').match(/^run$/gm) ?? [];
    expect(runs).toHaveLength(4);
  });

  it('computes capped exponential backoff', () => {
    expect(backoffDelay(DEFAULT_RESTART, 0)).toBe(500);
    expect(backoffDelay(DEFAULT_RESTART, 3)).toBe(4_000);
    expect(backoffDelay(DEFAULT_RESTART, 20)).toBe(DEFAULT_RESTART.maxDelayMs);
  });
});
