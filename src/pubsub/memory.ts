/**
 * The embedded default broker: everything in this process. Delivery is
 * synchronous, so a room's order is the order in which `publish` was called.
 */
import type { Member, MessageFrame, SequencedFrame } from "../protocol.ts";
import {
  type BroadcastOptions,
  type Broker,
  BrokerUnavailableError,
  broadcastText,
  type ChangeFn,
  type Committed,
  type Delivery,
  type DeliveryListener,
  type FiredTimer,
  framesOf,
  type JoinSnapshot,
  type KeyedPublish,
  type PushKey,
  type RoomRef,
  type TimerStore,
} from "./broker.ts";
import { type HistoryStore, MemoryHistory } from "./history.ts";
import { type PresenceClock, PresencePolicy, type PresenceRoom, presenceClock } from "./presence.ts";
import { MemoryTimers } from "./timers.ts";

class RoomState implements PresenceRoom {
  /** in join order (a Map keeps insertion order), so "the first N" are the oldest */
  readonly byId = new Map<string, Member>();
  readonly listeners = new Set<DeliveryListener>();
  readonly clock: PresenceClock = presenceClock();
  constructor(readonly ref: RoomRef) {}
  members(): Iterable<Member> {
    return this.byId.values();
  }
  size(): number {
    return this.byId.size;
  }
  deliver(delivery: Delivery): void {
    for (const listener of this.listeners) listener(delivery);
  }
}

// A stateful room's state goes with its head; a room without one has no `state` at all.
const stateOf = (head: { state?: string | undefined }) => (head.state === undefined ? {} : { state: head.state });

/** Options of the memory broker. */
export interface MemoryBrokerOptions {
  /** where sequence numbers and history live (default: in memory) */
  history?: HistoryStore;
  /** clock, injectable for tests */
  now?: () => number;
  /** the presence policy (default: limit 100, one count frame per 250 ms) */
  presence?: PresencePolicy;
  /** where room timers live (default: in this process) */
  timers?: TimerStore;
}

/** In-process rooms: presence in maps, deliveries by direct call. */
export class MemoryBroker implements Broker {
  readonly #rooms = new Map<string, RoomState>();
  readonly #history: HistoryStore;
  readonly #now: () => number;
  readonly #presence: PresencePolicy;
  /** the rooms' timers: in this process, or (a Durable Object) behind its alarm */
  readonly timers: TimerStore;

  /** a broker with its own in-memory history unless one is given */
  constructor(options: MemoryBrokerOptions = {}) {
    this.#history = options.history ?? new MemoryHistory();
    this.#now = options.now ?? Date.now;
    this.timers = options.timers ?? new MemoryTimers(this.#now);
    this.#presence = options.presence ?? new PresencePolicy({ now: this.#now });
  }

  #room(ref: RoomRef): RoomState {
    let state = this.#rooms.get(ref.key);
    if (!state) {
      state = new RoomState(ref);
      this.#rooms.set(ref.key, state);
      this.#history.occupied?.(ref.key);
    }
    return state;
  }

  // A room with no members and no listeners holds no memory beyond its history.
  #release(state: RoomState): void {
    if (state.byId.size > 0 || state.listeners.size > 0) return;
    this.#presence.stop(state.clock);
    this.#rooms.delete(state.ref.key);
    this.#history.vacated?.(state.ref.key);
  }

  #deliver(ref: RoomRef, delivery: Delivery): void {
    this.#rooms.get(ref.key)?.deliver(delivery);
  }

  /** from drain(): refuse to sequence what would die with this process */
  #draining = false;

  /** stop sequencing when the history dies with this process (see Broker.drain) */
  drain(): void {
    if (!this.#history.durable) this.#draining = true;
  }

  #refuseWhileDraining(): void {
    if (this.#draining) {
      throw new BrokerUnavailableError(
        "this instance is shutting down, and its history with it: publish again once it is back",
        "draining",
      );
    }
  }

  // The frame a publish makes around its seq; none while draining (it could not be kept).
  #make(ref: RoomRef, from: string, data: unknown): (seq: number) => MessageFrame {
    this.#refuseWhileDraining();
    const ts = this.#now();
    const room = ref.name;
    return (seq) => ({ type: "message", room, seq, from, data, ts });
  }

  async publish(ref: RoomRef, from: string, data: unknown): Promise<MessageFrame> {
    const { frame, text } = await this.#history.append(ref.key, this.#make(ref, from, data));
    this.#deliver(ref, { frame: text });
    return frame;
  }

  async publishKeyed(ref: RoomRef, from: string, data: unknown, key: PushKey): Promise<KeyedPublish> {
    const appended = await this.#history.appendKeyed(ref.key, this.#make(ref, from, data), key);
    if (!("frame" in appended)) return { kind: appended.sameBody ? "repeat" : "reused", seq: appended.seq };
    this.#deliver(ref, { frame: appended.text });
    return { kind: "published", frame: appended.frame };
  }

  async commit(ref: RoomRef, from: string, change: ChangeFn, fired?: FiredTimer): Promise<Committed> {
    this.#refuseWhileDraining();
    const ts = this.#now();
    // A timer run spent where its store keeps runs (SQLite: in the commit's transaction); memory
    // timers are taken out before they run, and die with the process, so there is nothing to spend.
    const timers = this.timers;
    const also = fired && timers.spend ? () => timers.spend?.(ref, fired) : undefined;
    const run = (state: string | undefined, seq: number) => {
      const made = change(state);
      return { state: made.state, frames: framesOf(ref.name, from, ts, seq, made) };
    };
    const { frames, texts } = await this.#history.commit(ref.key, run, also);
    for (const text of texts) this.#deliver(ref, { frame: text });
    return { frames };
  }

  broadcast(ref: RoomRef, from: string, data: unknown, options: BroadcastOptions = {}): void {
    const frame = broadcastText(ref, from, data, options.compact);
    const value = options.plain ? { type: "broadcast", room: ref.name, from, data } : undefined;
    this.#deliver(ref, { frame, except: options.except, value });
  }

  relay(ref: RoomRef, from: string, bytes: Uint8Array): void {
    this.#deliver(ref, { frame: bytes, except: from });
  }

  async join(ref: RoomRef, member: Member): Promise<JoinSnapshot> {
    const state = this.#room(ref);
    state.byId.set(member.id, member);
    this.#presence.joined(state, member);
    const members = this.#presence.welcome(state.byId.values());
    const head = await this.#history.head(ref.key);
    return { members, count: state.byId.size, seq: head.seq, epoch: head.epoch, ...stateOf(head) };
  }

  restore(ref: RoomRef, member: Member): void {
    this.#room(ref).byId.set(member.id, member);
  }

  update(ref: RoomRef, member: Member, announce: boolean): void {
    const state = this.#rooms.get(ref.key);
    if (!state?.byId.has(member.id)) return;
    state.byId.set(member.id, member);
    if (announce) this.#presence.updated(state, member);
  }

  leave(ref: RoomRef, memberId: string, code?: number, reason?: string): number | undefined {
    const state = this.#rooms.get(ref.key);
    const member = state?.byId.get(memberId);
    if (!state || !member) return undefined;
    state.byId.delete(memberId);
    this.#presence.left(state, member, code === undefined ? {} : { code, reason: reason ?? "" });
    const remaining = state.byId.size;
    this.#release(state);
    return remaining;
  }

  async snapshot(ref: RoomRef): Promise<JoinSnapshot> {
    const members = [...(this.#rooms.get(ref.key)?.byId.values() ?? [])];
    const head = await this.#history.head(ref.key);
    return { members, count: members.length, seq: head.seq, epoch: head.epoch, ...stateOf(head) };
  }

  count(ref: RoomRef): number {
    return this.#rooms.get(ref.key)?.byId.size ?? 0;
  }

  history(ref: RoomRef, after: number, limit: number): SequencedFrame[] | Promise<SequencedFrame[]> {
    return this.#history.since(ref.key, after, limit);
  }

  subscribe(ref: RoomRef, listener: DeliveryListener): () => void {
    const state = this.#room(ref);
    state.listeners.add(listener);
    return () => {
      state.listeners.delete(listener);
      this.#release(state);
    };
  }

  close(): void {
    this.timers.stop();
    for (const state of this.#rooms.values()) this.#presence.stop(state.clock);
    this.#rooms.clear();
  }
}
