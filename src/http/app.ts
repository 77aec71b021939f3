/**
 * The Hono app of an edgewire, built from its route definitions: for every
 * route the WebSocket upgrade and the long-polling endpoints (room-routes.ts,
 * polling-routes.ts), for room routes the presence read, history and the
 * backend push, and the app's own endpoints (health, metrics, the batch push,
 * AsyncAPI). It is built once and can be mounted into a user's own Hono app;
 * each request finds the assembled instance serving it (`instanceOf`), and that
 * instance's placement (placement.ts) decides what differs between a Node
 * process, a Cloudflare Worker (which admits and forwards to Durable Objects)
 * and every Durable Object: each endpoint is written once.
 */
import { type Context, Hono } from "hono";
import { type AsyncApiDocument, type AsyncApiOptions, asyncApiDocument, mountedAt } from "../asyncapi.ts";
import type { AnyRoute } from "../core/route.ts";
import { CLIENT_JS, CLIENT_MSGPACK_JS } from "../demo/client-bundle.gen.ts";
import { DEMO_HTML } from "../demo/page.ts";
import { type BatchPushReply, ErrorCode } from "../protocol.ts";
import { httpError } from "./admission.ts";
import { discard, metricsBody, metricsRefused } from "./answers.ts";
import { mountInspector } from "./inspector.ts";
import type { Serving } from "./instance.ts";
import { mountPolling } from "./polling-routes.ts";
import { BATCH_PATH, batchMessages, pushBatch, refused } from "./push.ts";
import { mountRoute } from "./room-routes.ts";

/** What the endpoints need of the instance serving a request (instance.ts). */
export type { Serving } from "./instance.ts";
/** A long-polling operation as data, its answer, and how one runs on an instance's sessions (long-poll.ts). */
export { type PollDone, type PollOp, runPollOp } from "./long-poll.ts";
/** Where an instance serves, and how a Worker forwards (placement.ts). */
export { ADMITTED_HEADER, type Forward, type ForwardTarget, type Mode } from "./placement.ts";
/** The most messages one history page returns (room-routes.ts). */
export { HISTORY_PAGE_MAX } from "./room-routes.ts";

/** The app's optional endpoints. */
export interface AppOptions {
  /** liveness path answering `{ok, runtime}`, or false for none (default "/healthz"; readiness is at `readiness`) */
  health?: string | false;
  /** readiness path: 200 while taking connections, 503 while draining (default "/readyz") */
  readiness?: string;
  /** serve Prometheus metrics at /metrics (default true; EDGEWIRE_METRICS_TOKEN protects it) */
  metrics?: boolean;
  /** serve the chat demo page at `/` (default false) */
  demo?: boolean;
  /** serve the browser SDK bundle at `/client.js`, and its MessagePack codec at `/client-msgpack.js` (default: with the demo) */
  clientScript?: boolean;
  /** serve the routes' AsyncAPI 3.0 document at `/asyncapi.json` (default true: it describes the public protocol); options name the service */
  asyncapi?: boolean | AsyncApiOptions;
  /** serve the batch push at `POST /messages`: many rooms' messages in one request (default true: it has the push API's credentials) */
  batchPush?: boolean;
}

/** The paths the app's own endpoints take with `options`: a route of the user's may not take one too. */
export function builtinPaths(options: AppOptions): string[] {
  const health = options.health ?? "/healthz";
  return [
    ...(health ? [health, options.readiness ?? "/readyz"] : []),
    ...((options.metrics ?? true) ? ["/metrics"] : []),
    ...(options.demo ? ["/"] : []),
    ...((options.clientScript ?? options.demo) ? ["/client.js", "/client-msgpack.js"] : []),
    ...((options.asyncapi ?? true) ? [ASYNCAPI_PATH] : []),
    ...((options.batchPush ?? true) ? [BATCH_PATH] : []),
  ];
}

/** Where the app serves its AsyncAPI document. */
export const ASYNCAPI_PATH = "/asyncapi.json";

/** Build the app serving `routes`; `instanceOf` finds the instance serving a request. */
export function buildApp(routes: readonly AnyRoute[], options: AppOptions, instanceOf: (c: Context) => Serving): Hono {
  const app = new Hono();

  app.onError((error, c) => {
    console.error("edgewire: request failed", error);
    return httpError(c, 500, ErrorCode.internal, "internal error");
  });
  app.notFound((c) => httpError(c, 404, ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`));

  const health = options.health ?? "/healthz";
  if (health) {
    // Liveness: the process answers. Readiness: it takes new connections (503 while draining).
    app.get(health, (c) => c.json({ ok: true, runtime: instanceOf(c).runtimeName }));
    app.get(options.readiness ?? "/readyz", (c) => {
      const s = instanceOf(c);
      return c.json({ ready: s.ready(), runtime: s.runtimeName }, s.ready() ? 200 : 503);
    });
  }
  if (options.metrics ?? true) {
    app.get("/metrics", (c) => {
      const s = instanceOf(c);
      return metricsRefused(c, s) ?? metricsBody(c, s);
    });
  }
  if (options.demo) app.get("/", (c) => c.html(DEMO_HTML));
  if (options.clientScript ?? options.demo) {
    // Two modules: a page that speaks JSON does not load the MessagePack codec.
    for (const [path, body] of [
      ["/client.js", CLIENT_JS],
      ["/client-msgpack.js", CLIENT_MSGPACK_JS],
    ] as const) {
      app.get(path, (c) => {
        c.header("Content-Type", "text/javascript; charset=utf-8");
        c.header("Cache-Control", "no-cache");
        return c.body(body);
      });
    }
  }
  const asyncapi = options.asyncapi ?? true;
  if (asyncapi) {
    let document: AsyncApiDocument | undefined;
    app.get(ASYNCAPI_PATH, (c) => {
      // Made at the first request, not at import: every Worker isolate and Durable Object wake-up loads
      // the module, and most never serve this.
      document ??= asyncApiDocument(routes, asyncapi === true ? {} : asyncapi);
      // Mounted in a user's app at a prefix, the channels' addresses are under it too.
      return c.json(mountedAt(document, c.req.path.slice(0, -ASYNCAPI_PATH.length)));
    });
  }
  if (options.batchPush ?? true) mountBatchPush(app, routes, instanceOf);
  for (const route of routes) {
    mountRoute(app, route, instanceOf, options.metrics ?? true);
    mountPolling(app, route, instanceOf);
  }
  // After the routes, so a user's own /inspector route wins; answers 404 unless EDGEWIRE_INSPECTOR is on.
  mountInspector(app, instanceOf);
  return app;
}

/**
 * `POST /messages`: messages to many rooms of any room routes in one request. Read, authorised
 * and split by room where it arrives; each room's part is pushed in order (in a Worker: sent to
 * the room's object, one request per room), the rooms in parallel; one result per message.
 */
function mountBatchPush(app: Hono, routes: readonly AnyRoute[], instanceOf: (c: Context) => Serving): void {
  const rooms = routes.filter((route) => route.kind === "room");
  app.post(BATCH_PATH, async (c) => {
    const s = instanceOf(c);
    const max = s.config.pushBatchMaxBytes;
    const tooLarge = () =>
      httpError(
        c,
        413,
        ErrorCode.batchTooLarge,
        `a batch body is at most ${max} bytes (EDGEWIRE_PUSH_BATCH_MAX_BYTES)`,
      );
    // An object trusts its Worker, which checked the credential against every room of the part and
    // the bound (a part, re-serialised, may differ from its share of the original body by a few bytes).
    const checks = s.placement.checks;
    if (checks && Number(c.req.header("content-length")) > max) return discard(c, tooLarge());
    const credential = checks ? await s.admission.pushCredential(c) : undefined;
    if (credential instanceof Response) return discard(c, credential);
    const text = await c.req.text();
    if (checks && text.length > max) return tooLarge();
    const messages = batchMessages(text, s.config.pushBatchMaxMessages);
    if (refused(messages)) return httpError(c, messages.status, messages.code, messages.message);
    // Mounted at a prefix, `to` names rooms as clients join them: under it.
    const prefix = c.req.path.slice(0, -BATCH_PATH.length);
    // In a Worker each room's part goes to the room's object; elsewhere it is pushed here.
    const send = s.placement.sendPart?.(c);
    const results = await pushBatch(s, rooms, messages, prefix, credential, send);
    return c.json({ results } satisfies BatchPushReply);
  });
}
