import { input, select } from '@inquirer/prompts';
import chalk from 'chalk';

import { LabError, errorMessage } from '../errors.js';
import type { Engine } from '../steps/engine.js';
import { LAB_STEPS, stepsOfPart } from '../steps/registry.js';
import type { PartNumber, StepDefinition } from '../steps/types.js';
import { stepId } from '../steps/types.js';
import { parseConfigValue } from '../config.js';
import type { Output } from './render.js';
import { ConsoleReporter, mark, progressFactory, progressLine, terminalOutput } from './render.js';
import type { Session } from './session.js';

type Choice = 'run' | 'verify' | 'plan' | 'skip' | 'quit';

const partNames: Record<PartNumber, string> = {
  1: 'Part 1: the analytics pipeline (Cloud Run, Pub/Sub, Dataflow, BigQuery)',
  2: 'Part 2: video object tracking (Cloud Storage, Dataflow, Video Intelligence, BigQuery)',
};

/**
 * The guided mode: asks for the target the first time, then walks a part step by step with
 * the explanation and the equivalent commands, and resumes at the first step not done.
 */
export async function runGuided(session: Session): Promise<void> {
  const out = terminalOutput(session.flags);
  session.acquire('cymbal-lab guide');
  try {
    await chooseTarget(session, out);
    let part = await choosePart(session);
    const engine = session.engine(new ConsoleReporter(out), {}, progressFactory(out), (line) =>
      out.line(line),
    );
    for (;;) {
      session.store.setGuided({ part });
      const finished = await walkPart(session, engine, part, out);
      if (!finished) return;
      out.line();
      out.line(`${mark.ok} ${chalk.bold(`Part ${part} is complete.`)}`);
      if (part === 2) return;
      const next = await select<'continue' | 'quit'>({
        message: 'Go on with Part 2?',
        choices: [
          { name: 'Yes, start Part 2', value: 'continue' },
          { name: 'Not now', value: 'quit' },
        ],
      });
      if (next === 'quit') return;
      part = 2;
    }
  } catch (error) {
    // Ctrl-C at a prompt ends the guided mode quietly; progress is already saved.
    if (error instanceof Error && error.name === 'ExitPromptError') return;
    throw error;
  }
}

async function chooseTarget(session: Session, out: Output): Promise<void> {
  if (session.store.config.target !== undefined || session.flags.target !== undefined) return;
  out.line(chalk.bold('Welcome to the Cymbal Direct data-analytics lab.'));
  out.line('Each step builds one piece of the pipeline and checks that it works.');
  out.line();
  const target = await select<'local' | 'gcp'>({
    message: 'Where should the lab run?',
    choices: [
      {
        name: 'On this machine (the local cloud: no account, no network)',
        value: 'local',
      },
      { name: 'On Google Cloud (your project, billed to it)', value: 'gcp' },
    ],
  });
  if (target === 'gcp') {
    const project = await input({
      message: 'Google Cloud project id:',
      validate: (value) => {
        try {
          parseConfigValue('project', value);
          return true;
        } catch (error) {
          return errorMessage(error);
        }
      },
    });
    session.store.setConfig('project', project);
    throw new LabError(`Saved project ${project} and target gcp.`, {
      hint: 'Run `cymbal-lab` again to start the guided mode on Google Cloud.',
    });
  }
  session.store.setConfig('target', target);
}

async function choosePart(session: Session): Promise<PartNumber> {
  const saved = session.store.guided.part;
  const progress = (part: PartNumber) => {
    const steps = stepsOfPart(LAB_STEPS, part);
    const done = steps.filter(
      (s) => session.store.step(stepId(s), session.targetKey).status === 'done',
    );
    return `${done.length} of ${steps.length} steps done`;
  };
  return select<PartNumber>({
    message: 'Which part?',
    default: saved === 2 ? 2 : 1,
    choices: ([1, 2] as const).map((part) => ({
      name: `${partNames[part]} · ${progress(part)}`,
      value: part,
    })),
  });
}

/** Returns true when every step of the part is done, false when the learner quit. */
async function walkPart(
  session: Session,
  engine: Engine,
  part: PartNumber,
  out: Output,
): Promise<boolean> {
  const steps = stepsOfPart(LAB_STEPS, part);
  const isDone = (s: StepDefinition) =>
    session.store.step(stepId(s), session.targetKey).status === 'done';
  let index = steps.findIndex((s) => !isDone(s));
  if (index < 0) return true;
  while (index < steps.length) {
    const step = steps[index]!;
    showStep(session, step, out);
    const choice = await select<Choice>({
      message: `${progressLine(step)}: what next?`,
      default: isDone(step) ? 'skip' : 'run',
      choices: [
        { name: 'Run this step', value: 'run' },
        { name: 'Verify it against live resources', value: 'verify' },
        { name: 'Plan: show what it would change', value: 'plan' },
        { name: 'Skip to the next step', value: 'skip' },
        { name: 'Quit (progress is saved)', value: 'quit' },
      ],
    });
    if (choice === 'quit') return false;
    if (choice === 'skip') {
      index += 1;
      continue;
    }
    try {
      if (choice === 'run') {
        await engine.runOne(step, 'ensure', { force: isDone(step) });
        await engine.runOne(step, 'verify');
        index += 1;
      } else {
        await engine.runOne(step, choice);
      }
    } catch (error) {
      out.line(`  ${chalk.red(errorMessage(error))}`);
      if (error instanceof LabError && error.hint) out.line(`  ${error.hint}`);
    }
  }
  return steps.every(isDone);
}

function showStep(session: Session, step: StepDefinition, out: Output): void {
  out.line();
  out.line(chalk.cyan(progressLine(step)));
  out.line(chalk.bold(step.title));
  out.line(wrap(step.explain, 78, '  '));
  const commands = step.commands(session.config);
  if (commands.length > 0) {
    out.line(chalk.dim('  The same with the Google Cloud CLI:'));
    for (const command of commands) out.line(chalk.dim(`    $ ${command}`));
  }
  out.line();
}

function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line.length + word.length + 1 > width && line) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}
