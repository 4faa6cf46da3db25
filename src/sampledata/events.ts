import type { Currency, Product } from './catalogue.js';
import { CATALOGUE, priceIn } from './catalogue.js';
import { Random } from './random.js';

/**
 * Generated Cymbal Direct e-commerce events in the lab's data-layer shape (see
 * sample-data/events/): shopping sessions that land on a page, browse lists and products, add
 * to the cart, check out and sometimes buy. The same seed gives the same events, byte for byte.
 *
 * A share of the events can be made bad on purpose, each labelled with what is wrong with it, so
 * that a test or a verify step knows how many the ingest app must reject: bodies that are not
 * JSON, and JSON that breaks the table's schema (a field the table lacks, a value of the wrong
 * type, a missing `event` or `user_id`).
 *
 * Money is kept in cents: a purchase's `value` is its subtotal less the coupon's discount, plus
 * tax on that and shipping, so the parts always add up to the total.
 */

export type EventKind = 'valid' | 'malformed' | 'unknown-field' | 'wrong-type' | 'missing-required';

export const BAD_KINDS: readonly Exclude<EventKind, 'valid'>[] = [
  'malformed',
  'unknown-field',
  'wrong-type',
  'missing-required',
];

export interface GeneratedEvent {
  /** What to POST: a JSON object, or for `malformed` a text that does not parse. */
  body: string;
  kind: EventKind;
  /** The `event` name of a valid event (`view_item`, `purchase`, ...). */
  name?: string;
  /** Set on valid purchases, for totals that do not need the body parsed again. */
  purchase?: { transactionId: string; valueCents: number; currency: Currency };
}

export interface GenerateOptions {
  count: number;
  seed: number;
  /** Share of events made bad on purpose, 0 (default) to 1; spread evenly over the stream. */
  badFraction?: number;
  /** The first session's start; 2020-11-16 08:00:00 UTC unless set. */
  start?: Date;
}

/** A data-layer event as it is posted; only the fields the lab's table knows. */
export interface DataLayerEvent {
  event_datetime?: string;
  event: string;
  user_id: string;
  client_id?: string;
  page?: string;
  page_previous?: string;
  ecommerce?: {
    items?: ListedItem[];
    purchase?: PurchaseRecord;
  };
}

export interface ListedItem {
  item_name: string;
  item_id: string;
  price: number;
  item_brand: string;
  item_category: string;
  item_category_2?: string;
  item_category_3?: string;
  item_category_4?: string;
  item_variant: string;
  item_list_name?: string;
  item_list_id?: string;
  index: number;
  quantity: number;
}

export interface PurchaseRecord {
  transaction_id: string;
  affiliation: string;
  value: number;
  tax: number;
  shipping: number;
  currency: Currency;
  coupon?: string;
  items: PurchasedItem[];
}

export interface PurchasedItem {
  item_name: string;
  item_id: string;
  item_price: number;
  item_brand: string;
  item_category: string;
  item_variant: string;
  quantity: number;
  item_coupon?: string;
}

const DEFAULT_START = Date.UTC(2020, 10, 16, 8, 0, 0);

/** Yields `count` events for `seed`; lazily, so a million events never sit in memory at once. */
export function* generateEvents(options: GenerateOptions): Generator<GeneratedEvent> {
  const { count, seed } = options;
  const badFraction = options.badFraction ?? 0;
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`count must be a whole number of events, not ${count}.`);
  }
  if (!(badFraction >= 0 && badFraction <= 1)) {
    throw new RangeError(`badFraction must be between 0 and 1, not ${badFraction}.`);
  }
  const random = new Random(seed);
  // A second stream for the damage, so the sessions are the same whatever share is bad.
  const damage = new Random(seed ^ 0x5bd1e995);
  const shop = new Shop(random, seed, options.start?.getTime() ?? DEFAULT_START);
  let queue: DataLayerEvent[] = [];
  let next = 0;
  for (let i = 0; i < count; i += 1) {
    if (next === queue.length) {
      queue = shop.session();
      next = 0;
    }
    const event = queue[next] as DataLayerEvent;
    next += 1;
    // Evenly spread: exactly floor(count * badFraction) bad events.
    const bad = Math.floor((i + 1) * badFraction) > Math.floor(i * badFraction);
    if (bad) {
      yield spoil(event, damage);
      continue;
    }
    const generated: GeneratedEvent = {
      body: JSON.stringify(event),
      kind: 'valid',
      name: event.event,
    };
    const purchase = event.ecommerce?.purchase;
    if (purchase) {
      generated.purchase = {
        transactionId: purchase.transaction_id,
        valueCents: Math.round(purchase.value * 100),
        currency: purchase.currency,
      };
    }
    yield generated;
  }
}

/** What a stream of generated events should leave behind, counted from the events themselves. */
export interface EventTotals {
  total: number;
  byKind: Record<EventKind, number>;
  /** Valid events per `event` name. */
  byName: Record<string, number>;
  /** Valid purchases; each has its own transaction id. */
  purchases: number;
  /** Sum of the valid purchases' `value`, whatever their currency, rounded to cents. */
  revenue: number;
  revenueByCurrency: Partial<Record<Currency, number>>;
}

/** Adds up generated events as they pass, for a caller that posts them too. */
export class EventTally {
  private total = 0;
  private readonly byKind: Record<EventKind, number> = {
    valid: 0,
    malformed: 0,
    'unknown-field': 0,
    'wrong-type': 0,
    'missing-required': 0,
  };
  private readonly byName: Record<string, number> = {};
  private purchases = 0;
  private revenueCents = 0;
  private readonly centsByCurrency: Partial<Record<Currency, number>> = {};

  add(event: GeneratedEvent): void {
    this.total += 1;
    this.byKind[event.kind] += 1;
    if (event.name !== undefined) this.byName[event.name] = (this.byName[event.name] ?? 0) + 1;
    if (event.purchase) {
      const { valueCents, currency } = event.purchase;
      this.purchases += 1;
      this.revenueCents += valueCents;
      this.centsByCurrency[currency] = (this.centsByCurrency[currency] ?? 0) + valueCents;
    }
  }

  totals(): EventTotals {
    const revenueByCurrency: Partial<Record<Currency, number>> = {};
    for (const [currency, cents] of Object.entries(this.centsByCurrency)) {
      revenueByCurrency[currency as Currency] = cents / 100;
    }
    return {
      total: this.total,
      byKind: { ...this.byKind },
      byName: { ...this.byName },
      purchases: this.purchases,
      revenue: this.revenueCents / 100,
      revenueByCurrency,
    };
  }
}

/** The totals of `generateEvents(options)`, found by generating them. */
export function expectedTotals(options: GenerateOptions): EventTotals {
  const tally = new EventTally();
  for (const event of generateEvents(options)) tally.add(event);
  return tally.totals();
}

// ---------------------------------------------------------------------------------------------
// Sessions

interface Coupon {
  code: string;
  percentOff: number;
  freeShipping: boolean;
}

const COUPONS: readonly Coupon[] = [
  { code: 'WELCOME10', percentOff: 10, freeShipping: false },
  { code: 'WINTER15', percentOff: 15, freeShipping: false },
  { code: 'FREESHIP', percentOff: 0, freeShipping: true },
];

const CURRENCIES: readonly (readonly [Currency, number])[] = [
  ['EUR', 5],
  ['USD', 3],
  ['GBP', 2],
];

const TAX_RATE: Record<Currency, number> = { EUR: 0.19, USD: 0.0725, GBP: 0.2 };
const SHIPPING_CENTS: Record<Currency, number> = { EUR: 4_99, USD: 5_99, GBP: 3_99 };
const FREE_SHIPPING_FROM_CENTS = 75_00;

const LISTS: readonly (readonly [string, string])[] = [
  ['Search Results', 'SR'],
  ['Homepage Featured', 'HF'],
  ['Category Page', 'CP'],
  ['Recommended for You', 'RY'],
  ['New Arrivals', 'NA'],
];

const AFFILIATIONS: readonly (readonly [string, number])[] = [
  ['Cymbal Direct Online Store', 8],
  ['Cymbal Direct App', 2],
];

const USERS = 60_000;

interface CartLine {
  product: Product;
  variant: string;
  quantity: number;
}

/** Writes one shopping session at a time, advancing a shared clock. */
class Shop {
  private clock: number;
  private sessions = 0;
  private transactions = 0;
  private readonly seedTag: string;
  private dayStart = -1;
  private dayText = '';

  constructor(
    private readonly random: Random,
    seed: number,
    startMs: number,
  ) {
    this.clock = Math.floor(startMs / 1000);
    this.seedTag = (seed >>> 0).toString(16).toUpperCase();
  }

  session(): DataLayerEvent[] {
    const r = this.random;
    this.sessions += 1;
    this.clock += r.int(0, 20);
    const user = `UID${String(r.int(1, USERS)).padStart(5, '0')}`;
    const client = `CID${this.seedTag}-${this.sessions}`;
    const currency = r.weighted(CURRENCIES);
    const events: DataLayerEvent[] = [];
    let previous: string | undefined;
    const emit = (event: string, page: string, ecommerce?: DataLayerEvent['ecommerce']): void => {
      const e: DataLayerEvent = {
        event_datetime: this.timestamp(),
        event,
        user_id: user,
        client_id: client,
        page,
      };
      if (previous !== undefined) e.page_previous = previous;
      if (ecommerce) e.ecommerce = ecommerce;
      events.push(e);
      previous = page;
      this.clock += r.int(2, 45);
    };

    // Land somewhere, then perhaps browse a list.
    const focus = r.pick(CATALOGUE).categories[0] as string;
    emit('page_view', r.chance(0.5) ? '/' : `/category-${slug(focus)}`);
    if (r.chance(0.6)) {
      const [listName, listPrefix] = r.pick(LISTS);
      const listId = `${listPrefix}${r.int(100, 999)}`;
      const items: ListedItem[] = [];
      const shown = r.int(3, 6);
      for (let i = 1; i <= shown; i += 1) {
        const item = this.listed(r.pick(CATALOGUE), currency, i, 1);
        item.item_list_name = listName;
        item.item_list_id = listId;
        items.push(item);
      }
      emit('view_item_list', `/list-${listId.toLowerCase()}`, { items });
    }

    // Look at products; put some in the cart.
    const cart: CartLine[] = [];
    const views = r.int(1, 4);
    for (let v = 0; v < views; v += 1) {
      const product = r.pick(CATALOGUE);
      const variant = r.pick(product.variants);
      const page = `/product-${product.id}`;
      emit('view_item', page, { items: [this.listed(product, currency, 1, 1, variant)] });
      if (r.chance(0.35)) {
        const quantity = r.weighted([
          [1, 80],
          [2, 15],
          [3, 5],
        ] as const);
        cart.push({ product, variant, quantity });
        emit('add_to_cart', page, {
          items: [this.listed(product, currency, 1, quantity, variant)],
        });
      }
    }
    if (cart.length === 0 || !r.chance(0.65)) return events;

    const cartItems = cart.map((line, i) =>
      this.listed(line.product, currency, i + 1, line.quantity, line.variant),
    );
    emit('begin_checkout', '/checkout', { items: cartItems });
    if (!r.chance(0.75)) return events;
    emit('purchase', '/order-confirmation', { purchase: this.purchase(cart, currency) });
    return events;
  }

  private purchase(cart: CartLine[], currency: Currency): PurchaseRecord {
    const r = this.random;
    this.transactions += 1;
    const coupon = r.chance(0.25) ? r.pick(COUPONS) : undefined;
    let subtotal = 0;
    const items: PurchasedItem[] = cart.map(({ product, variant, quantity }) => {
      const price = priceIn(product, currency);
      subtotal += price * quantity;
      const item: PurchasedItem = {
        item_name: product.name,
        item_id: String(product.id),
        item_price: price / 100,
        item_brand: product.brand,
        item_category: product.categories[0] as string,
        item_variant: variant,
        quantity,
      };
      if (coupon && coupon.percentOff > 0) item.item_coupon = coupon.code;
      return item;
    });
    const discount = coupon ? Math.round((subtotal * coupon.percentOff) / 100) : 0;
    const net = subtotal - discount;
    const tax = Math.round(net * TAX_RATE[currency]);
    const shipping =
      coupon?.freeShipping || net >= FREE_SHIPPING_FROM_CENTS ? 0 : SHIPPING_CENTS[currency];
    const record: PurchaseRecord = {
      transaction_id: `T${this.seedTag}-${this.transactions}`,
      affiliation: r.weighted(AFFILIATIONS),
      value: (net + tax + shipping) / 100,
      tax: tax / 100,
      shipping: shipping / 100,
      currency,
      items,
    };
    if (coupon) record.coupon = coupon.code;
    return record;
  }

  private listed(
    product: Product,
    currency: Currency,
    index: number,
    quantity: number,
    variant?: string,
  ): ListedItem {
    const [c1, c2, c3, c4] = product.categories;
    const item: ListedItem = {
      item_name: product.name,
      item_id: String(product.id),
      price: priceIn(product, currency) / 100,
      item_brand: product.brand,
      item_category: c1 as string,
      item_variant: variant ?? (product.variants[0] as string),
      index,
      quantity,
    };
    if (c2 !== undefined) item.item_category_2 = c2;
    if (c3 !== undefined) item.item_category_3 = c3;
    if (c4 !== undefined) item.item_category_4 = c4;
    return item;
  }

  /** The clock as `YYYY-MM-DD HH:MM:SS` in UTC, the day part computed once a day. */
  private timestamp(): string {
    const t = this.clock;
    if (this.dayStart < 0 || t < this.dayStart || t >= this.dayStart + 86_400) {
      this.dayStart = t - (t % 86_400);
      this.dayText = new Date(this.dayStart * 1000).toISOString().slice(0, 10);
    }
    const s = t - this.dayStart;
    return `${this.dayText} ${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
  }
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

// ---------------------------------------------------------------------------------------------
// Bad events

const UNKNOWN_FIELDS = ['session_id', 'utm_source', 'consent_given', 'device_category'];
const UNKNOWN_ITEM_FIELDS = ['item_colour', 'discount', 'stock_status'];

/** Turns a valid event into a bad one of a randomly chosen kind, and labels it. */
function spoil(event: DataLayerEvent, r: Random): GeneratedEvent {
  const kind = r.pick(BAD_KINDS);
  // The session's copy stays intact; the damage is done to a deep copy.
  const copy = structuredClone(event) as unknown as Record<string, unknown>;
  const items = (copy.ecommerce as { items?: Record<string, unknown>[] } | undefined)?.items;
  switch (kind) {
    case 'malformed': {
      const text = JSON.stringify(event);
      // A strict prefix of a JSON object never parses; nor does a key without quotes.
      const body = r.chance(0.5)
        ? text.slice(0, r.int(1, text.length - 1))
        : text.replace('"event":', 'event:');
      return { body, kind };
    }
    case 'unknown-field':
      if (items?.[0] && r.chance(0.5)) items[0][r.pick(UNKNOWN_ITEM_FIELDS)] = 'yes';
      else copy[r.pick(UNKNOWN_FIELDS)] = r.pick(['google', true, 'desktop']);
      break;
    case 'wrong-type': {
      const choices: (() => void)[] = [
        () => (copy.event_datetime = 'yesterday evening'),
        () => (copy.user_id = { id: copy.user_id }),
        () => (copy.ecommerce = 'none'),
      ];
      if (items?.[0]) {
        const first = items[0];
        choices.push(
          () => (first.quantity = 'two'),
          () => (first.price = 'cheap'),
          () => (first.item_id = `SKU-${String(first.item_id)}`),
        );
      }
      r.pick(choices)();
      break;
    }
    case 'missing-required':
      switch (r.int(0, 2)) {
        case 0:
          delete copy.event;
          break;
        case 1:
          delete copy.user_id;
          break;
        default:
          copy.user_id = null;
      }
      break;
  }
  return { body: JSON.stringify(copy), kind };
}
