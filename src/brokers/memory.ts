/**
 * The embedded default broker: everything in this process. Delivery is
 * synchronous, so a room's order is the order in which `publish` was called.
 */
import type { Member, MessageFrame, PresenceFrame } from "../protocol.ts";
import { type HistoryStore, MemoryHistory } from "../rooms/history.ts";
import type { Broker, Delivery, DeliveryListener, JoinSnapshot } from "./broker.ts";

interface RoomState {
  members: Map<string, Member>;
  listeners: Set<DeliveryListener>;
}

/** Options of the memory broker. */
export interface MemoryBrokerOptions {
  /** where sequence numbers and history live (default: in memory) */
  history?: HistoryStore;
  /** clock, injectable for tests */
  now?: () => number;
}

/** In-process rooms: presence in maps, deliveries by direct call. */
export class MemoryBroker implements Broker {
  readonly #rooms = new Map<string, RoomState>();
  readonly #history: HistoryStore;
  readonly #now: () => number;

  /** a broker with its own in-memory history unless one is given */
  constructor(options: MemoryBrokerOptions = {}) {
    this.#history = options.history ?? new MemoryHistory();
    this.#now = options.now ?? Date.now;
  }

  #room(room: string): RoomState {
    let state = this.#rooms.get(room);
    if (!state) {
      state = { members: new Map(), listeners: new Set() };
      this.#rooms.set(room, state);
    }
    return state;
  }

  // A room with no members and no listeners holds no memory beyond its history.
  #release(room: string, state: RoomState): void {
    if (state.members.size === 0 && state.listeners.size === 0) this.#rooms.delete(room);
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
    this.#presence(room, state, "join", member);
    return { members: [...state.members.values()], seq: await this.#history.lastSeq(room) };
  }

  restore(room: string, member: Member): void {
    this.#room(room).members.set(member.id, member);
  }

  leave(room: string, memberId: string, code?: number, reason?: string): void {
    const state = this.#rooms.get(room);
    const member = state?.members.get(memberId);
    if (!state || !member) return;
    state.members.delete(memberId);
    this.#presence(room, state, "leave", member, code === undefined ? {} : { code, reason: reason ?? "" });
    this.#release(room, state);
  }

  #presence(
    room: string,
    state: RoomState,
    event: "join" | "leave",
    member: Member,
    ending: { code?: number; reason?: string } = {},
  ): void {
    const frame: PresenceFrame = { type: "presence", room, event, member, count: state.members.size, ...ending };
    this.#deliver(room, { frame: JSON.stringify(frame), except: member.id });
  }

  async snapshot(room: string): Promise<JoinSnapshot> {
    const members = [...(this.#rooms.get(room)?.members.values() ?? [])];
    return { members, seq: await this.#history.lastSeq(room) };
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
    this.#rooms.clear();
  }
}
