import chalk from 'chalk';
import cliProgress from 'cli-progress';
import type { Ora } from 'ora';
import ora from 'ora';

import { errorMessage } from '../errors.js';
import type { EngineReporter, Operation, StepOutcome } from '../steps/engine.js';
import { LAB_STEPS, stepsOfPart } from '../steps/registry.js';
import type { StepRecord } from '../steps/state.js';
import type { Check, PlanItem, Progress, StepDefinition } from '../steps/types.js';
import { stepId } from '../steps/types.js';

/** Where rendered text goes: stdout for results, so that `--json` and pipes stay clean. */
export interface Output {
  /** A line of results. */
  line(text?: string): void;
  /** True when spinners and bars may draw: a terminal, not CI, not --json or --quiet. */
  readonly live: boolean;
  /** With --quiet: progress headlines and steps already done are not printed. */
  readonly quiet: boolean;
}

export function terminalOutput(options: { json: boolean; quiet: boolean }): Output {
  const live = Boolean(process.stdout.isTTY) && !process.env.CI && !options.json && !options.quiet;
  return {
    live,
    quiet: options.quiet,
    line: (text = '') => {
      if (!options.json) process.stdout.write(`${text}\n`);
    },
  };
}

export const mark = {
  ok: chalk.green('✔'),
  fail: chalk.red('✘'),
  skip: chalk.dim('–'),
};

/** "Part 1 · step 3 of 8" */
export function progressLine(step: StepDefinition): string {
  const total = stepsOfPart(LAB_STEPS, step.part).length;
  return `Part ${step.part} · step ${step.number} of ${total}`;
}

const verbs: Record<Operation, string> = {
  ensure: 'Running',
  verify: 'Verifying',
  plan: 'Planning',
  teardown: 'Tearing down',
};

/** Renders engine events as spinners and ticks on a terminal, as plain lines elsewhere. */
export class ConsoleReporter implements EngineReporter {
  private spinner: Ora | undefined;
  /** Every outcome, for `--json`. */
  readonly results: Array<{
    step: string;
    operation: Operation;
    outcome?: StepOutcome;
    error?: string;
  }> = [];

  constructor(private readonly out: Output) {}

  started(step: StepDefinition, operation: Operation): void {
    const text = `${progressLine(step)} · ${verbs[operation]}: ${step.title}`;
    if (this.out.live) this.spinner = ora(text).start();
    else if (!this.out.quiet) this.out.line(chalk.bold(text));
  }

  finished(step: StepDefinition, operation: Operation, outcome: StepOutcome): void {
    this.results.push({ step: stepId(step), operation, outcome });
    const title = `${stepId(step)} ${step.title}`;
    const failed = outcome.kind === 'verified' && !allPassed(outcome.checks);
    const headline = outcome.kind === 'skipped' ? `${title} (${outcome.reason})` : `${title}`;
    if (this.spinner) {
      if (outcome.kind === 'skipped') this.spinner.info(chalk.dim(headline));
      else if (failed) this.spinner.fail(headline);
      else this.spinner.succeed(headline);
      this.spinner = undefined;
    } else if (!(this.out.quiet && outcome.kind === 'skipped')) {
      const symbol = outcome.kind === 'skipped' ? mark.skip : failed ? mark.fail : mark.ok;
      this.out.line(`${symbol} ${headline}`);
    }
    for (const line of outcomeLines(outcome, step.outputs)) this.out.line(`    ${line}`);
  }

  failed(step: StepDefinition, operation: Operation, error: unknown): void {
    this.results.push({ step: stepId(step), operation, error: errorMessage(error) });
    const text = `${stepId(step)} ${step.title}`;
    if (this.spinner) {
      this.spinner.fail(text);
      this.spinner = undefined;
    } else this.out.line(`${mark.fail} ${text}`);
  }
}

export function allPassed(checks: Check[]): boolean {
  return checks.length > 0 && checks.every((c) => c.ok);
}

/** The lines under a step's headline; of its outputs, only the declared ones are shown. */
export function outcomeLines(outcome: StepOutcome, shown: string[]): string[] {
  switch (outcome.kind) {
    case 'done':
      return Object.entries(outcome.outputs)
        .filter(([key]) => shown.includes(key))
        .map(([k, v]) => `${chalk.dim(`${k}:`)} ${v}`);
    case 'verified':
      return outcome.checks.map(checkLine);
    case 'planned':
      return outcome.items.length > 0 ? outcome.items.map(planLine) : [chalk.dim('nothing to do')];
    case 'removed':
    case 'skipped':
      return [];
  }
}

export function checkLine(check: Check): string {
  return `${check.ok ? mark.ok : mark.fail} ${check.name}: ${chalk.dim(check.detail)}`;
}

const planSymbols: Record<PlanItem['action'], string> = {
  create: chalk.green('+ create'),
  update: chalk.yellow('~ update'),
  keep: chalk.dim('= keep  '),
  delete: chalk.red('- delete'),
  run: chalk.cyan('> run   '),
};

export function planLine(item: PlanItem): string {
  return `${planSymbols[item.action]} ${item.resource}${item.detail ? chalk.dim(` (${item.detail})`) : ''}`;
}

const statusColours: Record<StepRecord['status'], (s: string) => string> = {
  done: chalk.green,
  pending: chalk.dim,
  running: chalk.cyan,
  failed: chalk.red,
  interrupted: chalk.yellow,
  drifted: chalk.magenta,
};

export function statusLine(step: StepDefinition, record: StepRecord): string[] {
  const state = statusColours[record.status](record.status.padEnd(11));
  const lines = [`  ${stepId(step).padEnd(4)} ${state} ${step.title}`];
  const outputs = Object.entries(record.outputs).filter(([key]) => step.outputs.includes(key));
  if (outputs.length > 0) {
    lines.push(`              ${chalk.dim(outputs.map(([k, v]) => `${k}=${v}`).join('  '))}`);
  }
  if (record.lastVerifiedAt) {
    const verdict = record.lastVerifyOk ? 'passed' : 'failed';
    lines.push(`              ${chalk.dim(`last verified ${record.lastVerifiedAt} (${verdict})`)}`);
  }
  if (record.lastError && record.status !== 'done') {
    lines.push(`              ${chalk.red(record.lastError)}`);
  }
  return lines;
}

/** A progress bar on a terminal; elsewhere a line at every tenth of the way. */
export function progressFactory(out: Output): (label: string, total: number) => Progress {
  return (label, total) => {
    if (out.live) {
      const bar = new cliProgress.SingleBar(
        {
          format: `  ${label} [{bar}] {value}/{total} {percentage}% {eta_formatted}`,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
      return { tick: (n = 1) => bar.increment(n), done: () => bar.stop() };
    }
    let count = 0;
    let reported = 0;
    return {
      tick: (n = 1) => {
        count += n;
        const tenth = Math.floor((count / Math.max(total, 1)) * 10);
        if (tenth > reported) {
          reported = tenth;
          out.line(`  ${label}: ${count}/${total}`);
        }
      },
      done: () => undefined,
    };
  };
}
