import { fileURLToPath } from 'node:url';

import { parsePubSubToBigQueryParameters } from '../../pipelines/pubsub-to-bigquery/parameters.js';
import { parseVideoAnalyticsParameters } from '../../pipelines/video-analytics/parameters.js';

/**
 * The Google-provided templates the local Dataflow service can run. Each entry says which
 * template paths it answers, which pipeline program runs a job, and how its parameters are
 * checked. Adding a template is adding one entry to `TEMPLATES`.
 */

export type TemplateKind = 'classic' | 'flex';

/** The sources and sinks a job reads and writes, shown in the job's `jobMetadata`. */
export interface TemplateIo {
  pubsub?: { subscription?: string; topic?: string }[];
  bigquery?: { projectId: string; dataset: string; table: string }[];
}

export interface TemplateDefinition {
  /** Google's name for the template, such as `PubSub_Subscription_to_BigQuery`. */
  name: string;
  kind: TemplateKind;
  /** Matches the classic `gcsPath` or the Flex `containerSpecGcsPath`. */
  path: RegExp;
  /** The path learners use, for error messages (REGION stands for the job's region). */
  example: string;
  /** The compiled pipeline program (a file under dist/src/pipelines/). */
  program: string;
  /**
   * Checks the launch parameters as the template does; throws an Error whose message tells the
   * user what to fix. Returns what the job reads and writes.
   */
  validate(parameters: Record<string, string>): TemplateIo;
}

/** `gs://dataflow-templates-REGION/VERSION/NAME` (or the bucket without a region). */
export function googleTemplatePath(name: string): RegExp {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^gs://dataflow-templates(?:-[a-z0-9-]+)?/[^/]+/${escaped}$`);
}

function pipelineProgram(relative: string): string {
  return fileURLToPath(new URL(`../../pipelines/${relative}`, import.meta.url));
}

function validatePubSubToBigQuery(parameters: Record<string, string>): TemplateIo {
  const options = parsePubSubToBigQueryParameters(parameters);
  const table = (ref: typeof options.outputTable) => ({
    projectId: ref.projectId,
    dataset: ref.datasetId,
    table: ref.tableId,
  });
  return {
    pubsub: [{ subscription: options.inputSubscription.name }],
    bigquery: [table(options.outputTable), table(options.deadLetterTable)],
  };
}

function validateVideoAnalytics(parameters: Record<string, string>): TemplateIo {
  const options = parseVideoAnalyticsParameters(parameters);
  return {
    pubsub: [
      { subscription: options.inputNotificationSubscription.name },
      { topic: options.outputTopic.name },
      { topic: options.errorTopic.name },
    ],
    bigquery: [
      {
        projectId: options.table.projectId,
        dataset: options.table.datasetId,
        table: options.table.tableId,
      },
    ],
  };
}

export const TEMPLATES: TemplateDefinition[] = [
  {
    name: 'PubSub_Subscription_to_BigQuery',
    kind: 'classic',
    path: googleTemplatePath('PubSub_Subscription_to_BigQuery'),
    example: 'gs://dataflow-templates-REGION/latest/PubSub_Subscription_to_BigQuery',
    program: pipelineProgram('pubsub-to-bigquery/main.js'),
    validate: validatePubSubToBigQuery,
  },
  {
    name: 'PubSub_to_BigQuery_Flex',
    kind: 'flex',
    path: googleTemplatePath('flex/PubSub_to_BigQuery_Flex'),
    example: 'gs://dataflow-templates-REGION/latest/flex/PubSub_to_BigQuery_Flex',
    program: pipelineProgram('pubsub-to-bigquery/main.js'),
    validate: validatePubSubToBigQuery,
  },
  {
    // Google ships this one as source: learners build its spec file into their own bucket, so any
    // `gs://BUCKET/.../video_analytics.json` names it (the lab uses PROJECT_dataflow_template_config).
    name: 'video_analytics',
    kind: 'flex',
    path: /^gs:\/\/[a-z0-9][a-z0-9._-]*[a-z0-9]\/(?:[^\n\r]+\/)?video_analytics\.json$/,
    example: 'gs://PROJECT_dataflow_template_config/video_analytics.json',
    program: pipelineProgram('video-analytics/main.js'),
    validate: validateVideoAnalytics,
  },
];

/** The template for a path, or undefined. */
export function findTemplate(kind: TemplateKind, path: string): TemplateDefinition | undefined {
  return TEMPLATES.find((t) => t.kind === kind && t.path.test(path.trim()));
}

/** The supported templates of one kind, as a sentence for error messages. */
export function describeSupported(kind: TemplateKind, region: string): string {
  const examples = TEMPLATES.filter((t) => t.kind === kind).map((t) =>
    t.example.replace('REGION', region),
  );
  return examples.length > 0 ? examples.join(', ') : 'none';
}
