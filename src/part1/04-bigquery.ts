import type { TableMetadata } from '@google-cloud/bigquery';

import { check, createOrKeep, deleteIfPresent, exists, expectThat } from '../steps/kit.js';
import type { PlanItem, StepContext, StepDefinition } from '../steps/types.js';
import { describeFields, loadEventSchema } from './schema.js';

async function tableMetadata(ctx: StepContext): Promise<TableMetadata> {
  const schema = await loadEventSchema(ctx.assetsRoot);
  const timePartitioning = { type: 'DAY', field: 'event_datetime' };
  return {
    schema: { fields: schema },
    timePartitioning,
    description: 'Cymbal Direct e-commerce events',
  };
}

/** The columns the live table lacks, compared with the lab's schema. */
async function missingColumns(ctx: StepContext): Promise<string[]> {
  const table = ctx.clients.bigquery.dataset(ctx.config.dataset).table(ctx.config.table);
  const [metadata] = (await table.getMetadata()) as unknown as [TableMetadata];
  const live = new Set(describeFields(metadata.schema?.fields ?? []));
  return describeFields(await loadEventSchema(ctx.assetsRoot)).filter((f) => !live.has(f));
}

export const eventsTable: StepDefinition = {
  part: 1,
  number: 4,
  title: 'Create the BigQuery dataset and events table',
  explain:
    'Events land in a table whose columns follow the GA4 data layer: who did what and when, ' +
    'with the basket and the purchase as nested records. The table is partitioned by day on ' +
    'event_datetime so that queries over recent days read little.',
  commands: (c) => [
    `bq --location=US mk --dataset ${c.project}:${c.dataset}`,
    `bq mk --table --time_partitioning_field event_datetime --time_partitioning_type DAY ` +
      `${c.project}:${c.dataset}.${c.table} ecommerce_events_schema.json`,
  ],
  needs: ['project'],
  outputs: ['table'],

  async plan(ctx) {
    const { bigquery } = ctx.clients;
    const { dataset, table } = ctx.config;
    const items: PlanItem[] = [];
    const datasetExists = await exists(() => bigquery.dataset(dataset).get());
    items.push({
      action: datasetExists ? 'keep' : 'create',
      resource: `dataset ${dataset}`,
      detail: 'location US',
    });
    const tableExists =
      datasetExists && (await exists(() => bigquery.dataset(dataset).table(table).get()));
    if (!tableExists) {
      items.push({
        action: 'create',
        resource: `table ${dataset}.${table}`,
        detail: 'day partitions on event_datetime',
      });
    } else {
      const missing = await missingColumns(ctx);
      items.push(
        missing.length > 0
          ? {
              action: 'update',
              resource: `table ${dataset}.${table}`,
              detail: `add ${missing.join(', ')}`,
            }
          : { action: 'keep', resource: `table ${dataset}.${table}` },
      );
    }
    return items;
  },

  async ensure(ctx) {
    const { bigquery } = ctx.clients;
    const { dataset, table, project } = ctx.config;
    await createOrKeep(ctx.log, `dataset ${dataset}`, () =>
      bigquery.createDataset(dataset, { location: 'US' }),
    );
    const metadata = await tableMetadata(ctx);
    const change = await createOrKeep(ctx.log, `table ${dataset}.${table}`, () =>
      bigquery.dataset(dataset).createTable(table, metadata),
    );
    if (change === 'kept' && (await missingColumns(ctx)).length > 0) {
      // BigQuery accepts new NULLABLE columns on a live table; this converges an older schema.
      await bigquery.dataset(dataset).table(table).setMetadata({ schema: metadata.schema });
      ctx.log.info(`updated the schema of ${dataset}.${table}`);
    }
    return { table: `${project}:${dataset}.${table}` };
  },

  async verify(ctx) {
    const { bigquery } = ctx.clients;
    const { dataset, table } = ctx.config;
    return [
      await check(`dataset ${dataset}`, async () => {
        const [metadata] = (await bigquery.dataset(dataset).getMetadata()) as unknown as [
          { location?: string },
        ];
        return `exists, location ${metadata.location ?? 'unknown'}`;
      }),
      await check(`table ${dataset}.${table}`, async () => {
        const missing = await missingColumns(ctx);
        expectThat(missing.length === 0, `missing columns: ${missing.join(', ')}`);
        return 'exists with every column of the lab schema';
      }),
      await check('day partitions on event_datetime', async () => {
        const live = bigquery.dataset(dataset).table(table);
        const [metadata] = (await live.getMetadata()) as unknown as [TableMetadata];
        const partitioning = metadata.timePartitioning;
        expectThat(
          partitioning?.type === 'DAY' && partitioning.field === 'event_datetime',
          `partitioning is ${JSON.stringify(partitioning ?? 'none')}`,
        );
        return 'DAY on event_datetime';
      }),
    ];
  },

  async teardown(ctx) {
    const { bigquery } = ctx.clients;
    const { dataset } = ctx.config;
    // The dataset also holds the pipeline's dead-letter table: remove it with its contents.
    await deleteIfPresent(ctx.log, `dataset ${dataset}`, () =>
      bigquery.dataset(dataset).delete({ force: true }),
    );
  },
};
