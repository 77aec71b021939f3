/**
 * The connection engine: every transport reports open/message/close here with
 * a Peer, and the engine finds the handlers from the peer's record (rule 3 of
 * the design: handlers from data, not closures), so a Durable Object woken
 * from hibernation behaves exactly like a process that never slept. It checks
 * sizes, dispatches, and isolates faults; rooms are the hub's.
 */
import { randomId, utf8Length } from "../bytes.ts";
import { CloseCode, ErrorCode, type MessageFrame, SERVER_SENDER } from "../protocol.ts";
import type { Broker, RoomRef } from "../pubsub/broker.ts";
import { roomRef } from "../pubsub/broker.ts";
import { ConnectionContext } from "./context.ts";
import type { Admitted, ConnRecord, Frame, Peer, Runtime } from "./contract.ts";
import { compile, type Handlers } from "./handlers.ts";
import { Hub } from "./hub.ts";
import type { AnyRoute } from "./route.ts";

/** Default largest accepted frame: 1 MiB, the Cloudflare Workers limit, so behaviour is the same everywhere. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** Options of the engine. */
export interface EngineOptions {
  /** the routes connections can be on */
  routes: readonly AnyRoute[];
  broker: Broker;
  /** native topic publish of the runtime, if it has one */
  publish?: Runtime["publish"];
  /** largest text or binary frame accepted; larger ones close the connection with 1009 */
  maxMessageBytes?: number;
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

/** Drives connections of every transport through the route handlers. */
export class Engine {
  /** the pub/sub engine rooms run on */
  readonly broker: Broker;
  /** this instance's room members and fan-out */
  readonly hub: Hub;
  /** largest accepted frame in bytes */
  readonly maxMessageBytes: number;
  readonly #routes = new Map<string, Handlers>();
  /** every open connection, so a stopping server can close them all and metrics can count them */
  readonly #open = new Set<Peer>();
  readonly #now: () => number;
  readonly #newId: () => string;
  readonly #log: (message: string, error?: unknown) => void;

  /** an engine for `routes` over the given broker */
  constructor(options: EngineOptions) {
    for (const route of options.routes) {
      if (this.#routes.has(route.name)) {
        throw new Error(`edgewire: two routes are named "${route.name}"; give one of them a name`);
      }
      this.#routes.set(route.name, compile(route));
    }
    this.broker = options.broker;
    this.hub = new Hub(options.broker, options.publish);
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#now = options.now ?? Date.now;
    this.#newId = options.newId ?? randomId;
    this.#log = options.log ?? ((m, e) => console.error(m, e ?? ""));
  }

  /** the compiled handlers of route `name` */
  handlers(name: string): Handlers | undefined {
    return this.#routes.get(name);
  }

  /** a fresh record for a connection about to be accepted; throws RouteError when the initial state is invalid */
  record(
    route: string,
    room: string | null,
    protocol: string,
    auth?: Admitted,
    query: Readonly<Record<string, string>> = {},
  ): ConnRecord {
    const handlers = this.#routes.get(route);
    if (!handlers) throw new Error(`edgewire: no route named "${route}"`);
    const record: ConnRecord = { v: 1, id: this.#newId(), route, room, protocol, seq: 0, at: this.#now() };
    if (auth && (auth.claims !== undefined || auth.address !== undefined)) record.auth = auth;
    const state = handlers.initialState({ auth: auth ?? {}, room, query });
    if (state !== undefined) handlers.setState(record, state);
    return record;
  }

  /** the handler context of `peer`, made on its first event */
  context(peer: Peer): ConnectionContext {
    const existing = peer.context as ConnectionContext | undefined;
    if (existing) return existing;
    const { route, room } = peer.record;
    const handlers = this.#routes.get(route);
    if (!handlers) throw new Error(`edgewire: connection ${peer.record.id} is on unknown route "${route}"`);
    const ref = handlers.kind === "room" && room !== null ? roomRef(route, room) : undefined;
    const ctx = new ConnectionContext(peer, handlers, this, ref);
    peer.context = ctx;
    return ctx;
  }

  /** how many connections are open on this instance */
  get connections(): number {
    return this.#open.size;
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
  open(peer: Peer): void {
    this.#open.add(peer);
    try {
      const ctx = this.context(peer);
      this.#settle(peer, ctx.handlers.open(ctx));
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /** whether text frames for this peer must arrive as strings (else undecoded UTF-8 bytes with `text` set will do) */
  readsText(peer: Peer): boolean {
    const ctx = peer.context as ConnectionContext | undefined;
    return (ctx?.handlers ?? this.#routes.get(peer.record.route))?.readsText ?? true;
  }

  /** a frame arrived: text as a string (or as UTF-8 bytes with `text` true, where `readsText` allows), binary as bytes */
  message(peer: Peer, data: Frame, text = typeof data === "string"): void {
    if (tooBig(data, this.maxMessageBytes)) {
      peer.close(CloseCode.tooBig, `${ErrorCode.messageTooLarge}: limit is ${this.maxMessageBytes} bytes`);
      return;
    }
    // The hot path: no closure, no allocation beyond what the handler does.
    try {
      const ctx = (peer.context as ConnectionContext | undefined) ?? this.context(peer);
      this.#settle(peer, ctx.handlers.message(ctx, data, text));
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /** the connection closed (either side) or failed; 1006 when it dropped without a Close frame */
  close(peer: Peer, code = 1006, reason = ""): void {
    if (!this.#open.delete(peer) && peer.context !== undefined) return; // reported twice: once is enough
    try {
      const ctx = this.context(peer);
      this.#settle(peer, ctx.handlers.close(ctx, code, reason));
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /**
   * Re-attach a connection that survived while its state did not (a Durable
   * Object woken from hibernation): rooms and presence come back, nobody is told.
   */
  restore(peer: Peer): void {
    this.#open.add(peer);
    try {
      const ctx = this.context(peer);
      if (ctx.ref) this.hub.restore(ctx);
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /** publish from the backend to room `room` of route `route`, exactly as a member's message */
  push(route: string, room: string, data: unknown): Promise<MessageFrame> {
    return Promise.resolve(this.broker.publish(roomRef(route, room), SERVER_SENDER, data));
  }

  /** the broker's ref of room `room` of route `route` */
  ref(route: string, room: string): RoomRef {
    return roomRef(route, room);
  }

  // Handler faults close only this connection (1011); the process never dies.
  #fail(peer: Peer, error: unknown): void {
    this.#log(`edgewire: handler fault on route "${peer.record.route}", connection ${peer.record.id}`, error);
    try {
      peer.close(CloseCode.serverError, ErrorCode.internal);
    } catch {
      // already closed: nothing more to do
    }
  }

  // An async handler's rejection is a fault too; sync handlers return undefined and cost nothing here.
  #settle(peer: Peer, result: void | Promise<void>): void {
    if (result instanceof Promise) result.catch((error: unknown) => this.#fail(peer, error));
  }
}
