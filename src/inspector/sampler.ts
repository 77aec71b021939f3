/**
 * What the inspector shows, read from the same counters as `/metrics`: a live
 * overview (connections by route and transport, rooms with their members and
 * rates) and a short history of samples, so the charts cover the last minutes
 * even when nobody had the page open. The history is a fixed ring (`keep`
 * samples every `everyMs`, ten minutes by default): memory stays bounded
 * however long the instance runs. Everything here describes this instance; in a
 * Redis fleet each instance has its own inspector (a room's members and last
 * messages come from the broker, so they span the fleet).
 */
import type { Engine } from "../core/engine.ts";
import type { LabelledCounter, Metrics } from "../metrics.ts";
import type { SequencedFrame } from "../protocol.ts";
import type { Broker } from "../pubsub/broker.ts";
import { roomRef } from "../pubsub/broker.ts";

/** One point of the inspector's charts: cumulative counters at time `t`. */
export interface Sample {
  /** when (ms since epoch) */
  t: number;
  /** open connections by transport */
  connections: Record<string, number>;
  /** frames received from clients, every route */
  messagesIn: number;
  /** frames sent to connections, every route */
  messagesOut: number;
  /** handshakes refused, by reason (cumulative) */
  refused: Record<string, number>;
  /** connections closed, by close code (cumulative) */
  closes: Record<string, number>;
}

/** A room in the overview. */
export interface RoomRow {
  /** the route's name */
  route: string;
  /** the room's name */
  room: string;
  /** members connected to this instance */
  members: number;
  /** frames fanned out per second since the last sample (since the one before, when the last is under a second old) */
  rate: number;
}

/** The inspector's overview of this instance. */
export interface Overview {
  runtime: string;
  instance: string | undefined;
  uptimeMs: number;
  now: number;
  /** open connections: route → transport → count */
  connections: Record<string, Record<string, number>>;
  /** rooms with members here, busiest first (at most `maxRooms`) */
  rooms: RoomRow[];
  /** rooms with members here, in all */
  roomCount: number;
  /** long-polling sessions open */
  pollSessions: number;
  /** the samples of the last minutes, oldest first, ending with one taken now */
  samples: Sample[];
  /** how often a sample is taken */
  sampleMs: number;
}

/** One room, looked into. */
export interface RoomView {
  route: string;
  room: string;
  /** the room's last sequence number and epoch (the broker's: fleet-wide) */
  seq: number;
  epoch: string;
  /** members in all (every instance) */
  count: number;
  /** members as presence lists them (capped by the presence limit) */
  members: { id: string; joinedAt: number; info?: unknown }[];
  /** members connected to this instance */
  localMembers: number;
  /** the last messages from history, oldest first */
  messages: SequencedFrame[];
}

const record = (counter: LabelledCounter): Record<string, number> => Object.fromEntries(counter.entries());

/** Samples the counters on a timer and answers the inspector's questions. */
export class Sampler {
  readonly #engine: Engine;
  readonly #broker: Broker;
  readonly #metrics: Metrics;
  readonly #everyMs: number;
  readonly #keep: number;
  readonly #samples: Sample[] = [];
  // Each room's deliveries at the previous sample, for its rate.
  #previous = new Map<string, number>();
  #previousAt = 0;
  // …and at the one before, for a rate when the last sample is too recent to divide by.
  #older = new Map<string, number>();
  #olderAt = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** a sampler of `engine`'s counters: a sample every `everyMs`, the last `keep` kept */
  constructor(engine: Engine, broker: Broker, metrics: Metrics, everyMs = 5000, keep = 120) {
    this.#engine = engine;
    this.#broker = broker;
    this.#metrics = metrics;
    this.#everyMs = everyMs;
    this.#keep = keep;
  }

  /** start sampling (a timer that does not keep the process alive) */
  start(): void {
    if (this.#timer) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.#everyMs);
    // Node and Bun timers have unref(); Deno's numeric ids do not, and the adapter exits on signals anyway.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** stop sampling */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** take a sample now and update the rooms' rates */
  sample(now = Date.now()): Sample {
    const s = this.#current(now);
    this.#samples.push(s);
    if (this.#samples.length > this.#keep) this.#samples.shift();
    const next = new Map<string, number>();
    for (const room of this.#engine.hub.rooms()) next.set(room.ref.key, room.deliveries);
    this.#older = this.#previous;
    this.#olderAt = this.#previousAt;
    this.#previous = next;
    this.#previousAt = now;
    return s;
  }

  #current(now: number, byRoute = this.#engine.connectionsByRoute()): Sample {
    let messagesIn = 0;
    let messagesOut = 0;
    for (const stats of this.#metrics.routes.values()) {
      messagesIn += stats.messagesIn;
      messagesOut += stats.messagesOut;
    }
    const connections: Record<string, number> = {};
    for (const byTransport of byRoute.values())
      for (const [transport, n] of byTransport) connections[transport] = (connections[transport] ?? 0) + n;
    return {
      t: now,
      connections,
      messagesIn,
      messagesOut,
      refused: record(this.#metrics.refused),
      closes: record(this.#metrics.closes),
    };
  }

  /** the overview: live gauges, the busiest `maxRooms` rooms, and the samples with one taken now */
  overview(runtime: string, instance: string | undefined, pollSessions: number, maxRooms = 100): Overview {
    const now = Date.now();
    // One pass over the open connections serves both the table and the sample taken now.
    const byRoute = this.#engine.connectionsByRoute();
    const connections: Record<string, Record<string, number>> = {};
    for (const [route, byTransport] of byRoute) connections[route] = Object.fromEntries(byTransport);
    const rooms: RoomRow[] = [];
    // The rate since the last sample, once that is a second old; else since the one before it.
    const recent = now - this.#previousAt >= 1000;
    const base = recent ? this.#previous : this.#older;
    const seconds = Math.max(1, now - (recent ? this.#previousAt : this.#olderAt)) / 1000;
    for (const room of this.#engine.hub.rooms()) {
      const route = room.ref.key.slice(0, room.ref.key.length - room.ref.name.length - 1);
      const rate = (room.deliveries - (base.get(room.ref.key) ?? 0)) / seconds;
      rooms.push({ route, room: room.ref.name, members: room.members, rate: Math.round(rate * 10) / 10 });
    }
    rooms.sort((a, b) => b.members - a.members || b.rate - a.rate || a.room.localeCompare(b.room));
    return {
      runtime,
      instance,
      uptimeMs: now - this.#metrics.startedAt,
      now,
      connections,
      rooms: rooms.slice(0, maxRooms),
      roomCount: rooms.length,
      pollSessions,
      samples: [...this.#samples, this.#current(now, byRoute)],
      sampleMs: this.#everyMs,
    };
  }

  /** one room: members (presence, fleet-wide) and its last `last` messages */
  async room(route: string, name: string, last = 20): Promise<RoomView> {
    const ref = roomRef(route, name);
    const snapshot = await this.#broker.snapshot(ref);
    const messages = snapshot.seq > 0 ? await this.#broker.history(ref, Math.max(0, snapshot.seq - last), last) : [];
    return {
      route,
      room: name,
      seq: snapshot.seq,
      epoch: snapshot.epoch,
      count: snapshot.count,
      members: snapshot.members,
      localMembers: this.#engine.hub.localMembers(ref.key),
      messages,
    };
  }
}
