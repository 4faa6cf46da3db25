import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Clients } from '../../src/cloud/clients.js';
import { isNotFound } from '../../src/errors.js';
import type { RunningHost } from '../../src/local/host.js';
import type { Route } from '../../src/local/http.js';
import { ApiError } from '../../src/local/http.js';
import { operationsFactory, operationStore, packAny } from '../../src/local/operations.js';
import type { LocalCloud, LocalService } from '../../src/local/service.js';
import type { TestHost } from './host-fixture.js';
import { openTestHost } from './host-fixture.js';

/**
 * The shared operation store, polled by the real Run and Build REST clients. A stub service
 * answers `createService` with an operation that finishes a little later, so the client has to
 * poll it to the end and decode the `Any` it carries.
 */

const SERVICE = 'google.cloud.run.v2.Service';

/** The generated operation methods are typed with message classes; a plain request will do. */
const byName = (name: string | null | undefined): never => ({ name: name ?? '' }) as never;

function stubRun(cloud: LocalCloud): LocalService {
  const create: Route = {
    method: 'POST',
    path: /^\/v2\/(?<parent>projects\/[^/]+\/locations\/[^/]+)\/services$/,
    handler: (request) => {
      const parent = request.params.parent ?? '';
      const id = request.query.get('serviceId') ?? '';
      const body = request.json<{ template?: unknown }>();
      const service = { name: `${parent}/services/${id}`, template: body.template };
      const store = operationStore(cloud);
      const op = store.run({ parent, metadata: packAny(SERVICE, service) }, async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        if (id === 'broken') throw new ApiError('FAILED_PRECONDITION', 'The image is broken.');
        return packAny(SERVICE, { ...service, uri: 'http://127.0.0.1:1', reconciling: false });
      });
      return Promise.resolve({ json: op });
    },
  };
  return {
    name: 'stub-run',
    routes: [create],
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    status: () =>
      Promise.resolve({ name: 'stub-run', endpoint: '', state: 'running', resources: [] }),
  };
}

describe('long-running operations over REST', () => {
  let local: TestHost;
  let host: RunningHost;
  let clients: Clients;
  const parent = 'projects/p1/locations/us-central1';

  beforeAll(async () => {
    local = await openTestHost({
      project: 'p1',
      region: 'us-central1',
      factories: [operationsFactory, stubRun],
    });
    ({ host, clients } = local);
  });

  afterAll(async () => {
    await local?.close();
  });

  it('polls a create operation to its decoded response', async () => {
    const [op] = await clients.run.createService({
      parent,
      serviceId: 'pubsub-proxy',
      service: {
        template: { containers: [{ image: 'img:tag1', env: [{ name: 'A', value: 'b' }] }] },
      },
    });
    expect(op.done).toBe(false);
    expect(op.name).toMatch(/^projects\/p1\/locations\/us-central1\/operations\//);
    const [service] = await op.promise();
    expect(service.name).toBe(`${parent}/services/pubsub-proxy`);
    expect(service.uri).toBe('http://127.0.0.1:1');
    expect(service.template?.containers?.[0]?.env?.[0]).toMatchObject({ name: 'A', value: 'b' });
  });

  it('raises the operation error with its gRPC code', async () => {
    const [op] = await clients.run.createService({ parent, serviceId: 'broken', service: {} });
    await expect(op.promise()).rejects.toMatchObject({ code: 9, message: /image is broken/ });
  });

  it('lists, gets, waits for and deletes operations', async () => {
    const [op] = await clients.run.createService({ parent, serviceId: 'later', service: {} });
    const [got] = await clients.run.getOperation(byName(op.name));
    expect(got.name).toBe(op.name);
    const names: string[] = [];
    for await (const listed of clients.run.listOperationsAsync(byName(parent))) {
      names.push(listed.name ?? '');
    }
    expect(names).toContain(op.name);
    const waited = await operationStore(host.cloud).wait(op.name ?? '', 5_000);
    expect(waited.done).toBe(true);
    await clients.run.deleteOperation(byName(op.name));
    const gone = await clients.run.getOperation(byName(op.name)).catch((e: unknown) => e);
    expect(isNotFound(gone)).toBe(true);
  });

  it('serves the Build and Video Intelligence polling paths', async () => {
    const store = operationStore(host.cloud);
    const global = store.done(
      {
        name: 'operations/build/p1/abc',
        metadata: packAny('google.devtools.cloudbuild.v1.BuildOperationMetadata', {
          build: { id: 'abc' },
        }),
      },
      packAny('google.devtools.cloudbuild.v1.Build', { id: 'abc', status: 3 }),
    );
    const check = await clients.build.checkCreateBuildProgress(global.name);
    expect(check.result).toMatchObject({ id: 'abc' });
    const video = store.done(
      { parent },
      packAny('google.cloud.videointelligence.v1.AnnotateVideoResponse', {
        annotationResults: [{ inputUri: '/b/v.mp4' }],
      }),
    );
    const checked = await clients.video.checkAnnotateVideoProgress(video.name);
    expect(checked.done).toBe(true);
    expect(checked.result).toMatchObject({ annotationResults: [{ inputUri: '/b/v.mp4' }] });
  });
});
