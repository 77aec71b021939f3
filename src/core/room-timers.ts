/**
 * A room's timers as handlers schedule them: checked here (a name, a time, JSON data within a
 * bound, at most so many per room), kept by the broker's timer store, fired by it once on one
 * instance, and run through the route's `timer` handler on the room as the server.
 */
import { DEFAULT_MAX_ROOM_TIMERS, MAX_TIMER_DATA_BYTES } from "../config.ts";
import type { Broker, RoomRef, RoomTimer, TimerStore } from "../pubsub/broker.ts";
import type { CompiledRoute } from "./ports.ts";
import { RouteError } from "./route.ts";

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

function storeOf(broker: Broker, route: CompiledRoute): TimerStore {
  if (!broker.timers) throw new RouteError(route.name, "this broker keeps no room timers");
  if (!route.timer) throw new RouteError(route.name, "schedules a timer but has no timer handler to run it");
  return broker.timers;
}

/** Schedule `name` in `ref` at `at` (ms since the epoch, or a Date) with `data`; replaces one of that name. */
export async function scheduleTimer(
  broker: Broker,
  route: CompiledRoute,
  ref: RoomRef,
  name: string,
  at: number | Date,
  data?: unknown,
): Promise<void> {
  const store = storeOf(broker, route);
  const when = at instanceof Date ? at.getTime() : at;
  if (!NAME.test(name))
    throw new RouteError(route.name, `a timer's name is 1–64 letters, digits or _ . : - (not ${JSON.stringify(name)})`);
  if (!Number.isFinite(when)) throw new RouteError(route.name, `timer "${name}": at is a time (ms since the epoch)`);
  const json = data === undefined ? "" : JSON.stringify(data);
  if (json.length > MAX_TIMER_DATA_BYTES)
    throw new RouteError(route.name, `timer "${name}": its data is over ${MAX_TIMER_DATA_BYTES} bytes of JSON`);
  const pending = await store.list(ref);
  if (pending.length >= DEFAULT_MAX_ROOM_TIMERS && !pending.some((t) => t.name === name))
    throw new RouteError(route.name, `a room has at most ${DEFAULT_MAX_ROOM_TIMERS} pending timers`);
  const timer: RoomTimer = { name, at: when, ...(data === undefined ? {} : { data: JSON.parse(json) }) };
  await store.schedule(ref, timer);
}

/** Cancel `name` in `ref`: whether it was pending. */
export async function cancelTimer(broker: Broker, route: CompiledRoute, ref: RoomRef, name: string): Promise<boolean> {
  return storeOf(broker, route).cancel(ref, name);
}

/** The pending timers of `ref`, soonest first. */
export async function listTimers(broker: Broker, route: CompiledRoute, ref: RoomRef): Promise<RoomTimer[]> {
  return storeOf(broker, route).list(ref);
}
