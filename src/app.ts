/**
 * The one runtime-agnostic Hono app: every route is defined here once. It is
 * given the adapter's runtime (how to upgrade) and the engine (what a
 * connection does); it imports no adapter and no runtime API.
 */
import { type Context, Hono } from "hono";
import * as v from "valibot";
import { CLIENT_JS } from "./demo/client-bundle.gen.ts";
import { DEMO_HTML } from "./demo/page.ts";
import type { Engine } from "./engine.ts";
import {
  describeIssues,
  ErrorCode,
  type HttpError,
  POLL_PROTOCOL_HEADER,
  type PushResult,
  RoomNameSchema,
  SUBPROTOCOL,
} from "./protocol.ts";
import type { Runtime } from "./runtime.ts";
import { type PollOptions, PollTransport } from "./transports/long-poll.ts";
import type { RouteName } from "./transports/peer.ts";

/** Where the Worker hands a request on: a room's object, or the object holding an echo polling session. */
export type ForwardTarget = { kind: "room"; room: string } | { kind: "echo-poll"; shard: string };

/** What the app is built from. */
export interface AppOptions {
  runtime: Runtime;
  engine: Engine;
  /** when set, stateful routes are validated here and then handed on (the Worker → a Durable Object) */
  forward?: (target: ForwardTarget, request: Request, env: unknown) => Promise<Response>;
  /** bearer token required by the backend push API, if any */
  pushToken?: string;
  /** long-polling limits and timings */
  poll?: Partial<PollOptions>;
}

/** A JSON error body with a stable code. */
export function httpError(
  c: Context,
  status: 400 | 401 | 404 | 413 | 426 | 500 | 503,
  code: ErrorCode,
  message: string,
): Response {
  return c.json({ error: { code, message } } satisfies HttpError, status);
}

const isUpgrade = (c: Context): boolean => c.req.header("upgrade")?.toLowerCase() === "websocket";

/**
 * The subprotocol to answer with: "" when none was offered, null when the
 * offer names nothing we speak (refused before the upgrade, not after).
 */
export function negotiate(offer: string | undefined): string | null {
  if (offer === undefined || offer.trim() === "") return "";
  return offer.split(",").some((p) => p.trim() === SUBPROTOCOL) ? SUBPROTOCOL : null;
}

/** Echo polling sessions carry the shard of the object holding them as an 8-character prefix. */
const SHARD = /^[a-z0-9]{8}$/;
const SHARD_HEADER = "x-edgewire-shard";

/** Which route and room a request targets, or the error response that refuses it. */
type Target = { route: RouteName; room: string | null } | Response;

/** Build the app for one runtime. */
export function createApp(options: AppOptions): Hono {
  const { runtime, engine } = options;
  const app = new Hono();
  const polling = new PollTransport(engine, options.poll);

  app.onError((error, c) => {
    console.error("edgewire: request failed", error);
    return httpError(c, 500, ErrorCode.internal, "internal error");
  });
  app.notFound((c) => httpError(c, 404, ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`));

  // Everything a connection must pass before it exists, for both transports.
  const admit = (c: Context, target: Target, offer: string | undefined) => {
    if (target instanceof Response) return target;
    const protocol = negotiate(offer);
    if (protocol === null) {
      return httpError(c, 400, ErrorCode.unsupportedProtocol, `offer the subprotocol ${SUBPROTOCOL}, or none`);
    }
    return engine.record(target.route, target.room, protocol);
  };

  const upgrade = (c: Context, target: Target): Response | Promise<Response> => {
    if (!isUpgrade(c)) {
      c.header("Upgrade", "websocket");
      return httpError(
        c,
        426,
        ErrorCode.upgradeRequired,
        "this route speaks WebSocket: send an Upgrade: websocket request",
      );
    }
    const record = admit(c, target, c.req.header("sec-websocket-protocol"));
    return record instanceof Response ? record : runtime.upgrade(c, record);
  };

  // Long-polling: the same admission, the same engine, sessions instead of sockets.
  const mountPolling = (base: string, target: (c: Context) => Target) => {
    // Sessions are keyed by their route's path too, so a sid only works on the route that opened it.
    const key = (c: Context, sid = c.req.param("sid")) =>
      `${c.req.path.slice(0, c.req.path.lastIndexOf("/poll"))} ${sid}`;
    const missing = (c: Context) =>
      httpError(c, 404, ErrorCode.sessionNotFound, "no such polling session (closed or expired)");
    app.post(`${base}/poll`, (c) => {
      const record = admit(c, target(c), c.req.header(POLL_PROTOCOL_HEADER));
      if (record instanceof Response) return record;
      const shard = c.req.header(SHARD_HEADER);
      const sid = (shard && SHARD.test(shard) ? shard : "") + crypto.randomUUID().replaceAll("-", "");
      if (!polling.open(record, key(c, sid))) {
        return httpError(c, 503, ErrorCode.tryAgainLater, "too many polling sessions on this instance");
      }
      return c.json({ sid, protocol: record.protocol, timeoutMs: polling.options.timeoutMs });
    });
    app.get(`${base}/poll/:sid`, async (c) => {
      const cursor = Number.parseInt(c.req.query("cursor") ?? "0", 10);
      const result = await polling.poll(key(c), Number.isFinite(cursor) ? cursor : 0);
      if (typeof result === "string") return missing(c);
      c.header("Cache-Control", "no-store");
      return c.json(result);
    });
    app.post(`${base}/poll/:sid`, async (c) => {
      const text = await c.req.text();
      if (text.length > engine.maxMessageBytes * 2) {
        return httpError(c, 413, ErrorCode.messageTooLarge, `limit is ${engine.maxMessageBytes} bytes per frame`);
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return httpError(c, 400, ErrorCode.invalidBody, 'the body must be JSON: {"n":1,"frames":[{"t":"…"}]}');
      }
      const result = polling.send(key(c), body);
      if (result === "session_not_found") return missing(c);
      if (result === "invalid_body")
        return httpError(c, 400, ErrorCode.invalidBody, 'expected {"n":1,"frames":[{"t":"…"}|{"b":"<base64>"}]}');
      return c.json({ ok: true });
    });
    app.delete(`${base}/poll/:sid`, (c) => {
      // No code is 1005, as for a Close frame without one; otherwise only codes
      // a client may send (RFC 6455 §7.4): 1000 or the application range.
      const asked = c.req.query("code");
      const n = asked === undefined ? 1005 : Number.parseInt(asked, 10);
      const code = n === 1000 || n === 1005 || (n >= 3000 && n <= 4999) ? n : 1000;
      const result = polling.close(key(c), code, (c.req.query("reason") ?? "").slice(0, 123));
      return result === "ok" ? c.json({ ok: true }) : missing(c);
    });
  };

  app.get("/healthz", (c) => c.json({ ok: true, runtime: runtime.name }));
  app.get("/", (c) => c.html(DEMO_HTML));
  app.get("/client.js", (c) => {
    c.header("Content-Type", "text/javascript; charset=utf-8");
    c.header("Cache-Control", "no-cache");
    return c.body(CLIENT_JS);
  });
  app.get("/echo", (c) => upgrade(c, { route: "echo", room: null }));

  // Room names are checked before any upgrade, session or forward.
  const roomTarget = (c: Context): Target => {
    const parsed = v.safeParse(RoomNameSchema, c.req.param("room"));
    if (!parsed.success) return httpError(c, 400, ErrorCode.invalidRoom, describeIssues(parsed.issues));
    return { route: "room", room: parsed.output };
  };

  const forward = options.forward;
  if (forward) {
    const toRoom = (c: Context) => {
      const target = roomTarget(c);
      return target instanceof Response
        ? target
        : forward({ kind: "room", room: target.room as string }, c.req.raw, c.env);
    };
    app.all("/rooms/:room", toRoom);
    app.all("/rooms/:room/*", toRoom);
    // A new echo session picks a shard at random; later requests find it in the sid.
    app.post("/echo/poll", (c) => {
      const shard = crypto.randomUUID().replaceAll("-", "").slice(0, 8);
      const request = new Request(c.req.raw);
      request.headers.set(SHARD_HEADER, shard);
      return forward({ kind: "echo-poll", shard }, request, c.env);
    });
    app.all("/echo/poll/:sid", (c) => {
      const shard = c.req.param("sid").slice(0, 8);
      if (!SHARD.test(shard)) return httpError(c, 404, ErrorCode.sessionNotFound, "no such polling session");
      return forward({ kind: "echo-poll", shard }, c.req.raw, c.env);
    });
    return app;
  }

  mountPolling("/echo", () => ({ route: "echo", room: null }));
  mountPolling("/rooms/:room", roomTarget);

  app.get("/rooms/:room", async (c) => {
    const target = roomTarget(c);
    if (target instanceof Response) return target;
    if (isUpgrade(c)) return upgrade(c, target);
    const room = target.room as string;
    const { members, seq } = await engine.broker.snapshot(room);
    const instance = runtime.instance;
    return c.json({ room, seq, count: members.length, members, ...(instance ? { instance } : {}) });
  });

  app.post("/rooms/:room/messages", async (c) => {
    const target = roomTarget(c);
    if (target instanceof Response) return target;
    if (options.pushToken !== undefined && c.req.header("authorization") !== `Bearer ${options.pushToken}`) {
      return httpError(c, 401, ErrorCode.unauthorized, "backend push needs Authorization: Bearer <token>");
    }
    const body = await c.req.text();
    if (body.length > engine.maxMessageBytes) {
      return httpError(c, 413, ErrorCode.messageTooLarge, `limit is ${engine.maxMessageBytes} bytes`);
    }
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch {
      return httpError(c, 400, ErrorCode.invalidBody, "the body must be JSON: it is published as the message's data");
    }
    const frame = await engine.push(target.room as string, data);
    return c.json({ room: target.room as string, seq: frame.seq } satisfies PushResult);
  });

  return app;
}
