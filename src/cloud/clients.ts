import { createRequire } from 'node:module';

import type { ArtifactRegistryClient } from '@google-cloud/artifact-registry';
import type { BigQuery } from '@google-cloud/bigquery';
import type { CloudBuildClient } from '@google-cloud/cloudbuild';
import type {
  FlexTemplatesServiceClient,
  JobsV1Beta3Client,
  TemplatesServiceClient,
} from '@google-cloud/dataflow';
import type { PubSub, v1 as pubsubV1 } from '@google-cloud/pubsub';
import type { ServicesClient } from '@google-cloud/run';
import type { ServiceUsageClient } from '@google-cloud/service-usage';
import type { Storage } from '@google-cloud/storage';
import type { VideoIntelligenceServiceClient } from '@google-cloud/video-intelligence';
import type { ClientOptions } from 'google-gax';

import type { Target } from './target.js';

/**
 * The official clients for one target. Each is built on first use, and its library is loaded
 * then too, so `cymbal-lab status` never pays for the gRPC stack.
 */
export interface Clients {
  readonly target: Target;
  readonly pubsub: PubSub;
  /** The generated subscriber, for synchronous pull with explicit acks. */
  readonly subscriber: pubsubV1.SubscriberClient;
  readonly bigquery: BigQuery;
  readonly storage: Storage;
  readonly run: ServicesClient;
  readonly build: CloudBuildClient;
  readonly artifactRegistry: ArtifactRegistryClient;
  readonly templates: TemplatesServiceClient;
  readonly flexTemplates: FlexTemplatesServiceClient;
  readonly jobs: JobsV1Beta3Client;
  readonly video: VideoIntelligenceServiceClient;
  readonly serviceUsage: ServiceUsageClient;
  /** Closes every client that was built. */
  close(): Promise<void>;
}

const load = createRequire(import.meta.url);
const lib = {
  pubsub: () => load('@google-cloud/pubsub') as typeof import('@google-cloud/pubsub'),
  bigquery: () => load('@google-cloud/bigquery') as typeof import('@google-cloud/bigquery'),
  storage: () => load('@google-cloud/storage') as typeof import('@google-cloud/storage'),
  run: () => load('@google-cloud/run') as typeof import('@google-cloud/run'),
  build: () => load('@google-cloud/cloudbuild') as typeof import('@google-cloud/cloudbuild'),
  registry: () =>
    load('@google-cloud/artifact-registry') as typeof import('@google-cloud/artifact-registry'),
  dataflow: () => load('@google-cloud/dataflow') as typeof import('@google-cloud/dataflow'),
  video: () =>
    load('@google-cloud/video-intelligence') as typeof import('@google-cloud/video-intelligence'),
  usage: () => load('@google-cloud/service-usage') as typeof import('@google-cloud/service-usage'),
  gax: () => load('google-gax') as typeof import('google-gax'),
  auth: () => load('google-auth-library') as typeof import('google-auth-library'),
};

export function createClients(target: Target): Clients {
  const built = new Map<string, unknown>();
  const once = <T>(key: string, make: () => T): T => {
    if (!built.has(key)) built.set(key, make());
    return built.get(key) as T;
  };
  const { projectId } = target;
  const local = target.local;
  const gax = () => gaxOptions(target);
  // Without credentials the auth library probes for a GCE metadata server and warns when none
  // answers; the local cloud needs no credentials, so the probe is switched off.
  if (local) process.env.METADATA_SERVER_DETECTION ??= 'none';

  return {
    target,
    get pubsub() {
      return once('pubsub', () => {
        const { PubSub } = lib.pubsub();
        if (!local) return new PubSub({ projectId });
        return new PubSub({ projectId, emulatorMode: true, apiEndpoint: local.pubsub });
      });
    },
    get subscriber() {
      return once('subscriber', () => {
        const { v1 } = lib.pubsub();
        if (!local) return new v1.SubscriberClient({ projectId });
        const { hostname, port } = new URL(`http://${local.pubsub}`);
        // The generated client ignores PUBSUB_EMULATOR_HOST: point it at the emulator by hand.
        return new v1.SubscriberClient({
          projectId,
          servicePath: hostname,
          port: Number(port),
          sslCreds: lib.gax().grpc.credentials.createInsecure(),
          // Without it the client first looks for a metadata server, which costs ~2 s here.
          authClient: new (lib.auth().PassThroughClient)() as never,
        });
      });
    },
    get bigquery() {
      return once('bigquery', () => {
        const { BigQuery } = lib.bigquery();
        return local
          ? new BigQuery({ projectId, apiEndpoint: local.api })
          : new BigQuery({ projectId });
      });
    },
    get storage() {
      return once('storage', () => {
        const { Storage } = lib.storage();
        return local
          ? new Storage({ projectId, apiEndpoint: local.api })
          : new Storage({ projectId });
      });
    },
    get run() {
      return once('run', () => new (lib.run().ServicesClient)(gax()));
    },
    get build() {
      return once('build', () => new (lib.build().CloudBuildClient)(gax()));
    },
    get artifactRegistry() {
      return once('artifactRegistry', () => new (lib.registry().ArtifactRegistryClient)(gax()));
    },
    get templates() {
      return once('templates', () => new (lib.dataflow().TemplatesServiceClient)(gax()));
    },
    get flexTemplates() {
      return once('flexTemplates', () => new (lib.dataflow().FlexTemplatesServiceClient)(gax()));
    },
    get jobs() {
      return once('jobs', () => new (lib.dataflow().JobsV1Beta3Client)(gax()));
    },
    get video() {
      return once('video', () => new (lib.video().VideoIntelligenceServiceClient)(gax()));
    },
    get serviceUsage() {
      return once('serviceUsage', () => new (lib.usage().ServiceUsageClient)(gax()));
    },
    async close() {
      const closers = [...built.values()].map(async (client) => {
        const c = client as { close?: () => Promise<void> | void };
        if (typeof c.close === 'function') await c.close();
      });
      built.clear();
      await Promise.allSettled(closers);
    },
  };
}

/**
 * Options for the gax-based clients. Locally they speak REST (`fallback`) over plain HTTP to the
 * loopback server with an auth client that adds no token.
 */
function gaxOptions(target: Target): ClientOptions {
  if (!target.local) return { projectId: target.projectId };
  const url = new URL(target.local.api);
  return {
    projectId: target.projectId,
    apiEndpoint: url.hostname,
    port: Number(url.port),
    protocol: 'http',
    fallback: true,
    authClient: localAuthClient() as never,
  };
}

/**
 * An auth client that adds no token and hands every HTTP answer, errors included, back to
 * google-gax. The plain pass-through client lets its HTTP library throw on an error status, so
 * a NOT_FOUND would reach the caller as an HTTP 404 instead of the gRPC error (code 5) that
 * gax decodes from Google's error body, as it does against Google.
 */
function localAuthClient(): object {
  const { PassThroughClient } = lib.auth();
  class LocalAuthClient extends PassThroughClient {
    override fetch<T>(input: string | URL | Request, init: object = {}) {
      // gaxios reads `validateStatus` from the same options object as the fetch settings.
      const options: RequestInit = { ...init, validateStatus: () => true } as RequestInit;
      return super.fetch<T>(input, options);
    }
  }
  return new LocalAuthClient();
}
