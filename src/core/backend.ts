/**
 * The room as the server itself acts in it — a route's push handler, its lifecycle hooks, its
 * timers: the same Room API a member's handler has, on behalf of `server` (SERVER_SENDER), with no
 * connection. A fault here (a state or message the route does not allow) rejects to the caller,
 * which answers it (a push's 500) or logs it (a hook's).
 */
import { type Member, SERVER_SENDER, type SequencedFrame } from "../protocol.ts";
import type { Broker, RoomRef, RoomTimer } from "../pubsub/broker.ts";
import type { CompiledRoute } from "./ports.ts";
import { roomParams } from "./room-path.ts";
import { cancelTimer, listTimers, scheduleTimer } from "./room-timers.ts";
import type { BackendContext, Committed, Room, Transaction } from "./route.ts";
import { transact } from "./transact.ts";

/** The most frames a handler reads from history at once. */
const HISTORY_READ_MAX = 1000;

/** A room, acted on by the server. */
class BackendRoom implements Room {
  readonly #broker: Broker;
  readonly #route: CompiledRoute;
  readonly #ref: RoomRef;
  constructor(broker: Broker, route: CompiledRoute, ref: RoomRef) {
    this.#broker = broker;
    this.#route = route;
    this.#ref = ref;
  }
  /** the room's name */
  get name(): string {
    return this.#ref.name;
  }
  /** sequence, keep and deliver to every member, from `server` */
  async publish(data: unknown) {
    return this.#broker.publish(this.#ref, SERVER_SENDER, this.#route.published(data));
  }
  /** an unsequenced frame to every member */
  async broadcast(data: unknown): Promise<void> {
    await this.#broker.broadcast(this.#ref, SERVER_SENDER, this.#route.published(data));
  }
  /** bytes to every member */
  async relay(bytes: Uint8Array): Promise<void> {
    await this.#broker.relay(this.#ref, SERVER_SENDER, bytes);
  }
  /** the room's members, count and last seq */
  async members(): Promise<{ members: Member[]; count: number; seq: number }> {
    const { members, count, seq } = await this.#broker.snapshot(this.#ref);
    return { members, count, seq };
  }
  /** the room's state as last committed (a copy) */
  async state(): Promise<unknown> {
    const handling = this.#route.roomState;
    if (!handling) throw new TypeError(`edgewire: route "${this.#route.name}" has no roomState`);
    return handling.read((await this.#broker.snapshot(this.#ref)).state, this.#ref.name);
  }
  /** run a transaction on the room's state and commit it with its messages, from `server` */
  transact(fn: Transaction<unknown, unknown>): Promise<Committed<unknown, unknown>> {
    return transact(this.#broker, this.#route, this.#ref, SERVER_SENDER, fn);
  }
  /** frames after `after` still in the room's history */
  async history(after: number, limit = 100): Promise<SequencedFrame[]> {
    const bounded = Math.max(0, Math.min(HISTORY_READ_MAX, Math.floor(limit)));
    return this.#broker.history(this.#ref, Math.max(0, Math.floor(after)), bounded);
  }
  /** schedule a room event */
  schedule(name: string, at: number | Date, data?: unknown): Promise<void> {
    return scheduleTimer(this.#broker, this.#route, this.#ref, name, at, data);
  }
  /** cancel one */
  cancel(name: string): Promise<boolean> {
    return cancelTimer(this.#broker, this.#route, this.#ref, name);
  }
  /** the pending ones */
  timers(): Promise<RoomTimer[]> {
    return listTimers(this.#broker, this.#route, this.#ref);
  }
}

/** The context of a push handler, a lifecycle hook or a timer of `route` in room `ref`. */
export function backendContext(broker: Broker, route: CompiledRoute, ref: RoomRef): BackendContext {
  return {
    room: new BackendRoom(broker, route, ref),
    params: Object.freeze(roomParams(route.params, ref.name) ?? {}),
  };
}
