import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { TableField } from '@google-cloud/bigquery';

/**
 * The events table's schema is defined once, in the ingest app, which checks every event
 * against it before publishing; the table is created from the same definition, so the two
 * cannot drift apart.
 */
export async function loadEventSchema(assetsRoot: string): Promise<TableField[]> {
  const file = join(assetsRoot, 'assets/ingest-app/src/schema.js');
  const module = (await import(pathToFileURL(file).href)) as { eventSchema: TableField[] };
  return module.eventSchema;
}

/** Field names with their types and modes, nested ones as `a.b`, for comparing schemas. */
export function describeFields(fields: TableField[], prefix = ''): string[] {
  return fields.flatMap((field) => {
    const name = `${prefix}${field.name}`;
    const line = `${name}:${field.type}:${field.mode ?? 'NULLABLE'}`;
    return [line, ...describeFields(field.fields ?? [], `${name}.`)];
  });
}
