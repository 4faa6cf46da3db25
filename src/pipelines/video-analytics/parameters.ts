import type { SubscriptionRef, TableRef } from '../pubsub-to-bigquery/parameters.js';
import {
  ParameterError,
  parseSubscription,
  parseTableSpec,
} from '../pubsub-to-bigquery/parameters.js';

/**
 * The parameters of Google's video analytics flex template, checked the way its pipeline options
 * check them. The local Dataflow service validates a launch with `parseVideoAnalyticsParameters`
 * (a bad launch is INVALID_ARGUMENT); the pipeline reads the same parameters back with it.
 */

export interface TopicRef {
  projectId: string;
  topicId: string;
  /** `projects/P/topics/T`. */
  name: string;
}

export interface VideoAnalyticsOptions {
  inputNotificationSubscription: SubscriptionRef;
  outputTopic: TopicRef;
  errorTopic: TopicRef;
  /** The only feature the template's object-tracking path supports. */
  features: 'OBJECT_TRACKING';
  /** Exact, case-sensitive entity descriptions whose rows are published, such as `person`. */
  entities: string[];
  /** A row is published when one of its frames reaches this confidence (0..1). */
  confidenceThreshold: number;
  /** Width of a row's time window, in whole seconds of video. */
  windowIntervalSec: number;
  table: TableRef;
}

export const VIDEO_REQUIRED_PARAMETERS = [
  'inputNotificationSubscription',
  'outputTopic',
  'errorTopic',
  'features',
  'entities',
  'tableReference',
] as const;

export const VIDEO_OPTIONAL_PARAMETERS = ['confidenceThreshold', 'windowInterval'] as const;

export const DEFAULT_CONFIDENCE_THRESHOLD = 0.5;
export const DEFAULT_WINDOW_INTERVAL_SEC = 1;

const TOPIC = /^projects\/(?<project>[^\n\r/]+)\/topics\/(?<topic>[^\n\r/]+)$/;

export function parseVideoAnalyticsParameters(
  parameters: Record<string, string>,
): VideoAnalyticsOptions {
  const known = new Set<string>([...VIDEO_REQUIRED_PARAMETERS, ...VIDEO_OPTIONAL_PARAMETERS]);
  const unknown = Object.keys(parameters).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new ParameterError(
      `Unrecognized template parameter(s): ${unknown.join(', ')}. This template accepts ` +
        `${[...VIDEO_REQUIRED_PARAMETERS, ...VIDEO_OPTIONAL_PARAMETERS].join(', ')}.`,
    );
  }
  for (const key of VIDEO_REQUIRED_PARAMETERS) {
    if (!parameters[key]?.trim()) {
      throw new ParameterError(`Missing required template parameter "${key}".`);
    }
  }
  return {
    inputNotificationSubscription: subscription(parameters.inputNotificationSubscription ?? ''),
    outputTopic: parseTopic('outputTopic', parameters.outputTopic ?? ''),
    errorTopic: parseTopic('errorTopic', parameters.errorTopic ?? ''),
    features: parseFeatures(parameters.features ?? ''),
    entities: parseEntities(parameters.entities ?? ''),
    confidenceThreshold: parseThreshold(parameters.confidenceThreshold),
    windowIntervalSec: parseWindowInterval(parameters.windowInterval),
    table: parseTableSpec('tableReference', parameters.tableReference ?? ''),
  };
}

export function parseTopic(parameter: string, value: string): TopicRef {
  const match = TOPIC.exec(value.trim());
  if (!match?.groups) {
    throw new ParameterError(
      `Template parameter "${parameter}" must look like projects/PROJECT/topics/NAME, ` +
        `not "${value}".`,
    );
  }
  const { project = '', topic = '' } = match.groups;
  return { projectId: project, topicId: topic, name: value.trim() };
}

function subscription(value: string): SubscriptionRef {
  try {
    return parseSubscription(value);
  } catch (error) {
    if (!(error instanceof ParameterError)) throw error;
    throw new ParameterError(
      'Template parameter "inputNotificationSubscription" must look like ' +
        `projects/PROJECT/subscriptions/NAME, not "${value}".`,
    );
  }
}

function parseFeatures(value: string): 'OBJECT_TRACKING' {
  const feature = value.trim().toUpperCase();
  if (feature !== 'OBJECT_TRACKING') {
    throw new ParameterError(
      `Template parameter "features" must be OBJECT_TRACKING, not "${value}": the video ` +
        'analytics template writes object-tracking annotations only.',
    );
  }
  return 'OBJECT_TRACKING';
}

function parseEntities(value: string): string[] {
  const entities = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (entities.length === 0) {
    throw new ParameterError(
      `Template parameter "entities" must be a comma-separated list such as "window,person", ` +
        `not "${value}".`,
    );
  }
  return [...new Set(entities)];
}

function parseThreshold(value: string | undefined): number {
  if (value === undefined || !value.trim()) return DEFAULT_CONFIDENCE_THRESHOLD;
  const threshold = Number(value.trim());
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 1) {
    throw new ParameterError(
      `Template parameter "confidenceThreshold" must be a number from 0 to 1, such as 0.9, ` +
        `not "${value}".`,
    );
  }
  return threshold;
}

function parseWindowInterval(value: string | undefined): number {
  if (value === undefined || !value.trim()) return DEFAULT_WINDOW_INTERVAL_SEC;
  const seconds = Number(value.trim());
  if (!Number.isInteger(seconds) || seconds < 1) {
    throw new ParameterError(
      `Template parameter "windowInterval" must be a whole number of seconds, 1 or more, ` +
        `not "${value}".`,
    );
  }
  return seconds;
}
