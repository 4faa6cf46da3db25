import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { beforeAll, describe, expect, it } from '@jest/globals';

import { CATALOGUE } from '../../src/sampledata/catalogue.js';
import type { GeneratedEvent } from '../../src/sampledata/events.js';
import {
  BAD_KINDS,
  EventTally,
  expectedTotals,
  generateEvents,
} from '../../src/sampledata/events.js';

/**
 * The event generator: the same seed gives the same bytes, the requested share of bad events
 * arrives labelled, and every valid event passes both the ingest app's own validator and the
 * table schema as the lab documents it.
 */

type Problem = { field: string; reason: string } | undefined;
type Validator = (event: unknown) => Problem;

let validate: Validator;

beforeAll(async () => {
  const app = join(process.cwd(), 'assets/ingest-app/src');
  const { compileValidator } = (await import(pathToFileURL(join(app, 'validate.js')).href)) as {
    compileValidator: (schema: unknown) => Validator;
  };
  const { eventSchema } = (await import(pathToFileURL(join(app, 'schema.js')).href)) as {
    eventSchema: unknown;
  };
  validate = compileValidator(eventSchema);
});

const take = (count: number, seed: number, badFraction = 0): GeneratedEvent[] => [
  ...generateEvents({ count, seed, badFraction }),
];

describe('generateEvents', () => {
  it('gives the same events for the same seed and different ones for another', () => {
    const a = take(5000, 42, 0.1).map((e) => `${e.kind} ${e.body}`);
    const b = take(5000, 42, 0.1).map((e) => `${e.kind} ${e.body}`);
    const c = take(5000, 43, 0.1).map((e) => `${e.kind} ${e.body}`);
    expect(a).toEqual(b);
    expect(a).toHaveLength(5000);
    expect(c.filter((body, i) => body === a[i]).length).toBeLessThan(50);
  });

  it('keeps the sessions the same whatever share is bad', () => {
    const clean = take(3000, 9);
    const spoiled = take(3000, 9, 0.3);
    const differ = spoiled.filter((e, i) => e.kind === 'valid' && e.body !== clean[i]?.body);
    expect(differ).toEqual([]);
    expect(spoiled.filter((e) => e.kind !== 'valid')).toHaveLength(900);
  });

  it('makes exactly the requested share bad, of every kind, each rejected for its reason', () => {
    const events = take(20_000, 7, 0.1);
    const bad = events.filter((e) => e.kind !== 'valid');
    expect(bad).toHaveLength(2000);
    for (const kind of BAD_KINDS) {
      const share = bad.filter((e) => e.kind === kind).length / bad.length;
      expect(share).toBeGreaterThan(0.2);
      expect(share).toBeLessThan(0.3);
    }
    const expectedReason: Record<string, RegExp> = {
      'unknown-field': /is not a column/,
      'wrong-type': /^expected /,
      'missing-required': /is required/,
    };
    const missed: string[] = [];
    for (const event of bad) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(event.body);
      } catch {
        if (event.kind !== 'malformed') missed.push(`${event.kind} does not parse: ${event.body}`);
        continue;
      }
      const reason = validate(parsed)?.reason ?? 'accepted';
      if (!(expectedReason[event.kind] ?? /^$/).test(reason)) {
        missed.push(`${event.kind} got "${reason}": ${event.body}`);
      }
      if (problemsWithLabSchema(parsed).length === 0) missed.push(`fits: ${event.body}`);
    }
    expect(missed.slice(0, 5)).toEqual([]);
  });

  it('writes valid events that pass the ingest app and the lab schema', () => {
    const names = new Set<string>();
    const problems: string[] = [];
    for (const event of take(10_000, 2026)) {
      const parsed = JSON.parse(event.body) as Record<string, unknown>;
      const found = [
        ...(event.kind === 'valid' ? [] : [`labelled ${event.kind}`]),
        ...(parsed.event === event.name ? [] : ['name differs from the body']),
        ...(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(String(parsed.event_datetime))
          ? []
          : ['event_datetime']),
        ...problemsWithLabSchema(parsed),
      ];
      const problem = validate(parsed);
      if (problem) found.push(`ingest app: ${problem.field} ${problem.reason}`);
      if (found.length > 0) problems.push(`${event.body}: ${found.join('; ')}`);
      names.add(String(parsed.event));
    }
    expect(problems.slice(0, 5)).toEqual([]);
    expect([...names].sort()).toEqual([
      'add_to_cart',
      'begin_checkout',
      'page_view',
      'purchase',
      'view_item',
      'view_item_list',
    ]);
  });

  it('writes purchases whose parts add up, with unique transaction ids', () => {
    const purchases = take(30_000, 5)
      .filter((e) => e.name === 'purchase')
      .map((e) => JSON.parse(e.body) as PurchaseEvent);
    expect(purchases.length).toBeGreaterThan(300);
    const ids = new Set(purchases.map((e) => e.ecommerce.purchase.transaction_id));
    expect(ids.size).toBe(purchases.length);
    const currencies = new Set(purchases.map((e) => e.ecommerce.purchase.currency));
    expect([...currencies].sort()).toEqual(['EUR', 'GBP', 'USD']);
    let coupons = 0;
    const unknownIds = new Set<string>();
    for (const { ecommerce } of purchases) {
      const p = ecommerce.purchase;
      const subtotal = cents(p.items.reduce((sum, i) => sum + i.item_price * i.quantity, 0));
      const discount = subtotal - (cents(p.value) - cents(p.tax) - cents(p.shipping));
      if (p.coupon === undefined) expect(discount).toBe(0);
      else coupons += 1;
      expect(discount).toBeGreaterThanOrEqual(0);
      expect(discount).toBeLessThanOrEqual(Math.round(subtotal * 0.15));
      expect(p.tax).toBeGreaterThan(0);
      for (const item of p.items) unknownIds.add(item.item_id);
    }
    for (const product of CATALOGUE) unknownIds.delete(String(product.id));
    expect([...unknownIds]).toEqual([]);
    expect(coupons / purchases.length).toBeGreaterThan(0.15);
  });

  it('counts totals that match what the bodies hold', () => {
    const options = { count: 10_000, seed: 11, badFraction: 0.05 };
    const totals = expectedTotals(options);
    let purchases = 0;
    let revenue = 0;
    for (const event of generateEvents(options)) {
      if (event.kind !== 'valid') continue;
      const parsed = JSON.parse(event.body) as Partial<PurchaseEvent>;
      if (parsed.event !== 'purchase') continue;
      purchases += 1;
      revenue += cents(parsed.ecommerce?.purchase.value ?? 0);
    }
    expect(totals.total).toBe(10_000);
    expect(totals.byKind.valid).toBe(9500);
    expect(totals.purchases).toBe(purchases);
    expect(totals.byName.purchase).toBe(purchases);
    expect(totals.revenue).toBe(revenue / 100);
    const byCurrency = Object.values(totals.revenueByCurrency).reduce((a, b) => a + cents(b), 0);
    expect(byCurrency).toBe(revenue);
  });

  it('generates more than a million events a minute', () => {
    // CPU time, not wall time: what the generator costs does not change when other work on the
    // machine slows the clock down. A million a minute leaves 60 microseconds an event.
    const began = process.cpuUsage();
    let bytes = 0;
    for (const event of generateEvents({ count: 50_000, seed: 1, badFraction: 0.02 })) {
      bytes += event.body.length;
    }
    const used = process.cpuUsage(began);
    const microsPerEvent = (used.user + used.system) / 50_000;
    expect(bytes).toBeGreaterThan(50_000 * 200);
    expect(microsPerEvent).toBeLessThan(60);
  });
});

describe('the catalogue', () => {
  it('lists about forty products with unique numeric ids and prices', () => {
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CATALOGUE.map((p) => p.id)).size).toBe(CATALOGUE.length);
    const broken = CATALOGUE.filter(
      (p) => p.priceCents <= 0 || p.variants.length === 0 || p.categories.length < 2,
    );
    expect(broken).toEqual([]);
  });
});

describe('the sample events', () => {
  const dir = join(process.cwd(), 'sample-data/events');
  const read = (name: string): Record<string, unknown> =>
    JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Record<string, unknown>;

  it('pass the ingest app and the lab schema, and hold one purchase of 35.43 EUR', () => {
    const tally = new EventTally();
    for (const name of ['view_item', 'add_to_cart', 'purchase']) {
      const event = read(name);
      expect(event.event).toBe(name);
      expect(validate(event)).toBeUndefined();
      expect(problemsWithLabSchema(event)).toEqual([]);
    }
    const purchase = read('purchase') as unknown as PurchaseEvent;
    const p = purchase.ecommerce.purchase;
    expect(p).toMatchObject({ transaction_id: 'T12345', value: 35.43, currency: 'EUR' });
    expect(p.items).toHaveLength(2);
    const subtotal = cents(p.items.reduce((sum, i) => sum + i.item_price * i.quantity, 0));
    expect(subtotal + cents(p.tax) + cents(p.shipping)).toBe(cents(p.value));
    tally.add({
      body: '',
      kind: 'valid',
      name: 'purchase',
      purchase: { transactionId: p.transaction_id, valueCents: cents(p.value), currency: 'EUR' },
    });
    expect(tally.totals()).toMatchObject({ purchases: 1, revenue: 35.43 });
  });
});

interface PurchaseEvent {
  event: string;
  ecommerce: {
    purchase: {
      transaction_id: string;
      currency: string;
      coupon?: string;
      value: number;
      tax: number;
      shipping: number;
      items: { item_id: string; item_price: number; quantity: number }[];
    };
  };
}

function cents(amount: number): number {
  return Math.round(amount * 100);
}

// The table as the lab documents it (FACTS.md, "Event schema"), written out here on its own so
// that a slip in the app's copy of the schema cannot hide one in the generator.
type Column = 'STRING' | 'INTEGER' | 'FLOAT' | 'TIMESTAMP' | { [name: string]: Column } | [Column];
const text = (names: string): Record<string, Column> =>
  Object.fromEntries(names.split(' ').map((n) => [n, 'STRING' as const]));
const LAB_SCHEMA: Record<string, Column> = {
  event_datetime: 'TIMESTAMP',
  ...text('event user_id client_id page page_previous'),
  ecommerce: {
    items: [
      {
        index: 'INTEGER',
        item_id: 'INTEGER',
        quantity: 'INTEGER',
        price: 'FLOAT',
        ...text(
          'item_name item_list_name item_list_id item_variant item_brand item_category ' +
            'item_category_2 item_category_3 item_category_4',
        ),
      },
    ],
    purchase: {
      ...text('coupon affiliation currency transaction_id'),
      tax: 'FLOAT',
      shipping: 'FLOAT',
      value: 'FLOAT',
      items: [
        {
          ...text('item_coupon item_variant item_category item_name item_brand'),
          quantity: 'INTEGER',
          item_id: 'INTEGER',
          item_price: 'FLOAT',
        },
      ],
    },
  },
};

/** Every way `event` breaks the lab's schema, as `path: problem`; empty when it fits. */
function problemsWithLabSchema(event: unknown): string[] {
  const problems: string[] = [];
  const record = event as Record<string, unknown>;
  for (const required of ['event', 'user_id']) {
    if (typeof record?.[required] !== 'string') problems.push(`${required}: required`);
  }
  check(event, LAB_SCHEMA, '', problems);
  return problems;
}

function check(value: unknown, column: Column, path: string, problems: string[]): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(column)) {
    if (!Array.isArray(value)) problems.push(`${path}: not an array`);
    else value.forEach((v, i) => check(v, column[0], `${path}[${i}]`, problems));
    return;
  }
  if (typeof column === 'object') {
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`${path}: not a record`);
      return;
    }
    for (const [key, v] of Object.entries(value)) {
      const inner = column[key];
      if (inner === undefined) problems.push(`${path}${key}: unknown`);
      else check(v, inner, `${path}${key}.`, problems);
    }
    return;
  }
  const fits: Record<typeof column, (v: unknown) => boolean> = {
    STRING: (v) => typeof v === 'string',
    INTEGER: (v) => Number.isInteger(typeof v === 'string' ? Number(v) : v) && v !== '',
    FLOAT: (v) => typeof v === 'number' && Number.isFinite(v),
    TIMESTAMP: (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v.replace(' ', 'T'))),
  };
  if (!fits[column](value)) problems.push(`${path}: not ${column}`);
}
