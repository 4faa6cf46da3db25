import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const eventQueries: StepDefinition = {
  part: 1,
  number: 8,
  title: 'Query the events in BigQuery',
  explain:
    'Two queries prove the events arrived: one lists each event with its time and user, the ' +
    'other counts purchase transactions and sums their revenue.',
  commands: (c) => [
    `bq query --use_legacy_sql=false 'SELECT event_datetime, event, user_id ` +
      `FROM \`${c.project}.${c.dataset}.${c.table}\`'`,
    `bq query --use_legacy_sql=false 'SELECT event, ` +
      `COUNT(DISTINCT ecommerce.purchase.transaction_id) AS transactions, ` +
      `SUM(ecommerce.purchase.value) AS revenue FROM \`${c.project}.${c.dataset}.${c.table}\` ` +
      `WHERE event = "purchase" GROUP BY event'`,
  ],
  needs: ['eventsAccepted'],
  outputs: [],
  ...pendingOperations('Part 1 step 8'),
};
