import { LabError, errorMessage } from '../errors.js';
import type { StateStore, StepRecord } from './state.js';
import type { Check, PlanItem, StepContext, StepDefinition } from './types.js';
import { stepId } from './types.js';

export type Operation = 'ensure' | 'verify' | 'plan' | 'teardown';

export type StepOutcome =
  | { kind: 'done'; outputs: Record<string, string> }
  | { kind: 'skipped'; reason: string }
  | { kind: 'verified'; checks: Check[] }
  | { kind: 'planned'; items: PlanItem[] }
  | { kind: 'removed' };

/** What the engine tells the interface as it goes; the CLI renders, tests record. */
export interface EngineReporter {
  started(step: StepDefinition, operation: Operation): void;
  finished(step: StepDefinition, operation: Operation, outcome: StepOutcome): void;
  failed(step: StepDefinition, operation: Operation, error: unknown): void;
}

export interface EngineOptions {
  steps: readonly StepDefinition[];
  store: StateStore;
  reporter: EngineReporter;
  /** Builds a step's context with the outputs it may read. */
  context(step: StepDefinition, outputs: Record<string, string>, signal: AbortSignal): StepContext;
  /** Identifies the target, as `local:PROJECT`; records of another target read as pending. */
  targetKey: string;
  /** Called once before the first operation, such as starting the local cloud. */
  prepare?: () => Promise<void>;
  /** Called after an interruption was recorded, just before the process exits. */
  onInterrupt?: () => void;
}

/**
 * Runs steps in order and records every outcome in the state file. Ensure skips steps already
 * done unless forced, and refuses a step whose inputs are missing, naming the step that
 * records them. Verify turns a done step whose checks fail into `drifted`. Teardown goes in
 * reverse order and forgets the step's record.
 */
export class Engine {
  private prepared = false;

  constructor(private readonly options: EngineOptions) {}

  /** Runs one operation over several steps; stops at the first failure, which it rethrows. */
  async run(
    steps: readonly StepDefinition[],
    operation: Operation,
    flags: { force?: boolean } = {},
  ): Promise<Map<string, StepOutcome>> {
    const ordered = operation === 'teardown' ? [...steps].reverse() : steps;
    const outcomes = new Map<string, StepOutcome>();
    for (const step of ordered)
      outcomes.set(stepId(step), await this.runOne(step, operation, flags));
    return outcomes;
  }

  async runOne(
    step: StepDefinition,
    operation: Operation,
    flags: { force?: boolean } = {},
  ): Promise<StepOutcome> {
    const id = stepId(step);
    const { store, reporter } = this.options;
    const record = store.step(id, this.options.targetKey);

    if (operation === 'ensure' && record.status === 'done' && !flags.force) {
      const outcome: StepOutcome = { kind: 'skipped', reason: 'already done' };
      reporter.finished(step, operation, outcome);
      return outcome;
    }
    const outputs = this.outputsFor(step);
    if (operation === 'ensure' || operation === 'verify') this.checkInputs(step, outputs);

    if (!this.prepared && this.options.prepare && step.available !== false) {
      await this.options.prepare();
      this.prepared = true;
    }

    const controller = new AbortController();
    const stopOnSignal = (signal: NodeJS.Signals) => {
      controller.abort(new LabError(`Interrupted by ${signal}.`));
      store.updateStep(id, {
        status: 'interrupted',
        lastError: `interrupted by ${signal} during ${operation}`,
        finishedAt: new Date().toISOString(),
      });
      this.options.onInterrupt?.();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    const listen = operation === 'ensure' || operation === 'teardown';
    if (listen) {
      process.once('SIGINT', stopOnSignal);
      process.once('SIGTERM', stopOnSignal);
      store.updateStep(id, {
        status: 'running',
        startedAt: new Date().toISOString(),
        target: this.options.targetKey,
      });
    }

    reporter.started(step, operation);
    const context = this.options.context(step, outputs, controller.signal);
    try {
      const outcome = await this.perform(step, operation, context, record);
      reporter.finished(step, operation, outcome);
      return outcome;
    } catch (error) {
      if (listen) {
        store.updateStep(id, {
          status: operation === 'ensure' ? 'failed' : record.status,
          lastError: errorMessage(error),
          finishedAt: new Date().toISOString(),
        });
      }
      reporter.failed(step, operation, error);
      throw error;
    } finally {
      if (listen) {
        process.removeListener('SIGINT', stopOnSignal);
        process.removeListener('SIGTERM', stopOnSignal);
      }
    }
  }

  private async perform(
    step: StepDefinition,
    operation: Operation,
    context: StepContext,
    before: StepRecord,
  ): Promise<StepOutcome> {
    const id = stepId(step);
    const { store } = this.options;
    const now = () => new Date().toISOString();
    switch (operation) {
      case 'plan':
        return { kind: 'planned', items: await step.plan(context) };
      case 'ensure': {
        const outputs = await step.ensure(context);
        const missing = step.outputs.filter((key) => outputs[key] === undefined);
        if (missing.length > 0) {
          throw new Error(`Step ${id} finished without recording ${missing.join(', ')}.`);
        }
        // An undefined field is left out of the file, which clears an earlier failure.
        store.updateStep(id, { status: 'done', outputs, finishedAt: now(), lastError: undefined });
        return { kind: 'done', outputs };
      }
      case 'verify': {
        const checks = await step.verify(context);
        const ok = checks.length > 0 && checks.every((c) => c.ok);
        let status = before.status;
        if (!ok && before.status === 'done') status = 'drifted';
        if (ok && before.status === 'drifted') status = 'done';
        // The state file keeps one record a step: one that another target wrote is left alone.
        if (!store.heldByOtherTarget(id, this.options.targetKey)) {
          store.updateStep(id, { status, lastVerifiedAt: now(), lastVerifyOk: ok });
        }
        return { kind: 'verified', checks };
      }
      case 'teardown':
        await step.teardown(context);
        store.resetStep(id);
        return { kind: 'removed' };
    }
  }

  /** The outputs of the earlier steps of the same part, later ones winning. */
  private outputsFor(step: StepDefinition): Record<string, string> {
    const merged: Record<string, string> = {};
    for (const earlier of this.options.steps) {
      if (earlier.part !== step.part) continue;
      const record = this.options.store.step(stepId(earlier), this.options.targetKey);
      Object.assign(merged, record.outputs);
      if (earlier === step) break;
    }
    return merged;
  }

  private checkInputs(step: StepDefinition, outputs: Record<string, string>): void {
    for (const key of step.needs) {
      if (outputs[key] !== undefined) continue;
      const producer = this.options.steps.find(
        (s) => s.part === step.part && s.number < step.number && s.outputs.includes(key),
      );
      const where = producer ? `step ${stepId(producer)} (${producer.title})` : 'an earlier step';
      throw new LabError(
        `Step ${stepId(step)} needs ${key}, which ${where} records, and it has not run yet.`,
        { hint: producer ? `Run \`cymbal-lab step ${stepId(producer)}\` first.` : undefined },
      );
    }
  }
}
