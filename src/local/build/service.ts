import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from '../../log.js';
import type { ArtifactRegistryService } from '../artifactregistry/service.js';
import { ARTIFACT_REGISTRY_SERVICE } from '../artifactregistry/service.js';
import type { LocalRequest, Reply, Route } from '../http.js';
import { ApiError, invalidArgument, notFound } from '../http.js';
import type { AnyJson, OperationHandle } from '../operations.js';
import { operationStore, packAny } from '../operations.js';
import type { LocalCloud, LocalService, ServiceStatus } from '../service.js';
import type { StorageService } from '../storage/service.js';
import { STORAGE_SERVICE } from '../storage/service.js';
import { tailOfFile } from '../supervisor.js';
import type { BuildStepJson } from './runner.js';
import {
  BuildFailure,
  dockerAnswers,
  dockerTags,
  executeBuild,
  isDockerBuildStep,
  messageOf,
} from './runner.js';

/**
 * Cloud Build v1: createBuild (a long-running operation), getBuild, listBuilds and cancelBuild,
 * for builds of a source archive in Cloud Storage, as `gcloud builds submit` makes them. Builds
 * run one at a time, QUEUED then WORKING then SUCCESS or FAILURE (or CANCELLED, TIMEOUT); each
 * keeps its log in `build/logs/ID.log`, and a failed build shows the end of it in
 * `statusDetail`. What a build does is in runner.ts.
 */

export const BUILD_SERVICE = 'build';

const TYPE = 'google.devtools.cloudbuild.v1';
const DEFAULT_TIMEOUT_S = 600;
const LOG_TAIL_LINES = 15;

type Status =
  'QUEUED' | 'WORKING' | 'SUCCESS' | 'FAILURE' | 'INTERNAL_ERROR' | 'TIMEOUT' | 'CANCELLED';

export interface BuildJson {
  name: string;
  id: string;
  projectId: string;
  status: Status;
  statusDetail?: string;
  source: { storageSource: { bucket: string; object: string; generation?: string } };
  steps: BuildStepJson[];
  images: string[];
  results?: { images: Array<{ name: string; digest: string }> };
  createTime: string;
  startTime?: string;
  finishTime?: string;
  timeout: string;
  logUrl: string;
  logsBucket?: string;
  substitutions?: Record<string, string>;
  tags?: string[];
  failureInfo?: { type: string; detail: string };
}

interface Job {
  build: BuildJson;
  operation: OperationHandle;
  abort: AbortController;
  /** Set when a cancel or the timeout stopped the build. */
  stoppedAs?: 'CANCELLED' | 'TIMEOUT';
}

export class BuildService implements LocalService {
  readonly name = BUILD_SERVICE;
  readonly routes: Route[];
  private readonly root: string;
  private readonly log: Logger;
  private readonly builds = new Map<string, BuildJson>();
  private readonly jobs = new Map<string, Job>();
  private queue: Promise<void> = Promise.resolve();
  private docker: Promise<boolean> | undefined;

  constructor(private readonly cloud: LocalCloud) {
    this.root = join(cloud.dataDir, BUILD_SERVICE);
    this.log = cloud.log.child(BUILD_SERVICE);
    this.routes = this.makeRoutes();
  }

  start(): Promise<void> {
    mkdirSync(join(this.root, 'logs'), { recursive: true });
    const file = join(this.root, 'builds.json');
    if (existsSync(file)) {
      for (const build of JSON.parse(readFileSync(file, 'utf8')) as BuildJson[]) {
        if (build.status === 'QUEUED' || build.status === 'WORKING') {
          // The process that ran it is gone; say so rather than show it running forever.
          build.status = 'INTERNAL_ERROR';
          build.statusDetail = 'The local cloud stopped while this build ran; submit it again.';
          build.finishTime = new Date().toISOString();
        }
        this.builds.set(build.id, build);
      }
    }
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    for (const job of this.jobs.values()) {
      job.stoppedAs = 'CANCELLED';
      job.abort.abort();
    }
    await this.queue;
    await this.save();
  }

  status(): Promise<ServiceStatus> {
    const recent = [...this.builds.values()].slice(-5).reverse();
    return Promise.resolve({
      name: this.name,
      endpoint: `${this.cloud.endpoint}/v1`,
      state: 'running',
      detail: `${this.builds.size} build(s), ${this.jobs.size} queued or running`,
      resources: recent.map((b) => ({
        kind: 'build',
        name: b.id,
        detail: `${b.status}${b.images.length ? ` ${b.images.join(', ')}` : ''}`,
      })),
    });
  }

  /** A build by id, for tests and `local status`. */
  getBuild(id: string): BuildJson {
    const build = this.builds.get(id);
    if (!build) throw notFound(`Build ${id} was not found.`);
    return build;
  }

  private makeRoutes(): Route[] {
    const project = 'projects/(?<project>[^/]+)';
    const located = 'projects/(?<project>[^/]+)/locations/(?<location>[^/]+)';
    return [
      {
        method: 'POST',
        path: new RegExp(`^/v1/${project}/builds$`),
        handler: (r) => this.create(r),
      },
      {
        method: 'POST',
        path: new RegExp(`^/v1/${located}/builds$`),
        handler: (r) => this.create(r),
      },
      { method: 'GET', path: new RegExp(`^/v1/${project}/builds$`), handler: (r) => this.list(r) },
      { method: 'GET', path: new RegExp(`^/v1/${located}/builds$`), handler: (r) => this.list(r) },
      ...[project, located].flatMap((prefix): Route[] => [
        {
          method: 'GET',
          path: new RegExp(`^/v1/${prefix}/builds/(?<id>[^/:]+)$`),
          handler: (r) => this.get(r),
        },
        {
          method: 'POST',
          path: new RegExp(`^/v1/${prefix}/builds/(?<id>[^/:]+):cancel$`),
          handler: (r) => this.cancel(r),
        },
      ]),
    ];
  }

  private create(request: LocalRequest): Promise<Reply> {
    const projectId = request.params.project ?? '';
    const location = request.params.location ?? 'global';
    const body = request.json<Partial<BuildJson> & { substitutions?: Record<string, string> }>();
    const storageSource = body.source?.storageSource;
    if (!storageSource?.bucket || !storageSource.object) {
      throw invalidArgument(
        'The build needs source.storageSource {bucket, object}: a tar archive of the source ' +
          'in Cloud Storage, as `gcloud builds submit` uploads. Other sources are not available locally.',
      );
    }
    const steps = body.steps ?? [];
    if (steps.length === 0) {
      throw invalidArgument(
        'The build has no steps; add a `docker build` step, as `gcloud builds submit --tag` does.',
      );
    }
    const id = randomUUID();
    const substitute = substitution({
      ...(body.substitutions ?? {}),
      PROJECT_ID: projectId,
      BUILD_ID: id,
      LOCATION: location,
    });
    const resolvedSteps = steps.map((step) => ({
      ...step,
      name: substitute(step.name),
      args: (step.args ?? []).map(substitute),
      status: 'QUEUED',
    }));
    const images = [
      ...new Set([
        ...(body.images ?? []).map(substitute),
        ...resolvedSteps.filter(isDockerBuildStep).flatMap(dockerTags),
      ]),
    ];
    const timeoutSeconds = body.timeout ? Number.parseFloat(body.timeout) : DEFAULT_TIMEOUT_S;
    const build: BuildJson = {
      name: `projects/${projectId}/locations/${location}/builds/${id}`,
      id,
      projectId,
      status: 'QUEUED',
      source: { storageSource },
      steps: resolvedSteps,
      images,
      createTime: new Date().toISOString(),
      timeout: `${Number.isFinite(timeoutSeconds) ? timeoutSeconds : DEFAULT_TIMEOUT_S}s`,
      logUrl: `file://${this.logFile(id)}`,
      ...(body.logsBucket ? { logsBucket: body.logsBucket } : {}),
      ...(body.substitutions ? { substitutions: body.substitutions } : {}),
      ...(body.tags ? { tags: body.tags } : {}),
    };
    this.builds.set(id, build);
    const operation = operationStore(this.cloud).begin({
      name:
        location === 'global'
          ? `operations/build/${projectId}/${Buffer.from(id).toString('base64url')}`
          : `projects/${projectId}/locations/${location}/operations/${id}`,
      metadata: this.metadata(build),
      onCancel: () => this.stopJob(id, 'CANCELLED'),
    });
    const job: Job = { build, operation, abort: new AbortController() };
    this.jobs.set(id, job);
    this.queue = this.queue.then(() => this.runJob(job));
    void this.save();
    return Promise.resolve({ json: operationStore(this.cloud).get(operation.name) });
  }

  private get(request: LocalRequest): Promise<Reply> {
    const build = this.getBuild(request.params.id ?? '');
    if (build.projectId !== request.params.project)
      throw notFound(`Build ${build.id} was not found.`);
    return Promise.resolve({ json: build });
  }

  private list(request: LocalRequest): Promise<Reply> {
    const project = request.params.project ?? '';
    const location = request.params.location;
    const all = [...this.builds.values()]
      .filter(
        (b) => b.projectId === project && (!location || b.name.includes(`/locations/${location}/`)),
      )
      .reverse();
    const pageSize = Math.min(Number(request.query.get('pageSize')) || 50, 1000);
    const start = Number(request.query.get('pageToken') ?? 0) || 0;
    const builds = all.slice(start, start + pageSize);
    const next = start + pageSize < all.length ? { nextPageToken: String(start + pageSize) } : {};
    return Promise.resolve({ json: { builds, ...next } });
  }

  private cancel(request: LocalRequest): Promise<Reply> {
    const build = this.getBuild(request.params.id ?? '');
    this.stopJob(build.id, 'CANCELLED');
    return Promise.resolve({ json: build });
  }

  private stopJob(id: string, as: 'CANCELLED' | 'TIMEOUT'): void {
    const job = this.jobs.get(id);
    if (!job) return;
    job.stoppedAs = as;
    job.abort.abort();
    if (job.build.status === 'QUEUED')
      this.finish(job, as, `Build ${as === 'CANCELLED' ? 'cancelled' : 'timed out'}.`);
  }

  private async runJob(job: Job): Promise<void> {
    const { build } = job;
    if (build.status !== 'QUEUED') return;
    build.status = 'WORKING';
    build.startTime = new Date().toISOString();
    job.operation.setMetadata(this.metadata(build));
    void this.save();
    const timeoutMs = Number.parseFloat(build.timeout) * 1000;
    const timer = setTimeout(() => this.stopJob(build.id, 'TIMEOUT'), timeoutMs);
    const workDir = join(this.root, 'work', build.id);
    try {
      this.docker ??= dockerAnswers();
      const output = await executeBuild(
        {
          id: build.id,
          source: build.source.storageSource,
          steps: build.steps,
          images: build.images,
        },
        {
          storage: this.cloud.service<StorageService>(STORAGE_SERVICE),
          artifacts: this.cloud.service<ArtifactRegistryService>(ARTIFACT_REGISTRY_SERVICE),
          docker: await this.docker,
          workDir,
          logFile: this.logFile(build.id),
          signal: job.abort.signal,
          onStep: (index, status) => {
            const step = build.steps[index];
            if (step) step.status = status;
            job.operation.setMetadata(this.metadata(build));
          },
        },
      );
      if (job.stoppedAs) throw new Error('stopped');
      build.results = { images: output.images };
      this.finish(job, 'SUCCESS');
    } catch (error) {
      if (job.stoppedAs) {
        this.finish(
          job,
          job.stoppedAs,
          job.stoppedAs === 'TIMEOUT'
            ? `Build timed out after ${build.timeout}.`
            : 'Build cancelled.',
        );
      } else {
        const failure = error instanceof BuildFailure ? error : undefined;
        if (!failure)
          this.log.error('build %s failed unexpectedly: %s', build.id, messageOf(error));
        const tail = tailOfFile(this.logFile(build.id), LOG_TAIL_LINES);
        build.failureInfo = {
          type: failure?.type ?? 'FAILURE_TYPE_UNSPECIFIED',
          detail: messageOf(error),
        };
        this.finish(
          job,
          failure ? 'FAILURE' : 'INTERNAL_ERROR',
          `${messageOf(error)}\nLog tail:\n${tail}`,
        );
      }
    } finally {
      clearTimeout(timer);
      await rm(workDir, { recursive: true, force: true });
    }
  }

  private finish(job: Job, status: Status, detail?: string): void {
    const { build } = job;
    if (!this.jobs.has(build.id)) return;
    this.jobs.delete(build.id);
    build.status = status;
    if (detail) build.statusDetail = detail;
    build.finishTime = new Date().toISOString();
    for (const step of build.steps)
      if (step.status === 'QUEUED' || step.status === 'WORKING')
        step.status = status === 'SUCCESS' ? 'SUCCESS' : 'CANCELLED';
    void this.save();
    const metadata = this.metadata(build);
    if (status === 'SUCCESS') {
      job.operation.succeed(packAny(`${TYPE}.Build`, build), metadata);
      return;
    }
    const code =
      status === 'CANCELLED' ? 'CANCELLED' : status === 'TIMEOUT' ? 'DEADLINE_EXCEEDED' : 'UNKNOWN';
    job.operation.fail(
      new ApiError(
        code,
        `Build ${build.id} completed with status ${status}: ${detail ?? ''}`.trim(),
      ),
      metadata,
    );
  }

  private metadata(build: BuildJson): AnyJson {
    return packAny(`${TYPE}.BuildOperationMetadata`, { build: structuredClone(build) });
  }

  private logFile(id: string): string {
    return join(this.root, 'logs', `${id}.log`);
  }

  private async save(): Promise<void> {
    const file = join(this.root, 'builds.json');
    const temporary = `${file}.${randomUUID()}.tmp`;
    try {
      await writeFile(temporary, JSON.stringify([...this.builds.values()]));
      await rename(temporary, file);
    } catch (error) {
      this.log.warn('could not save the builds: %s', messageOf(error));
    }
  }
}

/** Cloud Build's substitutions: `$NAME` and `${NAME}` for the built-in and user variables. */
function substitution(values: Record<string, string>): (text: string) => string {
  return (text) =>
    text.replace(
      /\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))/g,
      (whole, braced?: string, bare?: string) => {
        const value = values[braced ?? bare ?? ''];
        return value ?? whole;
      },
    );
}

export const buildFactory = (cloud: LocalCloud): LocalService => new BuildService(cloud);
