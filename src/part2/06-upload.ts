import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import { videoBucket } from '../config.js';
import { check, expectThat, waitUntil } from '../steps/kit.js';
import type { Check, StepContext, StepDefinition } from '../steps/types.js';
import { sampleVideos, splitVideo } from './videos.js';

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

async function md5Of(file: string): Promise<string> {
  return createHash('md5')
    .update(await readFile(file))
    .digest('base64');
}

/** The object's MD5 in the bucket, or undefined when it is not there. */
async function remoteMd5(ctx: StepContext, name: string): Promise<string | undefined> {
  const file = ctx.clients.storage.bucket(videoBucket(ctx.config)).file(name);
  const [found] = await file.exists();
  if (!found) return undefined;
  const [metadata] = await file.getMetadata();
  return metadata.md5Hash;
}

/** What to upload: each clip, or with --split its 5-second parts. */
async function uploads(
  ctx: StepContext,
): Promise<{ files: Array<{ path: string; name: string }>; cleanup: () => Promise<void> }> {
  const clips = await sampleVideos(ctx.assetsRoot);
  if (!ctx.options.split) {
    return {
      files: clips.map((path) => ({ path, name: basename(path) })),
      cleanup: async () => undefined,
    };
  }
  const cleanups: Array<() => Promise<void>> = [];
  const files: Array<{ path: string; name: string }> = [];
  for (const clip of clips) {
    const { parts, cleanup } = await splitVideo(clip);
    cleanups.push(cleanup);
    files.push(...parts.map((path) => ({ path, name: basename(path) })));
  }
  return { files, cleanup: async () => void (await Promise.all(cleanups.map((c) => c()))) };
}

/** Waits until the pipeline has written rows for a file, and counts them. */
async function waitForRows(
  ctx: StepContext,
  name: string,
): Promise<{ n: number; entities: number }> {
  const c = ctx.config;
  return waitUntil(
    `rows for ${name}`,
    async () => {
      const [found] = await ctx.clients.bigquery.query({
        query:
          'SELECT COUNT(*) AS n, COUNT(DISTINCT entity) AS entities ' +
          `FROM \`${c.project}.${c.videoDataset}.${c.videoTable}\` WHERE file_name = @name`,
        params: { name },
      });
      const row = found[0] as { n: number; entities: number };
      return Number(row.n) > 0 ? { n: Number(row.n), entities: Number(row.entities) } : undefined;
    },
    {
      timeoutMs: ctx.target.kind === 'local' ? 300_000 : 900_000,
      intervalMs: 1_000,
      signal: ctx.signal,
    },
  );
}

/**
 * The `file_name` rows carry: the video's `gs://` URI, with split parts `name~N.mp4` stitched
 * back to `name.mp4`.
 */
export const tableName = (ctx: StepContext, name: string): string =>
  `gs://${videoBucket(ctx.config)}/${name.replace(/~\d+(\.[^.]+)$/, '$1')}`;

export const uploadVideos: StepDefinition = {
  part: 2,
  number: 6,
  title: 'Upload the sample videos',
  explain:
    'Uploading a video is all it takes to start the analysis: the bucket notification tells ' +
    'the pipeline. With --split each video is cut into 5-second parts first, as the lab does, ' +
    'which the pipeline analyses side by side and stitches back together by name.',
  commands: (c) => [`gcloud storage cp sample-data/videos/*.mp4 gs://${videoBucket(c)}/`],
  needs: ['videoJobId'],
  outputs: ['videosUploaded'],

  async plan(ctx) {
    const { files, cleanup } = await uploads(ctx);
    try {
      const items = [];
      for (const file of files) {
        const same = (await remoteMd5(ctx, file.name)) === (await md5Of(file.path));
        items.push({
          action: same ? ('keep' as const) : ('create' as const),
          resource: `gs://${videoBucket(ctx.config)}/${file.name}`,
        });
      }
      return items;
    } finally {
      await cleanup();
    }
  },

  async ensure(ctx) {
    const bucket = ctx.clients.storage.bucket(videoBucket(ctx.config));
    const { files, cleanup } = await uploads(ctx);
    try {
      const progress = ctx.progress('uploading videos', files.length);
      for (const file of files) {
        // An identical object is left alone: a second upload would be analysed a second time.
        if ((await remoteMd5(ctx, file.name)) === (await md5Of(file.path))) {
          ctx.log.debug(`${file.name} is already in the bucket`);
        } else {
          await bucket.upload(file.path, { destination: file.name, contentType: 'video/mp4' });
          ctx.log.info(`uploaded ${file.name}`);
        }
        progress.tick();
      }
      progress.done();
      // The queries of the next step need the annotations: wait until each video has rows.
      const names = [...new Set(files.map((f) => tableName(ctx, f.name)))];
      const analysed = ctx.progress('videos analysed', names.length);
      for (const name of names) {
        const rows = await waitForRows(ctx, name);
        ctx.log.info(`${name}: ${rows.n} rows, ${plural(rows.entities, 'entity', 'entities')}`);
        analysed.tick();
      }
      analysed.done();
      return { videosUploaded: files.map((f) => f.name).join(',') };
    } finally {
      await cleanup();
    }
  },

  async verify(ctx) {
    const c = ctx.config;
    const names = (ctx.outputs.videosUploaded ?? '').split(',').filter(Boolean);
    const checks: Check[] = [];
    for (const name of names) {
      checks.push(
        await check(`gs://${videoBucket(c)}/${name}`, async () => {
          expectThat((await remoteMd5(ctx, name)) !== undefined, 'not in the bucket');
          return 'uploaded';
        }),
      );
    }
    for (const name of new Set(names.map((n) => tableName(ctx, n)))) {
      checks.push(
        await check(`rows for ${name}`, async () => {
          const rows = await waitForRows(ctx, name);
          return `${rows.n} rows, ${plural(rows.entities, 'entity', 'entities')}`;
        }),
      );
    }
    return checks;
  },

  async teardown(ctx) {
    const names = (ctx.outputs.videosUploaded ?? '').split(',').filter(Boolean);
    const bucket = ctx.clients.storage.bucket(videoBucket(ctx.config));
    for (const name of names) await bucket.file(name).delete({ ignoreNotFound: true });
  },
};
