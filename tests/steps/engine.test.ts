import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { LabError } from '../../src/errors.js';
import type { EngineReporter } from '../../src/steps/engine.js';
import { Engine } from '../../src/steps/engine.js';
import { StateLock, StateStore } from '../../src/steps/state.js';
import { testContext } from '../fixtures/context.js';
import { journalSteps } from '../fixtures/lab-steps.js';

const here = dirname(fileURLToPath(import.meta.url));
const quietReporter: EngineReporter = {
  started: () => undefined,
  finished: () => undefined,
  failed: () => undefined,
};

let dir: string;
let journal: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cymbal-engine-'));
  journal = join(dir, 'journal.txt');
  writeFileSync(journal, '');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function engineFor(store: StateStore, healthy?: () => boolean) {
  const steps = journalSteps(journal, healthy ? { healthy } : {});
  const engine = new Engine({
    steps,
    store,
    targetKey: 'local:test',
    reporter: quietReporter,
    context: (_step, outputs, signal) => testContext(dir, outputs, signal),
  });
  return { steps, engine };
}

const journalLines = () => readFileSync(journal, 'utf8').trim().split('\n').filter(Boolean);

describe('the step engine', () => {
  it('runs steps in order, passes outputs on, and skips done steps on a second run', async () => {
    const store = StateStore.open(dir);
    const { steps, engine } = engineFor(store);
    await engine.run(steps, 'ensure');
    expect(journalLines()).toEqual(['ensure 1', 'ensure 2', 'ensure 3']);
    expect(store.step('1.2').outputs).toEqual({ beta: 'beta from alpha from start' });

    const outcomes = await engine.run(steps, 'ensure');
    expect([...outcomes.values()].map((o) => o.kind)).toEqual(['skipped', 'skipped', 'skipped']);
    expect(journalLines()).toHaveLength(3);

    await engine.run(steps, 'ensure', { force: true });
    expect(journalLines()).toHaveLength(6);
  });

  it('refuses a step whose inputs are missing and names the step to run first', async () => {
    const store = StateStore.open(dir);
    const { steps, engine } = engineFor(store);
    const attempt = engine.runOne(steps[2]!, 'ensure');
    await expect(attempt).rejects.toThrow(LabError);
    await expect(attempt).rejects.toThrow(/needs beta, which step 1\.2 \(test step 2\) records/);
    expect(journalLines()).toEqual([]);
    expect(store.step('1.3').status).toBe('pending');
  });

  it('marks a done step drifted when verify fails, and done again when it passes', async () => {
    let healthy = true;
    const store = StateStore.open(dir);
    const { steps, engine } = engineFor(store, () => healthy);
    await engine.run(steps, 'ensure');
    healthy = false;
    const outcome = await engine.runOne(steps[0]!, 'verify');
    expect(outcome).toEqual({
      kind: 'verified',
      checks: [{ name: 'thing 1', ok: false, detail: 'missing' }],
    });
    expect(store.step('1.1')).toMatchObject({ status: 'drifted', lastVerifyOk: false });
    healthy = true;
    await engine.runOne(steps[0]!, 'verify');
    expect(store.step('1.1')).toMatchObject({ status: 'done', lastVerifyOk: true });
  });

  it('tears down in reverse order and forgets the records', async () => {
    const store = StateStore.open(dir);
    const { steps, engine } = engineFor(store);
    await engine.run(steps, 'ensure');
    await engine.run(steps, 'teardown');
    expect(journalLines().slice(3)).toEqual(['teardown 3', 'teardown 2', 'teardown 1']);
    expect(store.step('1.1').status).toBe('pending');
  });

  it('reads records of another target as pending', async () => {
    const store = StateStore.open(dir);
    const { steps, engine } = engineFor(store);
    await engine.run(steps, 'ensure');
    expect(store.step('1.1', 'local:test').status).toBe('done');
    expect(store.step('1.1', 'gcp:my-project').status).toBe('pending');

    // Verifying on another target leaves this target's record as it was.
    const other = new Engine({
      steps,
      store,
      targetKey: 'gcp:my-project',
      reporter: quietReporter,
      context: (_step, outputs, signal) => testContext(dir, outputs, signal),
    });
    await other.runOne(steps[0]!, 'verify');
    expect(store.step('1.1', 'gcp:my-project').status).toBe('pending');
    expect(store.step('1.1', 'local:test').status).toBe('done');
    expect(store.step('1.1', 'local:test').lastVerifiedAt).toBeUndefined();
  });
});

describe('the state file', () => {
  it('keeps a corrupt file, explains, and starts over only with a backup', () => {
    const file = join(dir, 'state.json');
    writeFileSync(file, '{"version": 1, "steps": {');
    expect(() => StateStore.open(dir)).toThrow(/cannot be read.*/);
    expect(() => StateStore.open(dir)).toThrow(LabError);
    expect(readFileSync(file, 'utf8')).toBe('{"version": 1, "steps": {');

    const store = StateStore.open(dir, { reset: true });
    expect(store.step('1.1').status).toBe('pending');
    const backups = readdirSync(dir).filter((f) => f.startsWith('state.json.bak-'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(join(dir, backups[0]!), 'utf8')).toBe('{"version": 1, "steps": {');
  });

  it('refuses a file written by a newer version', () => {
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 99, config: {}, steps: {} }));
    expect(() => StateStore.open(dir)).toThrow(/newer cymbal-lab \(state version 99/);
  });

  it('refuses a record with an unknown status', () => {
    const steps = { '1.1': { status: 'exploded', outputs: {} } };
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, config: {}, steps }));
    expect(() => StateStore.open(dir)).toThrow(/invalid record for step 1\.1/);
  });

  it('writes atomically: no temporary file is left behind', () => {
    const store = StateStore.open(dir);
    store.updateStep('1.1', { status: 'done', outputs: { a: 'b' } });
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(StateStore.open(dir).step('1.1').outputs).toEqual({ a: 'b' });
  });
});

describe('the lock', () => {
  it('names the run that holds it, and takes over a lock whose process is gone', async () => {
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
    try {
      const info = { pid: holder.pid, command: 'cymbal-lab part1 --all', startedAt: 'earlier' };
      writeFileSync(join(dir, 'lock'), JSON.stringify(info));
      expect(() => StateLock.acquire(dir, 'second')).toThrow(
        new RegExp(`cymbal-lab part1 --all\` \\(pid ${holder.pid}`),
      );
    } finally {
      holder.kill();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    const lock = StateLock.acquire(dir, 'second');
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });
});

describe('interruption', () => {
  it('records an interrupted step on SIGINT and resumes there on the next run', async () => {
    const script = join(here, '../fixtures/run-engine.js');
    const child = spawn(process.execPath, [script, dir, journal, 'slow'], { stdio: 'pipe' });
    // Wait until step 2 has started, then interrupt it.
    await waitFor(() => journalLines().includes('ensure 2'));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(130);

    const store = StateStore.open(dir);
    expect(store.step('1.1').status).toBe('done');
    expect(store.step('1.2')).toMatchObject({ status: 'interrupted' });
    expect(store.step('1.2').lastError).toMatch(/SIGINT/);
    expect(existsSync(join(dir, 'lock'))).toBe(false);

    const again = spawn(process.execPath, [script, dir, journal], { stdio: 'pipe' });
    expect(await new Promise((resolve) => again.once('exit', resolve))).toBe(0);
    expect(journalLines()).toEqual(['ensure 1', 'ensure 2', 'ensure 2', 'ensure 3']);
    expect(StateStore.open(dir).step('1.3').status).toBe('done');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
