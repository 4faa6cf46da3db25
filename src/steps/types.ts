import type { Clients } from '../cloud/clients.js';
import type { Target } from '../cloud/target.js';
import type { LabConfig } from '../config.js';
import type { Logger } from '../log.js';

/**
 * The step contract. A step describes itself for learners (title, explanation, the equivalent
 * commands) and does its work through four operations; the engine decides which to call, in
 * what order, and records the outcome.
 */

export type PartNumber = 1 | 2;

export interface PlanItem {
  action: 'create' | 'update' | 'keep' | 'delete' | 'run';
  /** What the action applies to, such as `topic ecommerce-events`. */
  resource: string;
  detail?: string;
}

export interface Check {
  name: string;
  ok: boolean;
  /** One line a learner can act on: what was found, or what is missing. */
  detail: string;
}

/** Options some steps take from the command line; each step reads the ones it knows. */
export interface StepOptions {
  /** Part 1 step 6: launch the template with the sample UDF. */
  udf?: boolean;
  /** Part 1 step 7: how many generated events to post after the samples. */
  events?: number;
  /** Part 1 step 7: events per second; unlimited when unset. */
  rate?: number;
  /** Seed for generated data. */
  seed?: number;
  /** Part 2 step 6: split videos into 5-second parts. */
  split?: boolean;
  /** Part 2 step 8: keep listening. */
  follow?: boolean;
  /**
   * The run was forced (`--force`). Most steps converge the same way either way; Part 2 step 5
   * then builds its template image again even though one exists.
   */
  force?: boolean;
}

export interface Progress {
  tick(count?: number): void;
  done(): void;
}

export interface StepContext {
  readonly config: LabConfig;
  readonly target: Target;
  /** The official clients for the target, built on first use. */
  readonly clients: Clients;
  readonly log: Logger;
  readonly options: StepOptions;
  /** Outputs recorded by earlier steps, by key. */
  readonly outputs: Readonly<Record<string, string>>;
  /** Directory of the project's assets and sample data. */
  readonly assetsRoot: string;
  readonly stateDir: string;
  /** Aborted on Ctrl-C or SIGTERM; long waits should honour it. */
  readonly signal: AbortSignal;
  progress(label: string, total: number): Progress;
  /** Prints a line of results (query rows, consumed messages) for the learner. */
  print(line: string): void;
}

export interface StepDefinition {
  part: PartNumber;
  number: number;
  title: string;
  /** A short explanation for learners: what the step builds and why. */
  explain: string;
  /** The equivalent gcloud, bq or gsutil commands for this configuration, shown and never run. */
  commands(config: LabConfig): string[];
  /** Output keys this step needs from earlier steps. */
  needs: string[];
  /** Output keys this step records. */
  outputs: string[];
  /** False for a step whose operations have not landed yet: the engine then prepares nothing. */
  available?: boolean;
  plan(ctx: StepContext): Promise<PlanItem[]>;
  /** Creates or converges; a second run changes nothing. Returns the outputs to record. */
  ensure(ctx: StepContext): Promise<Record<string, string>>;
  verify(ctx: StepContext): Promise<Check[]>;
  teardown(ctx: StepContext): Promise<void>;
}

export function stepId(step: Pick<StepDefinition, 'part' | 'number'>): string {
  return `${step.part}.${step.number}`;
}
