import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { ExtenderRequestError, type Extender } from './extender.js';
import type { ExtenderMetrics } from './metrics.js';
import { ExtenderArgsSchema, type ExtenderArgs } from './protocol.js';

export interface ExtenderServerOptions {
  extender: Extender;
  metrics: ExtenderMetrics;
  logger: FastifyBaseLogger;
  /** Largest request body in bytes; larger ones are answered 413. Default EXTENDER_BODY_LIMIT. */
  bodyLimit?: number;
  /** Serve HTTPS with this key pair (PEM). */
  https?: { key: Buffer; cert: Buffer };
}

/**
 * Room for nodeCacheCapable: false at a few thousand Nodes (kube-scheduler then sends whole
 * Node objects, a few KiB each); with nodeCacheCapable: true a request is the pod and names.
 */
export const EXTENDER_BODY_LIMIT = 64 * 1024 * 1024;

export const EXTENDER_PREFIX = '/extender';
const VERBS = ['filter', 'prioritize'] as const;
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The extender's HTTP server: `POST /extender/filter` and `POST /extender/prioritize`, the
 * kube-scheduler extender protocol (protocol.ts). Every body is read as JSON whatever its
 * content type (kube-scheduler sends application/json); a body that is not JSON, or not an
 * ExtenderArgs, is answered 400 with what is wrong, as `Error` and `message`.
 */
export function buildExtenderServer(opts: ExtenderServerOptions): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? EXTENDER_BODY_LIMIT;
  const app = Fastify({
    loggerInstance: opts.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    requestTimeout: 30_000,
    // Strict: no coercion ("NodeNames": "a" is not ["a"]), nothing removed from the body.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    ...(opts.https ? { https: opts.https } : {}),
  }) as unknown as FastifyInstance;

  app.removeAllContentTypeParsers();
  const json = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, json);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    let status: number;
    let message: string;
    if (err instanceof ExtenderRequestError) {
      status = err.statusCode;
      message = err.message;
    } else if (err.validation !== undefined) {
      status = 400;
      message = `invalid extender request: ${err.message}`;
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      // Body not JSON, empty, too large (413), ...
      status = err.statusCode === 413 ? 413 : 400;
      message = `invalid extender request: ${err.message}`;
    } else {
      status = 500;
      message = `bamel extender: internal error: ${err.message}`;
      req.log.error({ err: err.message, stack: err.stack, url: req.url }, 'extender request failed');
    }
    if (status < 500) req.log.debug({ status, message, url: req.url }, 'extender request refused');
    void reply.code(status).send({ Error: message, statusCode: status, message });
  });

  app.addHook('onResponse', async (req, reply) => {
    const url = req.routeOptions.url ?? '';
    const verb = VERBS.find((v) => url === `${EXTENDER_PREFIX}/${v}`);
    if (verb === undefined) return;
    opts.metrics.requests.inc({ verb, code: String(reply.statusCode) });
    opts.metrics.latency.observe({ verb }, reply.elapsedTime / 1000);
  });

  // The answers are written as JSON by the extender (a list of names or of scores, built
  // without an object per Node), so fastify sends the string as it is.
  const schema = { body: ExtenderArgsSchema };
  app.post(`${EXTENDER_PREFIX}/filter`, { schema }, async (req, reply) => reply.type(JSON_TYPE).send(opts.extender.filterJson(req.body as ExtenderArgs)));
  app.post(`${EXTENDER_PREFIX}/prioritize`, { schema }, async (req, reply) => reply.type(JSON_TYPE).send(opts.extender.prioritizeJson(req.body as ExtenderArgs)));
  return app;
}
