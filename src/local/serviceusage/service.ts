import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { LocalRequest, Reply, Route } from '../http.js';
import { invalidArgument } from '../http.js';
import { operationStore, packAny } from '../operations.js';
import type { LocalCloud, LocalService, ServiceFactory, ServiceStatus } from '../service.js';

/**
 * Service Usage v1: which APIs a project has turned on. The local cloud serves every API the
 * lab uses, so enabling one only records it; the record lets `plan` and `verify` of the
 * configure steps behave as they do against Google.
 */

const ENABLED = 2;
const DISABLED = 1;
const TYPE = 'google.api.serviceusage.v1';

interface ServiceJson {
  name: string;
  parent: string;
  config: { name: string; title: string };
  state: number;
}

class ServiceUsage implements LocalService {
  readonly name = 'serviceusage';
  readonly routes: Route[];
  private readonly file: string;
  /** Enabled service ids, by `projects/P`. */
  private enabled: Record<string, string[]> = {};

  constructor(private readonly cloud: LocalCloud) {
    this.file = join(cloud.dataDir, 'serviceusage', 'enabled.json');
    this.routes = [
      {
        method: 'POST',
        path: /^\/v1\/(?<parent>[^/]+\/[^/]+)\/services:batchEnable$/,
        handler: (r) => this.batchEnable(r),
      },
      {
        method: 'POST',
        path: /^\/v1\/(?<name>[^/]+\/[^/]+\/services\/[^/:]+):enable$/,
        handler: (r) => this.enableOne(r),
      },
      {
        method: 'GET',
        path: /^\/v1\/(?<parent>[^/]+\/[^/]+)\/services$/,
        handler: (r) => this.list(r),
      },
      {
        method: 'GET',
        path: /^\/v1\/(?<name>[^/]+\/[^/]+\/services\/[^/:]+)$/,
        handler: (r) => this.get(r),
      },
    ];
  }

  async start(): Promise<void> {
    try {
      this.enabled = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string[]>;
    } catch {
      this.enabled = {};
    }
  }

  async stop(): Promise<void> {}

  async status(): Promise<ServiceStatus> {
    return {
      name: this.name,
      endpoint: this.cloud.endpoint,
      state: 'running',
      resources: Object.entries(this.enabled).map(([parent, ids]) => ({
        kind: 'enabled APIs',
        name: parent,
        detail: `${ids.length}`,
      })),
    };
  }

  private async batchEnable(request: LocalRequest): Promise<Reply> {
    const parent = request.params.parent!;
    const ids = request.json<{ serviceIds?: string[] }>().serviceIds ?? [];
    if (ids.length === 0 || ids.length > 20) {
      throw invalidArgument('serviceIds must name between 1 and 20 services.');
    }
    for (const id of ids) this.record(parent, id);
    const services = ids.map((id) => this.describe(parent, id));
    const operation = operationStore(this.cloud).done(
      { name: `operations/enable.${Date.now().toString(36)}` },
      packAny(`${TYPE}.BatchEnableServicesResponse`, { services, failures: [] }),
    );
    return { json: operation };
  }

  private async enableOne(request: LocalRequest): Promise<Reply> {
    const [kind, project, , id] = request.params.name!.split('/');
    const parent = `${kind}/${project}`;
    this.record(parent, id!);
    const operation = operationStore(this.cloud).done(
      { name: `operations/enable.${Date.now().toString(36)}` },
      packAny(`${TYPE}.EnableServiceResponse`, { service: this.describe(parent, id!) }),
    );
    return { json: operation };
  }

  private async list(request: LocalRequest): Promise<Reply> {
    const parent = request.params.parent!;
    // Locally only enabled services are known, so the `state:ENABLED` filter changes nothing.
    const ids = this.enabled[parent] ?? [];
    return { json: { services: ids.map((id) => this.describe(parent, id)) } };
  }

  private async get(request: LocalRequest): Promise<Reply> {
    const [kind, project, , id] = request.params.name!.split('/');
    return { json: this.describe(`${kind}/${project}`, id!) };
  }

  private describe(parent: string, id: string): ServiceJson {
    const on = (this.enabled[parent] ?? []).includes(id);
    return {
      name: `${parent}/services/${id}`,
      parent,
      config: { name: id, title: id },
      state: on ? ENABLED : DISABLED,
    };
  }

  private record(parent: string, id: string): void {
    if (!/^[a-z0-9.-]+\.googleapis\.com$/.test(id)) {
      throw invalidArgument(`"${id}" is not a service name such as run.googleapis.com.`);
    }
    const ids = new Set(this.enabled[parent] ?? []);
    ids.add(id);
    this.enabled[parent] = [...ids].sort();
    mkdirSync(join(this.cloud.dataDir, 'serviceusage'), { recursive: true });
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.enabled, null, 2));
    renameSync(`${this.file}.tmp`, this.file);
  }
}

export const serviceUsageFactory: ServiceFactory = (cloud) => new ServiceUsage(cloud);
