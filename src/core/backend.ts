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
import { readHistory, readState, transact } from "./transact.ts";

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
  state(): Promise<unknown> {
    return readState(this.#broker, this.#route, this.#ref);
  }
  /** run a transaction on the room's state and commit it with its messages, from `server` */
  transact(fn: Transaction<unknown, unknown>): Promise<Committed<unknown, unknown>> {
    return transact(this.#broker, this.#route, this.#ref, SERVER_SENDER, fn);
  }
  /** frames after `after` still in the room's history */
  history(after: number, limit = 100): Promise<SequencedFrame[]> {
    return readHistory(this.#broker, this.#ref, after, limit);
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
