import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';

import type { TableField } from '../../src/local/bigquery/schema.js';
import type { BigQueryService } from '../../src/local/bigquery/service.js';
import { bigqueryServiceFactory } from '../../src/local/bigquery/service.js';
import type { RunningHost } from '../../src/local/host.js';
import { openHost } from '../../src/local/host.js';
import { silentLogger } from '../../src/log.js';
import { loadEventSchema } from '../../src/part1/schema.js';

export const PROJECT = 'cymbal-test';

export interface LocalBigQuery {
  host: RunningHost;
  bigquery: BigQuery;
  service: BigQueryService;
  close(): Promise<void>;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'cymbal-bq-'));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A local cloud with only BigQuery, on a free port, its data in `dir`. */
export async function startBigQuery(dir: string): Promise<LocalBigQuery> {
  const host = await openHost({
    dataDir: dir,
    port: 0,
    // BigQuery never talks to Pub/Sub.
    pubsubHost: '127.0.0.1:1',
    projectId: PROJECT,
    log: silentLogger,
    factories: [bigqueryServiceFactory],
  });
  const bigquery = new BigQuery({
    projectId: PROJECT,
    apiEndpoint: host.endpoint,
    // No credentials locally: skip the metadata-server probe that would delay every call.
    authClient: new PassThroughClient(),
  });
  return {
    host,
    bigquery,
    service: host.cloud.service<BigQueryService>('bigquery'),
    close: () => host.close(),
  };
}

/**
 * The lab's e-commerce event schema (Part 1), from the one definition the ingest app validates
 * against and step 1.4 creates the table from.
 */
export const eventSchema = (await loadEventSchema(
  resolve(dirname(fileURLToPath(import.meta.url)), '../../..'),
)) as TableField[];

/** The lab's three sample events, in the GA4 data-layer style it posts. */
export const sampleEvents: Record<string, unknown>[] = [
  {
    event_datetime: '2020-11-16 20:59:59',
    event: 'view_item',
    user_id: 'UID00003',
    client_id: 'CID00003',
    page: '/product-67890.html',
    page_previous: '/category.html',
    ecommerce: {
      items: [
        {
          item_name: 'Donut Friday Scented T-Shirt',
          item_id: '67890',
          price: 33.75,
          item_brand: 'Google',
          item_category: 'Apparel',
          item_category_2: 'Mens',
          item_category_3: 'Shirts',
          item_category_4: 'Tshirts',
          item_variant: 'Black',
          item_list_name: 'Search Results',
          item_list_id: 'SR123',
          index: 1,
          quantity: '1',
        },
      ],
    },
  },
  {
    event_datetime: '2020-11-16 21:59:59',
    event: 'add_to_cart',
    user_id: 'UID00003',
    client_id: 'CID00003',
    page: '/product-67890.html',
    page_previous: '/category.html',
    ecommerce: {
      items: [
        {
          item_name: 'Donut Friday Scented T-Shirt',
          item_id: '67890',
          price: 33.75,
          item_brand: 'Google',
          item_category: 'Apparel',
          item_variant: 'Black',
          item_list_name: 'Search Results',
          item_list_id: 'SR123',
          index: 1,
          quantity: '2',
        },
      ],
    },
  },
  {
    event_datetime: '2020-11-16 22:59:59',
    event: 'purchase',
    user_id: 'UID00003',
    client_id: 'CID00003',
    page: '/checkout.html',
    page_previous: '/order-confirmation.html',
    ecommerce: {
      purchase: {
        transaction_id: 'T12345',
        affiliation: 'Online Store',
        value: 35.43,
        tax: 4.9,
        shipping: 5.99,
        currency: 'EUR',
        coupon: 'SUMMER_SALE',
        items: [
          {
            item_name: 'Triblend Android T-Shirt',
            item_id: '12345',
            item_price: 15.25,
            item_brand: 'Google',
            item_category: 'Apparel',
            item_variant: 'Gray',
            quantity: 1,
            item_coupon: 'SUMMER_SALE',
          },
          {
            item_name: 'Donut Friday Scented T-Shirt',
            item_id: '67890',
            item_price: 33.75,
            item_brand: 'Google',
            item_category: 'Apparel',
            item_variant: 'Black',
            quantity: 1,
          },
        ],
      },
    },
  },
];

export interface TableMeta {
  numRows?: string;
  description?: string;
  labels?: Record<string, string>;
  timePartitioning?: unknown;
  schema: { fields: TableField[] };
}

export interface JobMeta {
  status: { state: string };
  statistics: {
    query: {
      statementType?: string;
      numDmlAffectedRows?: string;
      schema?: { fields: TableField[] };
    };
  };
}

/** A resource's metadata with a type: the client declares it `any`. */
export async function metadataOf<T>(resource: { getMetadata(): Promise<unknown> }): Promise<T> {
  const [metadata] = (await resource.getMetadata()) as [T];
  return metadata;
}
