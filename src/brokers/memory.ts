/**
 * The embedded default broker: everything in this process. Delivery is
 * synchronous, so a room's order is the order in which `publish` was called.
 */
import type { Member, MessageFrame, PresenceFrame } from "../protocol.ts";
import { type HistoryStore, MemoryHistory } from "../rooms/history.ts";
import {
  type Broker,
  DEFAULT_PRESENCE_INTERVAL_MS,
  DEFAULT_PRESENCE_LIMIT,
  type Delivery,
  type DeliveryListener,
  type JoinSnapshot,
} from "./broker.ts";

interface RoomState {
  /** in join order (a Map keeps insertion order), so "the first N" are the oldest */
  members: Map<string, Member>;
  listeners: Set<DeliveryListener>;
  /** when the last count frame went out (large rooms) */
  countSentAt: number;
  /** a trailing count frame is scheduled */
  countTimer: ReturnType<typeof setTimeout> | undefined;
}

// Narrowed first: Node's and the Workers' typings of clearTimeout disagree on undefined and null.
function stopTimer(state: RoomState): void {
  if (state.countTimer !== undefined) clearTimeout(state.countTimer);
  state.countTimer = undefined;
}

/** Options of the memory broker. */
export interface MemoryBrokerOptions {
  /** where sequence numbers and history live (default: in memory) */
  history?: HistoryStore;
  /** clock, injectable for tests */
  now?: () => number;
  /** rooms above this many members announce counts, not members (default 100) */
  presenceLimit?: number;
  /** shortest time between two count frames of a large room (default 250 ms) */
  presenceIntervalMs?: number;
}

/** In-process rooms: presence in maps, deliveries by direct call. */
export class MemoryBroker implements Broker {
  readonly #rooms = new Map<string, RoomState>();
  readonly #history: HistoryStore;
  readonly #now: () => number;
  readonly #limit: number;
  readonly #interval: number;

  /** a broker with its own in-memory history unless one is given */
  constructor(options: MemoryBrokerOptions = {}) {
    this.#history = options.history ?? new MemoryHistory();
    this.#now = options.now ?? Date.now;
    this.#limit = options.presenceLimit ?? DEFAULT_PRESENCE_LIMIT;
    this.#interval = options.presenceIntervalMs ?? DEFAULT_PRESENCE_INTERVAL_MS;
  }

  #room(room: string): RoomState {
    let state = this.#rooms.get(room);
    if (!state) {
      state = {
        members: new Map(),
        listeners: new Set(),
        countSentAt: Number.NEGATIVE_INFINITY,
        countTimer: undefined,
      };
      this.#rooms.set(room, state);
    }
    return state;
  }

  // A room with no members and no listeners holds no memory beyond its history.
  #release(room: string, state: RoomState): void {
    if (state.members.size > 0 || state.listeners.size > 0) return;
    stopTimer(state);
    this.#rooms.delete(room);
  }

  #deliver(room: string, delivery: Delivery): void {
    const state = this.#rooms.get(room);
    if (!state) return;
    for (const listener of state.listeners) listener(delivery);
  }

  async publish(room: string, from: string, data: unknown): Promise<MessageFrame> {
    const ts = this.#now();
    const { frame, text } = await this.#history.append(room, (seq) => ({ type: "message", room, seq, from, data, ts }));
    this.#deliver(room, { frame: text });
    return frame;
  }

  relay(room: string, from: string, bytes: Uint8Array): void {
    this.#deliver(room, { frame: bytes, except: from });
  }

  async join(room: string, member: Member): Promise<JoinSnapshot> {
    const state = this.#room(room);
    state.members.set(member.id, member);
    if (state.members.size <= this.#limit) this.#change(room, state, "join", member);
    else this.#count(room, state);
    // At most `limit` members: copying every member into every welcome is what made joins members².
    const members: Member[] = [];
    for (const m of state.members.values()) {
      if (members.length === this.#limit) break;
      members.push(m);
    }
    return { members, count: state.members.size, seq: await this.#history.lastSeq(room) };
  }

  restore(room: string, member: Member): void {
    this.#room(room).members.set(member.id, member);
  }

  leave(room: string, memberId: string, code?: number, reason?: string): void {
    const state = this.#rooms.get(room);
    const member = state?.members.get(memberId);
    if (!state || !member) return;
    state.members.delete(memberId);
    const size = state.members.size;
    const ending = code === undefined ? {} : { code, reason: reason ?? "" };
    if (size < this.#limit) this.#change(room, state, "leave", member, ending);
    else if (size === this.#limit) this.#sync(room, state);
    else this.#count(room, state);
    this.#release(room, state);
  }

  // A small room: every join and leave, as it happens.
  #change(
    room: string,
    state: RoomState,
    event: "join" | "leave",
    member: Member,
    ending: { code?: number; reason?: string } = {},
  ): void {
    const frame: PresenceFrame = { type: "presence", room, event, member, count: state.members.size, ...ending };
    this.#deliver(room, { frame: JSON.stringify(frame), except: member.id });
  }

  // Back within the limit: the whole list once, so every member's list is exact again.
  #sync(room: string, state: RoomState): void {
    stopTimer(state);
    const members = [...state.members.values()];
    const frame: PresenceFrame = { type: "presence", room, event: "sync", members, count: members.length };
    this.#deliver(room, { frame: JSON.stringify(frame) });
  }

  // A large room: the count, at once if none went out for an interval, else once at the interval's end.
  #count(room: string, state: RoomState): void {
    if (state.countTimer !== undefined) return;
    const wait = state.countSentAt + this.#interval - this.#now();
    const send = () => {
      state.countTimer = undefined;
      state.countSentAt = this.#now();
      const frame: PresenceFrame = { type: "presence", room, event: "count", count: state.members.size };
      this.#deliver(room, { frame: JSON.stringify(frame) });
    };
    if (wait <= 0) send();
    else state.countTimer = setTimeout(send, wait);
  }

  async snapshot(room: string): Promise<JoinSnapshot> {
    const members = [...(this.#rooms.get(room)?.members.values() ?? [])];
    return { members, count: members.length, seq: await this.#history.lastSeq(room) };
  }

  history(room: string, after: number, limit: number): MessageFrame[] | Promise<MessageFrame[]> {
    return this.#history.since(room, after, limit);
  }

  subscribe(room: string, listener: DeliveryListener): () => void {
    const state = this.#room(room);
    state.listeners.add(listener);
    return () => {
      state.listeners.delete(listener);
      this.#release(room, state);
    };
  }

  close(): void {
    for (const state of this.#rooms.values()) stopTimer(state);
    this.#rooms.clear();
  }
}
