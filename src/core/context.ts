/**
 * One connection's context: the engine's record of it (ConnectionContext — what the compiled
 * routes and the hub work with, plus the engine's own bookkeeping: rate tokens, heartbeats) and the
 * façade a route's own handlers receive (`api`: `ctx.connection`, `ctx.room`, `ctx.auth`,
 * `ctx.params`), three small objects that hold nothing but the context. Made on a connection's
 * first event and kept on its peer, so a message allocates nothing for it; a Durable Object woken
 * from hibernation makes it again from the socket's record. It reaches the engine only through
 * ConnectionServices.
 */

import type { RouteStats } from "../metrics.ts";
import { asJson, encodeFrame, encodeValue, transcode } from "../msgpack.ts";
import {
  type ErrorFrame,
  type Member,
  type MessageFrame,
  MSGPACK_SUBPROTOCOL,
  type SequencedFrame,
} from "../protocol.ts";
import type { Broker, RoomRef, RoomTimer } from "../pubsub/broker.ts";
import {
  type Admitted,
  type CompiledRoute,
  type Conn,
  type ConnectionServices,
  DONE,
  type Frame,
  type Peer,
} from "./ports.ts";
import { roomParams } from "./room-path.ts";
import { cancelTimer, listTimers, scheduleTimer } from "./room-timers.ts";
import { type Committed, type Connection, type Room, type RoomContext, RouteError, type Transaction } from "./route.ts";
import { readHistory, readState, transact } from "./transact.ts";

const NO_AUTH: Readonly<Admitted> = Object.freeze({});
const encoder = new TextEncoder();

// Codes a server may put in a Close frame (RFC 6455 §7.4): never 1005, 1006 or 1015.
function closable(code: number): boolean {
  return (
    code === 1000 || code === 1001 || code === 1008 || (code >= 1011 && code <= 1013) || (code >= 3000 && code <= 4999)
  );
}

/** One connection as the engine keeps it: what the compiled routes and the hub see (Conn), and the engine's bookkeeping. */
export class ConnectionContext implements Conn {
  /** the connection's peer */
  readonly peer: Peer;
  /** the route's compiled form */
  readonly route: CompiledRoute;
  /** the room, on room routes */
  readonly ref: RoomRef | undefined;
  /** the route's counters */
  readonly stats: RouteStats;
  /** the connection speaks `edgewire.v1+msgpack`: binary frames are MessagePack, and so is what it is sent */
  readonly msgpack: boolean;
  readonly #services: ConnectionServices;
  /** heard from (a frame or a pong) since the last heartbeat */
  alive = true;
  /** heartbeats in a row without an answer */
  missed = 0;
  /** rate limit: tokens left, and when they were last refilled */
  tokens: number;
  refilledAt: number;
  /** rate limit: frames refused in the current second, and when it began */
  refused = 0;
  refusedSince = 0;
  /** found flooding: its frames are ignored until the close */
  flooding = false;
  /** the data of the latest publish that passed the checks */
  checked: unknown = undefined;
  /** when a frame of the flood last arrived */
  floodSeenAt = 0;
  #api: HandlerContext | undefined;

  /** the context of `peer` on `route`'s route */
  constructor(
    peer: Peer,
    route: CompiledRoute,
    services: ConnectionServices,
    ref: RoomRef | undefined,
    stats: RouteStats,
    now: number,
  ) {
    this.peer = peer;
    this.route = route;
    this.#services = services;
    this.ref = ref;
    this.stats = stats;
    this.tokens = route.rate?.burst ?? 0;
    this.refilledAt = now;
    this.msgpack = peer.record.protocol === MSGPACK_SUBPROTOCOL;
  }

  /** what the route's own handlers receive (made at the first handler call) */
  get api(): RoomContext {
    this.#api ??= new HandlerContext(this);
    return this.#api;
  }

  /** what admission attached */
  get auth(): Readonly<Admitted> {
    return this.peer.record.auth ?? NO_AUTH;
  }

  /** send an error frame (counted by code) */
  error(code: string, message: string, id?: string, extra?: { retryAfterMs: number }): void {
    this.#services.countError(code);
    const frame: ErrorFrame = { type: "error", code, message, ...(id === undefined ? {} : { id }), ...extra };
    this.frame(frame);
  }

  /** send a protocol frame (welcome, ack, error, …) in the connection's encoding, the same values either way */
  frame(frame: { readonly type: string }): void {
    this.out(this.msgpack ? encodeFrame(asJson(frame)) : JSON.stringify(frame));
  }

  /**
   * send a frame the broker encoded for JSON members (a room's message, presence,
   * broadcast as text; relayed bytes as binary), transcoded when the connection
   * speaks MessagePack (only while joining: live deliveries are transcoded once per room)
   */
  delivered(frame: Frame): void {
    this.out(this.msgpack ? transcode(frame) : frame);
  }

  /** send one frame to this connection and count it (`/metrics`' frames and bytes sent) */
  out(frame: Frame, text?: boolean): void {
    this.stats.messagesOut++;
    this.stats.bytesOut += typeof frame === "string" ? frame.length : frame.byteLength;
    this.peer.send(frame, text);
  }

  /** this connection as a room member */
  member(): Member {
    return this.route.member(this.peer.record);
  }

  /** validated, size-checked, saved; what other members see of it is refreshed (and announced, if the route says so) */
  setState(next: unknown): void {
    // String(): info that is undefined is "undefined", so a change from none to some is news too.
    const announces = this.ref !== undefined && this.route.announcesMember;
    const before = announces ? String(JSON.stringify(this.member().info)) : "";
    this.route.setState(this.peer.record, next);
    this.peer.save?.();
    if (!this.ref || !this.route.showsMember) return;
    const member = this.member();
    // A state change the member's info does not show is no presence news.
    const announce = announces && String(JSON.stringify(member.info)) !== before;
    // Not awaited (setState is synchronous); a broker outage must not become an unhandled rejection.
    void Promise.resolve(this.#services.broker.update(this.ref, member, announce)).catch((error: unknown) =>
      this.#services.report(`presence update of ${member.id} on route "${this.route.name}" failed`, error),
    );
  }

  /** a string as text, bytes as binary (text when `text`), anything else in the connection's encoding (JSON text, or MessagePack) */
  send(data: unknown, text?: boolean): void {
    if (typeof data === "string") this.out(data);
    else if (data instanceof Uint8Array) this.out(data, text === true);
    else if (data instanceof ArrayBuffer) this.out(new Uint8Array(data), text === true);
    else this.out(this.msgpack ? encodeValue(asJson(data)) : JSON.stringify(data));
  }

  /** close with a code a server may send */
  close(code = 1000, reason = ""): void {
    if (!closable(code))
      throw new RangeError(`edgewire: close code ${code} may not be sent (1000, 1001, 1008, 1011–1013, 3000–4999)`);
    if (encoder.encode(reason).byteLength > 123) throw new RangeError("edgewire: a close reason is at most 123 bytes");
    this.peer.close(code, reason);
  }

  /** sequence, keep and deliver to every member, checked as the route publishes */
  publish(ref: RoomRef, data: unknown): Promise<MessageFrame> {
    let checked: unknown;
    try {
      checked = this.route.published(data, data === this.checked);
    } catch (error) {
      return this.#misfit(error);
    }
    return Promise.resolve(this.#services.broker.publish(ref, this.peer.record.id, checked));
  }

  /** sequence, keep and deliver data already checked as the route publishes it (the default handler's: a client's checked data) */
  publishChecked(data: unknown): Promise<MessageFrame> {
    return Promise.resolve(this.#services.broker.publish(this.ref as RoomRef, this.peer.record.id, data));
  }

  /** an unsequenced frame to the others (or to all with `self`) */
  broadcast(ref: RoomRef, data: unknown, options?: { self?: boolean }): Promise<void> {
    const id = this.peer.record.id;
    const passed = data === this.checked;
    let checked: unknown;
    try {
      checked = this.route.published(data, passed);
    } catch (error) {
      return this.#misfit(error);
    }
    // A client's data passed on as it is (no `publishes` schema made it anew) is plain JSON data.
    const plain = passed && checked === data && this.route.dataAsSent;
    const except = options?.self ? undefined : id;
    const compact = this.route.compactBroadcasts;
    const sent = this.#services.broker.broadcast(ref, id, checked, { except, plain, compact });
    return sent === undefined ? DONE : Promise.resolve(sent);
  }

  // Data that fails `publishes` is the route's fault, handled here (logged, 1011) whether or not the
  // handler awaits the promise: a fire-and-forget broadcast must not become an unhandled rejection.
  #misfit(error: unknown): Promise<never> {
    this.#services.fault(this.peer, error);
    const rejected = Promise.reject(error);
    rejected.catch(() => {});
    return rejected;
  }

  /** bytes to the other members */
  relay(bytes: Uint8Array): Promise<void> {
    return Promise.resolve(this.#services.broker.relay(this.ref as RoomRef, this.peer.record.id, bytes));
  }

  /** the room's state as last committed (a copy) */
  roomState(ref: RoomRef): Promise<unknown> {
    return this.#faulting(() => readState(this.#services.broker, this.route, ref));
  }

  /**
   * Run a transaction on the room's state and commit it with its messages. A state or message the
   * route does not allow is its fault (logged, 1011); the ClientError the transaction threw, or the
   * broker's outage, reject for the handler (and, unawaited, for the publish's answer) to meet.
   */
  transact(ref: RoomRef, fn: Transaction<unknown, unknown>): Promise<Committed<unknown, unknown>> {
    return this.#faulting(() => transact(this.#services.broker, this.route, ref, this.peer.record.id, fn));
  }

  /** run a timer operation; a misuse (no timer handler, a bad name) is the route's fault */
  timers<T>(op: (broker: Broker, route: CompiledRoute) => Promise<T>): Promise<T> {
    return this.#faulting(() => op(this.#services.broker, this.route));
  }

  // A room operation of the handler's: a RouteError (the route misused it) is its fault, logged and
  // closed with 1011 whether or not the handler awaits; a promise it does not await must not
  // become an unhandled rejection.
  #faulting<T>(run: () => Promise<T>): Promise<T> {
    const done = Promise.resolve()
      .then(run)
      .catch((error: unknown) => {
        if (error instanceof RouteError) this.#services.fault(this.peer, error);
        throw error;
      });
    done.catch(() => {});
    return done;
  }

  /** frames after `after` still in history */
  history(ref: RoomRef, after: number, limit: number): Promise<SequencedFrame[]> {
    return readHistory(this.#services.broker, ref, after, limit);
  }

  /** the room's members, count and last seq */
  async members(ref: RoomRef): Promise<{ members: Member[]; count: number; seq: number }> {
    return this.#services.broker.snapshot(ref);
  }

  /** join its room (the hub's) */
  join(): Promise<void> {
    return this.#services.join(this);
  }

  /** leave it */
  leave(code: number, reason: string): Promise<void> {
    return this.#services.leave(this, code, reason);
  }
}

/** `ctx.connection`: the connection, as a handler sees it. */
class ConnectionApi implements Connection {
  readonly #c: ConnectionContext;
  constructor(c: ConnectionContext) {
    this.#c = c;
  }
  /** connection id, also the member id in a room */
  get id(): string {
    return this.#c.peer.record.id;
  }
  /** negotiated subprotocol */
  get protocol(): string {
    return this.#c.peer.record.protocol;
  }
  /** the route's per-connection state */
  get state(): unknown {
    return this.#c.peer.record.state;
  }
  /** replace the state (validated, size-checked, saved) */
  setState(next: unknown): void {
    this.#c.setState(next);
  }
  /** send one frame */
  send(data: unknown, text?: boolean): void {
    this.#c.send(data, text);
  }
  /** close the connection */
  close(code?: number, reason?: string): void {
    this.#c.close(code, reason);
  }
}

/** `ctx.room`: the room, as a handler sees it (room routes only). */
class RoomApi implements Room {
  readonly #c: ConnectionContext;
  readonly #ref: RoomRef;
  constructor(c: ConnectionContext, ref: RoomRef) {
    this.#c = c;
    this.#ref = ref;
  }
  /** the room's name */
  get name(): string {
    return this.#ref.name;
  }
  /** sequence, keep and deliver to every member */
  publish(data: unknown): Promise<MessageFrame> {
    return this.#c.publish(this.#ref, data);
  }
  /** an unsequenced frame to the others (or to all with `self`) */
  broadcast(data: unknown, options?: { self?: boolean }): Promise<void> {
    return this.#c.broadcast(this.#ref, data, options);
  }
  /** bytes to the other members */
  relay(bytes: Uint8Array): Promise<void> {
    return this.#c.relay(bytes);
  }
  /** the room's members, count and last seq */
  members(): Promise<{ members: Member[]; count: number; seq: number }> {
    return this.#c.members(this.#ref);
  }
  /** the room's state as last committed */
  state(): Promise<unknown> {
    return this.#c.roomState(this.#ref);
  }
  /** run a transaction on the room's state and commit it with its messages */
  transact(fn: Transaction<unknown, unknown>): Promise<Committed<unknown, unknown>> {
    return this.#c.transact(this.#ref, fn);
  }
  /** frames after `after` still in the room's history */
  history(after: number, limit = 100): Promise<SequencedFrame[]> {
    return this.#c.history(this.#ref, after, limit);
  }
  /** schedule a room event */
  schedule(name: string, at: number | Date, data?: unknown): Promise<void> {
    return this.#c.timers((broker, route) => scheduleTimer(broker, route, this.#ref, name, at, data));
  }
  /** cancel one */
  cancel(name: string): Promise<boolean> {
    return this.#c.timers((broker, route) => cancelTimer(broker, route, this.#ref, name));
  }
  /** the pending ones */
  timers(): Promise<RoomTimer[]> {
    return this.#c.timers((broker, route) => listTimers(broker, route, this.#ref));
  }
}

/** The `ctx` a route's handlers receive: four names, nothing of the engine. */
class HandlerContext implements RoomContext {
  /** the connection */
  readonly connection: Connection;
  readonly #c: ConnectionContext;
  #room: Room | undefined;
  #params: Readonly<Record<string, string>> | undefined;
  constructor(c: ConnectionContext) {
    this.#c = c;
    this.connection = new ConnectionApi(c);
  }
  /** what admission attached */
  get auth(): Readonly<Admitted> {
    return this.#c.auth;
  }
  /** the room (room routes; a plain route's handlers have none) */
  get room(): Room {
    const ref = this.#c.ref;
    if (!ref) throw new TypeError(`edgewire: route "${this.#c.route.name}" is a plain route: it has no room`);
    this.#room ??= new RoomApi(this.#c, ref);
    return this.#room;
  }
  /** the room's path parameters (made from its name at the first read) */
  get params(): Readonly<Record<string, string>> {
    this.#params ??= Object.freeze(roomParams(this.#c.route.params, this.#c.ref?.name ?? "") ?? {});
    return this.#params;
  }
}
