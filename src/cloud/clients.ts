import { ArtifactRegistryClient } from '@google-cloud/artifact-registry';
import { BigQuery } from '@google-cloud/bigquery';
import { CloudBuildClient } from '@google-cloud/cloudbuild';
import {
  FlexTemplatesServiceClient,
  JobsV1Beta3Client,
  TemplatesServiceClient,
} from '@google-cloud/dataflow';
import { PubSub, v1 as pubsubV1 } from '@google-cloud/pubsub';
import { ServicesClient } from '@google-cloud/run';
import { ServiceUsageClient } from '@google-cloud/service-usage';
import { Storage } from '@google-cloud/storage';
import { VideoIntelligenceServiceClient } from '@google-cloud/video-intelligence';
import { PassThroughClient } from 'google-auth-library';
import type { ClientOptions } from 'google-gax';
import { grpc } from 'google-gax';

import type { Target } from './target.js';

/**
 * The official clients for one target. Each is built on first use, so a step that only needs
 * BigQuery never loads the Pub/Sub gRPC stack.
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

export function createClients(target: Target): Clients {
  const built = new Map<string, unknown>();
  const once = <T>(key: string, make: () => T): T => {
    if (!built.has(key)) built.set(key, make());
    return built.get(key) as T;
  };
  const gax = gaxOptions(target);
  const local = target.local;

  return {
    target,
    get pubsub() {
      return once('pubsub', () =>
        local
          ? new PubSub({
              projectId: target.projectId,
              emulatorMode: true,
              apiEndpoint: local.pubsub,
            })
          : new PubSub({ projectId: target.projectId }),
      );
    },
    get subscriber() {
      return once('subscriber', () => {
        if (!local) return new pubsubV1.SubscriberClient({ projectId: target.projectId });
        const { hostname, port } = new URL(`http://${local.pubsub}`);
        // The generated client ignores PUBSUB_EMULATOR_HOST: point it at the emulator by hand.
        return new pubsubV1.SubscriberClient({
          projectId: target.projectId,
          servicePath: hostname,
          port: Number(port),
          sslCreds: grpc.credentials.createInsecure(),
        });
      });
    },
    get bigquery() {
      return once('bigquery', () =>
        local
          ? new BigQuery({ projectId: target.projectId, apiEndpoint: local.api })
          : new BigQuery({ projectId: target.projectId }),
      );
    },
    get storage() {
      return once('storage', () =>
        local
          ? new Storage({ projectId: target.projectId, apiEndpoint: local.api })
          : new Storage({ projectId: target.projectId }),
      );
    },
    get run() {
      return once('run', () => new ServicesClient(gax));
    },
    get build() {
      return once('build', () => new CloudBuildClient(gax));
    },
    get artifactRegistry() {
      return once('artifactRegistry', () => new ArtifactRegistryClient(gax));
    },
    get templates() {
      return once('templates', () => new TemplatesServiceClient(gax));
    },
    get flexTemplates() {
      return once('flexTemplates', () => new FlexTemplatesServiceClient(gax));
    },
    get jobs() {
      return once('jobs', () => new JobsV1Beta3Client(gax));
    },
    get video() {
      return once('video', () => new VideoIntelligenceServiceClient(gax));
    },
    get serviceUsage() {
      return once('serviceUsage', () => new ServiceUsageClient(gax));
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
    // google-gax carries its own copy of google-auth-library; the pass-through client only
    // has to answer `getRequestHeaders` with no token, which any copy's class does.
    authClient: new PassThroughClient() as never,
  };
}
