/**
 * Where the clients point. Step code receives clients built from a `Target` and never looks at
 * it again: on `gcp` the clients reach Google with Application Default Credentials, on `local`
 * they reach the local cloud on 127.0.0.1 with no credentials.
 */

export type TargetKind = 'local' | 'gcp';

export interface LocalEndpoints {
  /** Base URL of the loopback server for every REST API, such as `http://127.0.0.1:8790`. */
  api: string;
  /** `host:port` of the Pub/Sub emulator. */
  pubsub: string;
}

export interface Target {
  kind: TargetKind;
  projectId: string;
  region: string;
  /** Set exactly when `kind` is `local`. */
  local?: LocalEndpoints;
}

/** The variables that point a program at the local cloud, as `cymbal-lab local env` prints. */
export const LOCAL_ENV = {
  pubsub: 'PUBSUB_EMULATOR_HOST',
  bigquery: 'BIGQUERY_EMULATOR_HOST',
  storage: 'STORAGE_EMULATOR_HOST',
  /** Base URL for the gax-based clients (Run, Build, Dataflow, Video Intelligence, ...). */
  api: 'CYMBAL_LAB_ENDPOINT',
  project: 'GOOGLE_CLOUD_PROJECT',
} as const;

export function localEnvironment(target: Target): Record<string, string> {
  if (!target.local) return {};
  return {
    [LOCAL_ENV.pubsub]: target.local.pubsub,
    [LOCAL_ENV.bigquery]: target.local.api,
    [LOCAL_ENV.storage]: target.local.api,
    [LOCAL_ENV.api]: target.local.api,
    [LOCAL_ENV.project]: target.projectId,
  };
}

/**
 * Rebuilds a target from the environment, for programs the local cloud starts (pipelines, the
 * ingest app) and for users who ran `eval "$(cymbal-lab local env)"`.
 */
export function targetFromEnvironment(env: NodeJS.ProcessEnv = process.env): Target {
  const projectId = env[LOCAL_ENV.project] ?? env.GCLOUD_PROJECT ?? 'cymbal-local';
  const region = env.CYMBAL_LAB_REGION ?? 'us-central1';
  const api = env[LOCAL_ENV.api];
  const pubsub = env[LOCAL_ENV.pubsub];
  if (api && pubsub) return { kind: 'local', projectId, region, local: { api, pubsub } };
  return { kind: 'gcp', projectId, region };
}
