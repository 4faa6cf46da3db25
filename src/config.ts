import { LabError } from './errors.js';
import type { TargetKind } from './cloud/target.js';

/**
 * Everything a user can set with `cymbal-lab config set`. Resource names default to the lab's
 * own, so a learner finds the same resources here and in the Google Cloud console.
 */
export interface LabConfig {
  target: TargetKind;
  project: string;
  region: string;
  /** Port of the local cloud's loopback server. */
  localPort: number;
  /** Port of the local Pub/Sub emulator. */
  pubsubPort: number;

  // Part 1
  serviceName: string;
  repository: string;
  imageTag: string;
  topic: string;
  subscription: string;
  dataset: string;
  table: string;
  jobName: string;

  // Part 2
  notificationTopic: string;
  notificationSubscription: string;
  detectionTopic: string;
  detectionSubscription: string;
  errorTopic: string;
  errorSubscription: string;
  videoDataset: string;
  videoTable: string;
  videoJobName: string;
  entities: string;
  confidenceThreshold: number;
}

export const LOCAL_PROJECT = 'cymbal-lab-local';

export const DEFAULT_CONFIG: LabConfig = {
  target: 'local',
  project: LOCAL_PROJECT,
  region: 'us-central1',
  localPort: 8790,
  pubsubPort: 8791,

  serviceName: 'pubsub-proxy',
  repository: 'quickstart-docker-repo',
  imageTag: 'tag1',
  topic: 'ecommerce-events',
  subscription: 'ecommerce-events-pull',
  dataset: 'retail_dataset',
  table: 'ecommerce_events',
  jobName: 'ecommerce-events-ps-to-bq-stream',

  notificationTopic: 'gcs-notification-topic',
  notificationSubscription: 'gcs-notification-subscription',
  detectionTopic: 'object-detection-topic',
  detectionSubscription: 'object-detection-subscription',
  errorTopic: 'error-topic',
  errorSubscription: 'error-subscription',
  videoDataset: 'video_analytics',
  videoTable: 'object_tracking_analysis',
  videoJobName: 'video-object-tracking',
  entities: 'window,person',
  confidenceThreshold: 0.9,
};

export type ConfigKey = keyof LabConfig;

export const CONFIG_KEYS = Object.keys(DEFAULT_CONFIG) as ConfigKey[];

/** The buckets are named after the project, as the lab names them. */
export function videoBucket(config: LabConfig): string {
  return `${config.project}_videos`;
}

export function templateBucket(config: LabConfig): string {
  return `${config.project}_dataflow_template_config`;
}

export function isConfigKey(key: string): key is ConfigKey {
  return (CONFIG_KEYS as string[]).includes(key);
}

/** Checks one value and returns it in the key's type; a bad value is a LabError saying why. */
export function parseConfigValue(key: string, raw: string): LabConfig[ConfigKey] {
  if (!isConfigKey(key)) {
    throw new LabError(`"${key}" is not a setting.`, {
      hint: `Settings: ${CONFIG_KEYS.join(', ')}.`,
    });
  }
  const fallback = DEFAULT_CONFIG[key];
  if (key === 'target') {
    if (raw !== 'local' && raw !== 'gcp') {
      throw new LabError(`target must be "local" or "gcp", not "${raw}".`);
    }
    return raw;
  }
  if (key === 'confidenceThreshold') {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || value > 1) {
      throw new LabError(`confidenceThreshold must be a number from 0 to 1, not "${raw}".`);
    }
    return value;
  }
  if (typeof fallback === 'number') {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0 || value > 65_535) {
      throw new LabError(`${key} must be a port number from 0 to 65535, not "${raw}".`);
    }
    return value;
  }
  if (key === 'project' && !/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(raw)) {
    throw new LabError(`"${raw}" is not a valid Google Cloud project id.`, {
      hint: 'A project id has 6 to 30 lowercase letters, digits or hyphens and starts with a letter.',
    });
  }
  if (raw.trim() === '') throw new LabError(`${key} cannot be empty.`);
  return raw;
}

/**
 * The lab publishes detections at confidence 0.9, a level Google's tracker reaches on clear
 * views. The local detector (COCO-SSD) scores the same views lower, around 0.8, so on the
 * local target the threshold defaults to 0.7; `config set confidenceThreshold` overrides both.
 */
export const LOCAL_CONFIDENCE_THRESHOLD = 0.7;

/** Merges stored settings over the defaults, dropping unknown keys. */
export function resolveConfig(stored: Partial<Record<string, unknown>>): LabConfig {
  const config: LabConfig = { ...DEFAULT_CONFIG };
  for (const key of CONFIG_KEYS) {
    const value = stored[key];
    if (value !== undefined && typeof value === typeof DEFAULT_CONFIG[key]) {
      (config as unknown as Record<string, unknown>)[key] = value;
    }
  }
  if (stored.confidenceThreshold === undefined && config.target === 'local') {
    config.confidenceThreshold = LOCAL_CONFIDENCE_THRESHOLD;
  }
  return config;
}
