/**
 * Where an instance serves, as the one thing the endpoints ask about it. A process (Node, Deno,
 * Bun) holds its rooms and polling sessions itself; a Cloudflare Worker admits each request and
 * sends rooms, and plain routes' polling sessions, on to Durable Objects; a Durable Object serves
 * what its Worker admitted. The endpoints (app.ts, room-routes.ts, polling-routes.ts) are written
 * once and call the placement; none of them tests the serving mode.
 */
import type { Context } from "hono";
import type { ConnRecord } from "../core/ports.ts";
import { ErrorCode } from "../protocol.ts";
import { httpError } from "./admission.ts";
import { type PollDone, type PollOp, type PollTransport, runPollOp } from "./long-poll.ts";
import { BATCH_PATH, type SendPart } from "./push.ts";

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

/** The admitted record a Worker hands to a Durable Object; set only by the Worker, never trusted from a client. */
export const ADMITTED_HEADER = "x-edgewire-admitted";
/** The shard a plain route's polling session lives on, as the sid's first 8 characters. */
export const SHARD_HEADER = "x-edgewire-shard";
/** What a shard is: 8 lowercase letters and digits. */
export const SHARD = /^[a-z0-9]{8}$/;

/** What a placement reads of the instance a polling operation arrived at. */
export interface PollHost {
  /** this instance's id in a fleet (the broker's), if it is in one */
  readonly fleetId?: string | undefined;
  /** run a polling operation on another instance of the fleet; undefined when it is gone */
  fleetRequest?: ((instance: string, op: PollOp, timeoutMs: number) => Promise<PollDone | undefined>) | undefined;
  readonly polling: PollTransport;
}

/** A room a request is sent on to: the route's name and the room's. */
export interface RoomTarget {
  route: string;
  room: string;
}

/** What differs by where an instance serves; every endpoint is written once and asks this. */
export interface Placement {
  /** admission's checks run here; a Durable Object trusts what its Worker admitted (ADMITTED_HEADER) */
  readonly checks: boolean;
  /** a room has counters of its own, apart from /metrics (each room is a Durable Object) */
  readonly roomMetrics: boolean;
  /** send a room's request on to where the room lives, at its canonical `path`; undefined when rooms live here */
  readonly sendRoom: ((c: Context, to: RoomTarget, path: string, record?: ConnRecord) => Promise<Response>) | undefined;
  /** send a plain route's polling request on to its session's shard (a new session's when `sid` is undefined); undefined when sessions live here */
  readonly sendPoll:
    | ((
        c: Context,
        route: string,
        sid: string | undefined,
        path: string,
        record?: ConnRecord,
      ) => Promise<Response> | Response)
    | undefined;
  /** how a batch push's room part reaches its room, for request `c`; undefined when it is pushed here */
  readonly sendPart: ((c: Context) => SendPart) | undefined;
  /** run a polling operation where its session is: here, or on the fleet instance holding it; undefined when that one is gone */
  runPoll(host: PollHost, op: PollOp): Promise<PollDone | undefined>;
}

// A session key is "<route path> <sid>"; a fleet sid is "<instance>.<random>".
function ownerOf(key: string): string | undefined {
  const sid = key.slice(key.lastIndexOf(" ") + 1);
  const dot = sid.indexOf(".");
  return dot > 0 ? sid.slice(0, dot) : undefined;
}

/** A process (Node, Deno, Bun): rooms and sessions are here; in a fleet a session is on the instance its sid names. */
export const localPlacement: Placement = {
  checks: true,
  // One process holds every room: /metrics is the answer.
  roomMetrics: false,
  sendRoom: undefined,
  sendPoll: undefined,
  sendPart: undefined,
  // A session's requests may reach any instance of a fleet: the sid names the instance holding
  // the session, and another instance runs the operation there (over the broker) — no sticky sessions.
  async runPoll(host, op) {
    const owner = ownerOf(op.key);
    if (owner === undefined || owner === host.fleetId || !host.fleetRequest) return runPollOp(host.polling, op);
    return host.fleetRequest(owner, op, host.polling.options.timeoutMs + 5000);
  },
};

/** A Durable Object: its room, or its shard's sessions, are here; it trusts what its Worker admitted. */
export const objectPlacement: Placement = {
  checks: false,
  roomMetrics: true,
  sendRoom: undefined,
  sendPoll: undefined,
  sendPart: undefined,
  // An object is in no fleet: its sessions are its own.
  runPoll: (host, op) => runPollOp(host.polling, op),
};

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

const newShard = (): string => crypto.randomUUID().replaceAll("-", "").slice(0, 8);

/** A Cloudflare Worker: it admits, and `forward` hands rooms and plain routes' polling sessions to their objects. */
export function workerPlacement(forward: Forward): Placement {
  return {
    checks: true,
    roomMetrics: true,
    sendRoom: (c, to, path, record) => forward({ kind: "room", ...to }, forwarded(c, path, record), c.env),
    // A plain route's sessions live in a shard's object, named by the sid's first 8 characters.
    sendPoll: (c, route, sid, path, record) => {
      const shard = sid === undefined ? newShard() : sid.slice(0, 8);
      if (!SHARD.test(shard)) {
        return httpError(c, 404, ErrorCode.sessionNotFound, "no such polling session (closed or expired)");
      }
      return forward({ kind: "poll", route, shard }, forwarded(c, path, record, shard), c.env);
    },
    sendPart: (c) => async (route, room, part) => {
      // A fresh request: the part's own body, and none of the client's headers (none is needed).
      const url = new URL(BATCH_PATH, c.req.url);
      const request = new Request(url, {
        method: "POST",
        body: JSON.stringify(part),
        headers: { "content-type": "application/json" },
      });
      return (await forward({ kind: "room", route: route.name, room }, request, c.env)).json();
    },
    // Nothing is polled in a Worker: every session lives in an object.
    runPoll: (host, op) => runPollOp(host.polling, op),
  };
}
