import { existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { LocalRequest, Reply, Route } from '../http.js';
import { alreadyExists, invalidArgument, notFound } from '../http.js';
import type { OperationStore } from '../operations.js';
import { EMPTY_ANY, operationStore, packAny } from '../operations.js';
import type { LocalCloud, LocalService, ServiceStatus } from '../service.js';
import type { ImageRecord } from './registry.js';
import { ImageRegistry } from './registry.js';

/**
 * Artifact Registry v1, the part the lab uses: Docker repositories (create, get, list, delete)
 * and the images pushed into them. The images themselves live in the `ImageRegistry`, which
 * Cloud Build pushes to and Cloud Run pulls from, in process.
 */

export const ARTIFACT_REGISTRY_SERVICE = 'artifactregistry';

const TYPE = 'google.devtools.artifactregistry.v1';
const FORMATS = ['FORMAT_UNSPECIFIED', 'DOCKER', 'MAVEN', 'NPM', '', 'APT', 'YUM', '', 'PYTHON'];
const REPOSITORY_ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface RepositoryJson {
  name: string;
  format: string;
  description?: string;
  labels?: Record<string, string>;
  mode: string;
  createTime: string;
  updateTime: string;
  registryUri: string;
}

export class ArtifactRegistryService implements LocalService {
  readonly name = ARTIFACT_REGISTRY_SERVICE;
  readonly routes: Route[];
  readonly registry: ImageRegistry;
  private readonly file: string;
  private repositories = new Map<string, RepositoryJson>();

  constructor(private readonly cloud: LocalCloud) {
    const root = join(cloud.dataDir, ARTIFACT_REGISTRY_SERVICE);
    this.registry = new ImageRegistry(root);
    this.file = join(root, 'repositories.json');
    this.routes = this.makeRoutes();
  }

  start(): Promise<void> {
    this.registry.open();
    if (existsSync(this.file)) {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as RepositoryJson[];
      this.repositories = new Map(saved.map((r) => [r.name, r]));
    }
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  status(): Promise<ServiceStatus> {
    return Promise.resolve({
      name: this.name,
      endpoint: `${this.cloud.endpoint}/v1`,
      state: 'running',
      resources: [...this.repositories.values()].map((repo) => ({
        kind: 'repository',
        name: repo.name,
        detail: `${this.registry.tagged(`${repo.registryUri}/`).length} tagged image(s)`,
      })),
    });
  }

  /**
   * The repository an image reference such as `us-central1-docker.pkg.dev/P/R/app:tag` belongs
   * to: undefined when the name is not an Artifact Registry one (such as `gcr.io/...`), an
   * error when it is one and the repository does not exist, as a push to Google would fail.
   */
  repositoryOf(reference: string): RepositoryJson | undefined {
    const match = /^([a-z0-9-]+)-docker\.pkg\.dev\/([^/]+)\/([^/]+)\/./.exec(reference);
    if (!match) return undefined;
    const name = `projects/${match[2]}/locations/${match[1]}/repositories/${match[3]}`;
    const repo = this.repositories.get(name);
    if (!repo) {
      throw notFound(
        `Repository ${name} does not exist, so ${reference} cannot be pushed. Create it first: ` +
          `gcloud artifacts repositories create ${match[3]} --repository-format=docker --location=${match[1]}`,
      );
    }
    return repo;
  }

  resolveImage(reference: string): ImageRecord {
    return this.registry.resolve(reference);
  }

  private get operations(): OperationStore {
    return operationStore(this.cloud);
  }

  private makeRoutes(): Route[] {
    const parent = '(?<parent>projects/[^/]+/locations/[^/]+)';
    const repo = '(?<name>projects/[^/]+/locations/[^/]+/repositories/[^/]+)';
    return [
      {
        method: 'POST',
        path: new RegExp(`^/v1/${parent}/repositories$`),
        handler: (r) => this.create(r),
      },
      {
        method: 'GET',
        path: new RegExp(`^/v1/${parent}/repositories$`),
        handler: (r) => this.list(r),
      },
      { method: 'GET', path: new RegExp(`^/v1/${repo}$`), handler: (r) => this.get(r) },
      { method: 'DELETE', path: new RegExp(`^/v1/${repo}$`), handler: (r) => this.remove(r) },
      {
        method: 'GET',
        path: new RegExp(`^/v1/${repo}/dockerImages$`),
        handler: (r) => this.dockerImages(r),
      },
    ];
  }

  private async create(request: LocalRequest): Promise<Reply> {
    const parent = request.params.parent ?? '';
    const id = request.query.get('repositoryId') ?? '';
    if (!REPOSITORY_ID.test(id)) {
      throw invalidArgument(
        `Repository id "${id}" is invalid: use lower-case letters, digits and hyphens, starting with a letter.`,
      );
    }
    const name = `${parent}/repositories/${id}`;
    if (this.repositories.has(name)) throw alreadyExists(`Repository ${name} already exists.`);
    const body = request.json<{
      format?: string | number;
      description?: string;
      labels?: Record<string, string>;
    }>();
    const format =
      typeof body.format === 'number' ? (FORMATS[body.format] ?? '') : (body.format ?? 'DOCKER');
    if (format !== 'DOCKER') {
      throw invalidArgument(
        `Only DOCKER repositories are available locally, not ${format || 'an unspecified format'}.`,
      );
    }
    const now = new Date().toISOString();
    const location = parent.split('/')[3] ?? '';
    const project = parent.split('/')[1] ?? '';
    const repository: RepositoryJson = {
      name,
      format,
      ...(body.description ? { description: body.description } : {}),
      ...(body.labels ? { labels: body.labels } : {}),
      mode: 'STANDARD_REPOSITORY',
      createTime: now,
      updateTime: now,
      registryUri: `${location}-docker.pkg.dev/${project}/${id}`,
    };
    this.repositories.set(name, repository);
    await this.save();
    const op = this.operations.done(
      { parent, metadata: packAny(`${TYPE}.OperationMetadata`, {}) },
      packAny(`${TYPE}.Repository`, repository),
    );
    return { json: op };
  }

  private get(request: LocalRequest): Promise<Reply> {
    return Promise.resolve({ json: this.repository(request.params.name ?? '') });
  }

  private list(request: LocalRequest): Promise<Reply> {
    const prefix = `${request.params.parent ?? ''}/repositories/`;
    const repositories = [...this.repositories.values()].filter((r) => r.name.startsWith(prefix));
    return Promise.resolve({ json: { repositories } });
  }

  private async remove(request: LocalRequest): Promise<Reply> {
    const repository = this.repository(request.params.name ?? '');
    this.repositories.delete(repository.name);
    await this.registry.untagAll(`${repository.registryUri}/`);
    await this.save();
    const parent = repository.name.split('/repositories/')[0] ?? '';
    const op = this.operations.done(
      { parent, metadata: packAny(`${TYPE}.OperationMetadata`, {}) },
      EMPTY_ANY,
    );
    return { json: op };
  }

  private dockerImages(request: LocalRequest): Promise<Reply> {
    const repository = this.repository(request.params.name ?? '');
    const byDigest = new Map<string, { image: ImageRecord; name: string; tags: string[] }>();
    for (const { reference, image } of this.registry.tagged(`${repository.registryUri}/`)) {
      const colon = reference.lastIndexOf(':');
      const imageName = reference.slice(0, colon);
      const key = `${imageName}@${image.digest}`;
      const entry = byDigest.get(key) ?? { image, name: imageName, tags: [] };
      entry.tags.push(reference.slice(colon + 1));
      byDigest.set(key, entry);
    }
    const dockerImages = [...byDigest.values()].map(({ image, name, tags }) => {
      const path = name.slice(repository.registryUri.length + 1);
      return {
        name: `${repository.name}/dockerImages/${encodeURIComponent(path)}@${image.digest}`,
        uri: `${name}@${image.digest}`,
        tags,
        imageSizeBytes: String(image.sizeBytes),
        uploadTime: image.createTime,
        buildTime: image.createTime,
        updateTime: image.createTime,
        mediaType:
          image.kind === 'docker'
            ? 'application/vnd.docker.distribution.manifest.v2+json'
            : 'application/vnd.cymbal-lab.node-image',
      };
    });
    return Promise.resolve({ json: { dockerImages } });
  }

  private repository(name: string): RepositoryJson {
    const repository = this.repositories.get(name);
    if (!repository) throw notFound(`Repository ${name} was not found.`);
    return repository;
  }

  private async save(): Promise<void> {
    const temporary = `${this.file}.tmp`;
    await writeFile(temporary, JSON.stringify([...this.repositories.values()], null, 1));
    await rename(temporary, this.file);
  }
}

export const artifactRegistryFactory = (cloud: LocalCloud): LocalService =>
  new ArtifactRegistryService(cloud);
