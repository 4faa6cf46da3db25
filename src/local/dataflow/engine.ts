import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { localEnvironment } from '../../cloud/target.js';
import { ApiError, alreadyExists, invalidArgument, notFound } from '../http.js';
import type { ExitInfo } from '../supervisor.js';
import { Supervisor } from '../supervisor.js';
import type { JobRecord, JobState } from './jobs.js';
import { JOB_NAME, JobStore, addMessage, isTerminal, newJobId, setState } from './jobs.js';
import { EXIT_FAILED, PIPELINE_ENV } from './protocol.js';
import type { PipelineMetrics } from './protocol.js';
import type { TemplateDefinition, TemplateKind } from './templates.js';
import { TEMPLATES, describeSupported, findTemplate } from './templates.js';

/**
 * The local Dataflow engine: launches a job per template launch, runs each job as a supervised
 * child process (restarted when it dies on its own), keeps job records on disk so that running
 * jobs start again with the local cloud, and moves jobs through Dataflow's states.
 */

export interface LaunchRequest {
  kind: TemplateKind;
  projectId: string;
  location: string;
  templatePath: string;
  jobName: string;
  parameters: Record<string, string>;
  labels: Record<string, string>;
  validateOnly: boolean;
}

export interface EngineOptions {
  dataDir: string;
  /** Base URL of the loopback server and the emulator's host:port, for the jobs' clients. */
  endpoint: string;
  pubsubHost: string;
  log: Logger;
  /** The templates this engine runs; all known ones unless set (tests may add their own). */
  templates?: TemplateDefinition[];
  /** How long a drain may take before the job's process is killed. */
  drainGraceMs?: number;
  /** How long a cancelled job's process may take to stop before it is killed. */
  cancelGraceMs?: number;
}

interface LiveJob {
  record: JobRecord;
  supervisor?: Supervisor;
}

export type ListFilter = 'ALL' | 'ACTIVE' | 'TERMINATED';

export class DataflowEngine {
  readonly store: JobStore;
  private readonly jobs = new Map<string, LiveJob>();
  private readonly log: Logger;
  private readonly templates: TemplateDefinition[];
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: EngineOptions) {
    this.store = new JobStore(options.dataDir);
    this.log = options.log;
    this.templates = options.templates ?? TEMPLATES;
  }

  /** Loads the saved jobs and starts again those that were running. */
  start(): void {
    for (const record of this.store.loadAll()) {
      const job: LiveJob = { record };
      this.jobs.set(record.id, job);
      if (record.currentState === 'JOB_STATE_DRAINING') {
        // The process went down with the local cloud; nothing is left to drain.
        setState(record, 'JOB_STATE_DRAINED');
        addMessage(
          record,
          'The local cloud stopped while the job was draining.',
          'JOB_MESSAGE_BASIC',
        );
        this.store.save(record);
      } else if (!isTerminal(record.currentState)) {
        addMessage(
          record,
          'Resuming the job after a restart of the local cloud.',
          'JOB_MESSAGE_BASIC',
        );
        this.spawn(job);
      }
    }
    this.refreshTimer = setInterval(() => this.refreshAll(), 1000);
    this.refreshTimer.unref();
  }

  /** Stops every job's process; running jobs stay RUNNING on disk and resume on next start. */
  async stop(): Promise<void> {
    clearInterval(this.refreshTimer);
    await Promise.all(
      [...this.jobs.values()].map(async (job) => {
        if (!job.supervisor) return;
        await job.supervisor.stop('SIGTERM', 10_000);
        job.supervisor = undefined;
        this.store.save(job.record);
      }),
    );
  }

  launch(request: LaunchRequest): JobRecord {
    const template = this.findTemplate(request);
    if (!request.jobName) throw invalidArgument('The launch request needs a jobName.');
    if (!JOB_NAME.test(request.jobName)) {
      throw invalidArgument(
        `The job name "${request.jobName}" is invalid: use lower-case letters, digits and ` +
          'hyphens, starting with a letter and ending with a letter or digit.',
      );
    }
    let io;
    try {
      io = template.validate(request.parameters);
    } catch (error) {
      throw invalidArgument(
        `The template parameters are invalid for ${template.name}: ${errorMessage(error)}`,
      );
    }
    const active = [...this.jobs.values()].find(
      (j) =>
        j.record.name === request.jobName &&
        j.record.projectId === request.projectId &&
        j.record.location === request.location &&
        !isTerminal(j.record.currentState),
    );
    if (active) {
      throw alreadyExists(
        `(${active.record.id}): There is already an active job named ${request.jobName}. ` +
          'If you want to submit a second job, try again by setting a different name, or ' +
          'drain or cancel the running job first.',
      );
    }
    const now = new Date();
    const record: JobRecord = {
      id: request.validateOnly ? '' : newJobId(now),
      projectId: request.projectId,
      location: request.location,
      name: request.jobName,
      templateName: template.name,
      templateKind: template.kind,
      templatePath: request.templatePath,
      parameters: request.parameters,
      io,
      labels: request.labels,
      currentState: 'JOB_STATE_PENDING',
      currentStateTime: now.toISOString(),
      createTime: now.toISOString(),
      startTime: now.toISOString(),
      messages: [],
    };
    if (request.validateOnly) return record;
    addMessage(record, `Launched from template ${template.name}.`, 'JOB_MESSAGE_BASIC');
    this.store.save(record);
    const job: LiveJob = { record };
    this.jobs.set(record.id, job);
    this.spawn(job);
    return record;
  }

  get(projectId: string, location: string | undefined, id: string): JobRecord {
    const job = this.jobs.get(id);
    if (
      !job ||
      job.record.projectId !== projectId ||
      (location && job.record.location !== location)
    ) {
      throw notFound(
        `(${id}): Could not find job with id ${id} in project ${projectId}` +
          `${location ? `, location ${location}` : ''}.`,
      );
    }
    this.refresh(job);
    return job.record;
  }

  list(projectId: string, location: string | undefined, filter: ListFilter): JobRecord[] {
    return [...this.jobs.values()]
      .map((job) => {
        this.refresh(job);
        return job.record;
      })
      .filter((r) => r.projectId === projectId && (!location || r.location === location))
      .filter((r) => {
        if (filter === 'ACTIVE') return !isTerminal(r.currentState);
        if (filter === 'TERMINATED') return isTerminal(r.currentState);
        return true;
      })
      .sort((a, b) => b.createTime.localeCompare(a.createTime) || b.id.localeCompare(a.id));
  }

  metrics(id: string): PipelineMetrics | undefined {
    return this.store.readMetrics(id);
  }

  /** Drain or cancel, as `jobs.update` with `requestedState` asks. */
  async requestState(
    projectId: string,
    location: string | undefined,
    id: string,
    requested: JobState,
  ): Promise<JobRecord> {
    const record = this.get(projectId, location, id);
    const job = this.jobs.get(id) as LiveJob;
    if (requested === 'JOB_STATE_CANCELLED') {
      if (isTerminal(record.currentState)) throw this.finished(record, 'cancelled');
      record.requestedState = requested;
      addMessage(record, 'Cancelling the job: stopping its process.', 'JOB_MESSAGE_BASIC');
      const supervisor = job.supervisor;
      job.supervisor = undefined;
      await supervisor?.stop('SIGTERM', this.options.cancelGraceMs ?? 5_000);
      setState(record, 'JOB_STATE_CANCELLED');
      addMessage(record, 'The job was cancelled.', 'JOB_MESSAGE_BASIC');
      this.store.save(record);
      return record;
    }
    if (requested === 'JOB_STATE_DRAINED') {
      if (record.currentState === 'JOB_STATE_DRAINING') return record;
      if (isTerminal(record.currentState)) throw this.finished(record, 'drained');
      record.requestedState = requested;
      setState(record, 'JOB_STATE_DRAINING');
      addMessage(
        record,
        'Draining the job: no more messages are read; those in flight are written and acked.',
        'JOB_MESSAGE_BASIC',
      );
      this.store.save(record);
      const supervisor = job.supervisor;
      void (async () => {
        await supervisor?.stop('SIGTERM', this.options.drainGraceMs ?? 120_000);
        if (job.supervisor === supervisor) job.supervisor = undefined;
        if (record.currentState !== 'JOB_STATE_DRAINING') return;
        setState(record, 'JOB_STATE_DRAINED');
        addMessage(record, 'The job drained.', 'JOB_MESSAGE_BASIC');
        this.store.save(record);
      })();
      return record;
    }
    throw invalidArgument(
      `The local Dataflow service can only drain (JOB_STATE_DRAINED) or cancel ` +
        `(JOB_STATE_CANCELLED) a job, not move it to ${requested}.`,
    );
  }

  /** Lines for `local status`, and the memory of the jobs' processes. */
  summary(): { jobs: { record: JobRecord; metrics?: PipelineMetrics }[]; memoryBytes: number } {
    let memoryBytes = 0;
    const jobs = [...this.jobs.values()].map((job) => {
      this.refresh(job);
      memoryBytes += job.supervisor?.memoryBytes() ?? 0;
      const metrics = this.store.readMetrics(job.record.id);
      return { record: job.record, ...(metrics ? { metrics } : {}) };
    });
    return { jobs, memoryBytes };
  }

  /** The job's child process id, for tests that make it crash. */
  pidOf(id: string): number | undefined {
    return this.jobs.get(id)?.supervisor?.pid;
  }

  private findTemplate(request: LaunchRequest): TemplateDefinition {
    const path = request.templatePath.trim();
    const field = request.kind === 'flex' ? 'containerSpecGcsPath' : 'gcsPath';
    if (!path) {
      throw invalidArgument(
        `The launch request needs ${field}. The local Dataflow service runs these templates: ` +
          `${describeSupported(request.kind, request.location)}.`,
      );
    }
    const template = this.templates.find((t) => t.kind === request.kind && t.path.test(path));
    if (template) return template;
    const other = findTemplate(request.kind === 'flex' ? 'classic' : 'flex', path);
    const hint = other
      ? ` ${path} is a ${other.kind === 'flex' ? 'Flex' : 'classic'} template: launch it with ` +
        `${other.kind === 'flex' ? 'flexTemplates:launch' : 'templates:launch'}.`
      : '';
    throw invalidArgument(
      `The template ${path} is not one the local Dataflow service can run.${hint} Supported ` +
        `${request.kind === 'flex' ? 'Flex' : 'classic'} templates: ` +
        `${describeSupported(request.kind, request.location)}.`,
    );
  }

  private finished(record: JobRecord, verb: string): ApiError {
    return new ApiError(
      'FAILED_PRECONDITION',
      `(${record.id}): The job is already in state ${record.currentState} and cannot be ${verb}.`,
    );
  }

  private spawn(job: LiveJob): void {
    const record = job.record;
    const template = this.templates.find((t) => t.name === record.templateName);
    if (!template) {
      setState(record, 'JOB_STATE_FAILED');
      addMessage(
        record,
        `Template ${record.templateName} is no longer known.`,
        'JOB_MESSAGE_ERROR',
      );
      this.store.save(record);
      return;
    }
    const target = {
      kind: 'local' as const,
      projectId: record.projectId,
      region: record.location,
      local: { api: this.options.endpoint, pubsub: this.options.pubsubHost },
    };
    const supervisor = new Supervisor({
      name: `dataflow job ${record.name}`,
      command: process.execPath,
      args: [template.program],
      env: {
        ...localEnvironment(target),
        CYMBAL_LAB_REGION: record.location,
        [PIPELINE_ENV.parameters]: JSON.stringify(record.parameters),
        [PIPELINE_ENV.metricsFile]: this.store.metricsFileOf(record.id),
        [PIPELINE_ENV.jobId]: record.id,
        [PIPELINE_ENV.jobName]: record.name,
      },
      logFile: this.store.logFileOf(record.id),
      restart: { initialDelayMs: 250, maxDelayMs: 10_000, maxRestarts: 10 },
      log: this.log,
    });
    supervisor.on('exit', (info) => this.onExit(job, supervisor, info));
    supervisor.on('failed', () => {
      setState(record, 'JOB_STATE_FAILED');
      addMessage(
        record,
        `The job's process kept exiting; gave up after ${supervisor.restarts} restarts. ` +
          `See ${supervisor.logFile}.`,
        'JOB_MESSAGE_ERROR',
      );
      this.store.save(record);
    });
    job.supervisor = supervisor;
    supervisor.start().catch((error: unknown) => {
      setState(record, 'JOB_STATE_FAILED');
      addMessage(
        record,
        `The job's process did not start: ${errorMessage(error)}`,
        'JOB_MESSAGE_ERROR',
      );
      this.store.save(record);
    });
  }

  private onExit(job: LiveJob, supervisor: Supervisor, info: ExitInfo): void {
    if (info.expected) return;
    const record = job.record;
    if (info.code === EXIT_FAILED) {
      // The pipeline explained why it cannot run; restarting would fail the same way.
      queueMicrotask(() => void supervisor.stop());
      if (job.supervisor === supervisor) job.supervisor = undefined;
      const reason = this.store.readMetrics(record.id)?.failure ?? `see ${supervisor.logFile}`;
      setState(record, 'JOB_STATE_FAILED');
      addMessage(record, `Workflow failed. Causes: ${reason}`, 'JOB_MESSAGE_ERROR');
      this.store.save(record);
      this.log.warn('dataflow job %s failed: %s', record.name, reason);
      return;
    }
    const how = info.signal ? `signal ${info.signal}` : `code ${info.code}`;
    addMessage(
      record,
      `The job's process exited unexpectedly (${how}); it is restarted and resumes from the ` +
        'messages not yet acknowledged.',
      'JOB_MESSAGE_WARNING',
    );
    this.store.save(record);
  }

  private refreshAll(): void {
    for (const job of this.jobs.values()) this.refresh(job);
  }

  /** PENDING becomes RUNNING once the pipeline reports that it reads its source. */
  private refresh(job: LiveJob): void {
    const record = job.record;
    if (record.currentState !== 'JOB_STATE_PENDING') return;
    const metrics = this.store.readMetrics(record.id);
    if (metrics?.state === 'running') {
      setState(record, 'JOB_STATE_RUNNING');
      addMessage(record, 'The job is running.', 'JOB_MESSAGE_BASIC');
      this.store.save(record);
    }
  }
}
