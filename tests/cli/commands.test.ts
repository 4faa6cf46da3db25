import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { DEFAULT_CONFIG } from '../../src/config.js';
import { LAB_STEPS, findStep } from '../../src/steps/registry.js';
import { stepId } from '../../src/steps/types.js';
import { runCli } from './run-cli.js';

let cwd: string;

beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), 'cymbal-cli-'));
});

afterEach(() => rmSync(cwd, { recursive: true, force: true }));

describe('step references', () => {
  it('reads a bare number as Part 1 unless --part or P.N says otherwise', () => {
    expect(stepId(findStep(LAB_STEPS, '6'))).toBe('1.6');
    expect(stepId(findStep(LAB_STEPS, '2.6'))).toBe('2.6');
    expect(stepId(findStep(LAB_STEPS, '6', 2))).toBe('2.6');
    expect(() => findStep(LAB_STEPS, '1.6', 2)).toThrow(/in Part 1, but --part says 2/);
    expect(() => findStep(LAB_STEPS, '9')).toThrow(/no step 1\.9/);
    expect(() => findStep(LAB_STEPS, 'six')).toThrow(/"six" is not a step/);
  });

  it('registers all sixteen steps with what learners need to see', () => {
    expect(LAB_STEPS.map(stepId)).toEqual([
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `1.${n}`),
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `2.${n}`),
    ]);
    for (const step of LAB_STEPS) {
      expect(step.title.length).toBeGreaterThan(10);
      expect(step.explain.length).toBeGreaterThan(60);
      expect(step.commands(DEFAULT_CONFIG).length).toBeGreaterThan(0);
    }
  });
});

describe('the command line', () => {
  it('prints help listing every command when there is no terminal', () => {
    const { code, stdout } = runCli(cwd, []);
    expect(code).toBe(0);
    for (const command of ['all', 'part1', 'part2', 'step', 'status', 'config', 'local']) {
      expect(stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
  });

  it('lists all sixteen steps as pending in an empty directory, as text and as JSON', () => {
    const text = runCli(cwd, ['status']);
    expect(text.code).toBe(0);
    expect(text.stdout.match(/pending/g)).toHaveLength(16);
    const json = runCli(cwd, ['status', '--json']);
    const parsed = JSON.parse(json.stdout) as { target: string; steps: Array<{ status: string }> };
    expect(parsed.target).toBe('local');
    expect(parsed.steps.map((s) => s.status)).toEqual(Array(16).fill('pending'));
  });

  it('`step 6 --verify` means Part 1 step 6 and names the step to run first', () => {
    const { code, stderr } = runCli(cwd, ['step', '6', '--verify']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/Step 1\.6 needs table, which step 1\.4 .* records/);
    expect(stderr).toMatch(/Run `cymbal-lab step 1\.4` first/);
  });

  it('`part1 --from 4 --verify` covers steps 4 to 8 only', () => {
    const { code, stdout, stderr } = runCli(cwd, ['part1', '--from', '4', '--verify']);
    expect(code).toBe(1);
    expect(stdout).not.toMatch(/1\.3/);
    for (const n of [4, 5, 6, 7, 8]) expect(stdout).toMatch(new RegExp(`1\\.${n} .*not run yet`));
    expect(stderr).toMatch(/5 steps have not run yet/);
  });

  it('rejects conflicting operations and bad numbers with exit 1', () => {
    expect(runCli(cwd, ['part1', '--verify', '--plan']).stderr).toMatch(/Choose one of/);
    expect(runCli(cwd, ['part2', '--from', '12', '--plan']).stderr).toMatch(/--from must be/);
    const bad = runCli(cwd, ['part1', '--events', 'many']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--events must be a whole number/);
  });

  it('names an unknown command before its options, and an unknown option on its own', () => {
    const command = runCli(cwd, ['part3', '--all']);
    expect(command.code).toBe(1);
    expect(command.stderr).toContain('"part3" is not a cymbal-lab command.');
    const option = runCli(cwd, ['--bogus']);
    expect(option.code).toBe(1);
    expect(option.stderr).toContain('Unknown option --bogus.');
  });

  it('keeps settings with config set and validates them', () => {
    expect(runCli(cwd, ['config', 'get', 'topic']).stdout.trim()).toBe('ecommerce-events');
    expect(runCli(cwd, ['config', 'set', 'project', 'my-lab-project']).code).toBe(0);
    expect(runCli(cwd, ['config', 'get', 'project']).stdout.trim()).toBe('my-lab-project');
    const state = JSON.parse(readFileSync(join(cwd, '.cymbal-lab/state.json'), 'utf8'));
    expect(state.config).toEqual({ project: 'my-lab-project' });

    const bad = runCli(cwd, ['config', 'set', 'project', 'Not_A_Project']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a valid Google Cloud project id/);
    expect(runCli(cwd, ['config', 'set', 'colour', 'blue']).stderr).toMatch(/not a setting/);
  });

  it('explains a corrupt state file, keeps it, and recovers with --reset-state', () => {
    runCli(cwd, ['status']);
    const file = join(cwd, '.cymbal-lab/state.json');
    writeFileSync(file, 'not json');
    const failed = runCli(cwd, ['status']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/cannot be read/);
    expect(failed.stderr).toMatch(/--reset-state/);
    expect(readFileSync(file, 'utf8')).toBe('not json');
    expect(runCli(cwd, ['status', '--reset-state']).code).toBe(0);
  });

  it('asks for a project before using the gcp target', () => {
    const { code, stderr } = runCli(cwd, ['--target', 'gcp', 'step', '1', '--plan']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/needs a project/);
  });
});
