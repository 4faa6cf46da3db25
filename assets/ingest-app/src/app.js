/**
 * The HTTP side of the ingest app, on plain `node:http`: no framework, one validator compiled at
 * start-up, and a response only once Pub/Sub has accepted the message, so a 200 means the event
 * is safely in the topic.
 *
 * Routes: `GET /` (greeting), `GET /healthz`, `POST /json` (one event), `POST /json/batch` (a
 * JSON array or newline-delimited JSON, with a result per event).
 */

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * @param {object} options
 * @param {(data: Buffer) => Promise<string>} options.publish resolves with the message id
 * @param {(event: unknown) => {field: string, reason: string} | undefined} options.validate
 * @param {(severity: string, message: string, fields?: object) => void} options.log
 * @param {string} options.topic shown in messages only
 * @param {{maxBodyBytes: number, maxBatchBodyBytes: number, maxBatchEvents: number}} options.limits
 */
export function createApp({ publish, validate, log, topic, limits }) {
  let inFlight = 0;
  let draining = false;
  let drained = () => {};

  function finished() {
    inFlight -= 1;
    if (draining && inFlight === 0) drained();
  }

  function handle(req, res) {
    inFlight += 1;
    res.once('close', finished);
    if (draining) res.setHeader('connection', 'close');
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const route = routes[path];
    if (route === undefined) {
      req.resume();
      sendError(res, 404, 'NOT_FOUND', `There is nothing at ${path}. POST events to /json.`);
      return;
    }
    const handler = route[req.method === 'HEAD' ? 'GET' : req.method];
    if (handler === undefined) {
      req.resume();
      res.setHeader('allow', Object.keys(route).join(', '));
      sendError(res, 405, 'METHOD_NOT_ALLOWED', `${path} does not take ${req.method}.`);
      return;
    }
    handler(req, res).catch((error) => {
      log('ERROR', 'request failed unexpectedly', { path, error: describe(error) });
      if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'The request failed unexpectedly.');
      else res.destroy();
    });
  }

  const routes = {
    '/': {
      GET: async (req, res) => {
        req.resume();
        send(res, 200, {
          message: `Hello from pubsub-proxy. POST a JSON event to /json to publish it to ${topic}.`,
        });
      },
    },
    '/healthz': {
      GET: async (req, res) => {
        req.resume();
        if (draining) sendError(res, 503, 'UNAVAILABLE', 'Shutting down.');
        // This request is in flight too; it is not counted.
        else send(res, 200, { status: 'ok', inFlight: inFlight - 1 });
      },
    },
    '/json': { POST: publishOne },
    '/json/batch': { POST: publishBatch },
  };

  async function publishOne(req, res) {
    const body = await readBody(req, res, limits.maxBodyBytes);
    if (body === undefined) return;
    const event = parseBody(res, body);
    if (event === undefined) return;
    const problem = validate(event);
    if (problem) {
      log('WARNING', 'rejected an invalid event', problem);
      sendInvalid(res, problem);
      return;
    }
    let messageId;
    try {
      // The body is one valid event: publish its bytes as sent rather than a copy made again.
      messageId = await publish(body);
    } catch (error) {
      sendPublishFailure(res, error);
      return;
    }
    send(res, 200, { message: `Published message ${messageId}.`, messageId });
  }

  async function publishBatch(req, res) {
    const body = await readBody(req, res, limits.maxBatchBodyBytes);
    if (body === undefined) return;
    const entries = splitBatch(res, body, req.headers['content-type']);
    if (entries === undefined) return;
    if (entries.length === 0) {
      sendError(res, 400, 'INVALID_ARGUMENT', 'The batch holds no events.');
      return;
    }
    if (entries.length > limits.maxBatchEvents) {
      sendError(
        res,
        413,
        'PAYLOAD_TOO_LARGE',
        `The batch holds ${entries.length} events; send at most ${limits.maxBatchEvents} at a time.`,
      );
      return;
    }
    let invalid = 0;
    let first;
    const results = entries.map((entry, index) => {
      const problem = entry.problem ?? validate(entry.event);
      if (!problem) return publish(Buffer.from(JSON.stringify(entry.event)));
      invalid += 1;
      const result = { index, ...(entry.line ? { line: entry.line } : {}), error: problem };
      first ??= result;
      return Promise.resolve(result);
    });
    if (invalid > 0) {
      log('WARNING', 'rejected invalid events in a batch', { invalid, of: entries.length, first });
    }
    const settled = await Promise.allSettled(results);
    let published = 0;
    let failed = 0;
    let failure;
    const answer = settled.map((outcome, index) => {
      if (outcome.status === 'rejected') {
        failed += 1;
        failure ??= outcome.reason;
        return { index, error: { reason: `publishing failed: ${describe(outcome.reason)}` } };
      }
      if (typeof outcome.value === 'string') {
        published += 1;
        return { index, messageId: outcome.value };
      }
      return outcome.value;
    });
    if (failed > 0) {
      log('ERROR', 'publishing failed', {
        topic,
        failed,
        of: entries.length,
        error: describe(failure),
      });
    }
    const status =
      published === entries.length ? 200 : published > 0 ? 207 : failed > 0 ? 503 : 400;
    send(res, status, { published, rejected: entries.length - published, results: answer });
  }

  function splitBatch(res, body, contentType = '') {
    const text = body.toString('utf8');
    const start = text.search(/\S/);
    if (start !== -1 && text[start] === '[' && !contentType.includes('ndjson')) {
      const parsed = parseBody(res, body);
      if (parsed === undefined) return undefined;
      return parsed.map((event) => ({ event }));
    }
    const entries = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i += 1) {
      const line = lines[i].trim();
      if (line === '') continue;
      try {
        entries.push({ event: JSON.parse(line), line: i + 1 });
      } catch (error) {
        entries.push({
          line: i + 1,
          problem: { field: '', reason: `malformed JSON: ${describe(error)}` },
        });
      }
    }
    return entries;
  }

  function parseBody(res, body) {
    if (body.length === 0) {
      sendError(res, 400, 'INVALID_ARGUMENT', 'The body is empty; send a JSON event.');
      return undefined;
    }
    try {
      return JSON.parse(body.toString('utf8'));
    } catch (error) {
      log('WARNING', 'rejected a body that is not JSON', { reason: describe(error) });
      sendError(res, 400, 'INVALID_ARGUMENT', `The body is not valid JSON: ${describe(error)}`);
      return undefined;
    }
  }

  function sendPublishFailure(res, error) {
    const missing = error?.code === 5;
    log('ERROR', 'publishing failed', { topic, error: describe(error) });
    if (missing) {
      sendError(res, 500, 'INTERNAL', `Topic ${topic} does not exist; create it, then retry.`);
    } else {
      sendError(res, 503, 'UNAVAILABLE', `Pub/Sub did not accept the event: ${describe(error)}`);
    }
  }

  /** Reads the body up to `limit` bytes; answers 413 and resolves undefined beyond it. */
  function readBody(req, res, limit) {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      tooLarge(req, res, limit);
      return Promise.resolve(undefined);
    }
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on('data', (chunk) => {
        size += chunk.length;
        if (size > limit) {
          req.removeAllListeners('data');
          tooLarge(req, res, limit);
          resolve(undefined);
          return;
        }
        chunks.push(chunk);
      });
      req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
      req.once('error', reject);
    });
  }

  function tooLarge(req, res, limit) {
    log('WARNING', 'rejected an oversized body', { limitBytes: limit });
    // Read on and discard the rest so that the client sees the answer rather than a reset.
    req.resume();
    res.setHeader('connection', 'close');
    sendError(
      res,
      413,
      'PAYLOAD_TOO_LARGE',
      `The body is larger than the limit of ${limit} bytes.`,
    );
  }

  return {
    handle,
    get inFlight() {
      return inFlight;
    },
    /** Answers health checks with 503 and resolves once no request is in progress. */
    drain() {
      draining = true;
      return inFlight === 0
        ? Promise.resolve()
        : new Promise((resolve) => {
            drained = resolve;
          });
    },
  };
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res, code, status, message, extra = {}) {
  send(res, code, { error: { code, status, message, ...extra } });
}

function sendInvalid(res, { field, reason }) {
  const message = field ? `Field ${field}: ${reason}.` : `The event is invalid: ${reason}.`;
  sendError(res, 400, 'INVALID_ARGUMENT', message, { field, reason });
}

function describe(error) {
  return error instanceof Error ? error.message : String(error);
}
