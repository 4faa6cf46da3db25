import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create } from 'tar';

import type { Clients } from '../../src/cloud/clients.js';
import { isAlreadyExists } from '../../src/errors.js';
import { artifactRegistryFactory } from '../../src/local/artifactregistry/service.js';
import type { ArtifactRegistryService } from '../../src/local/artifactregistry/service.js';
import { buildFactory } from '../../src/local/build/service.js';
import type { RunningHost } from '../../src/local/host.js';
import { operationsFactory } from '../../src/local/operations.js';
import { storageServiceFactory } from '../../src/local/storage/service.js';
import type { TestHost } from './host-fixture.js';
import { openTestHost } from './host-fixture.js';

/**
 * Cloud Build and Artifact Registry through their official clients: the ingest app's source,
 * uploaded as `gcloud builds submit` uploads it, builds into an image in the lab's repository;
 * a broken source fails with the end of its log; a push to a missing repository fails.
 */

const PROJECT = 'build-test';
const LOCATION = 'us-central1';
const REPO = 'quickstart-docker-repo';
const IMAGE = `${LOCATION}-docker.pkg.dev/${PROJECT}/${REPO}/pubsub-proxy:tag1`;
const BUCKET = `${PROJECT}_cloudbuild`;
const SUCCESS = 3;

describe('local Cloud Build', () => {
  let dir: string;
  let host: RunningHost;
  let clients: Clients;

  /** Packs a folder as gcloud does and uploads it; returns the object name. */
  async function upload(folder: string, object: string): Promise<string> {
    const archive = join(dir, `${object.replace(/\W/g, '_')}.tgz`);
    await create({ gzip: true, cwd: folder, file: archive, portable: true }, ['.']);
    await clients.storage.bucket(BUCKET).upload(archive, { destination: object });
    return object;
  }

  function dockerBuild(object: string, image: string) {
    return {
      projectId: PROJECT,
      build: {
        source: { storageSource: { bucket: BUCKET, object } },
        steps: [
          {
            name: 'gcr.io/cloud-builders/docker',
            args: ['build', '--network', 'cloudbuild', '--no-cache', '-t', image, '.'],
          },
        ],
        images: [image],
      },
    };
  }

  let local: TestHost;

  beforeAll(async () => {
    local = await openTestHost({
      project: PROJECT,
      region: LOCATION,
      factories: [storageServiceFactory, operationsFactory, artifactRegistryFactory, buildFactory],
    });
    ({ dir, host, clients } = local);
    await clients.storage.createBucket(BUCKET);
  });

  afterAll(async () => {
    await local?.close();
  });

  it('creates, gets and lists the Docker repository', async () => {
    const parent = `projects/${PROJECT}/locations/${LOCATION}`;
    const [op] = await clients.artifactRegistry.createRepository({
      parent,
      repositoryId: REPO,
      repository: { format: 'DOCKER', description: 'Docker repository' },
    });
    const [repository] = await op.promise();
    expect(repository.name).toBe(`${parent}/repositories/${REPO}`);
    // Results decoded from an operation carry enums as numbers; plain calls as names.
    expect(repository.format).toBe(1);
    const [again] = await clients.artifactRegistry.getRepository({ name: repository.name ?? '' });
    expect(again.description).toBe('Docker repository');
    expect(again.format).toBe('DOCKER');
    const [listed] = await clients.artifactRegistry.listRepositories({ parent });
    expect(listed.map((r) => r.name)).toEqual([repository.name]);
    const twice = await clients.artifactRegistry
      .createRepository({ parent, repositoryId: REPO, repository: {} })
      .catch((e: unknown) => e);
    expect(isAlreadyExists(twice)).toBe(true);
  });

  it('builds the ingest app into an image in the repository', async () => {
    const object = await upload(join(process.cwd(), 'assets/ingest-app'), 'source/ingest.tgz');
    const [op] = await clients.build.createBuild(dockerBuild(object, IMAGE));
    const [build] = await op.promise();
    expect(build.status).toBe(SUCCESS);
    expect(build.results?.images?.[0]?.name).toBe(IMAGE);
    expect(build.results?.images?.[0]?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const [got] = await clients.build.getBuild({ projectId: PROJECT, id: build.id ?? '' });
    expect(got.status).toBe('SUCCESS');
    expect(got.finishTime).toBeTruthy();

    const image = host.cloud
      .service<ArtifactRegistryService>('artifactregistry')
      .resolveImage(IMAGE);
    expect(image.kind).toBe('node');
    const installed = join(image.folder ?? '', 'node_modules/@google-cloud/pubsub/package.json');
    expect(JSON.parse(readFileSync(installed, 'utf8'))).toHaveProperty('version');

    const [images] = await clients.artifactRegistry.listDockerImages({
      parent: `projects/${PROJECT}/locations/${LOCATION}/repositories/${REPO}`,
    });
    expect(images[0]?.tags).toEqual(['tag1']);
    expect(images[0]?.uri).toBe(
      `${IMAGE.replace(/:tag1$/, '')}@${build.results?.images?.[0]?.digest}`,
    );

    // The same source again reuses the image: same digest, no second install.
    const [op2] = await clients.build.createBuild(
      dockerBuild(object, IMAGE.replace('tag1', 'tag2')),
    );
    const [second] = await op2.promise();
    expect(second.results?.images?.[0]?.digest).toBe(build.results?.images?.[0]?.digest);
    const log = readFileSync(join(local.dataDir, 'build/logs', `${second.id}.log`), 'utf8');
    expect(log).toMatch(/Reusing image sha256:/);
  }, 120_000);

  it('fails a build with a broken package.json, with the end of its log', async () => {
    const source = join(dir, 'broken');
    mkdirSync(source);
    writeFileSync(join(source, 'package.json'), '{ "name": "broken", "scripts": { "start": ');
    const object = await upload(source, 'source/broken.tgz');
    const [op] = await clients.build.createBuild(
      dockerBuild(object, `${LOCATION}-docker.pkg.dev/${PROJECT}/${REPO}/broken:1`),
    );
    const failure = (await op.promise().catch((e: unknown) => e)) as {
      code: number;
      message: string;
    };
    expect(failure.code).toBe(2);
    expect(failure.message).toMatch(/FAILURE/);
    const [builds] = await clients.build.listBuilds({ projectId: PROJECT });
    const broken = builds.find((b) => b.status === 'FAILURE');
    expect(broken?.statusDetail).toMatch(/package.json is not valid JSON/);
    expect(broken?.statusDetail).toMatch(/Log tail:\n[\s\S]*FETCHSOURCE/);
    expect(broken?.failureInfo?.type).toBe('USER_BUILD_STEP');
  });

  it('fails the push to a repository that does not exist', async () => {
    const source = join(dir, 'tiny');
    mkdirSync(source);
    writeFileSync(
      join(source, 'package.json'),
      JSON.stringify({ name: 'tiny', scripts: { start: 'node -e 1' } }),
    );
    const object = await upload(source, 'source/tiny.tgz');
    const [op] = await clients.build.createBuild(
      dockerBuild(object, `${LOCATION}-docker.pkg.dev/${PROJECT}/no-such-repo/tiny:1`),
    );
    await expect(op.promise()).rejects.toMatchObject({ code: 2 });
    const [builds] = await clients.build.listBuilds({ projectId: PROJECT, pageSize: 1 });
    expect(builds[0]?.failureInfo?.type).toBe('PUSH_FAILED');
    expect(builds[0]?.statusDetail).toMatch(/no-such-repo does not exist/);
  });

  it('cancels a build', async () => {
    const source = join(dir, 'slow');
    mkdirSync(source);
    writeFileSync(
      join(source, 'package.json'),
      JSON.stringify({ name: 'slow', scripts: { start: 'node -e 1' } }),
    );
    const object = await upload(source, 'source/slow.tgz');
    const [op] = await clients.build.createBuild(
      dockerBuild(object, `${LOCATION}-docker.pkg.dev/${PROJECT}/${REPO}/slow:1`),
    );
    const id = (op.metadata as { build?: { id?: string } } | undefined)?.build?.id ?? '';
    const [cancelled] = await clients.build.cancelBuild({ projectId: PROJECT, id });
    expect(['CANCELLED', 'QUEUED', 'WORKING']).toContain(cancelled.status);
    await expect(op.promise()).rejects.toMatchObject({ code: 1 });
    const [after] = await clients.build.getBuild({ projectId: PROJECT, id });
    expect(after.status).toBe('CANCELLED');
  });
});
