import { errorMessage } from '../../errors.js';
import type { LocalCloud, LocalService, ResourceLine, ServiceStatus } from '../service.js';
import { runningEmulator } from './emulator.js';
import { emulatorCall, listAll } from './rest.js';

/**
 * Pub/Sub in `local status`. The emulator serves the API itself (clients talk gRPC to it
 * directly), so this service has no routes: it only reports the topics and subscriptions of the
 * local project and the JVM's memory.
 */
export function pubsubService(cloud: LocalCloud): LocalService {
  const project = `/v1/projects/${encodeURIComponent(cloud.projectId)}`;
  return {
    name: 'pubsub',
    routes: [],
    async start() {
      // The daemon started the emulator before any service; nothing more to do.
    },
    async stop() {
      // The daemon stops the emulator after every service that publishes to it.
    },
    async status(): Promise<ServiceStatus> {
      const emulator = runningEmulator(cloud.pubsubHost);
      const memory = emulator?.supervisor.memoryBytes();
      const base = {
        name: 'pubsub',
        endpoint: cloud.pubsubHost,
        ...(memory === undefined ? {} : { childMemoryBytes: memory }),
      };
      try {
        await emulatorCall(cloud.pubsubHost, 'GET', '/', undefined, 2_000);
      } catch (error) {
        return { ...base, state: 'failed', detail: errorMessage(error), resources: [] };
      }
      const [topics, subscriptions] = await Promise.all([
        listAll<{ name: string }>(cloud.pubsubHost, `${project}/topics`, 'topics'),
        listAll<SubscriptionView>(cloud.pubsubHost, `${project}/subscriptions`, 'subscriptions'),
      ]);
      const resources: ResourceLine[] = [
        ...topics.map((t) => ({ kind: 'topic', name: shortName(t.name) })),
        ...subscriptions.map((s) => ({
          kind: 'subscription',
          name: shortName(s.name),
          detail: describeSubscription(s),
        })),
      ];
      return {
        ...base,
        state: 'running',
        // The emulator never lets go of a message; say how much room it has.
        detail:
          `official emulator, project ${cloud.projectId}` +
          (emulator ? `, heap ${emulator.heapMb} MB, keeps every message until restarted` : ''),
        resources,
      };
    },
  };
}

interface SubscriptionView {
  name: string;
  topic?: string;
  ackDeadlineSeconds?: number;
  pushConfig?: { pushEndpoint?: string };
  deadLetterPolicy?: { deadLetterTopic?: string };
}

function describeSubscription(s: SubscriptionView): string {
  const parts = [`topic ${s.topic ? shortName(s.topic) : '?'}`];
  if (s.ackDeadlineSeconds) parts.push(`ack ${s.ackDeadlineSeconds}s`);
  if (s.pushConfig?.pushEndpoint) parts.push(`push ${s.pushConfig.pushEndpoint}`);
  if (s.deadLetterPolicy?.deadLetterTopic) {
    parts.push(`dead letter ${shortName(s.deadLetterPolicy.deadLetterTopic)}`);
  }
  return parts.join(', ');
}

function shortName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}
