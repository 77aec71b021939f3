/**
 * The connection engine: every transport reports open/message/close here with
 * a Peer, and the engine finds the handlers from the peer's record (rule 3 of
 * the design: handlers from data, not closures), so a Durable Object woken
 * from hibernation behaves exactly like a process that never slept.
 */
import * as v from "valibot";
import type { Broker, Delivery } from "./brokers/broker.ts";
import { randomId, utf8Length } from "./bytes.ts";
import {
  type AckFrame,
  ClientFrameSchema,
  CloseCode,
  describeIssues,
  ErrorCode,
  type ErrorFrame,
  type MessageFrame,
  type PongFrame,
  SERVER_SENDER,
  type WelcomeFrame,
} from "./protocol.ts";
import type { Runtime } from "./runtime.ts";
import type { ConnRecord, Frame, Peer, RouteName } from "./transports/peer.ts";

/** Default largest accepted frame: 1 MiB, the Cloudflare Workers limit, so behaviour is the same everywhere. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** Options of the engine. */
export interface EngineOptions {
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

/** One route's handlers; looked up by `record.route`. */
interface RouteHandlers {
  /** the route reads text frames as strings; without it an adapter may pass text as undecoded UTF-8 bytes */
  readsText: boolean;
  open(engine: Engine, peer: Peer): void | Promise<void>;
  message(engine: Engine, peer: Peer, data: Frame, text: boolean): void | Promise<void>;
  close(engine: Engine, peer: Peer, code: number, reason: string): void | Promise<void>;
}

/** A room's members on this instance. */
interface LocalRoom {
  topic: string;
  /** welcomed members by id */
  live: Map<string, Peer>;
  /** members on non-native transports, sent to one by one even where native publish exists */
  direct: Set<Peer>;
  /** members waiting for their welcome: what arrives meanwhile is kept for them */
  pending: Map<Peer, Frame[]>;
  unsubscribe: () => void;
}

const topicOf = (room: string): string => `room:${room}`;

/** Frame size in bytes, counting exactly only when the cheap bounds cannot decide. */
function tooBig(data: Frame, max: number): boolean {
  if (typeof data !== "string") return data.byteLength > max;
  if (data.length > max) return true;
  if (data.length * 3 <= max) return false;
  return utf8Length(data) > max;
}

const errorFrame = (code: ErrorCode, message: string, id?: string): string =>
  JSON.stringify({ type: "error", code, message, ...(id === undefined ? {} : { id }) } satisfies ErrorFrame);

/** Echo: every frame back, unchanged (text may stay undecoded bytes: measured 7 % of Node's CPU at 64 KiB). */
const echoRoute: RouteHandlers = {
  readsText: false,
  open() {},
  message(_engine, peer, data, text) {
    peer.send(data, text);
  },
  close() {},
};

/** Rooms: join on open, publish/ping as JSON, binary relayed, leave on close. */
const roomRoute: RouteHandlers = {
  readsText: true,
  async open(engine, peer) {
    await engine.join(peer);
  },
  async message(engine, peer, data) {
    const room = peer.record.room as string;
    if (typeof data !== "string") {
      await engine.broker.relay(room, peer.record.id, data);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      peer.send(errorFrame(ErrorCode.invalidJson, "frame is not valid JSON"));
      return;
    }
    const parsed = v.safeParse(ClientFrameSchema, json);
    if (!parsed.success) {
      const id = typeof (json as { id?: unknown })?.id === "string" ? (json as { id: string }).id : undefined;
      peer.send(errorFrame(ErrorCode.invalidMessage, describeIssues(parsed.issues), id));
      return;
    }
    const frame = parsed.output;
    if (frame.type === "ping") {
      peer.send(JSON.stringify({ type: "pong", ...(frame.id ? { id: frame.id } : {}) } satisfies PongFrame));
      return;
    }
    const published = await engine.broker.publish(room, peer.record.id, frame.data);
    if (frame.id !== undefined) {
      peer.send(JSON.stringify({ type: "ack", id: frame.id, seq: published.seq } satisfies AckFrame));
    }
  },
  async close(engine, peer, code, reason) {
    await engine.leave(peer, code, reason);
  },
};

/** The handler table, keyed by `ConnRecord.route`. */
const routes: Record<RouteName, RouteHandlers> = { echo: echoRoute, room: roomRoute };

/** Drives connections of every transport through the route handlers. */
export class Engine {
  /** the pub/sub engine rooms run on */
  readonly broker: Broker;
  /** largest accepted frame in bytes */
  readonly maxMessageBytes: number;
  readonly #publish: Runtime["publish"];
  readonly #now: () => number;
  readonly #newId: () => string;
  readonly #log: (message: string, error?: unknown) => void;
  readonly #rooms = new Map<string, LocalRoom>();

  /** an engine over the given broker */
  constructor(options: EngineOptions) {
    this.broker = options.broker;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#publish = options.publish;
    this.#now = options.now ?? Date.now;
    this.#newId = options.newId ?? randomId;
    this.#log = options.log ?? ((m, e) => console.error(m, e ?? ""));
  }

  /** a fresh record for a connection about to be upgraded */
  record(route: RouteName, room: string | null, protocol: string): ConnRecord {
    return { v: 1, id: this.#newId(), route, room, protocol, seq: 0, at: this.#now() };
  }

  /** a connection was accepted */
  open(peer: Peer): void {
    try {
      this.#settle(peer, routes[peer.record.route].open(this, peer));
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /** whether text frames for this peer must arrive as strings (else undecoded UTF-8 bytes with `text` set will do) */
  readsText(peer: Peer): boolean {
    return routes[peer.record.route].readsText;
  }

  /** a frame arrived: text as a string (or as UTF-8 bytes with `text` true, where `readsText` allows), binary as bytes */
  message(peer: Peer, data: Frame, text = typeof data === "string"): void {
    if (tooBig(data, this.maxMessageBytes)) {
      peer.close(CloseCode.tooBig, `${ErrorCode.messageTooLarge}: limit is ${this.maxMessageBytes} bytes`);
      return;
    }
    // The hot path: no closure, no allocation beyond what the handler does.
    try {
      this.#settle(peer, routes[peer.record.route].message(this, peer, data, text));
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /** the connection closed (either side) or failed; 1006 when it dropped without a Close frame */
  close(peer: Peer, code = 1006, reason = ""): void {
    try {
      this.#settle(peer, routes[peer.record.route].close(this, peer, code, reason));
    } catch (error) {
      this.#fail(peer, error);
    }
  }

  /**
   * Re-attach a connection that survived while its state did not (a Durable
   * Object woken from hibernation): rooms and presence come back, nobody is told.
   */
  restore(peer: Peer): void {
    const { route, room, id, at } = peer.record;
    if (route !== "room" || room === null) return;
    this.broker.restore(room, { id, joinedAt: at });
    this.#live(this.#local(room), peer);
  }

  /** publish from the backend, exactly as a member's message; resolves to the sequenced frame */
  push(room: string, data: unknown): Promise<MessageFrame> {
    return Promise.resolve(this.broker.publish(room, SERVER_SENDER, data));
  }

  /** join `peer` to its room: presence, welcome, then the live stream with no gap */
  async join(peer: Peer): Promise<void> {
    const record = peer.record;
    const room = record.room as string;
    const local = this.#local(room);
    local.pending.set(peer, []);
    try {
      const snapshot = await this.broker.join(room, { id: record.id, joinedAt: record.at });
      // Closed while joining: leave() has already undone the membership.
      if (!local.pending.has(peer)) return;
      record.seq = snapshot.seq;
      peer.save?.();
      const welcome: WelcomeFrame = {
        type: "welcome",
        id: record.id,
        room,
        protocol: record.protocol,
        seq: snapshot.seq,
        members: snapshot.members,
        count: snapshot.count,
      };
      peer.send(JSON.stringify(welcome));
      const held = local.pending.get(peer) ?? [];
      for (const frame of held) if (!alreadySeen(frame, snapshot.seq)) peer.send(frame);
      local.pending.delete(peer);
      this.#live(local, peer);
    } catch (error) {
      local.pending.delete(peer);
      throw error;
    }
  }

  /** remove `peer` from its room and tell the others how it ended */
  async leave(peer: Peer, code?: number, reason?: string): Promise<void> {
    const { room, id } = peer.record;
    if (room === null) return;
    const local = this.#rooms.get(room);
    if (local) {
      local.pending.delete(peer);
      if (local.live.get(id) === peer) local.live.delete(id);
      local.direct.delete(peer);
      if (local.live.size === 0 && local.pending.size === 0) {
        local.unsubscribe();
        this.#rooms.delete(room);
      }
    }
    await this.broker.leave(room, id, code, reason);
  }

  /** number of members of `room` connected to this instance */
  localMembers(room: string): number {
    return this.#rooms.get(room)?.live.size ?? 0;
  }

  #local(room: string): LocalRoom {
    let local = this.#rooms.get(room);
    if (!local) {
      const created: LocalRoom = {
        topic: topicOf(room),
        live: new Map(),
        direct: new Set(),
        pending: new Map(),
        unsubscribe: () => {},
      };
      created.unsubscribe = this.broker.subscribe(room, (d) => this.#fanout(created, d));
      this.#rooms.set(room, created);
      local = created;
    }
    return local;
  }

  #live(local: LocalRoom, peer: Peer): void {
    local.live.set(peer.record.id, peer);
    if (this.#publish && peer.subscribe) peer.subscribe(local.topic);
    else local.direct.add(peer);
  }

  // One encoded frame for every member: native topic publish where the runtime
  // has it, else a plain loop. Never re-encoded per member.
  #fanout(local: LocalRoom, delivery: Delivery): void {
    const { frame, except } = delivery;
    for (const [peer, held] of local.pending) if (peer.record.id !== except) held.push(frame);
    if (this.#publish) {
      const sender = except === undefined ? undefined : local.live.get(except);
      if (sender?.publishOthers && !local.direct.has(sender)) sender.publishOthers(local.topic, frame);
      else this.#publish(local.topic, frame);
    }
    for (const peer of local.direct) if (peer.record.id !== except) peer.send(frame);
  }

  // Handler faults close only this connection (1011); the process never dies.
  #fail(peer: Peer, error: unknown): void {
    this.#log(`edgewire: handler fault on ${peer.record.route} connection ${peer.record.id}`, error);
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

// A frame held during a join that the welcome's `seq` already covers.
function alreadySeen(frame: Frame, seq: number): boolean {
  if (typeof frame !== "string" || !frame.startsWith('{"type":"message"')) return false;
  return (JSON.parse(frame) as MessageFrame).seq <= seq;
}
