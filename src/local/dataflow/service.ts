import { join } from 'node:path';

import type { LocalRequest, Reply, Route } from '../http.js';
import { ApiError, invalidArgument } from '../http.js';
import type { LocalCloud, LocalService, ServiceStatus } from '../service.js';
import type { ListFilter } from './engine.js';
import { DataflowEngine } from './engine.js';
import type { JobRecord, RenderOptions } from './jobs.js';
import { parseJobState, renderJob, renderMessage } from './jobs.js';
import type { PipelineMetrics } from './protocol.js';
import type { TemplateDefinition } from './templates.js';

/**
 * Dataflow v1b3 over REST, as the official `@google-cloud/dataflow` clients call it with
 * `fallback: true`: classic and Flex template launches, jobs get, list and update (drain and
 * cancel), job messages and job metrics. Enums arrive as numbers (`enum-encoding=int`) or names
 * and are answered the way the request asked.
 */

const DEFAULT_LOCATION = 'us-central1';
const PROJECT = '^/v1b3/projects/(?<project>[^/]+)';
const LOCATION = '(?:/locations/(?<location>[^/]+))?';
const JOB = '/jobs/(?<job>[^/:]+)';

export interface DataflowServiceOptions {
  templates?: TemplateDefinition[];
  drainGraceMs?: number;
  cancelGraceMs?: number;
}

export function dataflowService(cloud: LocalCloud): LocalService {
  return createDataflowService(cloud);
}

export interface DataflowService extends LocalService {
  readonly engine: DataflowEngine;
}

export function createDataflowService(
  cloud: LocalCloud,
  options: DataflowServiceOptions = {},
): DataflowService {
  const engine = new DataflowEngine({
    dataDir: cloud.dataDir,
    endpoint: cloud.endpoint,
    pubsubHost: cloud.pubsubHost,
    log: cloud.log.child('dataflow'),
    ...options,
  });

  const launchClassic = (request: LocalRequest): Reply => {
    const body = request.json<LaunchParameters>();
    const job = engine.launch({
      kind: 'classic',
      projectId: request.params.project ?? '',
      location: request.params.location ?? body.location ?? DEFAULT_LOCATION,
      templatePath: request.query.get('gcsPath') ?? request.query.get('gcs_path') ?? '',
      jobName: body.jobName ?? '',
      parameters: strings(body.parameters),
      labels: strings(body.environment?.additionalUserLabels),
      validateOnly: isTrue(request.query.get('validateOnly') ?? request.query.get('validate_only')),
    });
    return { json: { job: jobJson(job, request) } };
  };

  const launchFlex = (request: LocalRequest): Reply => {
    const body = request.json<{ launchParameter?: FlexParameters; validateOnly?: boolean }>();
    const launch = body.launchParameter ?? {};
    if (launch.containerSpec && !launch.containerSpecGcsPath) {
      throw invalidArgument(
        'The local Dataflow service launches Flex templates by containerSpecGcsPath only; ' +
          'an inline containerSpec is not supported.',
      );
    }
    const job = engine.launch({
      kind: 'flex',
      projectId: request.params.project ?? '',
      location: request.params.location ?? DEFAULT_LOCATION,
      templatePath: launch.containerSpecGcsPath ?? '',
      jobName: launch.jobName ?? '',
      parameters: strings(launch.parameters),
      labels: strings(launch.environment?.additionalUserLabels),
      validateOnly: body.validateOnly === true || isTrue(request.query.get('validateOnly')),
    });
    return { json: { job: jobJson(job, request) } };
  };

  const jobJson = (job: JobRecord, request: LocalRequest): Record<string, unknown> => {
    if (!job.id) return { name: job.name, projectId: job.projectId, location: job.location };
    return renderJob(job, engine.metrics(job.id), renderOptions(request));
  };

  const routes: Route[] = [
    {
      method: 'POST',
      path: new RegExp(`${PROJECT}${LOCATION}/templates:launch$`),
      handler: answer(launchClassic),
    },
    {
      method: 'POST',
      path: new RegExp(`${PROJECT}/locations/(?<location>[^/]+)/flexTemplates:launch$`),
      handler: answer(launchFlex),
    },
    {
      method: 'GET',
      path: new RegExp(`${PROJECT}(?:${LOCATION}/jobs|/jobs:aggregated)$`),
      handler: answer((request) => {
        const filter = listFilter(request.query.get('filter'));
        const all = engine.list(request.params.project ?? '', request.params.location, filter);
        const pageSize = Math.max(0, Number(request.query.get('pageSize') ?? 0)) || 100;
        const start = Number(request.query.get('pageToken') ?? 0) || 0;
        const page = all.slice(start, start + pageSize);
        const next = start + pageSize < all.length ? String(start + pageSize) : undefined;
        return {
          json: {
            jobs: page.map((job) => jobJson(job, request)),
            ...(next ? { nextPageToken: next } : {}),
          },
        };
      }),
    },
    {
      method: 'POST',
      path: new RegExp(`${PROJECT}${LOCATION}/jobs$`),
      handler: answer(() => {
        throw invalidArgument(
          'The local Dataflow service runs jobs from Google-provided templates only: launch ' +
            'one with templates:launch or flexTemplates:launch instead of creating a job.',
        );
      }),
    },
    {
      method: 'GET',
      path: new RegExp(`${PROJECT}${LOCATION}${JOB}$`),
      handler: answer((request) => {
        const { project = '', location, job = '' } = request.params;
        return { json: jobJson(engine.get(project, location, job), request) };
      }),
    },
    {
      method: 'PUT',
      path: new RegExp(`${PROJECT}${LOCATION}${JOB}$`),
      handler: answer(async (request) => {
        const { project = '', location, job = '' } = request.params;
        const body = request.json<{ requestedState?: unknown }>();
        const requested = parseJobState(body.requestedState);
        if (!requested || requested === 'JOB_STATE_UNKNOWN') {
          throw invalidArgument(
            'Set requestedState to JOB_STATE_CANCELLED to cancel the job or ' +
              'JOB_STATE_DRAINED to drain it; other updates are not supported locally.',
          );
        }
        const record = await engine.requestState(project, location, job, requested);
        return { json: jobJson(record, request) };
      }),
    },
    {
      method: 'GET',
      path: new RegExp(`${PROJECT}${LOCATION}${JOB}/messages$`),
      handler: answer((request) => {
        const { project = '', location, job = '' } = request.params;
        const record = engine.get(project, location, job);
        const options = renderOptions(request);
        return { json: { jobMessages: record.messages.map((m) => renderMessage(m, options)) } };
      }),
    },
    {
      method: 'GET',
      path: new RegExp(`${PROJECT}${LOCATION}${JOB}/metrics$`),
      handler: answer((request) => {
        const { project = '', location, job = '' } = request.params;
        const record = engine.get(project, location, job);
        return { json: metricsJson(engine.metrics(record.id)) };
      }),
    },
  ];

  return {
    name: 'dataflow',
    routes,
    engine,
    start() {
      engine.start();
      return Promise.resolve();
    },
    async stop() {
      await engine.stop();
    },
    status(): Promise<ServiceStatus> {
      const { jobs, memoryBytes } = engine.summary();
      return Promise.resolve({
        name: 'dataflow',
        endpoint: `${cloud.endpoint}/v1b3`,
        state: 'running',
        detail: `jobs run as local processes; logs under ${join(engine.store.root, 'JOB_ID')}`,
        resources: jobs.map(({ record, metrics }) => ({
          kind: 'job',
          name: record.name,
          detail: describeJob(record, metrics),
        })),
        childMemoryBytes: memoryBytes,
      });
    },
  };
}

interface LaunchParameters {
  jobName?: string;
  parameters?: Record<string, unknown>;
  environment?: { additionalUserLabels?: Record<string, unknown> };
  location?: string;
}

interface FlexParameters extends LaunchParameters {
  containerSpecGcsPath?: string;
  containerSpec?: unknown;
}

/**
 * A synchronous handler as a route handler. An ApiError is answered as `google.rpc.Status` JSON
 * (`code`, `message`, `status`): the gax clients decode the error body as that message, and the
 * JSON APIs' extra `errors` list would make them fail to read the status.
 */
function answer(handle: (request: LocalRequest) => Reply | Promise<Reply>): Route['handler'] {
  return (request) =>
    Promise.resolve()
      .then(() => handle(request))
      .catch((error: unknown) => {
        if (!(error instanceof ApiError)) throw error;
        return {
          status: error.httpStatus,
          json: { error: { code: error.httpStatus, message: error.message, status: error.status } },
        };
      });
}

function strings(map: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(map ?? {})) {
    if (typeof value === 'string') out[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') out[key] = String(value);
  }
  return out;
}

function isTrue(value: string | null): boolean {
  return value === 'true' || value === '1';
}

function renderOptions(request: LocalRequest): RenderOptions {
  return { numericEnums: /enum-encoding=int/.test(request.query.get('$alt') ?? '') };
}

/** `ListJobsRequest.Filter`: a name or its number (UNKNOWN and ALL list every job). */
function listFilter(value: string | null): ListFilter {
  switch (value) {
    case 'ACTIVE':
    case '3':
      return 'ACTIVE';
    case 'TERMINATED':
    case '2':
      return 'TERMINATED';
    default:
      return 'ALL';
  }
}

function metricsJson(metrics: PipelineMetrics | undefined): Record<string, unknown> {
  const metricTime = metrics?.updatedAt ?? new Date().toISOString();
  if (!metrics) return { metricTime, metrics: [] };
  const scalar = (name: string, value: number, cumulative = true) => ({
    name: { origin: 'dataflow/v1b3', name, context: {} },
    kind: 'Sum',
    cumulative,
    scalar: value,
    updateTime: metricTime,
  });
  return {
    metricTime,
    metrics: [
      scalar('ElementsRead', metrics.elementsRead),
      scalar('ElementsWritten', metrics.elementsWritten),
      scalar('DeadLettered', metrics.deadLettered),
      scalar('Dropped', metrics.dropped),
      scalar('ElementsInFlight', metrics.inFlight, false),
      scalar('ThroughputPerSecond', metrics.writtenPerSecond, false),
      scalar('SystemLagMillis', metrics.systemLagMs, false),
      scalar('LatencyP50Millis', metrics.latencyP50Ms, false),
      scalar('LatencyP99Millis', metrics.latencyP99Ms, false),
    ],
  };
}

function describeJob(record: JobRecord, metrics: PipelineMetrics | undefined): string {
  const state = record.currentState.replace('JOB_STATE_', '');
  if (!metrics) return `${state}, ${record.templateName}`;
  return (
    `${state}, ${metrics.writtenPerSecond} rows/s, ${metrics.elementsWritten} written, ` +
    `${metrics.deadLettered} dead-lettered, backlog ${metrics.inFlight} in flight, ` +
    `lag ${(metrics.systemLagMs / 1000).toFixed(1)} s`
  );
}
