/**
 * pubsub-proxy: takes e-commerce events over HTTP and publishes them to Pub/Sub.
 *
 * Settings come from the environment: PORT (8080), HOST (0.0.0.0), TOPIC (ecommerce-events),
 * MAX_BODY_BYTES (1 MiB) and MAX_BATCH_BODY_BYTES (10 MiB), MAX_BATCH_EVENTS (1000),
 * UNKNOWN_FIELDS (`reject`, or `allow` to pass fields the table lacks), PUBLISH_BATCH_MAX_MESSAGES
 * and PUBLISH_BATCH_MAX_MS (how the Pub/Sub client groups messages), DRAIN_TIMEOUT_MS (9000).
 * The Pub/Sub client finds its project and credentials the usual way, and the emulator through
 * PUBSUB_EMULATOR_HOST.
 */
import { createServer } from 'node:http';

import { PubSub } from '@google-cloud/pubsub';

import { createApp } from './app.js';
import { createLog } from './log.js';
import { eventSchema } from './schema.js';
import { compileValidator } from './validate.js';

const env = process.env;
const number = (name, fallback) => {
  const value = env[name] === undefined || env[name] === '' ? fallback : Number(env[name]);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`${name} must be a positive number, not "${env[name]}".`);
  }
  return value;
};

const port = number('PORT', 8080);
const host = env.HOST || '0.0.0.0';
const topicName = env.TOPIC || 'ecommerce-events';
const drainTimeoutMs = number('DRAIN_TIMEOUT_MS', 9000);
const log = createLog();

// The client sends a batch when it holds this many messages or the oldest has waited this long.
// Each request still waits for its own message to be accepted; many requests in flight share
// one RPC instead of paying for one each.
const pubsub = new PubSub();
const topic = pubsub.topic(topicName, {
  batching: {
    maxMessages: number('PUBLISH_BATCH_MAX_MESSAGES', 1000),
    maxMilliseconds: number('PUBLISH_BATCH_MAX_MS', 10),
    maxBytes: 9 * 1024 * 1024,
  },
});

const app = createApp({
  publish: (data) =>
    topic.publishMessage({ data, attributes: { origin: 'gtm-cloud-run', username: 'gcp-demo' } }),
  validate: compileValidator(eventSchema, { allowUnknownFields: env.UNKNOWN_FIELDS === 'allow' }),
  log,
  topic: topicName,
  limits: {
    maxBodyBytes: number('MAX_BODY_BYTES', 1024 * 1024),
    maxBatchBodyBytes: number('MAX_BATCH_BODY_BYTES', 10 * 1024 * 1024),
    maxBatchEvents: number('MAX_BATCH_EVENTS', 1000),
  },
});

const server = createServer(app.handle);
// Longer than the idle timeout of Google's front ends, so they never reuse a closed connection.
server.keepAliveTimeout = 65_000;
server.on('error', (error) => {
  log('CRITICAL', 'the server failed', { error: error.message, port, host });
  process.exit(1);
});
server.listen(port, host, () => {
  log('INFO', `listening on ${host}:${port}, publishing to ${topicName}`);
});

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log('INFO', `${signal} received: draining ${app.inFlight} request(s)`);
  server.close();
  server.closeIdleConnections();
  const timer = setTimeout(() => {
    log('ERROR', 'drain timed out', { inFlight: app.inFlight, timeoutMs: drainTimeoutMs });
    process.exit(1);
  }, drainTimeoutMs);
  // Send what the client holds now rather than when its batch timer fires: the requests waiting
  // for those messages are what the drain waits for.
  await Promise.all([topic.flush(), app.drain()]);
  await pubsub.close();
  clearTimeout(timer);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
