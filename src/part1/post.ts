import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Posts bodies to the ingest app with a bounded number of requests in flight, an optional
 * rate, and retries with backoff for what may pass on a second try (429, 5xx, a dropped
 * connection). A 4xx answer is final: the event is rejected, with the app's reason.
 */

export interface PostResult {
  accepted: boolean;
  status: number;
  /** The app's reason for a rejection. */
  reason?: string;
}

export interface PostOptions {
  url: string;
  concurrency: number;
  /** Events per second; unlimited when unset. */
  rate?: number;
  signal: AbortSignal;
  attempts?: number;
}

async function postOnce(url: string, body: string, signal: AbortSignal): Promise<PostResult> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal,
  });
  const text = await response.text();
  if (response.ok) return { accepted: true, status: response.status };
  return { accepted: false, status: response.status, reason: reasonOf(text) };
}

function reasonOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    const message = parsed.error ?? parsed.message;
    if (typeof message === 'string') return message;
    if (message && typeof message === 'object' && 'message' in message) {
      const inner = message.message;
      return typeof inner === 'string' ? inner : JSON.stringify(inner);
    }
  } catch {
    // Not JSON: the text itself is the reason.
  }
  return text.slice(0, 200);
}

const retryable = (status: number) => status === 429 || status >= 500;

/** One body, retried when the failure may be transient. */
export async function postWithRetry(
  url: string,
  body: string,
  signal: AbortSignal,
  attempts = 5,
): Promise<PostResult> {
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await postOnce(url, body, signal);
      if (result.accepted || !retryable(result.status) || attempt >= attempts) return result;
    } catch (error) {
      if (signal.aborted || attempt >= attempts) throw error;
    }
    await sleep(delay, undefined, { signal });
    delay = Math.min(delay * 2, 5_000);
  }
}

/** Posts every body, calling `done` with each result in completion order. */
export async function postAll(
  bodies: Iterable<string>,
  options: PostOptions,
  done: (body: string, result: PostResult) => void,
): Promise<void> {
  const iterator = bodies[Symbol.iterator]();
  const started = Date.now();
  let sent = 0;
  const next = (): string | undefined => {
    const item = iterator.next();
    return item.done ? undefined : item.value;
  };
  const worker = async () => {
    for (let body = next(); body !== undefined; body = next()) {
      sent += 1;
      if (options.rate) {
        const due = started + (sent / options.rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait, undefined, { signal: options.signal });
      }
      done(body, await postWithRetry(options.url, body, options.signal, options.attempts));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
}
