/**
 * The parameters of Google's "Pub/Sub Subscription to BigQuery" template (classic) and its Flex
 * variant "PubSub_to_BigQuery_Flex", checked the way the template checks them. The local Dataflow
 * service validates a launch with `parsePubSubToBigQueryParameters`; the pipeline reads the same
 * parameters back from its environment with it.
 */

export interface TableRef {
  projectId: string;
  datasetId: string;
  tableId: string;
}

export interface SubscriptionRef {
  projectId: string;
  subscriptionId: string;
  /** `projects/P/subscriptions/S`. */
  name: string;
}

export interface UdfOptions {
  /** `gs://BUCKET/OBJECT` of the JavaScript file. */
  gcsPath: string;
  functionName: string;
  /** 0 means the file is read once, at start. */
  reloadIntervalMinutes: number;
}

export interface PubSubToBigQueryOptions {
  inputSubscription: SubscriptionRef;
  outputTable: TableRef;
  /** `OUTPUT_TABLE_error_records` in the output dataset unless `outputDeadletterTable` is set. */
  deadLetterTable: TableRef;
  udf?: UdfOptions;
}

/** A parameter problem, phrased for the person who launched the job. */
export class ParameterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParameterError';
  }
}

export const REQUIRED_PARAMETERS = ['inputSubscription', 'outputTableSpec'] as const;

export const OPTIONAL_PARAMETERS = [
  'outputDeadletterTable',
  'javascriptTextTransformGcsPath',
  'javascriptTextTransformFunctionName',
  'javascriptTextTransformReloadIntervalMinutes',
] as const;

/**
 * Parameters the Google template also accepts that change how it writes on Google (Storage Write
 * API, Python UDFs). They are accepted so that a copied command launches, and have no effect
 * locally: the local pipeline always uses streaming inserts.
 */
export const ACCEPTED_WITHOUT_EFFECT = [
  'useStorageWriteApi',
  'useStorageWriteApiAtLeastOnce',
  'numStorageWriteApiStreams',
  'storageWriteApiTriggeringFrequencySec',
] as const;

const SUBSCRIPTION = /^projects\/(?<project>[^\n\r/]+)\/subscriptions\/(?<subscription>[^\n\r/]+)$/;
// The template accepts `PROJECT:DATASET.TABLE` and also `PROJECT.DATASET.TABLE`.
const TABLE_SPEC = /^(?<project>[^:.\s]+)[:.](?<dataset>[A-Za-z0-9_]+)\.(?<table>[^.\s]+)$/;
const GCS_PATH = /^gs:\/\/[^\n\r/]+\/[^\n\r]+$/;
const FUNCTION_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function parsePubSubToBigQueryParameters(
  parameters: Record<string, string>,
): PubSubToBigQueryOptions {
  const known = new Set<string>([
    ...REQUIRED_PARAMETERS,
    ...OPTIONAL_PARAMETERS,
    ...ACCEPTED_WITHOUT_EFFECT,
  ]);
  const unknown = Object.keys(parameters).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new ParameterError(
      `Unrecognized template parameter(s): ${unknown.join(', ')}. ` +
        `This template accepts ${[...REQUIRED_PARAMETERS, ...OPTIONAL_PARAMETERS].join(', ')}.`,
    );
  }
  for (const key of REQUIRED_PARAMETERS) {
    if (!parameters[key]?.trim()) {
      throw new ParameterError(`Missing required template parameter "${key}".`);
    }
  }
  const inputSubscription = parseSubscription(parameters.inputSubscription ?? '');
  const outputTable = parseTableSpec('outputTableSpec', parameters.outputTableSpec ?? '');
  const deadLetterSpec = parameters.outputDeadletterTable?.trim();
  const deadLetterTable = deadLetterSpec
    ? parseTableSpec('outputDeadletterTable', deadLetterSpec)
    : { ...outputTable, tableId: `${outputTable.tableId}_error_records` };
  const udf = parseUdf(parameters);
  return { inputSubscription, outputTable, deadLetterTable, ...(udf ? { udf } : {}) };
}

export function parseSubscription(value: string): SubscriptionRef {
  const match = SUBSCRIPTION.exec(value.trim());
  if (!match?.groups) {
    throw new ParameterError(
      `Template parameter "inputSubscription" must look like projects/PROJECT/subscriptions/NAME, ` +
        `not "${value}".`,
    );
  }
  const { project = '', subscription = '' } = match.groups;
  return { projectId: project, subscriptionId: subscription, name: value.trim() };
}

export function parseTableSpec(parameter: string, value: string): TableRef {
  const match = TABLE_SPEC.exec(value.trim());
  if (!match?.groups) {
    throw new ParameterError(
      `Template parameter "${parameter}" must look like PROJECT:DATASET.TABLE, not "${value}".`,
    );
  }
  const { project = '', dataset = '', table = '' } = match.groups;
  return { projectId: project, datasetId: dataset, tableId: table };
}

export function formatTableSpec(table: TableRef): string {
  return `${table.projectId}:${table.datasetId}.${table.tableId}`;
}

function parseUdf(parameters: Record<string, string>): UdfOptions | undefined {
  const gcsPath = parameters.javascriptTextTransformGcsPath?.trim();
  const functionName = parameters.javascriptTextTransformFunctionName?.trim();
  const reload = parameters.javascriptTextTransformReloadIntervalMinutes?.trim();
  if (!gcsPath && !functionName) {
    if (reload) {
      throw new ParameterError(
        '"javascriptTextTransformReloadIntervalMinutes" needs a UDF: set ' +
          '"javascriptTextTransformGcsPath" and "javascriptTextTransformFunctionName" too.',
      );
    }
    return undefined;
  }
  if (!gcsPath || !functionName) {
    throw new ParameterError(
      'A JavaScript UDF needs both "javascriptTextTransformGcsPath" and ' +
        '"javascriptTextTransformFunctionName".',
    );
  }
  if (!GCS_PATH.test(gcsPath)) {
    throw new ParameterError(
      `"javascriptTextTransformGcsPath" must be a Cloud Storage object such as ` +
        `gs://BUCKET/udf/transform.js, not "${gcsPath}".`,
    );
  }
  if (!FUNCTION_NAME.test(functionName)) {
    throw new ParameterError(
      `"javascriptTextTransformFunctionName" must be a JavaScript function name, ` +
        `not "${functionName}".`,
    );
  }
  let reloadIntervalMinutes = 0;
  if (reload) {
    reloadIntervalMinutes = Number(reload);
    if (!Number.isInteger(reloadIntervalMinutes) || reloadIntervalMinutes < 0) {
      throw new ParameterError(
        `"javascriptTextTransformReloadIntervalMinutes" must be a whole number of minutes ` +
          `(0 to never reload), not "${reload}".`,
      );
    }
  }
  return { gcsPath, functionName, reloadIntervalMinutes };
}

export function parseGcsPath(path: string): { bucket: string; object: string } {
  const match = /^gs:\/\/(?<bucket>[^/]+)\/(?<object>.+)$/.exec(path);
  if (!match?.groups) throw new ParameterError(`"${path}" is not a gs://BUCKET/OBJECT path.`);
  return { bucket: match.groups.bucket ?? '', object: match.groups.object ?? '' };
}
