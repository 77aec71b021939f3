/**
 * The Hono app of an edgewire, built from its route definitions: for every
 * route the WebSocket upgrade and the long-polling endpoints, and for room
 * routes the presence read and the backend push. It is built once and can be
 * mounted into a user's own Hono app; each request finds the assembled
 * instance serving it (`instanceOf`), so the same app serves a Node process, a
 * Cloudflare Worker (which admits and forwards to Durable Objects) and every
 * Durable Object.
 */
import { type Context, Hono } from "hono";
import { type AsyncApiDocument, type AsyncApiOptions, asyncApiDocument, mountedAt } from "../asyncapi.ts";
import type { Config } from "../config.ts";
import type { Engine } from "../core/engine.ts";
import type { CompiledRoute, ConnRecord } from "../core/ports.ts";
import { pathParams, roomName, roomPath } from "../core/room-path.ts";
import type { AnyRoute } from "../core/route.ts";
import { CLIENT_JS, CLIENT_MSGPACK_JS } from "../demo/client-bundle.gen.ts";
import { DEMO_HTML } from "../demo/page.ts";
import {
  type BatchPushReply,
  ErrorCode,
  IDEMPOTENCY_KEY_HEADER,
  POLL_PROTOCOL_HEADER,
  PROBE_HEADER,
  type PushResult,
  REPLAYED_HEADER,
} from "../protocol.ts";
import { type Admission, bearerOf, httpError, sameSecret } from "./admission.ts";
import { type InspectorSource, mountInspector } from "./inspector.ts";
import type { PollTransport } from "./long-poll.ts";
import {
  BATCH_PATH,
  batchMessages,
  keyIssue,
  pushBatch,
  pushRoom,
  type Refusal,
  refused,
  type SendPart,
} from "./push.ts";

/** Where a Worker hands a request on: a room's object, or an object holding a plain route's polling sessions. */
export type ForwardTarget =
  | { kind: "room"; route: string; room: string }
  | { kind: "poll"; route: string; shard: string };

/** Hands a request to the Durable Object for `target` (Cloudflare Workers). */
export type Forward = (target: ForwardTarget, request: Request, env: unknown) => Promise<Response>;

/**
 * How an instance serves: "local" holds every connection itself (Node, Deno,
 * Bun); "worker" admits and forwards rooms and polling to objects; "object"
 * is a Durable Object serving what a Worker admitted.
 */
export type Mode = "local" | "worker" | "object";

/** One long-polling operation on a session, as data: run here, or on the fleet instance holding it. */
export type PollOp =
  | { op: "get"; key: string; cursor: number }
  | { op: "send"; key: string; body: unknown }
  | { op: "close"; key: string; code: number; reason: string };

/** An operation's answer: the HTTP status and JSON body. */
export interface PollDone {
  status: number;
  body: unknown;
}

const NOT_FOUND = {
  error: { code: ErrorCode.sessionNotFound, message: "no such polling session (closed or expired)" },
};

/** Run `op` on this instance's sessions. */
export async function runPollOp(polling: PollTransport, op: PollOp): Promise<PollDone> {
  switch (op.op) {
    case "get": {
      const result = await polling.poll(op.key, op.cursor);
      return typeof result === "string" ? { status: 404, body: NOT_FOUND } : { status: 200, body: result };
    }
    case "send": {
      const result = polling.send(op.key, op.body);
      if (result === "session_not_found") return { status: 404, body: NOT_FOUND };
      if (result === "invalid_body") {
        return {
          status: 400,
          body: {
            error: { code: ErrorCode.invalidBody, message: 'expected {"n":1,"frames":[{"t":"…"}|{"b":"<base64>"}]}' },
          },
        };
      }
      return { status: 200, body: { ok: true } };
    }
    case "close":
      return polling.close(op.key, op.code, op.reason) === "ok"
        ? { status: 200, body: { ok: true } }
        : { status: 404, body: NOT_FOUND };
  }
}

// A session key is "<route path> <sid>"; a fleet sid is "<instance>.<random>".
function ownerOf(key: string): string | undefined {
  const sid = key.slice(key.lastIndexOf(" ") + 1);
  const dot = sid.indexOf(".");
  return dot > 0 ? sid.slice(0, dot) : undefined;
}

/** What the app needs of the instance serving a request. */
export interface Serving extends InspectorSource {
  /** this instance's id in a fleet (the broker's), if it is in one */
  readonly fleetId?: string | undefined;
  /** run a polling operation on another instance of the fleet; undefined when it is gone */
  fleetRequest?: ((instance: string, op: PollOp, timeoutMs: number) => Promise<PollDone | undefined>) | undefined;
  readonly mode: Mode;
  readonly runtimeName: string;
  readonly instanceId: string | undefined;
  readonly engine: Engine;
  readonly admission: Admission;
  readonly polling: PollTransport;
  readonly forward: Forward | undefined;
  /** the validated configuration (the batch push's bounds) */
  readonly config: Config;
  /** the bearer token /metrics requires, if any */
  readonly metricsToken: string | undefined;
  /** upgrade an admitted connection (the runtime's) */
  upgrade(c: Context, record: ConnRecord): Response | Promise<Response>;
  /** the Prometheus exposition of this instance's counters */
  metricsText(): string;
  /** whether the instance takes new connections (not draining, broker up) */
  ready(): boolean;
}

/** The 401 for a metrics request without the configured token, if one is configured. */
function metricsRefused(c: Context, s: Serving): Response | undefined {
  const token = s.metricsToken;
  // The same header parsing as the push API and the inspector (the scheme is case-insensitive, RFC 9110).
  if (token === undefined || sameSecret(bearerOf(c) ?? "", token)) return undefined;
  return httpError(
    c,
    401,
    ErrorCode.unauthorized,
    `${c.req.path} needs Authorization: Bearer <EDGEWIRE_METRICS_TOKEN>`,
  );
}

function metricsBody(c: Context, s: Serving): Response {
  c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  c.header("Cache-Control", "no-store");
  return c.body(s.metricsText());
}

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

/** The admitted record a Worker hands to a Durable Object; set only by the Worker, never trusted from a client. */
export const ADMITTED_HEADER = "x-edgewire-admitted";
/** The shard a plain route's polling session lives on, as the sid's first 8 characters. */
const SHARD_HEADER = "x-edgewire-shard";
const SHARD = /^[a-z0-9]{8}$/;

const isUpgrade = (c: Context): boolean => c.req.header("upgrade")?.toLowerCase() === "websocket";

// RFC 6455 §4.2.1: a 16-byte key in base64 and version 13. Checked here so every runtime refuses
// the same handshakes (measured: Deno upgraded an empty key, Bun a short one, ws accepted version 8).
const KEY = /^[A-Za-z0-9+/]{22}==$/;
function badHandshake(c: Context): Response | undefined {
  if (c.req.header("sec-websocket-version") !== "13") {
    c.header("Sec-WebSocket-Version", "13");
    return httpError(c, 426, ErrorCode.badHandshake, "this server speaks WebSocket version 13 (RFC 6455)");
  }
  if (!KEY.test(c.req.header("sec-websocket-key") ?? "")) {
    return httpError(c, 400, ErrorCode.badHandshake, "Sec-WebSocket-Key must be 16 bytes in base64");
  }
  return undefined;
}

const upgradeRequired = (c: Context): Response => {
  c.header("Upgrade", "websocket");
  return httpError(
    c,
    426,
    ErrorCode.upgradeRequired,
    "this route speaks WebSocket: send an Upgrade: websocket request",
  );
};

/** The most messages one history page returns. */
export const HISTORY_PAGE_MAX = 1000;

const newShard = (): string => crypto.randomUUID().replaceAll("-", "").slice(0, 8);

/**
 * Answer a refused request without using its body. A small body (up to
 * DRAIN_BYTES, by its Content-Length) is read and dropped, so the connection
 * stays reusable: cancelling it makes workerd drop the connection, and the
 * client's next request on it fails ("worker restarted mid-request" under
 * wrangler dev). A larger or unsized body is cancelled (workerd logs "Can't read
 * from request stream after response has been sent" for one left unread) and the
 * answer says `Connection: close`, so nobody reuses that connection.
 */
async function discard(c: Context, response: Response): Promise<Response> {
  const length = Number(c.req.header("content-length"));
  try {
    if (Number.isFinite(length) && length <= DRAIN_BYTES) {
      await c.req.raw.arrayBuffer();
      return response;
    }
    await c.req.raw.body?.cancel();
  } catch {}
  return closing(response);
}

// Refused bodies up to this size are read to keep their connection: 64 KiB costs less than a new connection.
const DRAIN_BYTES = 64 * 1024;

/** The response with `Connection: close` (copied first when its headers are immutable). */
function closing(response: Response): Response {
  try {
    response.headers.set("Connection", "close");
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set("Connection", "close");
    return copy;
  }
}

/** CORS for cross-origin long-polling, following the Origin policy: only allowed origins may read replies. */
function cors(c: Context, s: Serving): void {
  const origin = c.req.header("origin");
  if (origin === undefined || !s.admission.originAllowed(c)) return;
  // A response fetched from a Durable Object has immutable headers: copy it first.
  try {
    c.res.headers.set("Access-Control-Allow-Origin", origin);
  } catch {
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set("Access-Control-Allow-Origin", origin);
  }
  c.res.headers.append("Vary", "Origin");
  // What the SDK reads of a probe's answer (a page's script sees only safelisted headers otherwise).
  c.res.headers.set("Access-Control-Expose-Headers", `${PROBE_HEADER}, retry-after`);
}

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
  for (const route of routes) mountRoute(app, route, instanceOf, options.metrics ?? true);
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
    const trusted = s.mode === "object";
    if (!trusted && Number(c.req.header("content-length")) > max) return discard(c, tooLarge());
    const credential = trusted ? undefined : await s.admission.pushCredential(c);
    if (credential instanceof Response) return discard(c, credential);
    const text = await c.req.text();
    if (!trusted && text.length > max) return tooLarge();
    const messages = batchMessages(text, s.config.pushBatchMaxMessages);
    if (refused(messages)) return httpError(c, messages.status, messages.code, messages.message);
    // Mounted at a prefix, `to` names rooms as clients join them: under it.
    const prefix = c.req.path.slice(0, -BATCH_PATH.length);
    const forward = s.forward;
    const send: SendPart | undefined =
      s.mode === "worker" && forward
        ? async (route, room, part) => {
            // A fresh request: the part's own body, and none of the client's headers (none is needed).
            const url = new URL(BATCH_PATH, c.req.url);
            const request = new Request(url, {
              method: "POST",
              body: JSON.stringify(part),
              headers: { "content-type": "application/json" },
            });
            return (await forward({ kind: "room", route: route.name, room }, request, c.env)).json();
          }
        : undefined;
    const results = await pushBatch(s, rooms, messages, prefix, credential, send);
    return c.json({ results } satisfies BatchPushReply);
  });
}

/** The request as a Worker forwards it: the canonical path, internal headers set by us alone. */
function forwarded(c: Context, path: string, record?: ConnRecord, shard?: string): Request {
  const url = new URL(c.req.url);
  url.pathname = path;
  const request = new Request(url, c.req.raw);
  // A client must never be able to hand an object a record of its own making.
  request.headers.delete(ADMITTED_HEADER);
  request.headers.delete(SHARD_HEADER);
  if (record) request.headers.set(ADMITTED_HEADER, JSON.stringify(record));
  if (shard) request.headers.set(SHARD_HEADER, shard);
  return request;
}

function mountRoute(app: Hono, route: AnyRoute, instanceOf: (c: Context) => Serving, metrics: boolean): void {
  const isRoom = route.kind === "room";
  const base = route.path;
  // The route's own path for a request, without any mount prefix: sessions are keyed by it.
  const canonical = (room: string | null, rest = "") => (room === null ? base : roomPath(base, room)) + rest;

  /** The handlers and room of a request, or the refusal. */
  const target = (c: Context, s: Serving): { handlers: CompiledRoute; room: string | null } | Response => {
    const handlers = s.engine.route(route.name) as CompiledRoute;
    if (!isRoom) return { handlers, room: null };
    const room = s.admission.room(c, handlers);
    return typeof room === "string" ? { handlers, room } : room;
  };

  /**
   * A new connection's record: admitted here, or (in an object) as the Worker
   * admitted it; then the instance that will hold a room connection checks its capacity.
   */
  const admit = async (c: Context, s: Serving, offer: string | undefined): Promise<ConnRecord | Response> => {
    const t = target(c, s);
    if (t instanceof Response) return t;
    let record: ConnRecord | Response;
    if (s.mode === "object") {
      const admitted = c.req.header(ADMITTED_HEADER);
      if (!admitted) return httpError(c, 400, ErrorCode.invalidBody, "an object serves only what its Worker admitted");
      record = JSON.parse(admitted) as ConnRecord;
      if (s.admission.draining)
        return httpError(c, 503, ErrorCode.draining, "this object is shutting down: connect again");
    } else record = await s.admission.connection(c, t.handlers, t.room, offer);
    if (record instanceof Response || s.mode === "worker" || t.room === null) return record;
    const full = await s.admission.capacity(c, route.name, t.room);
    if (full) {
      s.admission.release(record);
      return full;
    }
    return record;
  };

  // Where a Worker sends this route's requests: rooms to their object, polling of plain routes to a shard's.
  const forwardRoom = (c: Context, s: Serving, rest: string, record?: ConnRecord): Promise<Response> | Response => {
    const t = target(c, s);
    if (t instanceof Response) return t;
    const room = t.room as string;
    return (s.forward as Forward)(
      { kind: "room", route: route.name, room },
      forwarded(c, canonical(room, rest), record),
      c.env,
    );
  };

  app.get(base, async (c) => {
    const s = instanceOf(c);
    if (isUpgrade(c)) {
      // A refused handshake ends its connection: a client that ignores the answer must not hold it open.
      const bad = badHandshake(c);
      if (bad) return closing(bad);
      const record = await admit(c, s, c.req.header("sec-websocket-protocol"));
      if (record instanceof Response) return closing(record);
      if (s.mode === "worker" && isRoom) return forwardRoom(c, s, "", record);
      return s.upgrade(c, record);
    }
    if (!isRoom) return upgradeRequired(c);
    if (s.mode === "worker") return forwardRoom(c, s, "");
    const t = target(c, s);
    if (t instanceof Response) return t;
    const room = t.room as string;
    const { members, seq } = await s.engine.broker.snapshot(s.engine.ref(route.name, room));
    const instance = s.instanceId;
    return c.json({ room, seq, count: members.length, members, ...(instance ? { instance } : {}) });
  });

  if (isRoom) {
    // A room's recent messages, paged by seq: what a client missed, or the last page of a chat.
    app.get(`${base}/history`, async (c) => {
      const s = instanceOf(c);
      const t = target(c, s);
      if (t instanceof Response) return t;
      const room = t.room as string;
      if (s.mode !== "object") {
        const refused = await s.admission.read(c, t.handlers, room);
        if (refused) return refused;
      }
      if (s.mode === "worker") return forwardRoom(c, s, "/history");
      const after = Number.parseInt(c.req.query("after") ?? "0", 10);
      const limit = Math.min(HISTORY_PAGE_MAX, Math.max(1, Number.parseInt(c.req.query("limit") ?? "100", 10) || 100));
      const ref = s.engine.ref(route.name, room);
      const head = await s.engine.broker.snapshot(ref);
      const from = Number.isFinite(after) && after > 0 ? after : 0;
      const messages = await s.engine.broker.history(ref, from, limit + 1);
      const page = messages.slice(0, limit);
      c.header("Cache-Control", "no-store");
      return c.json({
        room,
        epoch: head.epoch,
        seq: head.seq,
        messages: page,
        // The next page starts after the last message returned; absent when this was the last.
        ...(messages.length > limit ? { next: page.at(-1)?.seq } : {}),
      });
    });

    // A room's own counters. On Cloudflare each room is an object with counters of its own that no
    // /metrics of the Worker can see; elsewhere one process holds every room, and /metrics is the answer.
    app.get(`${base}/metrics`, async (c) => {
      const s = instanceOf(c);
      if (!metrics) return httpError(c, 404, ErrorCode.notFound, `no route for ${c.req.path}`);
      if (s.mode === "local")
        return httpError(
          c,
          404,
          ErrorCode.notFound,
          "per-room metrics exist on Cloudflare only: this instance's are at /metrics",
        );
      if (s.mode === "worker") {
        const refused = metricsRefused(c, s);
        if (refused) return refused;
        return forwardRoom(c, s, "/metrics");
      }
      return metricsBody(c, s);
    });

    app.post(`${base}/messages`, async (c) => {
      const s = instanceOf(c);
      const t = target(c, s);
      if (t instanceof Response) return discard(c, t);
      if (s.mode !== "object") {
        const refused = await s.admission.push(c, route.name, t.room as string);
        if (refused) return discard(c, refused);
      }
      // A bad key is refused before the body is read (in a Worker: before an object is woken).
      const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
      const badKey = key === undefined ? undefined : keyIssue(key);
      if (badKey) return discard(c, httpError(c, 400, ErrorCode.invalidIdempotencyKey, `Idempotency-Key: ${badKey}`));
      if (s.mode === "worker") return forwardRoom(c, s, "/messages");
      const body = await c.req.text();
      if (body.length > s.engine.limits.maxMessageBytes) {
        return httpError(c, 413, ErrorCode.messageTooLarge, `limit is ${s.engine.limits.maxMessageBytes} bytes`);
      }
      let data: unknown;
      try {
        data = JSON.parse(body);
      } catch {
        return httpError(c, 400, ErrorCode.invalidBody, "the body must be JSON: it is published as the message's data");
      }
      const [outcome] = (await pushRoom(s.engine, t.handlers, t.room as string, [
        { data, key, size: body.length },
      ])) as [PushResult | Refusal];
      if (refused(outcome)) {
        // Not stored, so not acknowledged: the backend pushes again after Retry-After.
        if (outcome.code === ErrorCode.draining) s.admission.retryAfter(c);
        else if (outcome.status === 503) c.header("Retry-After", "1");
        return httpError(c, outcome.status, outcome.code, outcome.message);
      }
      if (outcome.repeated) c.header(REPLAYED_HEADER, "true");
      return c.json(outcome satisfies PushResult);
    });
  }

  mountPolling(app, route, instanceOf, { canonical, target, admit, forwardRoom });
}

interface RouteHelpers {
  canonical(room: string | null, rest?: string): string;
  target(c: Context, s: Serving): { handlers: CompiledRoute; room: string | null } | Response;
  admit(c: Context, s: Serving, offer: string | undefined): Promise<ConnRecord | Response>;
  forwardRoom(c: Context, s: Serving, rest: string, record?: ConnRecord): Promise<Response> | Response;
}

// A preflight answers for allowed origins only; the browser then refuses to send the request.
function preflight(c: Context, s: Serving): Response {
  if (!s.admission.originAllowed(c)) {
    return httpError(c, 403, ErrorCode.originNotAllowed, `origin ${c.req.header("origin")} may not connect`);
  }
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    c.header("Access-Control-Allow-Origin", origin);
    c.header("Vary", "Origin");
  }
  c.header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
  c.header("Access-Control-Allow-Headers", `content-type, authorization, ${POLL_PROTOCOL_HEADER}, ${PROBE_HEADER}`);
  c.header("Access-Control-Max-Age", "600");
  return c.body(null, 204);
}

// Long-polling: the same admission, the same engine, sessions instead of sockets.
function mountPolling(app: Hono, route: AnyRoute, instanceOf: (c: Context) => Serving, h: RouteHelpers): void {
  const isRoom = route.kind === "room";
  const base = route.path;
  // Sessions are keyed by their route's canonical path too, so a sid only works on the route that opened it.
  const params = pathParams(base);
  const key = (c: Context, sid: string) => `${h.canonical(isRoom ? roomName(params, c.req.param()) : null)} ${sid}`;
  const missing = (c: Context) =>
    httpError(c, 404, ErrorCode.sessionNotFound, "no such polling session (closed or expired)");

  // In a Worker: rooms' sessions live in the room's object, plain routes' in a shard's object named by the sid.
  const forwardPoll = (c: Context, s: Serving, sid: string | undefined, record?: ConnRecord) => {
    if (isRoom) return h.forwardRoom(c, s, sid === undefined ? "/poll" : `/poll/${sid}`, record);
    const shard = sid === undefined ? newShard() : sid.slice(0, 8);
    if (!SHARD.test(shard)) return missing(c);
    const path = h.canonical(null, sid === undefined ? "/poll" : `/poll/${sid}`);
    return (s.forward as Forward)({ kind: "poll", route: route.name, shard }, forwarded(c, path, record, shard), c.env);
  };

  // Preflight of cross-origin polling: allowed origins only.
  app.options(`${base}/poll`, (c) => preflight(c, instanceOf(c)));
  app.options(`${base}/poll/:sid`, (c) => preflight(c, instanceOf(c)));
  app.use(`${base}/poll`, async (c, next) => {
    await next();
    cors(c, instanceOf(c));
  });
  app.use(`${base}/poll/*`, async (c, next) => {
    await next();
    cors(c, instanceOf(c));
  });

  // The probe (PROBE_HEADER): the same admission as opening a session, nothing kept — the SDK asks
  // it after a WebSocket handshake failed, to tell a refusal (final) from an outage (retry).
  app.get(`${base}/poll`, async (c) => {
    const s = instanceOf(c);
    const record = await h.admit(c, s, c.req.header(POLL_PROTOCOL_HEADER));
    if (record instanceof Response) {
      c.res = record;
      c.header(PROBE_HEADER, "refused");
      return c.res;
    }
    s.admission.release(record);
    c.header(PROBE_HEADER, "admitted");
    c.header("Cache-Control", "no-store");
    return c.body(null, 204);
  });

  app.post(`${base}/poll`, async (c) => {
    const s = instanceOf(c);
    const record = await h.admit(c, s, c.req.header(POLL_PROTOCOL_HEADER));
    if (record instanceof Response) return discard(c, record);
    if (s.mode === "worker") return forwardPoll(c, s, undefined, record);
    const shard = c.req.header(SHARD_HEADER);
    // In a fleet the sid starts with the instance holding the session, so any instance can reach it.
    const owner = s.fleetId ? `${s.fleetId}.` : "";
    const sid = owner + (shard && SHARD.test(shard) ? shard : "") + crypto.randomUUID().replaceAll("-", "");
    if (!s.polling.open(record, key(c, sid))) {
      s.admission.release(record);
      return httpError(c, 503, ErrorCode.tryAgainLater, "too many polling sessions on this instance");
    }
    return c.json({ sid, protocol: record.protocol, timeoutMs: s.polling.options.timeoutMs });
  });

  // A session's requests may reach any instance of a fleet: the sid names the instance holding
  // the session, and another instance runs the operation there (over the broker) — no sticky sessions.
  const run = async (c: Context, s: Serving, op: PollOp): Promise<Response> => {
    const owner = ownerOf(op.key);
    const done =
      owner !== undefined && owner !== s.fleetId && s.fleetRequest
        ? await s.fleetRequest(owner, op, s.polling.options.timeoutMs + 5000)
        : await runPollOp(s.polling, op);
    if (!done) return missing(c); // the instance holding it is gone: the client opens a new session and resumes
    if (done.status === 200 && op.op === "get") c.header("Cache-Control", "no-store");
    return c.json(done.body as object, done.status as 200 | 400 | 404);
  };

  app.get(`${base}/poll/:sid`, (c) => {
    const s = instanceOf(c);
    if (s.mode === "worker") return forwardPoll(c, s, c.req.param("sid"));
    const cursor = Number.parseInt(c.req.query("cursor") ?? "0", 10);
    return run(c, s, { op: "get", key: key(c, c.req.param("sid")), cursor: Number.isFinite(cursor) ? cursor : 0 });
  });

  app.post(`${base}/poll/:sid`, async (c) => {
    const s = instanceOf(c);
    if (s.mode === "worker") return forwardPoll(c, s, c.req.param("sid"));
    const text = await c.req.text();
    if (text.length > s.engine.limits.maxMessageBytes * 2) {
      return httpError(
        c,
        413,
        ErrorCode.messageTooLarge,
        `limit is ${s.engine.limits.maxMessageBytes} bytes per frame`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return httpError(c, 400, ErrorCode.invalidBody, 'the body must be JSON: {"n":1,"frames":[{"t":"…"}]}');
    }
    return run(c, s, { op: "send", key: key(c, c.req.param("sid")), body });
  });

  app.delete(`${base}/poll/:sid`, (c) => {
    const s = instanceOf(c);
    if (s.mode === "worker") return forwardPoll(c, s, c.req.param("sid"));
    // No code is 1005, as for a Close frame without one; otherwise only codes
    // a client may send (RFC 6455 §7.4): 1000 or the application range.
    const asked = c.req.query("code");
    const n = asked === undefined ? 1005 : Number.parseInt(asked, 10);
    const code = n === 1000 || n === 1005 || (n >= 3000 && n <= 4999) ? n : 1000;
    return run(c, s, {
      op: "close",
      key: key(c, c.req.param("sid")),
      code,
      reason: (c.req.query("reason") ?? "").slice(0, 123),
    });
  });
}
