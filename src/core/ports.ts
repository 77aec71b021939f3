/**
 * The seams of the core, as types. What crosses each one is declared here and nowhere else:
 *
 * - **adapter ↔ kit**: a connection is a small serialisable record plus a sink for frames (Peer,
 *   ConnRecord); the kit asks a runtime to complete an upgrade and to publish natively (Runtime);
 *   the adapter reports what its connections do (ConnectionEvents) — one policy and one set of
 *   counters for every runtime. WebSocket adapters and the long-polling transport both report
 *   through it, so the same handlers serve every transport.
 * - **engine ↔ connection**: what a connection's context needs of the engine (ConnectionServices),
 *   and what the compiled routes and the hub need of a connection (Conn). The handler façade a
 *   route's own handlers receive (route.ts's RoomContext) is made from a Conn, not the engine.
 * - **where rooms live**: the Placement (http/placement.ts implements it).
 *
 * Types only: nothing here runs, so every part of the core can depend on it and on nothing else
 * of the core.
 */
import type { Context } from "hono";
import type { RouteStats } from "../metrics.ts";
import type { Member, MessageFrame } from "../protocol.ts";
import type { Broker, RoomRef, RoomTimer } from "../pubsub/broker.ts";
import type { RoomStateHandling } from "./room-state.ts";
import type { Admitted, AnyRoute, BackendContext, RoomContext, StateInit } from "./route.ts";

/** What admission attached to a connection (route.ts defines it: handlers see it as `ctx.auth`). */
export type { Admitted } from "./route.ts";

/** A frame on the wire: text, or binary bytes. */
export type Frame = string | Uint8Array;

/**
 * Everything the server knows about a connection, as plain JSON. It must stay
 * small (a Durable Object attachment holds at most 16 KiB) because a
 * hibernated Durable Object wakes with nothing but the socket and this record;
 * the handlers are found again from `route`.
 */
export interface ConnRecord {
  /** record format version, so a rolling deploy can read older attachments */
  v: 1;
  /** connection id, also the member id in a room */
  id: string;
  /** the route's name: the key the handlers are looked up by */
  route: string;
  /** the room joined, for room routes */
  room: string | null;
  /** negotiated subprotocol ("" when the client offered none) */
  protocol: string;
  /** the room's last sequence number when this connection was welcomed */
  seq: number;
  /** when the connection was accepted (ms since epoch) */
  at: number;
  /** the route's per-connection state (validated by the route's state schema) */
  state?: unknown;
  /** what admission attached (claims, address) */
  auth?: Admitted;
  /** a room connection asked to resume after this `seq` of this epoch (until its welcome) */
  resume?: { seq: number; epoch: string };
}

/**
 * What a room operation that was done at once returns (the memory broker delivers synchronously):
 * one promise, already resolved, shared — so the publish path can tell it needs no then() and
 * queues nothing for an update that is already out.
 */
export const DONE: Promise<void> = Promise.resolve();

/** A live connection as the engine drives it. */
export interface Peer {
  /** the connection's state; the engine may update it and call `save()` */
  readonly record: ConnRecord;
  /**
   * Queue one frame; never throws on a closed connection. Bytes go out as a
   * binary frame unless `text` is true: UTF-8 text the adapter handed over
   * undecoded (routes with `text: "bytes"`), which only that adapter's peers get back.
   */
  send(frame: Frame, text?: boolean): void;
  /** close with a code and a reason (≤123 bytes) */
  close(code: number, reason: string): void;
  /** persist `record` where the runtime keeps it (Durable Object attachment) */
  save?(): void;
  /** join a native pub/sub topic (Bun), so `Runtime.publish` reaches this peer */
  subscribe?(topic: string): void;
  /** publish to a native topic, excluding this peer */
  publishOthers?(topic: string, frame: Frame): void;
  /** the engine's per-connection record (a Conn), kept on the peer so no lookup or allocation happens per message */
  context?: unknown;
  /** how the connection travels (default "websocket") */
  readonly transport?: "websocket" | "polling";
  /** send a protocol ping (runtimes that can: Node, Bun); the adapter reports the pong (ConnectionEvents.pong) */
  ping?(): void;
  /** drop the connection without a closing handshake (a peer that stopped reading) */
  terminate?(): void;
  /**
   * Bytes queued to it, where frames reach it other than through `send` (Bun's native topic
   * publish): the engine checks it every half second, so a slow consumer is found and counted
   * the same way on every runtime.
   */
  readonly bufferedAmount?: number;
}

/** What the kit asks of an adapter. */
export interface Runtime {
  /** short runtime name, shown by `/healthz` ("node", "deno", "bun", "workerd") */
  readonly name: string;
  /** id of this server instance (a Durable Object's incarnation), shown with a room's presence */
  readonly instance?: string;
  /**
   * Complete a WebSocket upgrade already admitted by the kit; the adapter then reports the
   * connection's events to `events` with a Peer built around `record`. The subprotocol to answer
   * with is `record.protocol`.
   */
  upgrade(c: Context, record: ConnRecord, events: ConnectionEvents): Response | Promise<Response>;
  /**
   * Native topic publish (Bun's `server.publish`): one call reaches every
   * subscribed socket at the runtime's speed. Absent where the runtime has none;
   * the hub then sends one pre-encoded frame to each member.
   */
  publish?(topic: string, frame: Frame): void;
  /** the client's address for a request, where the runtime knows it */
  address?(c: Context): string | undefined;
  /** the process's memory (resident set, JS heap used), where the runtime reports it */
  memory?(): { rss: number; heapUsed: number };
}

/** The limits every adapter applies the same way; documented defaults in config.ts. */
export interface ConnectionLimits {
  /** largest frame accepted (bytes); the runtime's own limit where it has one */
  readonly maxMessageBytes: number;
  /** bytes queued to one connection past which it is a slow consumer (`slow`) */
  readonly maxBufferedBytes: number;
  /** after the server's Close, how long a peer has to answer before its connection is dropped */
  readonly closeTimeoutMs: number;
  /** the reason of a 1009 close: `message_too_large: limit is N bytes` */
  readonly tooBigReason: string;
  /** the heartbeat: a connection that answers nothing for two of these is timed out */
  readonly heartbeatMs: number;
}

/**
 * What an adapter (and the long-polling transport) reports about its connections. The engine
 * implements it: every runtime shares one policy and one set of counters — a slow consumer or a
 * heartbeat timeout is counted and told to its room the same way wherever it was found.
 */
export interface ConnectionEvents {
  readonly limits: ConnectionLimits;
  /** a connection was accepted */
  opened(peer: Peer): void;
  /** whether text frames for this peer must arrive as strings (else undecoded UTF-8 bytes with `text` set will do) */
  readsText(peer: Peer): boolean;
  /** a frame arrived: text as a string (or UTF-8 bytes with `text`, where readsText allows), binary as bytes */
  message(peer: Peer, data: Frame, text?: boolean): void;
  /** the peer answered a protocol ping */
  pong(peer: Peer): void;
  /** the connection closed (either side) or failed; 1006 when it dropped without a Close frame */
  closed(peer: Peer, code?: number, reason?: string): void;
  /** its outbound buffer passed `limits.maxBufferedBytes` (or the runtime closed it for that): dropped, 1013 to the room */
  slow(peer: Peer): void;
  /** it answered nothing for two heartbeats (found by the runtime: Deno's idle pings, a Durable Object's alarm): dropped, 1006 to the room */
  timedOut(peer: Peer): void;
  /** the server closes it with `code` and `reason`, and its room hears exactly that */
  end(peer: Peer, code: number, reason: string): void;
  /** a connection that survived while its state did not (a Durable Object woken from hibernation) */
  restored(peer: Peer): void;
}

/** A route as the engine runs it: its definition compiled once (parsing, checks, the room envelope). */
export interface CompiledRoute {
  /** the definition it was compiled from */
  readonly definition: AnyRoute;
  readonly name: string;
  readonly kind: "plain" | "room";
  /** a room route's path parameter names, in path order (none for plain routes) */
  readonly params: readonly string[];
  /** text frames must arrive as strings (else undecoded UTF-8 bytes with `text` set will do) */
  readonly readsText: boolean;
  /** a publish's data reaches the handler as the client sent it (no schema made it anew): JSON's data model as it is */
  readonly dataAsSent: boolean;
  /** broadcasts reach JSON members positional, `[1, from, data]` (the route's `compactBroadcasts`) */
  readonly compactBroadcasts: boolean;
  /** the route shows members' info derived from their state */
  readonly showsMember: boolean;
  /** a change of that info is announced to the room (presence `update`) */
  readonly announcesMember: boolean;
  /** the per-connection rate limit, if the route has one */
  readonly rate: RateLimit | undefined;
  open(conn: Conn): void | Promise<void>;
  message(conn: Conn, data: Frame, text: boolean): void | Promise<void>;
  close(conn: Conn, code: number, reason: string): void | Promise<void>;
  /** the first state of a connection (validated); throws ClientError (`invalid_state`, or the route's own) */
  initialState(init: StateInit): unknown;
  /** validate `next` and store it in `record`, refusing records over the attachment limit; throws RouteError */
  setState(record: ConnRecord, next: unknown): void;
  /** the member a record stands for */
  member(record: ConnRecord): Member;
  /** check message data from the backend against what the route publishes: the parsed data, or why it fails */
  checkData(data: unknown): { data: unknown } | string;
  /**
   * data a handler publishes or broadcasts, checked against the route's `publishes` schema (throws
   * RouteError); as it is without one. `passed`: it is a client's data that passed the message
   * checks already (its depth is not walked again)
   */
  published(data: unknown, passed?: boolean): unknown;
  /** a stateful room route's room state (its `roomState`), else undefined */
  readonly roomState: RoomStateHandling | undefined;
  /** a room route's push handler (its `push`), with the check a body passes first; undefined: pushes publish as they are */
  readonly pushHandler: PushHandler | undefined;
  /** the room got its first member (its `occupied`) */
  readonly occupied: ((ctx: BackendContext) => void | Promise<void>) | undefined;
  /** the room lost its last member (its `vacated`) */
  readonly vacated: ((ctx: BackendContext) => void | Promise<void>) | undefined;
  /** a due timer of the room (its `timer`) */
  readonly timer: ((ctx: BackendContext, timer: RoomTimer) => void | Promise<void>) | undefined;
}

/** A route's push handler: the check a pushed body passes, and the handler, whose result says the seq to answer. */
export interface PushHandler {
  check(data: unknown): { data: unknown } | string;
  /** run it: the seq the push answers, or undefined when it published nothing; rejects with its ClientError */
  run(ctx: BackendContext, data: unknown): Promise<number | undefined>;
}

/** A per-connection rate limit: frames per second, and how many at once. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

/**
 * One connection as the compiled routes and the hub see it: its peer, route and room, and the
 * operations they perform for it. The engine's own bookkeeping (rate tokens, heartbeats) is not
 * part of it, and a route's own handlers see only its façade (`api`).
 */
export interface Conn {
  readonly peer: Peer;
  readonly route: CompiledRoute;
  /** the room, on room routes */
  readonly ref: RoomRef | undefined;
  /** the route's counters */
  readonly stats: RouteStats;
  /** the connection speaks `edgewire.v1+msgpack`: binary frames are MessagePack, and so is what it is sent */
  readonly msgpack: boolean;
  /**
   * the data of this connection's latest publish, as it passed every check: a handler that passes
   * it on (the same object) is not walked again — one that changes it in place before passing it on
   * is trusted to keep it JSON data
   */
  checked: unknown;
  /** what admission attached */
  readonly auth: Readonly<Admitted>;
  /** what the route's own handlers receive (`ctx`): the connection, the room, admission, parameters */
  readonly api: RoomContext;
  /** send an error frame (counted by code) */
  error(code: string, message: string, id?: string, extra?: { retryAfterMs: number }): void;
  /** send a protocol frame (welcome, ack, …) in the connection's encoding */
  frame(frame: { readonly type: string }): void;
  /** send a frame the broker encoded for JSON members, transcoded for a MessagePack connection */
  delivered(frame: Frame): void;
  /** this connection as a room member */
  member(): Member;
  /** sequence, keep and deliver data already checked as the route publishes it */
  publishChecked(data: unknown): Promise<MessageFrame>;
  /** bytes to the other members */
  relay(bytes: Uint8Array): Promise<void>;
  /** join its room: presence, welcome, the live stream */
  join(): Promise<void>;
  /** leave its room, telling the others how it ended */
  leave(code: number, reason: string): Promise<void>;
}

/** What a connection's context needs of the engine: the broker, the counters, faults, the hub. */
export interface ConnectionServices {
  readonly broker: Broker;
  /** count an error frame sent, by code */
  countError(code: string): void;
  /** a route's fault on `peer`, outside the handler call that will also see it: logged and closed once */
  fault(peer: Peer, error: unknown): void;
  /** log a failure that closes nothing */
  report(message: string, error: unknown): void;
  /** join the connection's room (the hub's) */
  join(conn: Conn): Promise<void>;
  /** leave it */
  leave(conn: Conn, code: number, reason: string): Promise<void>;
}
