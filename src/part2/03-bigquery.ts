import type { TableMetadata } from '@google-cloud/bigquery';

import { describeFields } from '../part1/schema.js';
import { check, createOrKeep, deleteIfPresent, exists, expectThat } from '../steps/kit.js';
import type { StepDefinition } from '../steps/types.js';
import { annotationSchema } from './schema.js';

export const annotationsTable: StepDefinition = {
  part: 2,
  number: 3,
  title: 'Create the BigQuery dataset and annotations table',
  explain:
    'Each row holds one tracked entity in one file and time window, with the frames where it ' +
    'was seen: the time offset, the confidence and the bounding box of each.',
  commands: (c) => [
    `bq --location=US mk --dataset ${c.project}:${c.videoDataset}`,
    `bq mk --table ${c.project}:${c.videoDataset}.${c.videoTable} ` +
      'file_name:STRING,entity:STRING,frame_data:RECORD (with the nested fields of the schema)',
  ],
  needs: ['project'],
  outputs: ['videoTable'],

  async plan(ctx) {
    const { bigquery } = ctx.clients;
    const { videoDataset, videoTable } = ctx.config;
    const datasetExists = await exists(() => bigquery.dataset(videoDataset).get());
    const tableExists =
      datasetExists && (await exists(() => bigquery.dataset(videoDataset).table(videoTable).get()));
    return [
      { action: datasetExists ? 'keep' : 'create', resource: `dataset ${videoDataset}` },
      { action: tableExists ? 'keep' : 'create', resource: `table ${videoDataset}.${videoTable}` },
    ];
  },

  async ensure(ctx) {
    const { bigquery } = ctx.clients;
    const { videoDataset, videoTable, project } = ctx.config;
    await createOrKeep(ctx.log, `dataset ${videoDataset}`, () =>
      bigquery.createDataset(videoDataset, { location: 'US' }),
    );
    await createOrKeep(ctx.log, `table ${videoDataset}.${videoTable}`, () =>
      bigquery.dataset(videoDataset).createTable(videoTable, {
        schema: { fields: annotationSchema },
        description: 'Objects tracked in the uploaded videos',
      }),
    );
    return { videoTable: `${project}:${videoDataset}.${videoTable}` };
  },

  async verify(ctx) {
    const { bigquery } = ctx.clients;
    const { videoDataset, videoTable } = ctx.config;
    return [
      await check(`table ${videoDataset}.${videoTable}`, async () => {
        const live = bigquery.dataset(videoDataset).table(videoTable);
        const [metadata] = (await live.getMetadata()) as unknown as [TableMetadata];
        const have = new Set(describeFields(metadata.schema?.fields ?? []));
        const missing = describeFields(annotationSchema).filter((f) => !have.has(f));
        expectThat(missing.length === 0, `missing or different columns: ${missing.join(', ')}`);
        return "exists with the template's schema";
      }),
    ];
  },

  async teardown(ctx) {
    const { bigquery } = ctx.clients;
    const { videoDataset } = ctx.config;
    await deleteIfPresent(ctx.log, `dataset ${videoDataset}`, () =>
      bigquery.dataset(videoDataset).delete({ force: true }),
    );
  },
};
