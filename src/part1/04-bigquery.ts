import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

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
      `${c.project}:${c.dataset}.${c.table} assets/schema/ecommerce_events.json`,
  ],
  needs: ['project'],
  outputs: ['table'],
  ...pendingOperations('Part 1 step 4'),
};
