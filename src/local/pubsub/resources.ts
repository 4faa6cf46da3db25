import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { EmulatorRestError, emulatorCall, listAll } from './rest.js';

/**
 * The emulator keeps everything in memory, so a restart would lose every topic and subscription
 * the lab created. We save their definitions (as the REST API returns them) to a JSON file and
 * create them again when the emulator starts. Messages are not saved: anything published but not
 * yet acknowledged when the emulator stops is gone, as it would be after Google's own emulator
 * restarts.
 */

export type Resource = Record<string, unknown> & { name: string };

export interface PubsubResources {
  version: 1;
  savedAt: string;
  projects: Record<string, { schemas: Resource[]; topics: Resource[]; subscriptions: Resource[] }>;
}

/** Names the emulator gives a subscription whose topic was deleted. */
const DELETED_TOPIC = '_deleted-topic_';

/** Fields the API reports but refuses (or ignores) on create. */
const OUTPUT_ONLY = new Set([
  'name',
  'state',
  'topicMessageRetentionDuration',
  'analyticsHubSubscriptionInfo',
  'revisionId',
  'revisionCreateTime',
]);

/** Lists the schemas, topics and subscriptions of each project. */
export async function readResources(host: string, projectIds: string[]): Promise<PubsubResources> {
  const projects: PubsubResources['projects'] = {};
  for (const project of projectIds) {
    const base = `/v1/projects/${encodeURIComponent(project)}`;
    const [schemas, topics, subscriptions] = await Promise.all([
      // Schemas are optional for the emulator; a release without them must not stop the save.
      listAll<Resource>(host, `${base}/schemas?view=FULL`, 'schemas').catch(() => []),
      listAll<Resource>(host, `${base}/topics`, 'topics'),
      listAll<Resource>(host, `${base}/subscriptions`, 'subscriptions'),
    ]);
    projects[project] = {
      schemas,
      topics,
      subscriptions: subscriptions.filter((s) => s.topic !== DELETED_TOPIC),
    };
  }
  return { version: 1, savedAt: new Date().toISOString(), projects };
}

/**
 * Creates every saved resource that does not exist yet: schemas, then topics (dead-letter topics
 * among them), then subscriptions. Returns how many were created; one that fails is logged and
 * skipped so the rest still come back.
 */
export async function restoreResources(
  host: string,
  saved: PubsubResources,
  log: Logger,
): Promise<number> {
  let created = 0;
  const create = async (what: string, call: () => Promise<unknown>): Promise<void> => {
    try {
      await call();
      created += 1;
    } catch (error) {
      if (error instanceof EmulatorRestError && error.httpStatus === 409) return;
      log.warn('could not re-create %s: %s', what, errorMessage(error));
    }
  };
  for (const [project, { schemas, topics, subscriptions }] of Object.entries(saved.projects)) {
    const base = `/v1/projects/${encodeURIComponent(project)}`;
    for (const schema of schemas) {
      const id = shortName(schema.name);
      await create(schema.name, () =>
        emulatorCall(host, 'POST', `${base}/schemas?schemaId=${encodeURIComponent(id)}`, {
          type: schema.type,
          definition: schema.definition,
        }),
      );
    }
    for (const topic of topics) {
      await create(topic.name, () =>
        emulatorCall(host, 'PUT', `/v1/${pathOf(topic.name)}`, createBody(topic)),
      );
    }
    for (const subscription of subscriptions) {
      await create(subscription.name, () =>
        emulatorCall(host, 'PUT', `/v1/${pathOf(subscription.name)}`, createBody(subscription)),
      );
    }
  }
  return created;
}

export function loadResources(file: string): PubsubResources | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as PubsubResources;
    return parsed.version === 1 && typeof parsed.projects === 'object' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Writes through a temporary file and a rename, so a crash never leaves half a file. */
export function saveResources(file: string, resources: PubsubResources): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(resources, null, 2)}\n`);
  renameSync(temporary, file);
}

/** The saved content without its timestamp, to tell whether anything changed. */
export function fingerprint(resources: PubsubResources): string {
  return JSON.stringify(resources.projects);
}

function createBody(resource: Resource): Record<string, unknown> {
  return Object.fromEntries(Object.entries(resource).filter(([key]) => !OUTPUT_ONLY.has(key)));
}

function pathOf(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

function shortName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}
