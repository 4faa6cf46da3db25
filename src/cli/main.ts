import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import { localEnvironment } from '../cloud/target.js';
import { LabError, errorMessage } from '../errors.js';
import type { Operation } from '../steps/engine.js';
import { LAB_STEPS, findStep, stepsOfPart } from '../steps/registry.js';
import type { PartNumber, StepDefinition, StepOptions } from '../steps/types.js';
import { stepId } from '../steps/types.js';
import { setConfig, showConfig } from './config-command.js';
import { addLocalCommands } from './local-commands.js';
import { runGuided } from './guided.js';
import {
  ConsoleReporter,
  allPassed,
  mark,
  progressFactory,
  statusLine,
  terminalOutput,
} from './render.js';
import type { GlobalFlags } from './session.js';
import { PACKAGE_ROOT, Session } from './session.js';
import type { AnnotateCliOptions } from '../vision/cli.js';

interface RunFlags extends StepOptions {
  all?: boolean;
  verify?: boolean;
  plan?: boolean;
  teardown?: boolean;
  from?: number;
  force?: boolean;
  part?: PartNumber;
}

const positiveInt = (name: string) => (raw: string) => {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${name} must be a whole number, not "${raw}".`);
  }
  return value;
};

function operationOf(flags: RunFlags): Operation {
  const chosen = (['verify', 'plan', 'teardown'] as const).filter((k) => flags[k]);
  if (chosen.length > 1) {
    throw new LabError(
      `Choose one of --verify, --plan and --teardown, not ${chosen.join(' and ')}.`,
    );
  }
  return chosen[0] ?? 'ensure';
}

function addRunOptions(command: Command): Command {
  return command
    .option('--verify', 'check the steps against live resources')
    .option('--plan', 'show what would be created, changed or left alone')
    .option('--teardown', 'remove what the steps created, last step first')
    .option('--force', 'run steps again even when they are done')
    .option('--udf', 'Part 1 step 6: transform each message with assets/udf/transform.js')
    .option('--events <n>', 'Part 1 step 7: generated events to post', positiveInt('--events'))
    .option('--rate <n>', 'Part 1 step 7: events per second', positiveInt('--rate'))
    .option('--seed <n>', 'seed for generated data', positiveInt('--seed'))
    .option('--split', 'Part 2 step 6: split videos into 5-second parts')
    .option('--follow', 'Part 2 step 8: keep listening for results');
}

function stepOptions(flags: RunFlags): StepOptions {
  const options: StepOptions = {};
  if (flags.udf) options.udf = true;
  if (flags.events !== undefined) options.events = flags.events;
  if (flags.rate !== undefined) options.rate = flags.rate;
  if (flags.seed !== undefined) options.seed = flags.seed;
  if (flags.split) options.split = true;
  if (flags.follow) options.follow = true;
  if (flags.force) options.force = true;
  return options;
}

/**
 * Runs an operation over steps with the console reporter. Verify goes on past a failed check
 * and fails at the end; every other operation stops at the first failure.
 */
async function runSteps(
  session: Session,
  commandLine: string,
  steps: StepDefinition[],
  operation: Operation,
  flags: RunFlags,
): Promise<void> {
  const out = terminalOutput(session.flags);
  const reporter = new ConsoleReporter(out);
  session.acquire(commandLine);
  const engine = session.engine(reporter, stepOptions(flags), progressFactory(out), (line) =>
    out.line(line),
  );
  let failedChecks = 0;
  let notRun: StepDefinition[] = [];
  try {
    if (operation === 'verify' && steps.length > 1) {
      notRun = steps.filter(
        (s) => session.store.step(stepId(s), session.targetKey).status === 'pending',
      );
      for (const step of steps) {
        if (notRun.includes(step)) continue;
        const outcome = await engine.runOne(step, 'verify');
        if (outcome.kind === 'verified' && !allPassed(outcome.checks)) failedChecks += 1;
      }
    } else if (operation === 'verify') {
      const outcome = await engine.runOne(steps[0]!, 'verify');
      if (outcome.kind === 'verified' && !allPassed(outcome.checks)) failedChecks += 1;
    } else {
      await engine.run(steps, operation, { force: Boolean(flags.force) });
    }
  } finally {
    if (session.flags.json)
      process.stdout.write(`${JSON.stringify({ results: reporter.results }, null, 2)}\n`);
  }
  if (notRun.length > 0) {
    for (const step of notRun) out.line(`${mark.skip} ${stepId(step)} ${step.title} (not run yet)`);
  }
  if (failedChecks > 0) {
    throw new LabError(
      `${failedChecks} step${failedChecks === 1 ? '' : 's'} failed verification.`,
      {
        hint: 'Read the crossed checks above; run the step again with `cymbal-lab step N --force`.',
      },
    );
  }
  if (notRun.length > 0) {
    throw new LabError(
      `${notRun.length} step${notRun.length === 1 ? ' has' : 's have'} not run yet.`,
      {
        hint: `Run \`cymbal-lab part${notRun[0]!.part} --all\` first.`,
      },
    );
  }
}

function partSteps(
  part: PartNumber,
  flags: RunFlags,
  operation: Operation,
  session: Session,
): StepDefinition[] {
  const steps = stepsOfPart(LAB_STEPS, part);
  if (flags.from !== undefined) {
    if (flags.from < 1 || flags.from > steps.length) {
      throw new LabError(`--from must be a step of Part ${part}, from 1 to ${steps.length}.`);
    }
    return steps.filter((s) => s.number >= flags.from!);
  }
  if (flags.all || operation !== 'ensure') return steps;
  // Without --all, a part command runs its next step that is not done, as a learner would.
  const next = steps.find(
    (s) => session.store.step(stepId(s), session.targetKey).status !== 'done',
  );
  if (!next) {
    terminalOutput(session.flags).line(`${mark.ok} Every step of Part ${part} is done.`);
    return [];
  }
  return [next];
}

export function buildProgram(): Command {
  const version = (
    JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
  ).version;
  const program = new Command('cymbal-lab');
  program
    .description(
      'Walks through the Cymbal Direct data-analytics lab, step by step, on a local cloud or on Google Cloud.',
    )
    .version(version)
    .usage('[options] [command]')
    .addOption(new Option('--target <target>', 'where to run').choices(['local', 'gcp']))
    .option('--project <id>', 'Google Cloud project id')
    .option('--region <region>', 'region (default us-central1)')
    .option('--state-dir <dir>', 'where progress is kept', '.cymbal-lab')
    .option('-y, --yes', 'never prompt', false)
    .option('-q, --quiet', 'print only warnings and errors', false)
    .option('--debug', 'print debug output', false)
    .option('--json', 'print results as JSON', false)
    .option(
      '--reset-state',
      'start with an empty state file (the old one is kept as a backup)',
      false,
    )
    .showHelpAfterError('(run `cymbal-lab --help` for usage)');

  const globals = (command: Command): GlobalFlags => command.optsWithGlobals<GlobalFlags>();
  const withSession = async (command: Command, work: (session: Session) => Promise<void>) => {
    const session = new Session(globals(command));
    try {
      await work(session);
    } finally {
      await session.close();
    }
  };
  const commandLine = () => `cymbal-lab ${process.argv.slice(2).join(' ')}`.trim();

  addRunOptions(program.command('all').description('run Part 1, then Part 2')).action(
    async (flags: RunFlags, command: Command) => {
      const operation = operationOf(flags);
      await withSession(command, async (session) => {
        const parts: PartNumber[] = operation === 'teardown' ? [2, 1] : [1, 2];
        const steps = parts.flatMap((p) => stepsOfPart(LAB_STEPS, p));
        await runSteps(session, commandLine(), steps, operation, flags);
      });
    },
  );

  for (const part of [1, 2] as const) {
    addRunOptions(
      program
        .command(`part${part}`)
        .description(`run Part ${part}: its next step, or every step with --all`)
        .option('--all', 'run every step that is not done')
        .option('--from <n>', 'start at this step', positiveInt('--from')),
    ).action(async (flags: RunFlags, command: Command) => {
      const operation = operationOf(flags);
      await withSession(command, async (session) => {
        const steps = partSteps(part, flags, operation, session);
        if (steps.length > 0) await runSteps(session, commandLine(), steps, operation, flags);
      });
    });
  }

  addRunOptions(
    program
      .command('step <step>')
      .description('run one step: `6` is Part 1 step 6, `2.6` is Part 2 step 6')
      .addOption(
        new Option('--part <part>', 'the part of a bare step number')
          .choices(['1', '2'])
          .argParser(Number),
      ),
  ).action(async (reference: string, flags: RunFlags, command: Command) => {
    const operation = operationOf(flags);
    const step = findStep(LAB_STEPS, reference, flags.part);
    await withSession(command, (session) =>
      runSteps(session, commandLine(), [step], operation, {
        ...flags,
        force: flags.force ?? false,
      }),
    );
  });

  program
    .command('status')
    .description('every step of both parts with its state and outputs')
    .action(async (_flags: unknown, command: Command) => {
      await withSession(command, async (session) => {
        const records = LAB_STEPS.map((step) => ({
          step: stepId(step),
          title: step.title,
          ...session.store.step(stepId(step), session.targetKey),
        }));
        if (session.flags.json) {
          const { config } = session;
          process.stdout.write(
            `${JSON.stringify({ target: config.target, project: config.project, region: config.region, steps: records }, null, 2)}\n`,
          );
          return;
        }
        const out = terminalOutput(session.flags);
        out.line(
          `Target ${session.config.target} · project ${session.config.project} · region ${session.config.region}`,
        );
        for (const part of [1, 2] as const) {
          out.line();
          out.line(`Part ${part}`);
          for (const step of stepsOfPart(LAB_STEPS, part)) {
            for (const line of statusLine(
              step,
              session.store.step(stepId(step), session.targetKey),
            ))
              out.line(line);
          }
        }
      });
    });

  const config = program.command('config').description('read or change settings');
  config
    .command('get [key]')
    .description('print one setting, or all of them')
    .action(async (key: string | undefined, _flags: unknown, command: Command) => {
      await withSession(command, async (session) => showConfig(session, key));
    });
  config
    .command('set <key> <value>')
    .description('change a setting, such as `config set project my-project`')
    .action(async (key: string, value: string, _flags: unknown, command: Command) => {
      await withSession(command, async (session) => {
        session.acquire(commandLine());
        setConfig(session, key, value);
      });
    });

  addLocalCommands(program, async () => {
    const session = new Session(program.opts<GlobalFlags>());
    return {
      stateDir: session.stateDir,
      projectId: session.config.project,
      port: session.config.localPort,
      pubsubPort: session.config.pubsubPort,
      json: session.flags.json,
      log: session.log,
    };
  });

  program
    .command('annotate <video>')
    .description('track objects in a video file or gs:// object and summarize them')
    .option('--json <file>', "write the annotations in the Video Intelligence API's shape")
    .option('--preview <file>', 'draw the tracks: a contact sheet (.png) or a video (.mp4)')
    .option('--model <name>', 'the detection model (coco-ssd)')
    .action(async (video: string, flags: AnnotateCliOptions, command: Command) => {
      await withSession(command, async (session) => {
        if (video.startsWith('gs://')) {
          // The object is read with the Storage client of the configured target.
          await session.prepareTarget();
          for (const [key, value] of Object.entries(localEnvironment(session.target))) {
            process.env[key] ??= value;
          }
        }
        const { runAnnotate } = await import('../vision/cli.js');
        await runAnnotate(video, flags, session.log);
      });
    });

  program
    .command('guide')
    .description('the guided, interactive mode (also what `cymbal-lab` alone starts on a terminal)')
    .action(async (_flags: unknown, command: Command) => {
      await withSession(command, (session) => runGuided(session));
    });

  // With no command: the guided mode for a person at a terminal, the help for everyone else.
  // Unknown options and extra words are let through here so that `cymbal-lab part3 --all`
  // names the command, not the option, as what is wrong.
  program
    .argument('[command]')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (_first: unknown, _flags: unknown, command: Command) => {
      const name = command.args.find((arg) => !arg.startsWith('-'));
      const stray = command.args.find((arg) => arg.startsWith('-'));
      if (name !== undefined) {
        throw new LabError(`"${name}" is not a cymbal-lab command.`, {
          hint: 'Run `cymbal-lab --help` to list them.',
        });
      }
      if (stray !== undefined) {
        throw new LabError(`Unknown option ${stray}.`, {
          hint: 'Run `cymbal-lab --help` to list the options.',
        });
      }
      const flags = globals(command);
      if (process.stdin.isTTY && process.stdout.isTTY && !flags.yes && !flags.json) {
        await withSession(command, (session) => runGuided(session));
      } else program.outputHelp();
    });

  return program;
}

/** Runs the command line and returns the exit code; the only place that decides it. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  const args = argv.slice(2);
  try {
    await program.parseAsync(['node', 'cymbal-lab', ...args]);
    return 0;
  } catch (error) {
    return reportFailure(error, args);
  }
}

function reportFailure(error: unknown, args: string[]): number {
  if (error instanceof CommanderError) {
    // Commander has printed the help, the version or its own message already.
    return error.exitCode === 0 ? 0 : 1;
  }
  if (error instanceof LabError) {
    process.stderr.write(`${mark.fail} ${error.message}\n`);
    if (error.hint) process.stderr.write(`  ${error.hint}\n`);
    return 1;
  }
  const stateDir = resolve(stateDirFrom(args));
  const logFile = join(stateDir, 'debug.log');
  try {
    mkdirSync(stateDir, { recursive: true });
    const stack = error instanceof Error && error.stack ? error.stack : String(error);
    appendFileSync(logFile, `${new Date().toISOString()} error unexpected: ${stack}\n`);
  } catch {
    // Nowhere to write the details: the message below still tells the user what happened.
  }
  process.stderr.write(`${mark.fail} Unexpected error: ${errorMessage(error)}\n`);
  process.stderr.write(`  The details are in ${logFile}. Run again with --debug to see more.\n`);
  return 2;
}

function stateDirFrom(args: string[]): string {
  const at = args.findIndex((a) => a === '--state-dir' || a.startsWith('--state-dir='));
  if (at < 0) return '.cymbal-lab';
  const arg = args[at]!;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : (args[at + 1] ?? '.cymbal-lab');
}
