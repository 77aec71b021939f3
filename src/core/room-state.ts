/**
 * A stateful room route's room state, compiled once per route: reading the stored JSON (or the
 * route's initial state for a room that has none yet), what members see of it (its view), and a
 * transaction made into a Change for the broker — the next state checked against the route's
 * schema and size limit, its messages checked as the route publishes, and the view only when it
 * changed. The broker runs the change where it serializes the room's commits; this file decides
 * nothing about where state lives.
 */
import * as v from "valibot";
import { DEFAULT_ROOM_STATE_MAX_BYTES } from "../config.ts";
import { dataIssue } from "../message-data.ts";
import { describeIssues } from "../protocol.ts";
import type { Change } from "../pubsub/broker.ts";
import { roomParams } from "./room-path.ts";
import { type AnyRoute, RouteError, type Transaction } from "./route.ts";

/** A route's room state as the engine and the hub use it. */
export interface RoomStateHandling {
  /** the state the stored JSON stands for (undefined: the room's initial state), a copy of its own */
  read(stored: string | undefined, room: string): unknown;
  /** what members see of the stored state */
  view(stored: string | undefined, room: string): unknown;
  /**
   * run `fn` on the stored state: the change to commit and the state it leaves. Throws the ClientError
   * `fn` threw, or a RouteError when what it returned is not a state or messages of this route.
   */
  change(
    stored: string | undefined,
    room: string,
    fn: Transaction<unknown, unknown>,
    published: (data: unknown) => unknown,
  ): { change: Change; state: unknown };
}

const encoder = new TextEncoder();

const isThenable = (value: unknown): boolean =>
  typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";

/** The room state handling of `route`, or undefined when it declares no `roomState`. */
export function roomStateOf(route: AnyRoute, params: readonly string[]): RoomStateHandling | undefined {
  const { roomState: schema, initialRoomState, view: show, viewSchema } = route.options;
  if (!schema) return undefined;
  const max = route.options.maxRoomStateBytes ?? DEFAULT_ROOM_STATE_MAX_BYTES;
  const fault = (message: string) => new RouteError(route.name, message);

  // The state as JSON, checked: the schema's output, serialisable, within the size limit.
  const stored = (value: unknown, what: string): { state: unknown; json: string } => {
    const parsed = v.safeParse(schema, value);
    if (!parsed.success) throw fault(`${what} does not match its roomState schema: ${describeIssues(parsed.issues)}`);
    const deep = dataIssue(parsed.output, false);
    if (deep) throw fault(`${what} is ${deep}`);
    let json: string;
    try {
      json = JSON.stringify(parsed.output);
    } catch (error) {
      throw fault(`${what} is not serialisable JSON (${(error as Error).message})`);
    }
    // UTF-16 length bounds the UTF-8 size from below: count exactly only near the limit.
    if (json.length * 3 > max && encoder.encode(json).byteLength > max)
      throw fault(`${what} takes more than ${max} bytes as JSON (maxRoomStateBytes)`);
    return { state: parsed.output, json };
  };
  const initial = (room: string): string => {
    const given = initialRoomState ? initialRoomState(roomParams(params, room) ?? {}) : {};
    return stored(given, "its initial room state").json;
  };
  const read = (json: string | undefined, room: string): unknown => JSON.parse(json ?? initial(room));
  const viewOf = (state: unknown): unknown => {
    if (!show) return state;
    const seen = show(state);
    if (!viewSchema) return seen;
    const checked = v.safeParse(viewSchema, seen);
    if (!checked.success) throw fault(`its view does not match its viewSchema: ${describeIssues(checked.issues)}`);
    return checked.output;
  };
  // What members see, as JSON: the view's, or the state's own when the route shows all of it.
  const seen = (state: unknown, json: string): string => (show ? JSON.stringify(viewOf(state)) : json);

  return {
    read,
    view: (json, room) => viewOf(read(json, room)),
    change(json, room, fn, published) {
      const before = json ?? initial(room);
      const result = fn(JSON.parse(before));
      if (isThenable(result))
        throw fault("a transaction is synchronous (it may run more than once): await before transact, not inside");
      if (result === undefined) return { change: { messages: [] }, state: JSON.parse(before) };
      const messages = (result.publish ?? []).map(published);
      if (result.state === undefined) return { change: { messages }, state: JSON.parse(before) };
      const next = stored(result.state, "the room state a transaction returned");
      const view = viewOf(next.state);
      const changed = seen(next.state, next.json) !== seen(JSON.parse(before), before);
      return {
        change: { state: next.json, messages, ...(changed ? { view: { value: view } } : {}) },
        state: next.state,
      };
    },
  };
}
