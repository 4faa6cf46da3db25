import type { LabConfig } from '../config.js';
import type { StepContext } from '../steps/types.js';
import { PROBE_EVENT } from './06-dataflow.js';

/** The events table as a query names it. */
export const table = (c: LabConfig) => `\`${c.project}.${c.dataset}.${c.table}\``;

export interface Totals {
  rows: number;
  purchases: number;
  revenue: number;
}

/** What arrived, leaving out the probe events that verification publishes. */
export async function eventTotals(ctx: StepContext): Promise<Totals> {
  const [rows] = await ctx.clients.bigquery.query({
    query:
      'SELECT COUNT(*) AS row_count, ' +
      'COUNT(DISTINCT IF(event = "purchase", ecommerce.purchase.transaction_id, NULL)) AS purchases, ' +
      'IFNULL(SUM(IF(event = "purchase", ecommerce.purchase.value, 0)), 0) AS revenue ' +
      `FROM ${table(ctx.config)} WHERE event != @probe`,
    params: { probe: PROBE_EVENT },
  });
  const row = rows[0] as { row_count: number; purchases: number; revenue: number };
  return {
    rows: Number(row.row_count),
    purchases: Number(row.purchases),
    revenue: Number(row.revenue),
  };
}
