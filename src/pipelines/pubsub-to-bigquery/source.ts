import type { v1 } from '@google-cloud/pubsub';

import { GrpcCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PipelineMessage } from './rows.js';

/**
 * Reads a subscription with synchronous pulls: several pulls in flight, each answering at most
 * 100 messages from the emulator, paused while too many messages are held (flow control), with
 * acks sent in bulk and the ack deadline of held messages extended while they wait for BigQuery.
 *
 * Each pull waits at the server for messages. The emulator answers an empty pull 1 s before the
 * call's deadline, so with a 2 s deadline an idle pull comes back empty after 1 s rather than
 * failing at the client: a pull abandoned at its deadline could take messages with it, which
 * would come back only after the ack deadline. (Asking for `returnImmediately` instead made
 * the emulator three times slower to drain a backlog.)
 */

export interface ReceivedMessage extends PipelineMessage {
  ackId: string;
  receivedAtMs: number;
}

export interface SourceOptions {
  subscriber: v1.SubscriberClient;
  /** `projects/P/subscriptions/S`. */
  subscription: string;
  log: Logger;
  /** Pulls in flight at once. */
  concurrentPulls?: number;
  /** Messages per pull; the emulator answers at most 100. */
  maxMessagesPerPull?: number;
  /** Pulling pauses while this many messages are held and not yet acked. */
  maxOutstanding?: number;
  /** Called with each non-empty pull, in the order pulls answer. */
  onMessages: (messages: ReceivedMessage[]) => void;
  /** Called once when pulling fails for good (the subscription is gone). */
  onFatal: (error: Error) => void;
}

/** The pull's deadline; the emulator answers an empty pull 1 s before it. */
const PULL_TIMEOUT_MS = 2000;
const ACK_FLUSH_MS = 25;
const ACK_CHUNK = 2000;
const LEASE_CHECK_MS = 2000;
const LEASE_EXTENSION_SECONDS = 60;
/** Held longer than this, a message's ack deadline is extended. */
const LEASE_AGE_MS = 5000;

export class PubSubSource {
  private running = false;
  private outstanding = 0;
  private readonly held = new Map<string, ReceivedMessage>();
  private readonly loops: Promise<void>[] = [];
  private ackQueue: string[] = [];
  private ackTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly inflightAcks = new Set<Promise<void>>();
  private resumeWaiters: (() => void)[] = [];
  private readonly concurrentPulls: number;
  private readonly maxMessages: number;
  private readonly maxOutstanding: number;

  constructor(private readonly options: SourceOptions) {
    this.concurrentPulls = options.concurrentPulls ?? 8;
    this.maxMessages = options.maxMessagesPerPull ?? 1000;
    this.maxOutstanding = options.maxOutstanding ?? 20_000;
  }

  /** Messages pulled and not yet acked. */
  get heldCount(): number {
    return this.outstanding;
  }

  /** Publish time of the oldest held message, or undefined when none is held. */
  oldestHeldPublishMs(): number | undefined {
    let oldest: number | undefined;
    for (const message of this.held.values()) {
      if (oldest === undefined || message.publishTimeMs < oldest) oldest = message.publishTimeMs;
    }
    return oldest;
  }

  start(): void {
    this.running = true;
    for (let i = 0; i < this.concurrentPulls; i++) this.loops.push(this.pullLoop());
    this.leaseTimer = setInterval(() => void this.extendLeases(), LEASE_CHECK_MS);
    this.leaseTimer.unref();
  }

  /** Stops pulling; resolves when no pull is in flight. Held messages stay held. */
  async stopPulling(): Promise<void> {
    this.running = false;
    for (const wake of this.resumeWaiters.splice(0)) wake();
    await Promise.all(this.loops);
  }

  /** Queues acks; they are sent in bulk within a few milliseconds. */
  ack(messages: ReceivedMessage[]): void {
    for (const message of messages) {
      this.ackQueue.push(message.ackId);
      this.held.delete(message.ackId);
    }
    this.release(messages.length);
    if (this.ackQueue.length >= ACK_CHUNK) this.flushAcks();
    else this.ackTimer ??= setTimeout(() => this.flushAcks(), ACK_FLUSH_MS);
  }

  /** Sends every queued ack and waits for all acks in flight; stops lease extension. */
  async close(): Promise<void> {
    this.flushAcks();
    while (this.inflightAcks.size > 0) await Promise.all([...this.inflightAcks]);
    if (this.leaseTimer) clearInterval(this.leaseTimer);
  }

  private async pullLoop(): Promise<void> {
    while (this.running) {
      if (this.outstanding >= this.maxOutstanding) {
        await new Promise<void>((resolve) => this.resumeWaiters.push(resolve));
        continue;
      }
      let received: ReceivedMessage[];
      try {
        received = await this.pullOnce();
      } catch (error) {
        if (isFatal(error)) {
          this.running = false;
          this.options.onFatal(
            new Error(
              `Pulling ${this.options.subscription} failed: ${describe(error)}. ` +
                'Check that the subscription exists.',
              { cause: error },
            ),
          );
          return;
        }
        if (!isDeadline(error)) {
          this.options.log.warn('pull failed, trying again: %s', describe(error));
          await sleep(500);
        }
        continue;
      }
      if (received.length === 0) continue;
      this.outstanding += received.length;
      for (const message of received) this.held.set(message.ackId, message);
      this.options.onMessages(received);
    }
  }

  private async pullOnce(): Promise<ReceivedMessage[]> {
    const [response] = await this.options.subscriber.pull(
      {
        subscription: this.options.subscription,
        maxMessages: this.maxMessages,
      },
      { timeout: PULL_TIMEOUT_MS, retry: null },
    );
    const now = Date.now();
    const messages: ReceivedMessage[] = [];
    for (const received of response.receivedMessages ?? []) {
      const m = received.message;
      if (!received.ackId || !m) continue;
      messages.push({
        ackId: received.ackId,
        messageId: m.messageId ?? '',
        data: Buffer.from(m.data ?? new Uint8Array()),
        attributes: { ...(m.attributes ?? {}) },
        publishTimeMs: timestampMs(m.publishTime) ?? now,
        receivedAtMs: now,
      });
    }
    return messages;
  }

  private release(count: number): void {
    this.outstanding = Math.max(0, this.outstanding - count);
    if (this.outstanding < this.maxOutstanding) {
      for (const wake of this.resumeWaiters.splice(0)) wake();
    }
  }

  private flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    while (this.ackQueue.length > 0) {
      const ackIds = this.ackQueue.splice(0, ACK_CHUNK);
      const sent = this.sendAcks(ackIds).finally(() => this.inflightAcks.delete(sent));
      this.inflightAcks.add(sent);
    }
  }

  private async sendAcks(ackIds: string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.subscriber.acknowledge({
          subscription: this.options.subscription,
          ackIds,
        });
        return;
      } catch (error) {
        // A lost ack only means a redelivery, which insertId makes harmless; still try a few times.
        if (attempt >= 5) {
          this.options.log.warn('gave up acking %d messages: %s', ackIds.length, describe(error));
          return;
        }
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  /** Keeps messages that wait long (BigQuery retrying) from being redelivered meanwhile. */
  private async extendLeases(): Promise<void> {
    const before = Date.now() - LEASE_AGE_MS;
    const ackIds: string[] = [];
    for (const message of this.held.values()) {
      if (message.receivedAtMs < before) ackIds.push(message.ackId);
    }
    if (ackIds.length === 0) return;
    for (let i = 0; i < ackIds.length; i += ACK_CHUNK) {
      try {
        await this.options.subscriber.modifyAckDeadline({
          subscription: this.options.subscription,
          ackIds: ackIds.slice(i, i + ACK_CHUNK),
          ackDeadlineSeconds: LEASE_EXTENSION_SECONDS,
        });
      } catch (error) {
        this.options.log.debug('extending leases failed: %s', describe(error));
      }
    }
  }
}

function timestampMs(
  value: { seconds?: number | string | Long | null; nanos?: number | null } | null | undefined,
): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value.seconds ?? 0);
  return seconds * 1000 + Math.floor((value.nanos ?? 0) / 1e6);
}

interface Long {
  toString(): string;
}

function isFatal(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === GrpcCode.NOT_FOUND || code === GrpcCode.PERMISSION_DENIED;
}

function isDeadline(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === GrpcCode.DEADLINE_EXCEEDED;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
