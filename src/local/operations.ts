import { randomUUID } from 'node:crypto';

import type { GrpcStatusName } from '../errors.js';
import { GrpcCode } from '../errors.js';
import type { LocalRequest, Reply, Route } from './http.js';
import { ApiError, notFound } from './http.js';
import type { LocalCloud, LocalService, ServiceStatus } from './service.js';

/**
 * The long-running operations (`google.longrunning.Operation`) that Cloud Run, Cloud Build,
 * Artifact Registry and Video Intelligence answer with, and the routes the gax REST clients poll
 * them on. One store serves every API: an operation's name is unique across them, and each
 * client only ever asks for names it was given.
 *
 * The `response` and `metadata` of an operation are `google.protobuf.Any` values. A REST client
 * decodes them by their `@type`, so every value is stored with its full proto type name (see
 * `packAny`); a value without one fails to decode in the client.
 */

export const OPERATIONS_SERVICE = 'operations';

/** A `google.protobuf.Any` in proto3 JSON: the message's fields plus `@type`. */
export type AnyJson = { '@type': string } & Record<string, unknown>;

export interface OperationJson {
  name: string;
  metadata?: AnyJson;
  done: boolean;
  response?: AnyJson;
  error?: { code: number; message: string; details: unknown[] };
}

/** Wraps a message as an Any, for example `packAny('google.cloud.run.v2.Service', service)`. */
export function packAny(typeName: string, value: object): AnyJson {
  return { '@type': `type.googleapis.com/${typeName}`, ...value };
}

/** `google.protobuf.Empty` as an Any, the response of delete operations. */
export const EMPTY_ANY: AnyJson = packAny('google.protobuf.Empty', {});

export interface BeginOptions {
  /** The operation's full name; a `projects/P/locations/L/operations/UUID` name when omitted. */
  name?: string;
  /** Used to build the default name. */
  parent?: string;
  metadata?: AnyJson;
  /** Called when a client cancels the operation; it should stop the work and fail it. */
  onCancel?: () => void;
}

/** The engine's side of one operation: report progress, then succeed or fail exactly once. */
export interface OperationHandle {
  readonly name: string;
  setMetadata(metadata: AnyJson): void;
  succeed(response: AnyJson, metadata?: AnyJson): void;
  fail(error: ApiError | Error, metadata?: AnyJson): void;
}

interface Entry {
  operation: OperationJson;
  created: number;
  onCancel: (() => void) | undefined;
  waiters: Array<() => void>;
}

/** Finished operations kept for polling; older ones are forgotten first. */
const MAX_FINISHED = 5_000;

/** Longest a `:wait` call blocks before answering with the operation as it is. */
const MAX_WAIT_MS = 30_000;

export class OperationStore {
  private readonly entries = new Map<string, Entry>();
  private finished = 0;

  begin(options: BeginOptions = {}): OperationHandle {
    const name =
      options.name ?? `${options.parent ?? 'projects/-/locations/-'}/operations/${randomUUID()}`;
    if (this.entries.has(name)) throw new ApiError('ALREADY_EXISTS', `Operation ${name} exists.`);
    const operation: OperationJson = { name, done: false };
    if (options.metadata) operation.metadata = options.metadata;
    const entry: Entry = {
      operation,
      created: Date.now(),
      onCancel: options.onCancel,
      waiters: [],
    };
    this.entries.set(name, entry);
    return {
      name,
      setMetadata: (metadata) => {
        if (!entry.operation.done) entry.operation.metadata = metadata;
      },
      succeed: (response, metadata) => this.finish(entry, { response }, metadata),
      fail: (error, metadata) => this.finish(entry, { error: statusOf(error) }, metadata),
    };
  }

  /**
   * Starts an operation whose outcome is `work`'s result: the common case of an engine that
   * does its job in the background while the client polls.
   */
  run(options: BeginOptions, work: (handle: OperationHandle) => Promise<AnyJson>): OperationJson {
    const handle = this.begin(options);
    work(handle).then(
      (response) => handle.succeed(response),
      (error: unknown) => handle.fail(error instanceof Error ? error : new Error(String(error))),
    );
    return this.get(handle.name);
  }

  /** An operation that is already finished, for calls that complete at once. */
  done(options: BeginOptions, response: AnyJson): OperationJson {
    const handle = this.begin(options);
    handle.succeed(response);
    return this.get(handle.name);
  }

  get(name: string): OperationJson {
    const entry = this.entries.get(name);
    if (!entry) throw notFound(`Operation ${name} was not found.`);
    return structuredClone(entry.operation);
  }

  /** Operations whose name starts with `parent/operations/`, oldest first. */
  list(
    parent: string,
    pageSize = 100,
    pageToken = '',
  ): { operations: OperationJson[]; nextPageToken?: string } {
    const prefix = `${parent}/operations/`;
    const all = [...this.entries.values()]
      .filter((e) => e.operation.name.startsWith(prefix))
      .map((e) => e.operation);
    const start = pageToken ? Number(pageToken) : 0;
    if (!Number.isInteger(start) || start < 0) throw invalidToken(pageToken);
    const size = pageSize > 0 ? Math.min(pageSize, 1000) : 100;
    const page = all.slice(start, start + size).map((op) => structuredClone(op));
    return start + size < all.length
      ? { operations: page, nextPageToken: String(start + size) }
      : { operations: page };
  }

  delete(name: string): void {
    if (!this.entries.delete(name)) throw notFound(`Operation ${name} was not found.`);
  }

  /** Asks the engine to stop; an operation nobody can stop is failed as CANCELLED at once. */
  cancel(name: string): void {
    const entry = this.entries.get(name);
    if (!entry) throw notFound(`Operation ${name} was not found.`);
    if (entry.operation.done) return;
    if (entry.onCancel) entry.onCancel();
    else this.finish(entry, { error: statusOf(new ApiError('CANCELLED', 'Operation cancelled.')) });
  }

  /** Resolves when the operation is done or `timeoutMs` has passed, with its current state. */
  async wait(name: string, timeoutMs: number): Promise<OperationJson> {
    const entry = this.entries.get(name);
    if (!entry) throw notFound(`Operation ${name} was not found.`);
    if (!entry.operation.done) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(Math.max(timeoutMs, 0), MAX_WAIT_MS));
        entry.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return structuredClone(entry.operation);
  }

  /** Operations still running, for status lines. */
  pending(): OperationJson[] {
    return [...this.entries.values()].filter((e) => !e.operation.done).map((e) => e.operation);
  }

  private finish(
    entry: Entry,
    outcome: Pick<OperationJson, 'response' | 'error'>,
    metadata?: AnyJson,
  ): void {
    if (entry.operation.done) return;
    const operation = entry.operation;
    if (metadata) operation.metadata = metadata;
    if (outcome.response) operation.response = outcome.response;
    if (outcome.error) operation.error = outcome.error;
    operation.done = true;
    for (const wake of entry.waiters.splice(0)) wake();
    this.finished += 1;
    if (this.finished > MAX_FINISHED) this.forgetOldest();
  }

  private forgetOldest(): void {
    for (const [name, entry] of this.entries) {
      if (this.finished <= MAX_FINISHED) return;
      if (!entry.operation.done) continue;
      this.entries.delete(name);
      this.finished -= 1;
    }
  }
}

/** `google.rpc.Status` for an error; anything but an ApiError is INTERNAL. */
function statusOf(error: ApiError | Error): NonNullable<OperationJson['error']> {
  const status: GrpcStatusName = error instanceof ApiError ? error.status : 'INTERNAL';
  return { code: GrpcCode[status], message: error.message, details: [] };
}

function invalidToken(token: string): ApiError {
  return new ApiError('INVALID_ARGUMENT', `Page token "${token}" is not one this server issued.`);
}

const OP = 'projects/[^/]+/locations/[^/]+/operations/[^/:]+';
const PARENT = 'projects/[^/]+/locations/[^/]+';

/**
 * The polling routes, as the generated clients' `google.longrunning.Operations` HTTP rules
 * spell them:
 * - Run v2: GET, DELETE `/v2/{name=projects/* /locations/* /operations/*}`, `:wait`, and list
 *   on `/v2/{name=projects/* /locations/*}/operations`;
 * - Build v1: GET `/v1/{name=operations/**}` and `/v1/{name=projects/* /locations/* /operations/*}`,
 *   with `:cancel` on both;
 * - Video Intelligence v1: the same `projects/...` form, plus `/v1/operations/{name=projects/...}`;
 * - Artifact Registry v1: GET on the `projects/...` form.
 */
export function operationRoutes(store: OperationStore): Route[] {
  const get = (r: LocalRequest): Promise<Reply> => answer(() => store.get(need(r, 'name')));
  const del = (r: LocalRequest): Promise<Reply> =>
    answer(() => {
      store.delete(need(r, 'name'));
      return {};
    });
  const cancel = (r: LocalRequest): Promise<Reply> =>
    answer(() => {
      store.cancel(need(r, 'name'));
      return {};
    });
  const wait = async (r: LocalRequest): Promise<Reply> => {
    const timeout = r.json<{ timeout?: string }>().timeout;
    const ms = timeout ? Number.parseFloat(timeout) * 1000 : MAX_WAIT_MS;
    return { json: await store.wait(need(r, 'name'), Number.isFinite(ms) ? ms : MAX_WAIT_MS) };
  };
  const list = (r: LocalRequest): Promise<Reply> =>
    answer(() =>
      store.list(
        need(r, 'parent'),
        Number(r.query.get('pageSize') ?? 0),
        r.query.get('pageToken') ?? '',
      ),
    );
  const v = '/(?:v1|v2)';
  return [
    { method: 'GET', path: new RegExp(`^/v1/operations/(?<name>${OP})$`), handler: get },
    { method: 'DELETE', path: new RegExp(`^/v1/operations/(?<name>${OP})$`), handler: del },
    { method: 'POST', path: new RegExp(`^/v1/operations/(?<name>${OP}):cancel$`), handler: cancel },
    { method: 'GET', path: new RegExp(`^${v}/(?<name>${OP})$`), handler: get },
    { method: 'DELETE', path: new RegExp(`^${v}/(?<name>${OP})$`), handler: del },
    { method: 'POST', path: new RegExp(`^${v}/(?<name>${OP}):cancel$`), handler: cancel },
    { method: 'POST', path: new RegExp(`^${v}/(?<name>${OP}):wait$`), handler: wait },
    { method: 'GET', path: new RegExp(`^${v}/(?<parent>${PARENT})/operations$`), handler: list },
    { method: 'POST', path: /^\/v1\/(?<name>operations\/.+):cancel$/, handler: cancel },
    { method: 'GET', path: /^\/v1\/(?<name>operations\/.+)$/, handler: get },
  ];
}

function need(request: LocalRequest, param: string): string {
  const value = request.params[param];
  if (!value) throw new ApiError('INVALID_ARGUMENT', `The request path has no ${param}.`);
  return value;
}

function answer(make: () => unknown): Promise<Reply> {
  try {
    return Promise.resolve({ json: make() });
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/**
 * The store as a local service, so that the engines reach it in process:
 * `cloud.service<OperationsService>(OPERATIONS_SERVICE).store`.
 */
export class OperationsService implements LocalService {
  readonly name = OPERATIONS_SERVICE;
  readonly store = new OperationStore();
  readonly routes: Route[] = operationRoutes(this.store);

  constructor(private readonly endpoint: string) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  status(): Promise<ServiceStatus> {
    const pending = this.store.pending();
    return Promise.resolve({
      name: this.name,
      endpoint: this.endpoint,
      state: 'running',
      detail: `${pending.length} operation(s) running`,
      resources: pending.map((op) => ({ kind: 'operation', name: op.name, detail: 'running' })),
    });
  }
}

export const operationsFactory = (cloud: LocalCloud): LocalService =>
  new OperationsService(cloud.endpoint);

/** The shared store, for an engine that holds the local cloud. */
export function operationStore(cloud: LocalCloud): OperationStore {
  return cloud.service<OperationsService>(OPERATIONS_SERVICE).store;
}
