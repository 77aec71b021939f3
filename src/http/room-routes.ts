/**
 * A route's own endpoints: its WebSocket upgrade, and for a room route the presence read, the
 * history page, the room's metrics and the backend push. Each is written once; the instance's
 * placement says whether admission's checks run here and whether the request is sent on to where
 * its room lives (a Worker's Durable Object).
 */
import type { Context, Hono } from "hono";
import type { CompiledRoute, ConnRecord } from "../core/ports.ts";
import { roomPath } from "../core/room-path.ts";
import type { AnyRoute } from "../core/route.ts";
import { ErrorCode, IDEMPOTENCY_KEY_HEADER, type PushResult, REPLAYED_HEADER } from "../protocol.ts";
import { httpError } from "./admission.ts";
import { badHandshake, closing, discard, isUpgrade, metricsBody, metricsRefused, upgradeRequired } from "./answers.ts";
import type { Serving } from "./instance.ts";
import { ADMITTED_HEADER } from "./placement.ts";
import { keyIssue, pushRoom, type Refusal, refused } from "./push.ts";

/** The most messages one history page returns. */
export const HISTORY_PAGE_MAX = 1000;

/** The handlers a request's route runs on, and its room (null on a plain route). */
export interface Target {
  handlers: CompiledRoute;
  room: string | null;
}

/** The route's own path for a request, without any mount prefix: sessions are keyed by it, and a Worker forwards to it. */
export const canonicalPath = (route: AnyRoute, room: string | null, rest = ""): string =>
  (room === null ? route.path : roomPath(route.path, room)) + rest;

/** The handlers and room of a request to `route`, or the refusal (a room name that is not one). */
export function targetOf(c: Context, s: Serving, route: AnyRoute): Target | Response {
  const handlers = s.engine.route(route.name) as CompiledRoute;
  if (route.kind !== "room") return { handlers, room: null };
  const room = s.admission.room(c, handlers);
  return typeof room === "string" ? { handlers, room } : room;
}

// An object serves what its Worker admitted, never a record of a client's making (the Worker sets the header).
function admittedByWorker(c: Context, s: Serving): ConnRecord | Response {
  const admitted = c.req.header(ADMITTED_HEADER);
  if (!admitted) return httpError(c, 400, ErrorCode.invalidBody, "an object serves only what its Worker admitted");
  const record = JSON.parse(admitted) as ConnRecord;
  if (s.admission.draining) return httpError(c, 503, ErrorCode.draining, "this object is shutting down: connect again");
  return record;
}

/**
 * A new connection's record: admitted here, or as the Worker admitted it (where the placement
 * runs no checks); then the instance that holds the room (one that sends nothing on) checks its capacity.
 */
export async function admit(
  c: Context,
  s: Serving,
  route: AnyRoute,
  offer: string | undefined,
): Promise<ConnRecord | Response> {
  const t = targetOf(c, s, route);
  if (t instanceof Response) return t;
  const record = s.placement.checks
    ? await s.admission.connection(c, t.handlers, t.room, offer)
    : admittedByWorker(c, s);
  if (record instanceof Response || t.room === null || s.placement.sendRoom) return record;
  const full = await s.admission.capacity(c, route.name, t.room);
  if (full) {
    s.admission.release(record);
    return full;
  }
  return record;
}

/** The request sent on to where its room lives, at the room's path + `rest`; undefined when the room is here. */
export function sendRoom(
  c: Context,
  s: Serving,
  route: AnyRoute,
  rest: string,
  record?: ConnRecord,
): Promise<Response> | Response | undefined {
  const send = s.placement.sendRoom;
  if (!send) return undefined;
  const t = targetOf(c, s, route);
  if (t instanceof Response) return t;
  const room = t.room as string;
  return send(c, { route: route.name, room }, canonicalPath(route, room, rest), record);
}

async function upgrade(c: Context, s: Serving, route: AnyRoute): Promise<Response> {
  // A refused handshake ends its connection: a client that ignores the answer must not hold it open.
  const bad = badHandshake(c);
  if (bad) return closing(bad);
  const record = await admit(c, s, route, c.req.header("sec-websocket-protocol"));
  if (record instanceof Response) return closing(record);
  const sent = route.kind === "room" ? sendRoom(c, s, route, "", record) : undefined;
  return sent ?? s.upgrade(c, record);
}

async function presence(c: Context, s: Serving, route: AnyRoute): Promise<Response> {
  const t = targetOf(c, s, route);
  if (t instanceof Response) return t;
  const room = t.room as string;
  const { members, seq } = await s.engine.broker.snapshot(s.engine.ref(route.name, room));
  const instance = s.instanceId;
  return c.json({ room, seq, count: members.length, members, ...(instance ? { instance } : {}) });
}

// A room's recent messages, paged by seq: what a client missed, or the last page of a chat.
async function history(c: Context, s: Serving, route: AnyRoute): Promise<Response> {
  const t = targetOf(c, s, route);
  if (t instanceof Response) return t;
  const room = t.room as string;
  if (s.placement.checks) {
    const refusal = await s.admission.read(c, t.handlers, room);
    if (refusal) return refusal;
  }
  return sendRoom(c, s, route, "/history") ?? historyPage(c, s, route, room);
}

async function historyPage(c: Context, s: Serving, route: AnyRoute, room: string): Promise<Response> {
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
}

// A room's own counters. On Cloudflare each room is an object with counters of its own that no
// /metrics of the Worker can see; elsewhere one process holds every room, and /metrics is the answer.
function roomMetrics(c: Context, s: Serving, route: AnyRoute, metrics: boolean): Promise<Response> | Response {
  if (!metrics) return httpError(c, 404, ErrorCode.notFound, `no route for ${c.req.path}`);
  if (!s.placement.roomMetrics) {
    return httpError(
      c,
      404,
      ErrorCode.notFound,
      "per-room metrics exist on Cloudflare only: this instance's are at /metrics",
    );
  }
  const refusal = s.placement.checks ? metricsRefused(c, s) : undefined;
  if (refusal) return refusal;
  return sendRoom(c, s, route, "/metrics") ?? metricsBody(c, s);
}

async function push(c: Context, s: Serving, route: AnyRoute): Promise<Response> {
  const t = targetOf(c, s, route);
  if (t instanceof Response) return discard(c, t);
  const room = t.room as string;
  if (s.placement.checks) {
    const refusal = await s.admission.push(c, route.name, room);
    if (refusal) return discard(c, refusal);
  }
  // A bad key is refused before the body is read (in a Worker: before an object is woken).
  const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
  const badKey = key === undefined ? undefined : keyIssue(key);
  if (badKey) return discard(c, httpError(c, 400, ErrorCode.invalidIdempotencyKey, `Idempotency-Key: ${badKey}`));
  return sendRoom(c, s, route, "/messages") ?? pushHere(c, s, t.handlers, room, key);
}

// The push published by the instance holding the room: its body is the message's data.
async function pushHere(
  c: Context,
  s: Serving,
  handlers: CompiledRoute,
  room: string,
  key: string | undefined,
): Promise<Response> {
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
  const [outcome] = (await pushRoom(s.engine, handlers, room, [{ data, key, size: body.length }])) as [
    PushResult | Refusal,
  ];
  if (refused(outcome)) {
    // Not stored, so not acknowledged: the backend pushes again after Retry-After.
    if (outcome.code === ErrorCode.draining) s.admission.retryAfter(c);
    else if (outcome.status === 503) c.header("Retry-After", "1");
    return httpError(c, outcome.status, outcome.code, outcome.message);
  }
  if (outcome.repeated) c.header(REPLAYED_HEADER, "true");
  return c.json(outcome satisfies PushResult);
}

/** Mount `route`'s WebSocket endpoint and, for a room route, its presence, history, metrics and push. */
export function mountRoute(app: Hono, route: AnyRoute, instanceOf: (c: Context) => Serving, metrics: boolean): void {
  app.get(route.path, (c) => {
    const s = instanceOf(c);
    if (isUpgrade(c)) return upgrade(c, s, route);
    if (route.kind !== "room") return upgradeRequired(c);
    return sendRoom(c, s, route, "") ?? presence(c, s, route);
  });
  if (route.kind !== "room") return;
  app.get(`${route.path}/history`, (c) => history(c, instanceOf(c), route));
  app.get(`${route.path}/metrics`, (c) => roomMetrics(c, instanceOf(c), route, metrics));
  app.post(`${route.path}/messages`, (c) => push(c, instanceOf(c), route));
}
