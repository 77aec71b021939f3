/**
 * The connection engine: every transport reports its connections' events here (it implements
 * ConnectionEvents), and the engine finds the compiled route from the peer's record (rule 3 of the
 * design: handlers from data, not closures), so a Durable Object woken from hibernation behaves
 * exactly like a process that never slept. It checks sizes and rates, dispatches, isolates
 * faults, counts, and sends heartbeats; connections reach it only as ConnectionServices; rooms
 * are the hub's.
 */
import { randomId, utf8Length } from "../bytes.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../config.ts";
import { Metrics } from "../metrics.ts";
import { decodeValue } from "../msgpack.ts";
import { CloseCode, CloseReason, ErrorCode, type MessageFrame, SERVER_SENDER } from "../protocol.ts";
import {
  type Broker,
  BrokerUnavailableError,
  type FiredTimer,
  type KeyedPublish,
  type PushKey,
  type RoomRef,
  roomRef,
  TimerSpentError,
} from "../pubsub/broker.ts";
import { backendContext } from "./backend.ts";
import { compile, StateTooLargeError } from "./compile.ts";
import { ConnectionContext } from "./context.ts";
import { Hub } from "./hub.ts";
import type {
  Admitted,
  CompiledRoute,
  Conn,
  ConnectionEvents,
  ConnectionLimits,
  ConnectionServices,
  ConnRecord,
  Frame,
  Peer,
  RateLimit,
  Runtime,
} from "./ports.ts";
import { closeWhenQuiet, retryAfterMs, take } from "./rate-limit.ts";
import { roomParams } from "./room-path.ts";
import { type AnyRoute, ClientError } from "./route.ts";

/** How often peers that report bufferedAmount (Bun) are checked for slow consumers. */
const BUFFER_SCAN_MS = 500;

/** Options of the engine. */
export interface EngineOptions {
  /** the routes connections can be on */
  routes: readonly AnyRoute[];
  broker: Broker;
  /** native topic publish of the runtime, if it has one */
  publish?: Runtime["publish"];
  /** largest text or binary frame accepted; larger ones close the connection with 1009 */
  maxMessageBytes?: number;
  /** the rate limit of room routes (and of plain routes that ask for one without numbers) */
  rate?: RateLimit;
  /** bytes queued to one connection past which it is a slow consumer (adapters check it) */
  maxBufferedBytes?: number;
  /** the heartbeat interval clients are told in welcomes (they ping when idle) */
  heartbeatMs?: number;
  /** after the server's Close, how long a peer has to answer before adapters drop the connection */
  closeTimeoutMs?: number;
  /** counters for /metrics (default: a fresh set) */
  metrics?: Metrics;
  /** called once when an open connection ends, after its handlers (admission releases its address) */
  closed?: (record: ConnRecord) => void;
  now?: () => number;
  newId?: () => string;
  /** where faults are reported (default: console.error) */
  log?: (message: string, error?: unknown) => void;
}

/** Frame size in bytes, counting exactly only when the cheap bounds cannot decide. */
function tooBig(data: Frame, max: number): boolean {
  if (typeof data !== "string") return data.byteLength > max;
  if (data.length > max) return true;
  if (data.length * 3 <= max) return false;
  return utf8Length(data) > max;
}

// The id of a refused frame, so the client can match the refusal to its publish. Only refused frames pay for it.
function idOf(data: Frame, msgpack: boolean): string | undefined {
  if (typeof data === "string" ? data.length > 65_536 : !msgpack || data.byteLength > 65_536) return undefined;
  try {
    const id = ((typeof data === "string" ? JSON.parse(data) : decodeValue(data)) as { id?: unknown } | null)?.id;
    return typeof id === "string" && id.length <= 64 ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Drives connections of every transport through their compiled routes. */
export class Engine implements ConnectionEvents, ConnectionServices {
  /** the pub/sub engine rooms run on */
  readonly broker: Broker;
  /** this instance's room members and fan-out */
  readonly hub: Hub;
  /** the counters behind /metrics */
  readonly metrics: Metrics;
  /** what every adapter applies the same way: frame size, outbound buffer, close timeout */
  readonly limits: ConnectionLimits;
  readonly #routes = new Map<string, CompiledRoute>();
  /** every open connection, so a stopping server can close them all and metrics can count them */
  readonly #open = new Set<Peer>();
  readonly #closed: ((record: ConnRecord) => void) | undefined;
  readonly #now: () => number;
  readonly #newId: () => string;
  readonly #log: (message: string, error?: unknown) => void;
  readonly #faulted = new WeakSet<object>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #bufferScan: ReturnType<typeof setInterval> | undefined;

  /** an engine for `routes` (names unique: the edgewire checked them) over the given broker */
  constructor(options: EngineOptions) {
    for (const route of options.routes) this.#routes.set(route.name, compile(route, options.rate));
    this.broker = options.broker;
    this.metrics = options.metrics ?? new Metrics();
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.limits = {
      maxMessageBytes,
      maxBufferedBytes: options.maxBufferedBytes ?? 4 * 1024 * 1024,
      closeTimeoutMs: options.closeTimeoutMs ?? 5000,
      tooBigReason: CloseReason.tooBig(maxMessageBytes),
      heartbeatMs: options.heartbeatMs ?? 25_000,
    };
    this.#log = options.log ?? ((m, e) => console.error(m, e ?? ""));
    this.hub = new Hub(options.broker, options.publish, {
      heartbeatMs: options.heartbeatMs,
      maxMessageBytes,
      report: (message, error) => this.#log(message, error),
    });
    this.#closed = options.closed;
    this.#now = options.now ?? Date.now;
    this.#newId = options.newId ?? randomId;
  }

  /** the compiled route named `name` */
  route(name: string): CompiledRoute | undefined {
    return this.#routes.get(name);
  }

  /** a fresh record for a connection about to be accepted; throws ClientError when the request makes an invalid state */
  record(
    route: string,
    room: string | null,
    protocol: string,
    auth?: Admitted,
    query: Readonly<Record<string, string>> = {},
  ): ConnRecord {
    const compiled = this.#routes.get(route);
    if (!compiled) throw new Error(`edgewire: no route named "${route}"`);
    const record: ConnRecord = { v: 1, id: this.#newId(), route, room, protocol, seq: 0, at: this.#now() };
    if (auth && (auth.claims !== undefined || auth.address !== undefined)) record.auth = auth;
    const params = room === null ? {} : (roomParams(compiled.params, room) ?? {});
    const state = compiled.initialState({ auth: auth ?? {}, room, params, query });
    try {
      if (state !== undefined) compiled.setState(record, state);
    } catch (error) {
      // Too large from the request's own input (a long query value): the client's to fix.
      if (error instanceof StateTooLargeError) throw new ClientError(ErrorCode.invalidState, error.message);
      throw error;
    }
    return record;
  }

  /** the context of `peer`, made on its first event */
  context(peer: Peer): ConnectionContext {
    const existing = peer.context as ConnectionContext | undefined;
    if (existing) return existing;
    const { route, room } = peer.record;
    const compiled = this.#routes.get(route);
    if (!compiled) throw new Error(`edgewire: connection ${peer.record.id} is on unknown route "${route}"`);
    const ref = compiled.kind === "room" && room !== null ? roomRef(route, room) : undefined;
    const ctx = new ConnectionContext(peer, compiled, this, ref, this.metrics.route(route), this.#now());
    peer.context = ctx;
    return ctx;
  }

  /** how many connections are open on this instance */
  get connections(): number {
    return this.#open.size;
  }

  /** open connections by route and transport (for /metrics) */
  connectionsByRoute(): Map<string, Map<string, number>> {
    const out = new Map<string, Map<string, number>>();
    for (const peer of this.#open) {
      const route = peer.record.route;
      const transport = peer.transport ?? "websocket";
      const byTransport = out.get(route) ?? new Map<string, number>();
      out.set(route, byTransport);
      byTransport.set(transport, (byTransport.get(transport) ?? 0) + 1);
    }
    return out;
  }

  /** every open connection (a snapshot) */
  openPeers(): Peer[] {
    return [...this.#open];
  }

  /** close every open connection with `code` (a stopping server: 1001 going away, 1012 restart) */
  closeAll(code: number, reason: string): void {
    for (const peer of [...this.#open]) {
      try {
        peer.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  /** a connection was accepted */
  opened(peer: Peer): void {
    this.#open.add(peer);
    try {
      const ctx = this.context(peer);
      this.#settle(peer, ctx.route.open(ctx));
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /** whether text frames for this peer must arrive as strings (else undecoded UTF-8 bytes with `text` set will do) */
  readsText(peer: Peer): boolean {
    const ctx = peer.context as ConnectionContext | undefined;
    return (ctx?.route ?? this.#routes.get(peer.record.route))?.readsText ?? true;
  }

  /** a frame arrived: text as a string (or as UTF-8 bytes with `text` true, where `readsText` allows), binary as bytes */
  message(peer: Peer, data: Frame, text = typeof data === "string"): void {
    if (tooBig(data, this.limits.maxMessageBytes)) {
      this.end(peer, CloseCode.tooBig, this.limits.tooBigReason);
      return;
    }
    // The hot path: no closure, no allocation beyond what the handler does.
    try {
      const ctx = (peer.context as ConnectionContext | undefined) ?? this.context(peer);
      ctx.alive = true;
      const stats = ctx.stats;
      stats.messagesIn++;
      stats.bytesIn += typeof data === "string" ? data.length : data.byteLength;
      if (ctx.flooding) {
        ctx.floodSeenAt = this.#now();
        return;
      }
      const rate = ctx.route.rate;
      if (rate !== undefined && !this.#allow(ctx, rate, data)) return;
      this.#settle(peer, ctx.route.message(ctx, data, text));
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /**
   * The server closes `peer` with `code` and `reason`, and its room hears exactly that now — not
   * whatever the runtime reports once the closing handshake ends (Node's ws, which stops reading
   * after refusing a frame, reports 1006; a client may echo another reason).
   */
  end(peer: Peer, code: number, reason: string): void {
    try {
      peer.close(code, reason);
    } catch {
      // already closed: the room still hears why
    }
    this.closed(peer, code, reason);
  }

  /** the peer answered a heartbeat (a protocol pong) */
  pong(peer: Peer): void {
    const ctx = peer.context as ConnectionContext | undefined;
    if (ctx) ctx.alive = true;
  }

  /** the connection closed (either side) or failed; 1006 when it dropped without a Close frame */
  closed(peer: Peer, code = 1006, reason = ""): void {
    if (!this.#open.delete(peer) && peer.context !== undefined) return; // reported twice: once is enough
    this.metrics.closes.inc(String(code));
    try {
      const ctx = this.context(peer);
      this.#settle(peer, ctx.route.close(ctx, code, reason));
    } catch (error) {
      this.#fail(peer, error);
    }
    this.#closed?.(peer.record);
  }

  /**
   * Close a connection that cannot keep up (its outbound buffer passed the limit): 1013 to the
   * room, and the socket is dropped at once, since a reader that does not read would never read a
   * Close frame either.
   */
  slow(peer: Peer): void {
    if (!this.#open.has(peer)) return;
    this.metrics.slowConsumerCloses++;
    this.#drop(peer, CloseCode.tryAgainLater, CloseReason.slowConsumer);
  }

  /** it answered nothing for two heartbeats: 1006 to the room, and the connection is dropped */
  timedOut(peer: Peer): void {
    if (!this.#open.has(peer)) return;
    this.metrics.heartbeatTimeouts++;
    this.#drop(peer, 1006, ErrorCode.heartbeatTimeout);
  }

  // The room hears `code`; the socket goes without a closing handshake where the runtime can
  // (its peer is not reading, or not there), else with a Close it may never read.
  #drop(peer: Peer, code: number, reason: string): void {
    this.closed(peer, code, reason);
    try {
      if (peer.terminate) peer.terminate();
      else peer.close(code === 1006 ? CloseCode.goingAway : code, reason);
    } catch {}
  }

  /**
   * Re-attach a connection that survived while its state did not (a Durable Object woken from
   * hibernation): rooms and presence come back, nobody is told.
   */
  restored(peer: Peer): void {
    this.#open.add(peer);
    try {
      const ctx = this.context(peer);
      if (ctx.ref) this.hub.restore(ctx);
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /**
   * Ping every `ms` the connections whose runtime can (`Peer.ping`); one that answered nothing —
   * no pong, no frame — since the previous ping is pinged again, and after two missed it times out.
   */
  startHeartbeat(ms: number): void {
    this.stopHeartbeat();
    this.#heartbeat = setInterval(() => this.heartbeat(), ms);
    this.#bufferScan = setInterval(() => this.scanBuffers(), BUFFER_SCAN_MS);
  }

  /** stop sending heartbeats */
  stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    if (this.#bufferScan !== undefined) clearInterval(this.#bufferScan);
    this.#heartbeat = undefined;
    this.#bufferScan = undefined;
  }

  /** find slow consumers among peers whose frames bypass `send` (Bun's native publish): one round */
  scanBuffers(): void {
    const max = this.limits.maxBufferedBytes;
    for (const peer of this.#open) if (peer.bufferedAmount !== undefined && peer.bufferedAmount > max) this.slow(peer);
  }

  /** one heartbeat round (the timer's; tests call it directly) */
  heartbeat(): void {
    for (const peer of [...this.#open]) {
      if (!peer.ping) continue;
      const ctx = this.context(peer);
      if (ctx.alive) ctx.missed = 0;
      else if (++ctx.missed >= 2) {
        this.timedOut(peer);
        continue;
      }
      ctx.alive = false;
      try {
        peer.ping();
      } catch {}
    }
  }

  /** publish from the backend to room `room` of route `route`, exactly as a member's message */
  push(route: string, room: string, data: unknown): Promise<MessageFrame> {
    return Promise.resolve(this.broker.publish(roomRef(route, room), SERVER_SENDER, data));
  }

  /**
   * a backend push to a route with a push handler: the handler runs on the room, from `server`;
   * resolves to the seq it answers (undefined: it published nothing), rejects with its ClientError
   */
  pushThrough(route: CompiledRoute, room: string, data: unknown): Promise<number | undefined> {
    const handler = route.pushHandler;
    if (!handler) return this.push(route.name, room, data).then((frame) => frame.seq);
    return handler.run(backendContext(this.broker, route, roomRef(route.name, room)), data);
  }

  /**
   * a due timer of `ref`: its route's `timer` handler on the room, as the server, its first commit
   * spending the run; a failure is logged, a run whose firing another run committed stops quietly
   */
  async fireTimer(ref: RoomRef, fired: FiredTimer): Promise<void> {
    const { timer } = fired;
    const route = this.#routes.get(ref.key.slice(0, ref.key.indexOf(":")));
    if (!route?.timer)
      return this.report(`edgewire: timer "${timer.name}" of ${ref.key} has no timer handler`, undefined);
    try {
      await route.timer(backendContext(this.broker, route, ref, fired), timer);
    } catch (error) {
      if (error instanceof TimerSpentError) return;
      this.report(`edgewire: timer "${timer.name}" of room ${ref.key} failed`, error);
    }
  }

  /** a room the broker emptied itself (a lost instance's members swept): its route's `vacated` hook, a failure logged */
  roomVacated(ref: RoomRef): void {
    const route = this.#routes.get(ref.key.slice(0, ref.key.indexOf(":")));
    const vacated = route?.vacated;
    if (!route || !vacated) return;
    void Promise.resolve()
      .then(() => vacated(backendContext(this.broker, route, ref)))
      .catch((error: unknown) => this.report(`edgewire: vacated of room ${ref.key} failed`, error));
  }

  /** publish from the backend unless `key` was used in the room within the idempotency window (then: what it got) */
  pushKeyed(route: string, room: string, data: unknown, key: PushKey): Promise<KeyedPublish> {
    return Promise.resolve(this.broker.publishKeyed(roomRef(route, room), SERVER_SENDER, data, key));
  }

  /** the broker's ref of room `room` of route `route` */
  ref(route: string, room: string): RoomRef {
    return roomRef(route, room);
  }

  // A refused frame is answered with `rate_limited` and when to retry; a flooder is not answered
  // any more, its frames are ignored, and it is closed (1008) once it pauses (rate-limit.ts).
  #allow(ctx: ConnectionContext, rate: RateLimit, data: Frame): boolean {
    const now = this.#now();
    const verdict = take(ctx, rate, now);
    if (verdict === "ok") return true;
    this.metrics.rateLimited++;
    if (verdict === "flooding") {
      ctx.flooding = true;
      ctx.floodSeenAt = now;
      this.metrics.floodCloses++;
      closeWhenQuiet(
        () => ctx.floodSeenAt,
        this.#now,
        () => this.end(ctx.peer, CloseCode.policy, CloseReason.flooding),
      );
      return false;
    }
    const message = `more than ${rate.perSecond} frames per second`;
    ctx.error(ErrorCode.rateLimited, message, idOf(data, ctx.msgpack), { retryAfterMs: retryAfterMs(ctx, rate) });
    return false;
  }

  /** count an error frame sent, by code */
  countError(code: string): void {
    this.metrics.errorFrames.inc(code);
  }

  /** join the connection's room */
  join(conn: Conn): Promise<void> {
    return this.hub.join(conn);
  }

  /** leave it, telling the others how the connection ended */
  leave(conn: Conn, code: number, reason: string): Promise<void> {
    return this.hub.leave(conn, code, reason);
  }

  /** a route's fault on `peer`, outside the handler call that will also see it: logged and closed once */
  fault(peer: Peer, error: unknown): void {
    this.#fail(peer, error);
    if (typeof error === "object" && error !== null) this.#faulted.add(error);
  }

  /** log a failure that closes nothing (a presence update that did not reach the broker) */
  report(message: string, error: unknown): void {
    this.#log(`edgewire: ${message}`, error);
  }

  // Handler faults close only this connection (1011); the process never dies. A broker outage is
  // not a fault: 1013, come back later (the client resumes, nothing acked is lost).
  #fail(peer: Peer, error: unknown): void {
    // Already handled where it happened (fault()); the handler that awaited it rethrew it.
    if (typeof error === "object" && error !== null && this.#faulted.has(error)) return;
    if (error instanceof BrokerUnavailableError) {
      this.end(peer, CloseCode.tryAgainLater, CloseReason.tryAgainLater);
      return;
    }
    this.metrics.faults++;
    this.#log(`edgewire: handler fault on route "${peer.record.route}", connection ${peer.record.id}`, error);
    this.end(peer, CloseCode.serverError, CloseReason.fault);
  }

  // An async handler's rejection is a fault too; sync handlers return undefined and cost nothing here.
  #settle(peer: Peer, result: void | Promise<void>): void {
    if (result instanceof Promise) result.catch((error: unknown) => this.#fail(peer, error));
  }
}
