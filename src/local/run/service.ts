import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { localEnvironment } from '../../cloud/target.js';
import type { ImageRecord } from '../artifactregistry/registry.js';
import type { ArtifactRegistryService } from '../artifactregistry/service.js';
import { ARTIFACT_REGISTRY_SERVICE } from '../artifactregistry/service.js';
import type { LocalRequest, Reply, Route } from '../http.js';
import { ApiError, alreadyExists, invalidArgument, notFound } from '../http.js';
import type { OperationHandle } from '../operations.js';
import { operationStore, packAny } from '../operations.js';
import { freePort } from '../pubsub/emulator.js';
import type { LocalCloud, LocalService, ServiceStatus } from '../service.js';
import { Instance } from './instance.js';

/**
 * Cloud Run v2 services: create, get, list, update and delete (each change a long-running
 * operation), and the IAM policy calls `gcloud run services add-iam-policy-binding` makes. Every
 * service runs its latest revision as a child process (instance.ts) on a port of its own, kept
 * across updates and restarts so that its `uri` stays the same. Services that were serving when
 * the local cloud stopped are started again with it.
 */

export const RUN_SERVICE = 'run';

const SERVICE_TYPE = 'google.cloud.run.v2.Service';
const SERVICE_ID = /^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$/;
const INGRESS = [
  'INGRESS_TRAFFIC_UNSPECIFIED',
  'INGRESS_TRAFFIC_ALL',
  'INGRESS_TRAFFIC_INTERNAL_ONLY',
  'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER',
  'INGRESS_TRAFFIC_NONE',
];

interface Condition {
  type: string;
  state: 'CONDITION_PENDING' | 'CONDITION_RECONCILING' | 'CONDITION_FAILED' | 'CONDITION_SUCCEEDED';
  message?: string;
  lastTransitionTime: string;
  severity?: string;
  reason?: string;
  revisionReason?: string;
}

interface ContainerJson {
  name?: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  ports?: Array<{ name?: string; containerPort?: number }>;
  [field: string]: unknown;
}

export interface ServiceJson {
  name: string;
  uid: string;
  generation: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  createTime: string;
  updateTime: string;
  deleteTime?: string;
  creator: string;
  lastModifier: string;
  ingress: string;
  launchStage: string;
  template: { revision?: string; containers: ContainerJson[]; [field: string]: unknown };
  traffic: Array<Record<string, unknown>>;
  urls: string[];
  uri: string;
  observedGeneration: string;
  terminalCondition: Condition;
  conditions: Condition[];
  latestReadyRevision?: string;
  latestCreatedRevision: string;
  trafficStatuses: Array<Record<string, unknown>>;
  reconciling: boolean;
  etag: string;
  [field: string]: unknown;
}

interface Saved {
  service: ServiceJson;
  port: number;
  policy?: Record<string, unknown>;
  /** The revision and container that last became ready, to restart with the local cloud. */
  ready?: { revision: string; container: ContainerJson };
}

export class RunService implements LocalService {
  readonly name = RUN_SERVICE;
  readonly routes: Route[];
  private readonly root: string;
  private readonly log: Logger;
  private readonly services = new Map<string, Saved>();
  private readonly instances = new Map<string, Instance>();
  /** One change at a time per service: a deploy waits for the one before it. */
  private readonly changes = new Map<string, Promise<void>>();

  constructor(private readonly cloud: LocalCloud) {
    this.root = join(cloud.dataDir, RUN_SERVICE);
    this.log = cloud.log.child(RUN_SERVICE);
    this.routes = this.makeRoutes();
  }

  start(): Promise<void> {
    mkdirSync(join(this.root, 'logs'), { recursive: true });
    const file = join(this.root, 'services.json');
    if (existsSync(file)) {
      for (const saved of JSON.parse(readFileSync(file, 'utf8')) as Saved[]) {
        this.services.set(saved.service.name, saved);
        // Started in the background: the local cloud answers while the apps come up.
        if (saved.ready) this.enqueue(saved.service.name, () => this.resume(saved));
      }
    }
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.changes.values()]);
    await Promise.allSettled([...this.instances.values()].map((i) => i.stop()));
    this.instances.clear();
    await this.save();
  }

  status(): Promise<ServiceStatus> {
    const resources = [...this.services.values()].map(({ service }) => {
      const instance = this.instances.get(service.name);
      const state = instance ? instance.supervisor.state : 'stopped';
      const restarts = instance?.supervisor.restarts
        ? `, ${instance.supervisor.restarts} restart(s)`
        : '';
      return { kind: 'service', name: service.name, detail: `${service.uri} ${state}${restarts}` };
    });
    const memory = [...this.instances.values()].reduce(
      (sum, i) => sum + (i.supervisor.memoryBytes() ?? 0),
      0,
    );
    return Promise.resolve({
      name: this.name,
      endpoint: `${this.cloud.endpoint}/v2`,
      state: 'running',
      detail: `${this.instances.size} of ${this.services.size} service(s) running`,
      resources,
      ...(memory > 0 ? { childMemoryBytes: memory } : {}),
    });
  }

  /** The running instance of a service, for tests and status. */
  instance(name: string): Instance | undefined {
    return this.instances.get(name);
  }

  private makeRoutes(): Route[] {
    const parent = '(?<parent>projects/[^/]+/locations/[^/]+)';
    const name = '(?<name>projects/[^/]+/locations/[^/]+/services/[^/:]+)';
    return [
      {
        method: 'POST',
        path: new RegExp(`^/v2/${parent}/services$`),
        handler: (r) => this.create(r),
      },
      { method: 'GET', path: new RegExp(`^/v2/${parent}/services$`), handler: (r) => this.list(r) },
      { method: 'GET', path: new RegExp(`^/v2/${name}$`), handler: (r) => this.get(r) },
      { method: 'PATCH', path: new RegExp(`^/v2/${name}$`), handler: (r) => this.update(r) },
      { method: 'DELETE', path: new RegExp(`^/v2/${name}$`), handler: (r) => this.remove(r) },
      {
        method: 'GET',
        path: new RegExp(`^/v2/${name}:getIamPolicy$`),
        handler: (r) => this.getPolicy(r),
      },
      {
        method: 'POST',
        path: new RegExp(`^/v2/${name}:setIamPolicy$`),
        handler: (r) => this.setPolicy(r),
      },
      {
        method: 'POST',
        path: new RegExp(`^/v2/${name}:testIamPermissions$`),
        handler: (r) =>
          Promise.resolve({
            json: { permissions: r.json<{ permissions?: string[] }>().permissions ?? [] },
          }),
      },
    ];
  }

  private async create(request: LocalRequest): Promise<Reply> {
    const parent = request.params.parent ?? '';
    const id = request.query.get('serviceId') ?? '';
    if (!SERVICE_ID.test(id)) {
      throw invalidArgument(
        `Service name "${id}" is invalid: use up to 49 lower-case letters, digits and hyphens, starting with a letter.`,
      );
    }
    const name = `${parent}/services/${id}`;
    if (this.services.has(name)) throw alreadyExists(`Resource '${id}' already exists.`);
    const body = request.json<Partial<ServiceJson>>();
    const container = firstContainer(body);
    const now = new Date().toISOString();
    const port = await this.freePortFor();
    const uri = `http://127.0.0.1:${port}`;
    const service: ServiceJson = {
      ...passThrough(body),
      name,
      uid: randomUUID(),
      generation: '0',
      createTime: now,
      updateTime: now,
      creator: 'local-user',
      lastModifier: 'local-user',
      ingress: enumName(INGRESS, body.ingress, 'INGRESS_TRAFFIC_ALL'),
      launchStage: 'GA',
      template: { ...(body.template ?? {}), containers: [container] },
      traffic: [{ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', percent: 100 }],
      urls: [uri],
      uri,
      observedGeneration: '0',
      terminalCondition: condition('Ready', 'CONDITION_RECONCILING'),
      conditions: [],
      latestCreatedRevision: '',
      trafficStatuses: [],
      reconciling: true,
      etag: '',
    };
    const saved: Saved = { service, port };
    this.services.set(name, saved);
    return { json: this.deploy(saved, parent) };
  }

  private async update(request: LocalRequest): Promise<Reply> {
    const name = request.params.name ?? '';
    const saved = this.services.get(name);
    if (!saved) {
      if (request.query.get('allowMissing') === 'true') {
        const [parent = '', id = ''] = name.split('/services/');
        const query = new URLSearchParams({ serviceId: id });
        return this.create({ ...request, params: { parent }, query });
      }
      throw notFound(
        `Resource '${name.split('/').pop()}' of kind 'SERVICE' in region '${name.split('/')[3]}' in project '${name.split('/')[1]}' does not exist.`,
      );
    }
    const body = request.json<Partial<ServiceJson>>();
    const container = firstContainer(body);
    const service = saved.service;
    Object.assign(service, passThrough(body));
    if (body.ingress !== undefined)
      service.ingress = enumName(INGRESS, body.ingress, service.ingress);
    service.template = { ...(body.template ?? {}), containers: [container] };
    service.updateTime = new Date().toISOString();
    service.reconciling = true;
    return Promise.resolve({ json: this.deploy(saved, name.split('/services/')[0] ?? '') });
  }

  private get(request: LocalRequest): Promise<Reply> {
    return Promise.resolve({ json: this.find(request.params.name ?? '').service });
  }

  private list(request: LocalRequest): Promise<Reply> {
    const prefix = `${request.params.parent ?? ''}/services/`;
    const services = [...this.services.values()]
      .map((s) => s.service)
      .filter((s) => s.name.startsWith(prefix));
    return Promise.resolve({ json: { services } });
  }

  private remove(request: LocalRequest): Promise<Reply> {
    const saved = this.find(request.params.name ?? '');
    const name = saved.service.name;
    this.services.delete(name);
    saved.service.deleteTime = new Date().toISOString();
    saved.service.reconciling = true;
    const operations = operationStore(this.cloud);
    const handle = operations.begin({
      parent: name.split('/services/')[0] ?? '',
      metadata: packAny(SERVICE_TYPE, saved.service),
    });
    this.enqueue(name, async () => {
      await this.instances.get(name)?.stop();
      this.instances.delete(name);
      await this.save();
      saved.service.reconciling = false;
      handle.succeed(packAny(SERVICE_TYPE, saved.service));
    });
    return Promise.resolve({ json: operations.get(handle.name) });
  }

  private getPolicy(request: LocalRequest): Promise<Reply> {
    const saved = this.find(request.params.name ?? '');
    return Promise.resolve({ json: saved.policy ?? { version: 1, bindings: [], etag: 'ACAB' } });
  }

  private async setPolicy(request: LocalRequest): Promise<Reply> {
    const saved = this.find(request.params.name ?? '');
    const { policy } = request.json<{ policy?: { bindings?: unknown[]; version?: number } }>();
    if (!policy) throw invalidArgument('setIamPolicy needs a policy.');
    // Locally every service answers everyone on 127.0.0.1; the policy is kept to be read back.
    saved.policy = {
      version: policy.version ?? 1,
      bindings: policy.bindings ?? [],
      etag: randomBytes(6).toString('base64'),
    };
    await this.save();
    return { json: saved.policy };
  }

  private find(name: string): Saved {
    const saved = this.services.get(name);
    if (!saved) {
      const parts = name.split('/');
      throw notFound(
        `Resource '${parts[5]}' of kind 'SERVICE' in region '${parts[3]}' in project '${parts[1]}' does not exist.`,
      );
    }
    return saved;
  }

  /**
   * Rolls out a new revision of the service: the operation ends when it answers HTTP, or fails
   * with the end of its log. A failed revision leaves the last ready one serving.
   */
  private deploy(saved: Saved, parent: string): unknown {
    const service = saved.service;
    const generation = Number(service.generation) + 1;
    service.generation = String(generation);
    const id = service.name.split('/').pop() ?? '';
    const revision =
      service.template.revision ||
      `${id}-${String(generation).padStart(5, '0')}-${randomBytes(2).toString('hex').slice(0, 3)}`;
    service.latestCreatedRevision = `${service.name.split('/services/')[0]}/services/${id}/revisions/${revision}`;
    service.terminalCondition = condition('Ready', 'CONDITION_RECONCILING');
    service.reconciling = true;
    service.etag = `"${randomBytes(8).toString('base64url')}"`;
    const operations = operationStore(this.cloud);
    const handle = operations.begin({ parent, metadata: packAny(SERVICE_TYPE, service) });
    void this.save();
    this.enqueue(service.name, () => this.rollOut(saved, revision, generation, handle));
    return operations.get(handle.name);
  }

  private async rollOut(
    saved: Saved,
    revision: string,
    generation: number,
    handle: OperationHandle,
  ): Promise<void> {
    const service = saved.service;
    const container = service.template.containers[0] as ContainerJson;
    const previous = this.instances.get(service.name);
    let replaced = false;
    try {
      // A revision whose image is missing fails here, while the previous one keeps serving.
      const image = this.imageOf(container);
      // The port is the service's for good, so the old revision gives it up first.
      if (previous) {
        replaced = true;
        await previous.stop();
        this.instances.delete(service.name);
      }
      await this.startInstance(saved, revision, container, image);
      saved.ready = { revision, container };
      this.markReady(service, revision, generation);
      await this.save();
      handle.succeed(packAny(SERVICE_TYPE, service));
    } catch (error) {
      if (this.instances.get(service.name) !== previous) this.instances.delete(service.name);
      const message =
        error instanceof ApiError
          ? `Revision '${revision}' is not ready and cannot serve traffic. ${error.message}`
          : `Revision '${revision}' is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined by the PORT environment variable. ${errorMessage(error)}`;
      this.markFailed(service, generation, message);
      if (replaced) await this.restartPrevious(saved);
      await this.save();
      handle.fail(
        new ApiError(error instanceof ApiError ? error.status : 'FAILED_PRECONDITION', message),
      );
    }
  }

  private async resume(saved: Saved): Promise<void> {
    if (!saved.ready) return;
    const { revision, container } = saved.ready;
    try {
      if (!(await portIsFree(saved.port))) {
        const port = await this.freePortFor();
        this.log.warn(
          'port %d of %s is taken; its uri moves to port %d',
          saved.port,
          saved.service.name,
          port,
        );
        saved.port = port;
        saved.service.uri = `http://127.0.0.1:${port}`;
        saved.service.urls = [saved.service.uri];
      }
      const image = this.imageOf(container);
      await this.startInstance(saved, revision, container, image);
      this.log.info('%s is serving again at %s', saved.service.name, saved.service.uri);
    } catch (error) {
      this.instances.delete(saved.service.name);
      this.markFailed(
        saved.service,
        Number(saved.service.generation),
        `Restart failed: ${errorMessage(error)}`,
      );
      this.log.error('could not restart %s: %s', saved.service.name, errorMessage(error));
    }
    await this.save();
  }

  private async restartPrevious(saved: Saved): Promise<void> {
    if (!saved.ready) return;
    const { revision, container } = saved.ready;
    try {
      const image = this.imageOf(container);
      await this.startInstance(saved, revision, container, image);
    } catch (error) {
      this.instances.delete(saved.service.name);
      this.log.error(
        'could not bring back %s of %s: %s',
        revision,
        saved.service.name,
        errorMessage(error),
      );
    }
  }

  /** The image a container names, from the local registry; fails when it is not there. */
  private imageOf(container: ContainerJson): ImageRecord {
    return this.cloud
      .service<ArtifactRegistryService>(ARTIFACT_REGISTRY_SERVICE)
      .resolveImage(container.image);
  }

  /** Starts a revision's process as the service's instance. */
  private async startInstance(
    saved: Saved,
    revision: string,
    container: ContainerJson,
    image: ImageRecord,
  ): Promise<void> {
    const instance = this.instanceOf(saved, revision, container, image);
    this.instances.set(saved.service.name, instance);
    await instance.start();
  }

  private instanceOf(
    saved: Saved,
    revision: string,
    container: ContainerJson,
    image: ImageRecord,
  ): Instance {
    const id = saved.service.name.split('/').pop() ?? '';
    const env: Record<string, string> = {
      // The local cloud's endpoints, so the app's Google clients reach the emulators.
      ...localEnvironment({
        kind: 'local',
        projectId: this.cloud.projectId,
        region: saved.service.name.split('/')[3] ?? 'us-central1',
        local: { api: this.cloud.endpoint, pubsub: this.cloud.pubsubHost },
      }),
      // No metadata server here: spare the clients their probe for one.
      METADATA_SERVER_DETECTION: 'none',
      NODE_ENV: 'production',
    };
    for (const variable of container.env ?? []) env[variable.name] = variable.value ?? '';
    Object.assign(env, {
      PORT: String(saved.port),
      // Cloud Run's container contract; HOST keeps an app that honours it on loopback.
      HOST: '127.0.0.1',
      K_SERVICE: id,
      K_REVISION: revision,
      K_CONFIGURATION: id,
    });
    const instance = new Instance({
      service: id,
      revision,
      port: saved.port,
      image,
      container: {
        image: container.image,
        ...(container.command ? { command: container.command } : {}),
        ...(container.args ? { args: container.args } : {}),
        env,
      },
      logFile: join(this.root, 'logs', `${id}.log`),
      log: this.log,
    });
    // A revision that keeps crashing after it was ready is no longer serving: say so.
    instance.supervisor.on('failed', () => {
      if (this.instances.get(saved.service.name) !== instance) return;
      const tail = instance.supervisor.logTail(10);
      this.markFailed(
        saved.service,
        Number(saved.service.generation),
        `Revision '${revision}' keeps exiting and was not restarted again; see ${instance.supervisor.logFile}.\n${tail}`,
      );
      void this.save();
    });
    return instance;
  }

  private markReady(service: ServiceJson, revision: string, generation: number): void {
    const parent = service.name;
    service.observedGeneration = String(generation);
    service.latestReadyRevision = `${parent}/revisions/${revision}`;
    service.terminalCondition = condition('Ready', 'CONDITION_SUCCEEDED');
    service.conditions = [
      condition('RoutesReady', 'CONDITION_SUCCEEDED'),
      condition('ConfigurationsReady', 'CONDITION_SUCCEEDED'),
    ];
    service.trafficStatuses = [
      { type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', revision, percent: 100 },
    ];
    service.reconciling = false;
  }

  private markFailed(service: ServiceJson, generation: number, message: string): void {
    service.observedGeneration = String(generation);
    const failed = {
      ...condition('Ready', 'CONDITION_FAILED'),
      message,
      reason: 'CONTAINER_FAILED',
    };
    service.terminalCondition = failed;
    service.conditions = [
      condition(
        'RoutesReady',
        service.latestReadyRevision ? 'CONDITION_SUCCEEDED' : 'CONDITION_FAILED',
      ),
      { ...condition('ConfigurationsReady', 'CONDITION_FAILED'), message },
    ];
    service.reconciling = false;
  }

  private enqueue(name: string, change: () => Promise<void>): void {
    const next = (this.changes.get(name) ?? Promise.resolve())
      .then(change)
      .catch((error: unknown) => {
        this.log.error('change to %s failed: %s', name, errorMessage(error));
      });
    this.changes.set(name, next);
    void next.then(() => {
      if (this.changes.get(name) === next) this.changes.delete(name);
    });
  }

  /** A free port that no other service holds, even one that is stopped now. */
  private async freePortFor(): Promise<number> {
    const taken = new Set([...this.services.values()].map((s) => s.port));
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) return port;
    }
  }

  private async save(): Promise<void> {
    const file = join(this.root, 'services.json');
    const temporary = `${file}.${randomUUID()}.tmp`;
    try {
      await writeFile(temporary, JSON.stringify([...this.services.values()], null, 1));
      await rename(temporary, file);
    } catch (error) {
      this.log.warn('could not save the services: %s', errorMessage(error));
    }
  }
}

function firstContainer(body: Partial<ServiceJson>): ContainerJson {
  const containers = body.template?.containers ?? [];
  const container = containers[0];
  if (!container?.image) {
    throw invalidArgument(
      'The service template needs a container with an image (template.containers[0].image).',
    );
  }
  if (containers.length > 1) {
    throw invalidArgument(
      'Only one container per revision is available locally; sidecars are not.',
    );
  }
  return container;
}

/** The fields a client may set that need no treatment (labels, annotations, description...). */
function passThrough(body: Partial<ServiceJson>): Partial<ServiceJson> {
  const kept: Partial<ServiceJson> = {};
  for (const key of [
    'description',
    'labels',
    'annotations',
    'scaling',
    'invokerIamDisabled',
    'client',
    'clientVersion',
  ]) {
    if (body[key] !== undefined) kept[key] = body[key];
  }
  return kept;
}

function enumName(names: string[], value: unknown, fallback: string): string {
  if (typeof value === 'number') return names[value] ?? fallback;
  if (typeof value === 'string' && names.includes(value)) return value;
  return fallback;
}

function condition(type: string, state: Condition['state']): Condition {
  return { type, state, lastTransitionTime: new Date().toISOString() };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export const runFactory = (cloud: LocalCloud): LocalService => new RunService(cloud);
