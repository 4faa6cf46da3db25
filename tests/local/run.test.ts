import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create } from 'tar';

import type { Clients } from '../../src/cloud/clients.js';
import { createClients } from '../../src/cloud/clients.js';
import { isNotFound } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { artifactRegistryFactory } from '../../src/local/artifactregistry/service.js';
import { buildFactory } from '../../src/local/build/service.js';
import type { RunningHost } from '../../src/local/host.js';
import { openHost } from '../../src/local/host.js';
import { operationsFactory } from '../../src/local/operations.js';
import type { RunningEmulator } from '../../src/local/pubsub/emulator.js';
import { startEmulator } from '../../src/local/pubsub/emulator.js';
import type { RunService } from '../../src/local/run/service.js';
import { runFactory } from '../../src/local/run/service.js';
import { storageServiceFactory } from '../../src/local/storage/service.js';

/**
 * Cloud Run through its official client: the ingest app, built by the local Cloud Build, is
 * deployed, answers at its uri and publishes to the real Pub/Sub emulator; it is restarted when
 * it dies, updated to a new revision, kept serving when a bad revision fails, started again when
 * the local cloud restarts, and deleted.
 */

const PROJECT = 'run-test';
const LOCATION = 'us-central1';
const PARENT = `projects/${PROJECT}/locations/${LOCATION}`;
const REPO = 'quickstart-docker-repo';
const IMAGE = `${LOCATION}-docker.pkg.dev/${PROJECT}/${REPO}/pubsub-proxy:tag1`;
const NAME = `${PARENT}/services/pubsub-proxy`;

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const answers = (uri: string): Promise<boolean> =>
  fetch(uri).then(
    (r) => r.ok,
    () => false,
  );

describe('local Cloud Run', () => {
  let dir: string;
  let emulator: RunningEmulator;
  let host: RunningHost;
  let clients: Clients;
  let uri = '';

  async function open(): Promise<RunningHost> {
    return openHost({
      dataDir: join(dir, 'local'),
      port: 0,
      pubsubHost: emulator.host,
      projectId: PROJECT,
      log: silentLogger,
      factories: [
        storageServiceFactory,
        operationsFactory,
        artifactRegistryFactory,
        buildFactory,
        runFactory,
      ],
    });
  }

  function clientsFor(endpoint: string): Clients {
    return createClients({
      kind: 'local',
      projectId: PROJECT,
      region: LOCATION,
      local: { api: endpoint, pubsub: emulator.host },
    });
  }

  const run = (): RunService => host.cloud.service<RunService>('run');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-run-'));
    emulator = await startEmulator({ port: 0, dataDir: dir, log: silentLogger, saveIntervalMs: 0 });
    host = await open();
    clients = clientsFor(host.endpoint);
    const [topic] = await clients.pubsub.createTopic('ecommerce-events');
    await topic.createSubscription('ecommerce-events-pull');
    const [repo] = await clients.artifactRegistry.createRepository({
      parent: PARENT,
      repositoryId: REPO,
      repository: { format: 'DOCKER' },
    });
    await repo.promise();
    const archive = join(dir, 'source.tgz');
    await create({ gzip: true, cwd: join(process.cwd(), 'assets/ingest-app'), file: archive }, [
      '.',
    ]);
    await clients.storage.createBucket(`${PROJECT}_cloudbuild`);
    await clients.storage
      .bucket(`${PROJECT}_cloudbuild`)
      .upload(archive, { destination: 'source.tgz' });
    const [build] = await clients.build.createBuild({
      projectId: PROJECT,
      build: {
        source: { storageSource: { bucket: `${PROJECT}_cloudbuild`, object: 'source.tgz' } },
        steps: [{ name: 'gcr.io/cloud-builders/docker', args: ['build', '-t', IMAGE, '.'] }],
        images: [IMAGE],
      },
    });
    await build.promise();
  }, 150_000);

  afterAll(async () => {
    await clients?.close();
    await host?.close();
    await emulator?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deploys the built image; the service answers at its uri and publishes', async () => {
    const [op] = await clients.run.createService({
      parent: PARENT,
      serviceId: 'pubsub-proxy',
      service: {
        template: {
          containers: [{ image: IMAGE, env: [{ name: 'TOPIC', value: 'ecommerce-events' }] }],
        },
      },
    });
    const [service] = await op.promise();
    uri = service.uri ?? '';
    expect(uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(service.latestReadyRevision).toMatch(
      new RegExp(`^${NAME}/revisions/pubsub-proxy-00001-`),
    );
    const [got] = await clients.run.getService({ name: NAME });
    expect(got.terminalCondition?.state).toBe('CONDITION_SUCCEEDED');
    expect(got.reconciling).toBe(false);

    const response = await fetch(`${uri}/json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'view_item', user_id: 'UID00001' }),
    });
    expect(response.status).toBe(200);
    const [pulled] = await clients.subscriber.pull({
      subscription: `projects/${PROJECT}/subscriptions/ecommerce-events-pull`,
      maxMessages: 10,
    });
    const message = pulled.receivedMessages?.[0]?.message;
    expect(JSON.parse(Buffer.from(message?.data ?? '').toString('utf8'))).toEqual({
      event: 'view_item',
      user_id: 'UID00001',
    });
    expect(message?.attributes).toMatchObject({ origin: 'gtm-cloud-run' });
  });

  it('keeps an IAM policy that grants allUsers the invoker role', async () => {
    const policy = { bindings: [{ role: 'roles/run.invoker', members: ['allUsers'] }] };
    await clients.run.setIamPolicy({ resource: NAME, policy });
    const [read] = await clients.run.getIamPolicy({ resource: NAME });
    expect(read.bindings).toEqual([
      expect.objectContaining({ role: 'roles/run.invoker', members: ['allUsers'] }),
    ]);
  });

  it('restarts the app when it dies, at the same uri', async () => {
    const supervisor = run().instance(NAME)?.supervisor;
    const pid = supervisor?.pid ?? 0;
    expect(pid).toBeGreaterThan(0);
    process.kill(-pid, 'SIGKILL');
    await until(() => (supervisor?.pid ?? pid) !== pid && supervisor?.pid !== undefined);
    await until(() => answers(uri));
    expect(supervisor?.restarts).toBe(1);
  });

  it('rolls out an update as a new revision, keeping the uri', async () => {
    const [op] = await clients.run.updateService({
      service: {
        name: NAME,
        labels: { stage: 'two' },
        template: {
          containers: [{ image: IMAGE, env: [{ name: 'MAX_BODY_BYTES', value: '64' }] }],
        },
      },
    });
    const [service] = await op.promise();
    expect(service.uri).toBe(uri);
    expect(service.latestReadyRevision).toMatch(/pubsub-proxy-00002-/);
    expect(service.labels).toEqual({ stage: 'two' });
    const big = await fetch(`${uri}/json`, {
      method: 'POST',
      body: JSON.stringify({ event: 'x', user_id: 'y', page: 'p'.repeat(100) }),
    });
    expect(big.status).toBe(413);
  });

  it('keeps the last ready revision serving when a new one fails', async () => {
    const [op] = await clients.run.updateService({
      service: {
        name: NAME,
        template: { containers: [{ image: `${IMAGE.replace(':tag1', ':missing')}` }] },
      },
    });
    await expect(op.promise()).rejects.toThrow(/not ready.*was not found/);
    const [service] = await clients.run.getService({ name: NAME });
    expect(service.terminalCondition?.state).toBe('CONDITION_FAILED');
    expect(service.latestReadyRevision).toMatch(/pubsub-proxy-00002-/);
    await until(() => answers(uri));
  });

  it('starts the service again when the local cloud restarts', async () => {
    await host.close();
    expect(await answers(uri)).toBe(false);
    host = await open();
    await clients.close();
    clients = clientsFor(host.endpoint);
    await until(() => answers(uri));
    const [services] = await clients.run.listServices({ parent: PARENT });
    expect(services.map((s) => s.uri)).toEqual([uri]);
  });

  it('deletes the service and stops its app', async () => {
    const [op] = await clients.run.deleteService({ name: NAME });
    await op.promise();
    expect(await answers(uri)).toBe(false);
    const gone = await clients.run.getService({ name: NAME }).catch((e: unknown) => e);
    expect(isNotFound(gone)).toBe(true);
  });
});
