import { randomInt } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

import type { PipelineMetrics } from './protocol.js';
import type { TemplateIo, TemplateKind } from './templates.js';

/**
 * A Dataflow job as the local service keeps it: one JSON file per job under
 * `dataDir/dataflow/jobs/ID/job.json`, next to the job's log and metrics, and its rendering in
 * the v1b3 API's shape (`google.dataflow.v1beta3.Job`).
 */

/** `google.dataflow.v1beta3.JobState`, in enum order: a name's index is its number. */
export const JOB_STATES = [
  'JOB_STATE_UNKNOWN',
  'JOB_STATE_STOPPED',
  'JOB_STATE_RUNNING',
  'JOB_STATE_DONE',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLED',
  'JOB_STATE_UPDATED',
  'JOB_STATE_DRAINING',
  'JOB_STATE_DRAINED',
  'JOB_STATE_PENDING',
  'JOB_STATE_CANCELLING',
  'JOB_STATE_QUEUED',
  'JOB_STATE_RESOURCE_CLEANING_UP',
  'JOB_STATE_PAUSING',
  'JOB_STATE_PAUSED',
] as const;

export type JobState = (typeof JOB_STATES)[number];

const TERMINAL: ReadonlySet<JobState> = new Set<JobState>([
  'JOB_STATE_DONE',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLED',
  'JOB_STATE_UPDATED',
  'JOB_STATE_DRAINED',
]);

export function isTerminal(state: JobState): boolean {
  return TERMINAL.has(state);
}

/** A state from a request: its name or its enum number (gax clients send numbers). */
export function parseJobState(value: unknown): JobState | undefined {
  if (typeof value === 'number') return JOB_STATES[value];
  if (typeof value === 'string') {
    if (/^\d+$/.test(value)) return JOB_STATES[Number(value)];
    return JOB_STATES.find((s) => s === value);
  }
  return undefined;
}

/** `google.dataflow.v1beta3.JobMessageImportance`. */
const IMPORTANCE = {
  JOB_MESSAGE_DEBUG: 1,
  JOB_MESSAGE_DETAILED: 2,
  JOB_MESSAGE_BASIC: 5,
  JOB_MESSAGE_WARNING: 3,
  JOB_MESSAGE_ERROR: 4,
} as const;

export type Importance = keyof typeof IMPORTANCE;

export interface JobMessage {
  id: string;
  time: string;
  messageText: string;
  messageImportance: Importance;
}

export interface JobRecord {
  id: string;
  projectId: string;
  location: string;
  name: string;
  templateName: string;
  templateKind: TemplateKind;
  templatePath: string;
  parameters: Record<string, string>;
  io: TemplateIo;
  labels: Record<string, string>;
  currentState: JobState;
  currentStateTime: string;
  requestedState?: JobState;
  createTime: string;
  startTime: string;
  messages: JobMessage[];
}

const MAX_MESSAGES = 200;

export function addMessage(job: JobRecord, text: string, importance: Importance): void {
  const time = new Date().toISOString();
  job.messages.push({
    id: `${Date.now()}${job.messages.length}`,
    time,
    messageText: text,
    messageImportance: importance,
  });
  if (job.messages.length > MAX_MESSAGES)
    job.messages.splice(0, job.messages.length - MAX_MESSAGES);
}

export function setState(job: JobRecord, state: JobState): void {
  if (job.currentState === state) return;
  job.currentState = state;
  job.currentStateTime = new Date().toISOString();
}

/** A job id in Dataflow's format: `2026-12-03_05_14_42-7418269011541866123`. */
export function newJobId(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${now.getUTCFullYear()}-${pad(now.getUTCMonth() + 1)}-${pad(now.getUTCDate())}_` +
    `${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}`;
  const digits = `${randomInt(1, 10)}${String(randomInt(0, 1e9)).padStart(9, '0')}${String(
    randomInt(0, 1e9),
  ).padStart(9, '0')}`;
  return `${stamp}-${digits}`;
}

/** Dataflow's rule for job names. */
export const JOB_NAME = /^[a-z]([-a-z0-9]{0,1022}[a-z0-9])?$/;

export class JobStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'dataflow', 'jobs');
    mkdirSync(this.root, { recursive: true });
  }

  dirOf(id: string): string {
    return join(this.root, id);
  }

  logFileOf(id: string): string {
    return join(this.dirOf(id), 'job.log');
  }

  metricsFileOf(id: string): string {
    return join(this.dirOf(id), 'metrics.json');
  }

  save(job: JobRecord): void {
    const dir = this.dirOf(job.id);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'job.json');
    writeFileSync(`${file}.tmp`, `${JSON.stringify(job, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
  }

  loadAll(): JobRecord[] {
    const jobs: JobRecord[] = [];
    for (const id of readdirSync(this.root)) {
      const file = join(this.root, id, 'job.json');
      if (!existsSync(file)) continue;
      try {
        jobs.push(JSON.parse(readFileSync(file, 'utf8')) as JobRecord);
      } catch {
        // A job file cut short by a crash describes nothing usable; leave it for inspection.
      }
    }
    return jobs;
  }

  readMetrics(id: string): PipelineMetrics | undefined {
    try {
      return JSON.parse(readFileSync(this.metricsFileOf(id), 'utf8')) as PipelineMetrics;
    } catch {
      return undefined;
    }
  }
}

/** Renders enums as names, or as numbers when the client asked for `enum-encoding=int`. */
export interface RenderOptions {
  numericEnums: boolean;
}

export function renderJob(
  job: JobRecord,
  metrics: PipelineMetrics | undefined,
  options: RenderOptions,
): Record<string, unknown> {
  const state = (s: JobState) => (options.numericEnums ? JOB_STATES.indexOf(s) : s);
  return {
    id: job.id,
    projectId: job.projectId,
    name: job.name,
    type: options.numericEnums ? 2 : 'JOB_TYPE_STREAMING',
    currentState: state(job.currentState),
    currentStateTime: job.currentStateTime,
    ...(job.requestedState ? { requestedState: state(job.requestedState) } : {}),
    createTime: job.createTime,
    startTime: job.startTime,
    location: job.location,
    labels: job.labels,
    jobMetadata: {
      sdkVersion: {
        version: 'local',
        versionDisplayName: `cymbal-lab local runner (${job.templateName})`,
        sdkSupportStatus: options.numericEnums ? 1 : 'SUPPORTED',
      },
      pubsubDetails: (job.io.pubsub ?? []).map((p) => ({
        ...(p.subscription ? { subscription: p.subscription } : {}),
        ...(p.topic ? { topic: p.topic } : {}),
      })),
      bigqueryDetails: (job.io.bigquery ?? []).map((b) => ({
        table: b.table,
        dataset: b.dataset,
        projectId: b.projectId,
      })),
      userDisplayProperties: displayMetrics(metrics),
    },
  };
}

/** Throughput and backlog as short strings, shown with the job. */
export function displayMetrics(metrics: PipelineMetrics | undefined): Record<string, string> {
  if (!metrics) return {};
  return {
    elementsRead: String(metrics.elementsRead),
    elementsWritten: String(metrics.elementsWritten),
    deadLettered: String(metrics.deadLettered),
    dropped: String(metrics.dropped),
    throughput: `${metrics.writtenPerSecond} rows/s`,
    backlog: `${metrics.inFlight} messages in flight`,
    systemLag: `${(metrics.systemLagMs / 1000).toFixed(1)} s`,
    latency: `p50 ${metrics.latencyP50Ms} ms, p99 ${metrics.latencyP99Ms} ms`,
    metricsTime: metrics.updatedAt,
  };
}

export function renderMessage(
  message: JobMessage,
  options: RenderOptions,
): Record<string, unknown> {
  return {
    id: message.id,
    time: message.time,
    messageText: message.messageText,
    messageImportance: options.numericEnums
      ? IMPORTANCE[message.messageImportance]
      : message.messageImportance,
  };
}
