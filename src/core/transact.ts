/**
 * A room's state and history as a member's handler and the backend use them (ctx.room for both):
 * one transaction — the route's room state handling makes the change (checked state, checked
 * messages, the view when it changed) inside the broker's commit, which may run it more than
 * once; what resolves is the state the committed run left and the messages it published — and
 * the reads of the committed state and of recent history.
 */
import type { MessageFrame, SequencedFrame } from "../protocol.ts";
import type { Broker, ChangeFn, FiredTimer, RoomRef } from "../pubsub/broker.ts";
import type { CompiledRoute } from "./ports.ts";
import { type Committed, RouteError, type Transaction } from "./route.ts";

/**
 * Run `fn` on `ref`'s state through `broker` on behalf of `from` (spending `fired`, a timer's run). Rejects with the ClientError
 * `fn` threw, the broker's outage, or a RouteError when the route has no room state or `fn` made
 * what the route does not allow (its fault: the caller reports it).
 */
export function transact(
  broker: Broker,
  route: CompiledRoute,
  ref: RoomRef,
  from: string,
  fn: Transaction<unknown, unknown>,
  fired?: FiredTimer,
): Promise<Committed<unknown, unknown>> {
  const handling = route.roomState;
  const commit = broker.commit?.bind(broker);
  if (!handling || !commit)
    return Promise.reject(new RouteError(route.name, "has no roomState: there is no room state to change"));
  let state: unknown;
  const change: ChangeFn = (stored) => {
    const made = handling.change(stored, ref.name, fn, (data) => route.published(data));
    state = made.state;
    return made.change;
  };
  return Promise.resolve()
    .then(() => commit(ref, from, change, fired))
    .then(({ frames }) => ({ state, messages: frames.filter((f): f is MessageFrame => f.type === "message") }));
}

/** The most frames a handler reads from history at once (as a history page over HTTP). */
const HISTORY_READ_MAX = 1000;

/** `ref`'s state as last committed (a copy); rejects with a RouteError when the route has no room state. */
export async function readState(broker: Broker, route: CompiledRoute, ref: RoomRef): Promise<unknown> {
  const handling = route.roomState;
  if (!handling) throw new RouteError(route.name, "has no roomState: ctx.room.state() has nothing to read");
  return handling.read((await broker.snapshot(ref)).state, ref.name);
}

/** Frames after `after` still in `ref`'s history, at most `limit` (≤ 1000). */
export async function readHistory(
  broker: Broker,
  ref: RoomRef,
  after: number,
  limit: number,
): Promise<SequencedFrame[]> {
  const bounded = Math.max(0, Math.min(HISTORY_READ_MAX, Math.floor(limit)));
  return broker.history(ref, Math.max(0, Math.floor(after)), bounded);
}
