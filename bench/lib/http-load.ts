import { connect } from 'node:net';
import type { Socket } from 'node:net';

/**
 * A lean HTTP/1.1 load generator for benchmarks on one machine: keep-alive connections to
 * 127.0.0.1 only, one request in flight per connection (no pipelining), requests written as
 * ready-made bytes and answers parsed only as far as the status code and Content-Length. On two
 * cores the generator shares the CPU with what it measures, so it has to cost as little as
 * possible; a general-purpose client spends several times more per request.
 *
 * Two shapes: closed loop (`concurrency` connections, each sending again as soon as it is
 * answered: the ceiling) and open loop (`rate` requests a second on a fixed schedule; a request
 * that waits for a free connection keeps its scheduled time, so queueing shows in its latency).
 */

export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  contentType?: string;
}

export interface Answer {
  status: number;
  body: Buffer;
  /** When the request was due (open loop) or written (closed loop), `performance.now()` ms. */
  sentAt: number;
  answeredAt: number;
}

export interface LoadResult {
  sent: number;
  /** Answers with a 2xx status. */
  ok: number;
  /** Answers with another status, by status. */
  statuses: Record<number, number>;
  /** Requests that got no answer: the connection failed or the run was cut off. */
  lost: number;
  seconds: number;
  /** Answer latencies of 2xx answers in ms, in the order answered. */
  latencies: Float64Array;
}

interface LoadCommon {
  port: number;
  seconds: number;
  /** The next request to send, with whatever the caller wants to know when it is answered. */
  next: (index: number) => LoadRequest;
  onAnswer?: (index: number, answer: Answer) => void;
  /** Keep the answer bodies for `onAnswer` (default false: bodies are skipped). */
  keepBodies?: boolean;
  /** Stop after this many requests even if time is left. */
  maxRequests?: number;
}

export interface ClosedLoop extends LoadCommon {
  concurrency: number;
}

export interface OpenLoop extends LoadCommon {
  rate: number;
  /** Connections to spread the requests over; 64 unless set. */
  connections?: number;
}

const HOST = '127.0.0.1';
const ANSWER_TIMEOUT_MS = 30_000;

/** Each connection sends again as soon as it is answered, for `seconds`. */
export async function closedLoop(options: ClosedLoop): Promise<LoadResult> {
  const run = new Run(options);
  const conns = await run.open(options.concurrency);
  const began = performance.now();
  const end = began + options.seconds * 1000;
  const loops = conns.map(async (conn) => {
    while (performance.now() < end && run.more()) {
      if (!(await run.send(conn, performance.now()))) break;
    }
  });
  await Promise.all(loops);
  return run.finish(began);
}

/** Sends `rate` requests a second on a fixed schedule for `seconds`. */
export async function openLoop(options: OpenLoop): Promise<LoadResult> {
  const run = new Run(options);
  const idle = await run.open(options.connections ?? 64);
  const waiting: (() => void)[] = [];
  const interval = 1000 / options.rate;
  const total = Math.floor(options.rate * options.seconds);
  const began = performance.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < total && run.more(); i += 1) {
    const due = began + i * interval;
    const wait = due - performance.now();
    // Timers are coarse; sleep only when the next request is more than a tick away.
    if (wait > 2) await sleep(wait);
    let conn = idle.pop();
    while (conn === undefined) {
      await new Promise<void>((resolve) => waiting.push(resolve));
      conn = idle.pop();
    }
    const chosen = conn;
    const sending = run.send(chosen, due).then((alive) => {
      if (alive) idle.push(chosen);
      waiting.shift()?.();
      inFlight.delete(sending);
    });
    inFlight.add(sending);
  }
  await Promise.all(inFlight);
  return run.finish(began);
}

class Run {
  private sent = 0;
  private ok = 0;
  private lost = 0;
  private readonly statuses: Record<number, number> = {};
  private latencies = new Float64Array(1 << 16);
  private count = 0;
  private readonly conns: Connection[] = [];

  constructor(private readonly options: LoadCommon) {}

  async open(n: number): Promise<Connection[]> {
    const opened = await Promise.all(
      Array.from({ length: n }, () => Connection.open(this.options.port)),
    );
    this.conns.push(...opened);
    return [...opened];
  }

  more(): boolean {
    return this.options.maxRequests === undefined || this.sent < this.options.maxRequests;
  }

  /** Sends one request and records its answer; false when the connection is no longer usable. */
  async send(conn: Connection, sentAt: number): Promise<boolean> {
    const index = this.sent;
    this.sent += 1;
    const request = this.options.next(index);
    let reply: { status: number; body: Buffer };
    try {
      reply = await conn.exchange(encode(request, this.options.port), this.options.keepBodies);
    } catch {
      this.lost += 1;
      return false;
    }
    const answeredAt = performance.now();
    if (reply.status >= 200 && reply.status < 300) {
      this.ok += 1;
      this.record(answeredAt - sentAt);
    } else {
      this.statuses[reply.status] = (this.statuses[reply.status] ?? 0) + 1;
    }
    this.options.onAnswer?.(index, { ...reply, sentAt, answeredAt });
    return !conn.closed;
  }

  private record(ms: number): void {
    if (this.count === this.latencies.length) {
      const bigger = new Float64Array(this.latencies.length * 2);
      bigger.set(this.latencies);
      this.latencies = bigger;
    }
    this.latencies[this.count] = ms;
    this.count += 1;
  }

  finish(began: number): LoadResult {
    for (const conn of this.conns) conn.close();
    return {
      sent: this.sent,
      ok: this.ok,
      statuses: this.statuses,
      lost: this.lost,
      seconds: (performance.now() - began) / 1000,
      latencies: this.latencies.subarray(0, this.count),
    };
  }
}

function encode(request: LoadRequest, port: number): Buffer {
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  let head = `${request.method} ${request.path} HTTP/1.1\r\nHost: ${HOST}:${port}\r\n`;
  if (body) {
    head +=
      `Content-Type: ${request.contentType ?? 'application/json'}\r\n` +
      `Content-Length: ${body.length}\r\n`;
  }
  head += '\r\n';
  return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1');
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** One keep-alive connection with at most one request in flight. */
class Connection {
  closed = false;
  private buffer: Buffer = Buffer.alloc(0);
  private waiter:
    | { resolve: (r: { status: number; body: Buffer }) => void; reject: (e: Error) => void }
    | undefined;
  private keepBody = false;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    const fail = (error?: Error): void => {
      this.closed = true;
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.reject(error ?? new Error('the server closed the connection'));
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
  }

  static open(port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: HOST, port });
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  exchange(request: Buffer, keepBody = false): Promise<{ status: number; body: Buffer }> {
    if (this.closed) return Promise.reject(new Error('the connection is closed'));
    this.keepBody = keepBody;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.destroy(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`));
      }, ANSWER_TIMEOUT_MS);
      this.waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.socket.write(request);
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private received(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const headEnd = this.buffer.indexOf(CRLFCRLF);
    if (headEnd === -1) return;
    const head = this.buffer.toString('latin1', 0, headEnd);
    const status = Number(head.slice(9, 12));
    const match = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const length = match ? Number(match[1]) : 0;
    const total = headEnd + 4 + length;
    if (this.buffer.length < total) return;
    const body = this.keepBody ? this.buffer.subarray(headEnd + 4, total) : Buffer.alloc(0);
    if (/\r\nconnection:\s*close/i.test(head)) this.closed = true;
    this.buffer = this.buffer.subarray(total);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve({ status, body });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The `q` quantile (0..1) of `values`, sorting a copy; NaN when empty. */
export function quantile(values: Float64Array, q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
