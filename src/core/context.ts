/**
 * The context a route's handlers receive. One object per connection, made on
 * its first event and kept on the peer, so a message costs no allocation for
 * it: it is at once the handler context, the `Connection` and (on room
 * routes) the `Room`. A Durable Object woken from hibernation makes it again
 * from the socket's record.
 */

import type { RouteStats } from "../metrics.ts";
import { asJson, encodeFrame, encodeValue, transcode } from "../msgpack.ts";
import { type Member, type MessageFrame, MSGPACK_SUBPROTOCOL } from "../protocol.ts";
import type { RoomRef } from "../pubsub/broker.ts";
import type { Admitted, Frame, Peer } from "./contract.ts";
import type { Engine } from "./engine.ts";
import { errorFrame, type Handlers } from "./handlers.ts";
import { roomParams } from "./room-path.ts";
import type { Connection, RoomContext } from "./route.ts";

const NO_AUTH: Readonly<Admitted> = Object.freeze({});
const encoder = new TextEncoder();

// Codes a server may put in a Close frame (RFC 6455 §7.4): never 1005, 1006 or 1015.
function closable(code: number): boolean {
  return (
    code === 1000 || code === 1001 || code === 1008 || (code >= 1011 && code <= 1013) || (code >= 3000 && code <= 4999)
  );
}

/** One connection's handler context: `ctx`, `ctx.connection` and `ctx.room` are this object. */
export class ConnectionContext implements RoomContext, Connection {
  /** the connection's peer */
  readonly peer: Peer;
  /** the route's compiled handlers */
  readonly handlers: Handlers;
  /** the engine driving it */
  readonly engine: Engine;
  /** the room, on room routes */
  readonly ref: RoomRef | undefined;
  /** the route's counters */
  readonly stats: RouteStats;
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
  /** when a frame of the flood last arrived */
  floodSeenAt = 0;
  /** the connection speaks `edgewire.v1+msgpack`: binary frames are MessagePack, and so is what it is sent */
  readonly msgpack: boolean;

  /** the context of `peer` on `handlers`' route */
  constructor(
    peer: Peer,
    handlers: Handlers,
    engine: Engine,
    ref: RoomRef | undefined,
    stats: RouteStats,
    now: number,
  ) {
    this.peer = peer;
    this.handlers = handlers;
    this.engine = engine;
    this.ref = ref;
    this.stats = stats;
    this.tokens = handlers.rate?.burst ?? 0;
    this.refilledAt = now;
    this.msgpack = peer.record.protocol === MSGPACK_SUBPROTOCOL;
  }

  /** send an error frame (counted by code) */
  error(code: string, message: string, id?: string, extra?: { retryAfterMs: number }): void {
    this.engine.metrics.errorFrames.inc(code);
    this.frame(errorFrame(code, message, id, extra));
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

  /** the connection (this object) */
  get connection(): Connection {
    return this;
  }

  /** the room (this object); only room routes' handlers see it */
  get room(): this {
    return this;
  }

  /** what admission attached */
  get auth(): Readonly<Admitted> {
    return this.peer.record.auth ?? NO_AUTH;
  }

  /** connection id */
  get id(): string {
    return this.peer.record.id;
  }

  /** negotiated subprotocol */
  get protocol(): string {
    return this.peer.record.protocol;
  }

  /** the route's per-connection state */
  get state(): unknown {
    return this.peer.record.state;
  }

  /** validated, size-checked, saved; what other members see of it is refreshed (and announced, if the route says so) */
  setState(next: unknown): void {
    // String(): info that is undefined is "undefined", so a change from none to some is news too.
    const announces = this.ref !== undefined && this.handlers.announcesMember;
    const before = announces ? String(JSON.stringify(this.member().info)) : "";
    this.handlers.setState(this.peer.record, next);
    this.peer.save?.();
    if (!this.ref || !this.handlers.showsMember) return;
    const member = this.member();
    // A state change the member's info does not show is no presence news.
    const announce = announces && String(JSON.stringify(member.info)) !== before;
    // Not awaited (setState is synchronous); a broker outage must not become an unhandled rejection.
    void Promise.resolve(this.engine.broker.update(this.ref, member, announce)).catch((error: unknown) =>
      this.engine.report(`presence update of ${member.id} on route "${this.handlers.name}" failed`, error),
    );
  }

  /** this connection as a room member */
  member(): Member {
    return this.handlers.member(this.peer.record);
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

  /** the room's name */
  get name(): string {
    return (this.ref as RoomRef).name;
  }

  #params: Readonly<Record<string, string>> | undefined;

  /** the room's path parameters (made from its name at the first read) */
  get params(): Readonly<Record<string, string>> {
    this.#params ??= Object.freeze(roomParams(this.handlers.params, this.ref?.name ?? "") ?? {});
    return this.#params;
  }

  /** sequence, keep and deliver to every member */
  publish(data: unknown): Promise<MessageFrame> {
    let checked: unknown;
    try {
      checked = this.handlers.published(data);
    } catch (error) {
      return this.#misfit(error);
    }
    return this.publishChecked(checked);
  }

  /** sequence, keep and deliver data already checked as the route publishes it (the default handler's: a client's checked data) */
  publishChecked(data: unknown): Promise<MessageFrame> {
    return Promise.resolve(this.engine.broker.publish(this.ref as RoomRef, this.peer.record.id, data));
  }

  /** an unsequenced frame to the others (or to all with `self`) */
  broadcast(data: unknown, options?: { self?: boolean }): Promise<void> {
    const id = this.peer.record.id;
    let checked: unknown;
    try {
      checked = this.handlers.published(data);
    } catch (error) {
      return this.#misfit(error);
    }
    return Promise.resolve(
      this.engine.broker.broadcast(this.ref as RoomRef, id, checked, options?.self ? undefined : id),
    );
  }

  // Data that fails `publishes` is the route's fault, handled here (logged, 1011) whether or not the
  // handler awaits the promise: a fire-and-forget broadcast must not become an unhandled rejection.
  #misfit(error: unknown): Promise<never> {
    this.engine.fault(this.peer, error);
    const rejected = Promise.reject(error);
    rejected.catch(() => {});
    return rejected;
  }

  /** bytes to the other members */
  relay(bytes: Uint8Array): Promise<void> {
    return Promise.resolve(this.engine.broker.relay(this.ref as RoomRef, this.peer.record.id, bytes));
  }

  /** the room's members, count and last seq */
  async members(): Promise<{ members: Member[]; count: number; seq: number }> {
    return this.engine.broker.snapshot(this.ref as RoomRef);
  }
}
