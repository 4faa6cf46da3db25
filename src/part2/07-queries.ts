import type { LabConfig } from '../config.js';
import { check, expectThat, formatTable } from '../steps/kit.js';
import type { Check, StepDefinition } from '../steps/types.js';
import { tableName } from './06-upload.js';

const table = (c: LabConfig) => `\`${c.project}.${c.videoDataset}.${c.videoTable}\``;

/** The lab's three query families over the annotations. */
export const videoQueries = (c: LabConfig) => ({
  matching:
    `SELECT file_name, entity FROM ${table(c)} ` +
    'WHERE entity LIKE "%person%" OR entity LIKE "%cat%" OR entity LIKE "%bicycle%" ' +
    'GROUP BY file_name, entity ORDER BY file_name, entity',
  confidence:
    `SELECT file_name, entity, MAX(frame.confidence) AS max_confidence FROM ${table(c)}, ` +
    'UNNEST(frame_data) AS frame GROUP BY file_name, entity ORDER BY file_name, max_confidence DESC',
  boxes:
    'SELECT file_name, entity, frame.timeOffset, frame.confidence, frame.`left`, frame.top, ' +
    `frame.\`right\`, frame.bottom FROM ${table(c)}, UNNEST(frame_data) AS frame ` +
    'WHERE entity = "cat" ORDER BY file_name, CAST(frame.timeOffset AS FLOAT64)',
});

const SHOWN_ROWS = 15;

/** Which entity each sample video must show, for verification. */
const EXPECTED_ENTITIES: Record<string, string> = {
  'people.mp4': 'person',
  'cat.mp4': 'cat',
  'bicycle.mp4': 'bicycle',
};

export const annotationQueries: StepDefinition = {
  part: 2,
  number: 7,
  title: 'Query the annotations in BigQuery',
  explain:
    'Three kinds of question: which files contain an entity, how confident the tracker was ' +
    'for each file and entity, and where the object was, frame by frame.',
  commands: (c) =>
    Object.values(videoQueries(c)).map((q) => `bq query --use_legacy_sql=false '${q}'`),
  needs: ['videosUploaded'],
  outputs: [],

  async plan(ctx) {
    return Object.values(videoQueries(ctx.config)).map((q) => ({
      action: 'run' as const,
      resource: 'query',
      detail: q,
    }));
  },

  async ensure(ctx) {
    for (const query of Object.values(videoQueries(ctx.config))) {
      ctx.print('');
      ctx.print(query);
      const [rows] = await ctx.clients.bigquery.query({ query });
      for (const line of formatTable((rows as Array<Record<string, unknown>>).slice(0, SHOWN_ROWS)))
        ctx.print(`  ${line}`);
      if (rows.length > SHOWN_ROWS) ctx.print(`  ... and ${rows.length - SHOWN_ROWS} more rows`);
    }
    ctx.print('');
    return {};
  },

  async verify(ctx) {
    const uploaded = new Set(
      (ctx.outputs.videosUploaded ?? '')
        .split(',')
        .filter(Boolean)
        .map((n) => tableName(ctx, n)),
    );
    const [rows] = await ctx.clients.bigquery.query({ query: videoQueries(ctx.config).matching });
    const found = new Set(
      (rows as Array<{ file_name: string; entity: string }>).map(
        (r) => `${r.file_name}/${r.entity}`,
      ),
    );
    const checks: Check[] = [];
    for (const [name, entity] of Object.entries(EXPECTED_ENTITIES)) {
      const file = tableName(ctx, name);
      if (!uploaded.has(file)) continue;
      checks.push(
        await check(`${entity} in ${name}`, async () => {
          expectThat(found.has(`${file}/${entity}`), `no ${entity} was tracked in ${file}`);
          return 'found by the query';
        }),
      );
    }
    return checks;
  },

  // Queries create nothing.
  async teardown() {},
};
