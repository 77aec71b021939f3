/**
 * One transaction on a room's state, as a member's handler and the backend's run it: the route's
 * room state handling makes the change (checked state, checked messages, the view when it
 * changed) inside the broker's commit, which may run it more than once; what resolves is the
 * state the committed run left and the messages it published.
 */
import type { MessageFrame } from "../protocol.ts";
import type { Broker, ChangeFn, RoomRef } from "../pubsub/broker.ts";
import type { CompiledRoute } from "./ports.ts";
import { type Committed, RouteError, type Transaction } from "./route.ts";

/**
 * Run `fn` on `ref`'s state through `broker` on behalf of `from`. Rejects with the ClientError
 * `fn` threw, the broker's outage, or a RouteError when the route has no room state or `fn` made
 * what the route does not allow (its fault: the caller reports it).
 */
export function transact(
  broker: Broker,
  route: CompiledRoute,
  ref: RoomRef,
  from: string,
  fn: Transaction<unknown, unknown>,
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
    .then(() => commit(ref, from, change))
    .then(({ frames }) => ({ state, messages: frames.filter((f): f is MessageFrame => f.type === "message") }));
}
