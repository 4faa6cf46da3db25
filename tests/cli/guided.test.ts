import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { runCli } from './run-cli.js';
import { Terminal, keys } from './terminal.js';

let cwd: string;
let terminal: Terminal | undefined;

beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), 'cymbal-guided-'));
});

afterEach(() => {
  terminal?.kill();
  rmSync(cwd, { recursive: true, force: true });
});

const state = () => JSON.parse(readFileSync(join(cwd, '.cymbal-lab/state.json'), 'utf8'));

describe('the guided mode', () => {
  it('asks for the target once, walks the steps, and resumes where the learner quit', async () => {
    terminal = new Terminal(cwd, []);
    await terminal.waitFor(/Where should the lab run\?/);
    terminal.press(keys.enter);
    await terminal.waitFor(/Which part\?/);
    terminal.press(keys.down, keys.enter);

    // Part 2, first step: the explanation and the equivalent commands are shown.
    const screen = await terminal.waitFor(/what next\?/);
    expect(screen).toMatch(/Part 2 · step 1 of 8/);
    expect(screen).toMatch(/Configure the target for video analytics/);
    expect(screen).toMatch(/\$ gcloud services enable dataflow\.googleapis\.com/);

    // Skip step 1, then quit at step 2.
    terminal.press(keys.down, keys.down, keys.down, keys.enter);
    await terminal.waitFor(/Part 2 · step 2 of 8[\s\S]*what next\?/);
    terminal.press(keys.up, keys.enter);
    expect(await terminal.exited).toBe(0);
    expect(state().config.target).toBe('local');
    expect(state().guided.part).toBe(2);

    // A second run asks no target question, offers Part 2 first, and resumes at the first step
    // that is not done.
    terminal = new Terminal(cwd, []);
    const again = await terminal.waitFor(/Which part\?.*\n?.*/);
    expect(again).not.toMatch(/Where should the lab run/);
    terminal.press(keys.enter);
    await terminal.waitFor(/Part 2 · step 1 of 8[\s\S]*what next\?/);
    terminal.press(keys.up, keys.enter);
    expect(await terminal.exited).toBe(0);
  });

  it('runs a step with its checks and resumes at the next one', async () => {
    // Free ports, so the test never meets a local cloud that is already running.
    expect(runCli(cwd, ['config', 'set', 'localPort', '0']).code).toBe(0);
    expect(runCli(cwd, ['config', 'set', 'pubsubPort', '0']).code).toBe(0);
    expect(runCli(cwd, ['config', 'set', 'target', 'local']).code).toBe(0);
    try {
      terminal = new Terminal(cwd, ['guide']);
      await terminal.waitFor(/Which part\?/);
      terminal.press(keys.enter);
      await terminal.waitFor(/Part 1 · step 1 of 8[\s\S]*what next\?/);
      terminal.press(keys.enter);
      // Run starts the local cloud, enables the APIs, then verifies with a tick per check.
      const ran = await terminal.waitFor(/Part 1 · step 2 of 8[\s\S]*what next\?/, 90_000);
      expect(ran).toMatch(/✔ API bigquery\.googleapis\.com: enabled/);
      expect(ran).toMatch(/Containerize the ingest app with Cloud Build/);
      terminal.press(keys.up, keys.enter);
      expect(await terminal.exited).toBe(0);
      expect(state().steps['1.1']).toMatchObject({ status: 'done', lastVerifyOk: true });

      terminal = new Terminal(cwd, ['guide']);
      await terminal.waitFor(/Which part\?/);
      terminal.press(keys.enter);
      const resumed = await terminal.waitFor(/what next\?/);
      expect(resumed).toMatch(/Part 1 · step 2 of 8/);
      terminal.press(keys.up, keys.enter);
      expect(await terminal.exited).toBe(0);
    } finally {
      runCli(cwd, ['local', 'stop']);
    }
  }, 120_000);
});
