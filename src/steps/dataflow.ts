import { createRequire } from 'node:module';

import type { protos } from '@google-cloud/dataflow';

import { LabError } from '../errors.js';
import { check, expectThat, waitUntil } from './kit.js';
import type { Check, StepContext } from './types.js';

type Job = protos.google.dataflow.v1beta3.IJob;

const load = createRequire(import.meta.url);

/** A job state as its name (`JOB_STATE_RUNNING`), whether the client gave a name or a number. */
export function stateName(state: unknown): string {
  if (typeof state === 'string') return state;
  const { protos: p } = load('@google-cloud/dataflow') as typeof import('@google-cloud/dataflow');
  return p.google.dataflow.v1beta3.JobState[Number(state)] ?? `JOB_STATE_${String(state)}`;
}

const TERMINAL = new Set([
  'JOB_STATE_DONE',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLED',
  'JOB_STATE_UPDATED',
  'JOB_STATE_DRAINED',
]);

export const isTerminal = (job: Job): boolean => TERMINAL.has(stateName(job.currentState));

/** The active job with this name, if any (Dataflow allows one active job per name). */
export async function findActiveJob(ctx: StepContext, name: string): Promise<Job | undefined> {
  const [jobs] = await ctx.clients.jobs.listJobs({
    projectId: ctx.config.project,
    location: ctx.config.region,
    filter: 'ACTIVE',
  });
  return jobs.find((job) => job.name === name && !isTerminal(job));
}

export async function getJob(ctx: StepContext, jobId: string): Promise<Job> {
  const [job] = await ctx.clients.jobs.getJob({
    projectId: ctx.config.project,
    location: ctx.config.region,
    jobId,
  });
  return job;
}

/** Waits until a job runs; a job that fails first is an error naming its state. */
export async function waitForRunning(
  ctx: StepContext,
  jobId: string,
  timeoutMs: number,
): Promise<Job> {
  return waitUntil(
    `Dataflow job ${jobId} to run`,
    async () => {
      const job = await getJob(ctx, jobId);
      const state = stateName(job.currentState);
      if (state === 'JOB_STATE_RUNNING') return job;
      if (isTerminal(job)) {
        throw new LabError(`Dataflow job ${jobId} ended as ${state} before it ran.`, {
          hint: `Look at the job's log: \`cymbal-lab local logs --service dataflow\` locally, or the Dataflow console.`,
        });
      }
      return undefined;
    },
    { timeoutMs, intervalMs: 500, signal: ctx.signal },
  );
}

/** Cancels the active job with this name and waits until it has stopped. */
export async function cancelJob(ctx: StepContext, name: string): Promise<void> {
  const job = await findActiveJob(ctx, name);
  if (!job?.id) {
    ctx.log.debug(`no active Dataflow job named ${name}`);
    return;
  }
  const jobId = job.id;
  await ctx.clients.jobs.updateJob({
    projectId: ctx.config.project,
    location: ctx.config.region,
    jobId,
    job: { requestedState: 'JOB_STATE_CANCELLED' },
  });
  await waitUntil(
    `Dataflow job ${jobId} to stop`,
    async () => (isTerminal(await getJob(ctx, jobId)) ? true : undefined),
    {
      timeoutMs: ctx.target.kind === 'local' ? 30_000 : 600_000,
      intervalMs: 500,
      signal: ctx.signal,
    },
  );
  ctx.log.info(`cancelled Dataflow job ${name} (${jobId})`);
}

/** How long a job may take to start: seconds locally, minutes for Google's workers. */
export function startTimeoutMs(ctx: StepContext): number {
  return ctx.target.kind === 'local' ? 60_000 : 15 * 60_000;
}

/** The check both parts' job steps start their verification with. */
export function checkJobRunning(ctx: StepContext, name: string): Promise<Check> {
  return check(`Dataflow job ${name}`, async () => {
    const job = await findActiveJob(ctx, name);
    expectThat(job !== undefined, 'no active job with that name');
    const state = stateName(job!.currentState);
    expectThat(state === 'JOB_STATE_RUNNING', `state ${state}`);
    return `running as ${job!.id ?? '?'}`;
  });
}
