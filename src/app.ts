/**
 * The one runtime-agnostic Hono app: every route is defined here once. It is
 * given the adapter's runtime (how to upgrade) and the engine (what a
 * connection does); it imports no adapter and no runtime API.
 */
import { type Context, Hono } from "hono";
import * as v from "valibot";
import type { Engine } from "./engine.ts";
import { describeIssues, ErrorCode, type HttpError, type PushResult, RoomNameSchema, SUBPROTOCOL } from "./protocol.ts";
import type { Runtime } from "./runtime.ts";
import type { RouteName } from "./transports/peer.ts";

/** What the app is built from. */
export interface AppOptions {
  runtime: Runtime;
  engine: Engine;
  /** when set, room routes are validated here and then handed on (the Worker → its room's Durable Object) */
  forwardRoom?: (room: string, request: Request, env: unknown) => Promise<Response>;
  /** bearer token required by the backend push API, if any */
  pushToken?: string;
}

/** A JSON error body with a stable code. */
export function httpError(
  c: Context,
  status: 400 | 401 | 404 | 413 | 426 | 500,
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

/** Build the app for one runtime. */
export function createApp(options: AppOptions): Hono {
  const { runtime, engine } = options;
  const app = new Hono();

  app.onError((error, c) => {
    console.error("edgewire: request failed", error);
    return httpError(c, 500, ErrorCode.internal, "internal error");
  });
  app.notFound((c) => httpError(c, 404, ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`));

  const upgrade: Upgrade = (c, route, room) => {
    if (!isUpgrade(c)) {
      c.header("Upgrade", "websocket");
      return httpError(c, 426, ErrorCode.upgradeRequired, "this route speaks WebSocket: send an Upgrade: websocket request");
    }
    const protocol = negotiate(c.req.header("sec-websocket-protocol"));
    if (protocol === null) {
      return httpError(c, 400, ErrorCode.unsupportedProtocol, `offer the subprotocol ${SUBPROTOCOL}, or none`);
    }
    return runtime.upgrade(c, engine.record(route, room, protocol));
  };

  app.get("/healthz", (c) => c.json({ ok: true, runtime: runtime.name }));
  app.get("/echo", (c) => upgrade(c, "echo", null));

  // Room names are checked before any upgrade or forward.
  const roomName = (c: Context): string | Response => {
    const parsed = v.safeParse(RoomNameSchema, c.req.param("room"));
    return parsed.success ? parsed.output : httpError(c, 400, ErrorCode.invalidRoom, describeIssues(parsed.issues));
  };

  const forward = options.forwardRoom;
  if (forward) {
    const handOn = (c: Context) => {
      const room = roomName(c);
      return typeof room === "string" ? forward(room, c.req.raw, c.env) : room;
    };
    app.all("/rooms/:room", handOn);
    app.all("/rooms/:room/*", handOn);
  } else {
    mountRooms(app, options, upgrade, roomName);
  }
  return app;
}

type Upgrade = (c: Context, route: RouteName, room: string | null) => Response | Promise<Response>;

// The room routes proper: where the room's state lives (a process, or the room's Durable Object).
function mountRooms(app: Hono, options: AppOptions, upgrade: Upgrade, roomName: (c: Context) => string | Response): void {
  const { engine } = options;
  app.get("/rooms/:room", async (c) => {
    const room = roomName(c);
    if (typeof room !== "string") return room;
    if (isUpgrade(c)) return upgrade(c, "room", room);
    const { members, seq } = await engine.broker.snapshot(room);
    const instance = options.runtime.instance;
    return c.json({ room, seq, count: members.length, members, ...(instance ? { instance } : {}) });
  });

  app.post("/rooms/:room/messages", async (c) => {
    const room = roomName(c);
    if (typeof room !== "string") return room;
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
    const frame = await engine.push(room, data);
    return c.json({ room, seq: frame.seq } satisfies PushResult);
  });
}
