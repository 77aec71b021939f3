/**
 * A route's long-polling endpoints: the same admission, the same engine, sessions instead of
 * sockets (long-poll.ts holds the sessions). Each is written once; the instance's placement says
 * whether a session's request is sent on (a Worker: to the room's object, or a plain route's to
 * its shard's) and where an operation runs (in a fleet: on the instance holding the session).
 */
import type { Context, Hono } from "hono";
import type { ConnRecord } from "../core/ports.ts";
import { pathParams, roomName } from "../core/room-path.ts";
import type { AnyRoute } from "../core/route.ts";
import { ErrorCode, POLL_PROTOCOL_HEADER, PROBE_HEADER } from "../protocol.ts";
import { httpError } from "./admission.ts";
import { cors, discard, preflight } from "./answers.ts";
import type { Serving } from "./instance.ts";
import type { PollOp } from "./long-poll.ts";
import { SHARD, SHARD_HEADER } from "./placement.ts";
import { admit, canonicalPath, sendRoom } from "./room-routes.ts";

/** A route as its polling endpoints see it: the route, and the key of a request's session. */
interface PollRoute {
  route: AnyRoute;
  key(c: Context, sid: string): string;
}

// Sessions are keyed by their route's canonical path too, so a sid only works on the route that opened it.
function pollRoute(route: AnyRoute): PollRoute {
  const params = pathParams(route.path);
  const room = (c: Context) => (route.kind === "room" ? roomName(params, c.req.param()) : null);
  return { route, key: (c, sid) => `${canonicalPath(route, room(c))} ${sid}` };
}

const missing = (c: Context) =>
  httpError(c, 404, ErrorCode.sessionNotFound, "no such polling session (closed or expired)");

// Where the placement sends a session's request on: a room's to its room, a plain route's to its
// shard (a new one's when `sid` is undefined); undefined when the session is here.
function sendPoll(
  c: Context,
  s: Serving,
  route: AnyRoute,
  sid: string | undefined,
  record?: ConnRecord,
): Promise<Response> | Response | undefined {
  const rest = sid === undefined ? "/poll" : `/poll/${sid}`;
  if (route.kind === "room") return sendRoom(c, s, route, rest, record);
  return s.placement.sendPoll?.(c, route.name, sid, canonicalPath(route, null, rest), record);
}

// The probe (PROBE_HEADER): the same admission as opening a session, nothing kept — the SDK asks
// it after a WebSocket handshake failed, to tell a refusal (final) from an outage (retry).
async function probe(c: Context, s: Serving, p: PollRoute): Promise<Response> {
  const record = await admit(c, s, p.route, c.req.header(POLL_PROTOCOL_HEADER));
  if (record instanceof Response) {
    c.res = record;
    c.header(PROBE_HEADER, "refused");
    return c.res;
  }
  s.admission.release(record);
  c.header(PROBE_HEADER, "admitted");
  c.header("Cache-Control", "no-store");
  return c.body(null, 204);
}

async function open(c: Context, s: Serving, p: PollRoute): Promise<Response> {
  const record = await admit(c, s, p.route, c.req.header(POLL_PROTOCOL_HEADER));
  if (record instanceof Response) return discard(c, record);
  const sent = sendPoll(c, s, p.route, undefined, record);
  if (sent) return sent;
  const shard = c.req.header(SHARD_HEADER);
  // In a fleet the sid starts with the instance holding the session, so any instance can reach it.
  const owner = s.fleetId ? `${s.fleetId}.` : "";
  const sid = owner + (shard && SHARD.test(shard) ? shard : "") + crypto.randomUUID().replaceAll("-", "");
  if (!s.polling.open(record, p.key(c, sid))) {
    s.admission.release(record);
    return httpError(c, 503, ErrorCode.tryAgainLater, "too many polling sessions on this instance");
  }
  return c.json({ sid, protocol: record.protocol, timeoutMs: s.polling.options.timeoutMs });
}

async function run(c: Context, s: Serving, op: PollOp): Promise<Response> {
  const done = await s.placement.runPoll(s, op);
  if (!done) return missing(c); // the instance holding it is gone: the client opens a new session and resumes
  if (done.status === 200 && op.op === "get") c.header("Cache-Control", "no-store");
  return c.json(done.body as object, done.status as 200 | 400 | 404);
}

function collect(c: Context, s: Serving, p: PollRoute, sid: string): Promise<Response> | Response {
  const sent = sendPoll(c, s, p.route, sid);
  if (sent) return sent;
  const cursor = Number.parseInt(c.req.query("cursor") ?? "0", 10);
  return run(c, s, { op: "get", key: p.key(c, sid), cursor: Number.isFinite(cursor) ? cursor : 0 });
}

async function deliver(c: Context, s: Serving, p: PollRoute, sid: string): Promise<Response> {
  const sent = sendPoll(c, s, p.route, sid);
  if (sent) return sent;
  const text = await c.req.text();
  if (text.length > s.engine.limits.maxMessageBytes * 2) {
    return httpError(c, 413, ErrorCode.messageTooLarge, `limit is ${s.engine.limits.maxMessageBytes} bytes per frame`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return httpError(c, 400, ErrorCode.invalidBody, 'the body must be JSON: {"n":1,"frames":[{"t":"…"}]}');
  }
  return run(c, s, { op: "send", key: p.key(c, sid), body });
}

function end(c: Context, s: Serving, p: PollRoute, sid: string): Promise<Response> | Response {
  const sent = sendPoll(c, s, p.route, sid);
  if (sent) return sent;
  // No code is 1005, as for a Close frame without one; otherwise only codes
  // a client may send (RFC 6455 §7.4): 1000 or the application range.
  const asked = c.req.query("code");
  const n = asked === undefined ? 1005 : Number.parseInt(asked, 10);
  const code = n === 1000 || n === 1005 || (n >= 3000 && n <= 4999) ? n : 1000;
  return run(c, s, { op: "close", key: p.key(c, sid), code, reason: (c.req.query("reason") ?? "").slice(0, 123) });
}

/** Mount `route`'s long-polling endpoints: the probe, opening a session, and a session's GET, POST and DELETE. */
export function mountPolling(app: Hono, route: AnyRoute, instanceOf: (c: Context) => Serving): void {
  const base = route.path;
  const p = pollRoute(route);
  // Preflight of cross-origin polling: allowed origins only.
  app.options(`${base}/poll`, (c) => preflight(c, instanceOf(c)));
  app.options(`${base}/poll/:sid`, (c) => preflight(c, instanceOf(c)));
  for (const path of [`${base}/poll`, `${base}/poll/*`]) {
    app.use(path, async (c, next) => {
      await next();
      cors(c, instanceOf(c));
    });
  }
  app.get(`${base}/poll`, (c) => probe(c, instanceOf(c), p));
  app.post(`${base}/poll`, (c) => open(c, instanceOf(c), p));
  app.get(`${base}/poll/:sid`, (c) => collect(c, instanceOf(c), p, c.req.param("sid")));
  app.post(`${base}/poll/:sid`, (c) => deliver(c, instanceOf(c), p, c.req.param("sid")));
  app.delete(`${base}/poll/:sid`, (c) => end(c, instanceOf(c), p, c.req.param("sid")));
}
