import type { LabConfig } from '../config.js';
import { check, expectThat, formatTable } from '../steps/kit.js';
import type { StepDefinition } from '../steps/types.js';
import type { Totals } from './totals.js';
import { eventTotals, table } from './totals.js';

/** The lab's two queries, as a learner types them in the console. */
export const labQueries = (c: LabConfig) => ({
  events: `SELECT event_datetime, event, user_id FROM ${table(c)}`,
  revenue:
    'SELECT event, COUNT(DISTINCT ecommerce.purchase.transaction_id) AS transactions, ' +
    `SUM(ecommerce.purchase.value) AS revenue FROM ${table(c)} ` +
    'WHERE event = "purchase" GROUP BY event',
});

/** How many rows to print of the first query; the rest are counted. */
const SHOWN_ROWS = 20;

export const eventQueries: StepDefinition = {
  part: 1,
  number: 8,
  title: 'Query the events in BigQuery',
  explain:
    'Two queries prove the events arrived: one lists each event with its time and user, the ' +
    'other counts purchase transactions and sums their revenue.',
  commands: (c) => {
    const q = labQueries(c);
    return [
      `bq query --use_legacy_sql=false '${q.events}'`,
      `bq query --use_legacy_sql=false '${q.revenue}'`,
    ];
  },
  needs: ['eventsAccepted'],
  outputs: [],

  async plan(ctx) {
    const q = labQueries(ctx.config);
    return [
      { action: 'run', resource: 'query', detail: q.events },
      { action: 'run', resource: 'query', detail: q.revenue },
    ];
  },

  async ensure(ctx) {
    const { bigquery } = ctx.clients;
    const q = labQueries(ctx.config);
    ctx.print('');
    ctx.print(q.events);
    const [events] = await bigquery.query({ query: q.events });
    const shown = events.slice(0, SHOWN_ROWS) as Array<Record<string, unknown>>;
    for (const line of formatTable(shown, ['event_datetime', 'event', 'user_id']))
      ctx.print(`  ${line}`);
    if (events.length > SHOWN_ROWS) ctx.print(`  ... and ${events.length - SHOWN_ROWS} more rows`);
    ctx.print('');
    ctx.print(q.revenue);
    const [revenue] = await bigquery.query({ query: q.revenue });
    for (const line of formatTable(revenue as Array<Record<string, unknown>>, [
      'event',
      'transactions',
      'revenue',
    ])) {
      ctx.print(`  ${line}`);
    }
    ctx.print('');
    return {};
  },

  async verify(ctx) {
    const expected: Totals = {
      rows: Number(ctx.outputs.eventsAccepted ?? 0),
      purchases: Number(ctx.outputs.purchasesAccepted ?? 0),
      revenue: Number(ctx.outputs.revenueAccepted ?? 0),
    };
    const found = await eventTotals(ctx);
    return [
      await check('events in the table', async () => {
        expectThat(
          found.rows === expected.rows,
          `${found.rows} rows, but the app accepted ${expected.rows} events`,
        );
        return `${found.rows} rows, one for each event the app accepted`;
      }),
      await check('purchase transactions', async () => {
        expectThat(
          found.purchases === expected.purchases,
          `${found.purchases}, expected ${expected.purchases}`,
        );
        return `${found.purchases}`;
      }),
      await check('revenue', async () => {
        expectThat(
          Math.abs(found.revenue - expected.revenue) < 0.005,
          `${found.revenue.toFixed(2)}, expected ${expected.revenue.toFixed(2)}`,
        );
        return found.revenue.toFixed(2);
      }),
    ];
  },

  // Queries create nothing.
  async teardown() {},
};
