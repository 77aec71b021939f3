/**
 * The room as the server itself acts in it — a route's push handler, its lifecycle hooks, its
 * timers: the same Room API a member's handler has, on behalf of `server` (SERVER_SENDER), with no
 * connection. A fault here (a state or message the route does not allow) rejects to the caller,
 * which answers it (a push's 500) or logs it (a hook's).
 */
import { type Member, SERVER_SENDER, type SequencedFrame } from "../protocol.ts";
import { type Broker, type FiredTimer, type RoomRef, type RoomTimer, TimerSpentError } from "../pubsub/broker.ts";
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
  // A timer's run, until a commit spends it: the handler's first transaction carries it.
  #fired: FiredTimer | undefined;
  constructor(broker: Broker, route: CompiledRoute, ref: RoomRef, fired: FiredTimer | undefined) {
    this.#broker = broker;
    this.#route = route;
    this.#ref = ref;
    this.#fired = fired;
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
    const compact = this.#route.compactBroadcasts;
    await this.#broker.broadcast(this.#ref, SERVER_SENDER, this.#route.published(data), { compact });
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
    // Taken now, so a transaction started while this one commits does not carry it too; given back
    // when this one committed nothing (refused, or an outage: if it did commit after all, the next
    // finds the run spent — TimerSpentError — as it should).
    const fired = this.#fired;
    this.#fired = undefined;
    const committing = transact(this.#broker, this.#route, this.#ref, SERVER_SENDER, fn, fired);
    if (!fired) return committing;
    return committing.catch((error: unknown) => {
      if (!(error instanceof TimerSpentError)) this.#fired ??= fired;
      throw error;
    });
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

/** The context of a push handler, a lifecycle hook or a timer of `route` in room `ref` (a timer's: with its run). */
export function backendContext(broker: Broker, route: CompiledRoute, ref: RoomRef, fired?: FiredTimer): BackendContext {
  return {
    room: new BackendRoom(broker, route, ref, fired),
    params: Object.freeze(roomParams(route.params, ref.name) ?? {}),
  };
}
