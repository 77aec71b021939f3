/** Fakes for unit tests: peers that record what they are sent, and a runtime that records upgrades. */
import { createEdgewire, type EdgewireOptions, type Instance } from "../../src/assemble.ts";
import { Engine, type EngineOptions } from "../../src/core/engine.ts";
import type { ConnRecord, Frame, Peer, Runtime } from "../../src/core/ports.ts";
import type { Broker } from "../../src/pubsub/broker.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { echo } from "../../src/routes/echo.ts";
import { rooms } from "../../src/routes/room.ts";

/** A peer that keeps every frame and its close. */
export class FakePeer implements Peer {
  sent: Frame[] = [];
  /** the `text` flag of each send (bytes that are undecoded UTF-8 text) */
  textFlags: (boolean | undefined)[] = [];
  closed: { code: number; reason: string } | undefined;
  saves = 0;
  context: unknown;
  constructor(readonly record: ConnRecord) {}
  send(frame: Frame, text?: boolean): void {
    if (this.closed) return;
    this.sent.push(frame);
    this.textFlags.push(text);
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
  save(): void {
    this.saves++;
  }
  /** text frames parsed as JSON */
  json<T = Record<string, unknown>>(): T[] {
    return this.sent.filter((f): f is string => typeof f === "string").map((f) => JSON.parse(f) as T);
  }
  /** parsed frames of one type */
  ofType<T = Record<string, unknown>>(type: string): T[] {
    return this.json<T & { type: string }>().filter((f) => f.type === type);
  }
}

let ids = 0;
/** A record for a fake connection on route `route` ("echo", "room", or a test route's name). */
export function record(route: string, room: string | null = null, state?: unknown): ConnRecord {
  return {
    v: 1,
    id: `p${++ids}`,
    route,
    room,
    protocol: "",
    seq: 0,
    at: 1000,
    ...(state === undefined ? {} : { state }),
  };
}

/** Let pending promise callbacks run. */
export const settle = () => new Promise((r) => setTimeout(r, 0));

/** An engine over a memory broker (or the given one), serving /echo and /rooms/:room unless other routes are given. */
export function engineWith(options: Partial<EngineOptions> = {}): Engine {
  return new Engine({
    routes: [echo, rooms],
    broker: options.broker ?? (new MemoryBroker() as Broker),
    log: () => {},
    ...options,
  });
}

/** The broker key of room `room` on the /rooms/:room route. */
export const roomKey = (room: string) => `room:${room}`;

/** An assembled edgewire over a fake runtime that records the upgrades it was asked for. */
export function fakeApp(
  options: { pushToken?: string; edgewire?: Partial<EdgewireOptions>; env?: Record<string, string> } = {},
) {
  const upgrades: ConnRecord[] = [];
  const runtime: Runtime = {
    name: "fake",
    upgrade(_c, rec) {
      upgrades.push(rec);
      return new Response(null, { status: 200, headers: { "x-upgraded": "1" } });
    },
  };
  const edgewire = createEdgewire({ routes: [echo, rooms], ...options.edgewire });
  const env = { ...options.env, ...(options.pushToken ? { EDGEWIRE_PUSH_TOKEN: options.pushToken } : {}) };
  const instance: Instance = edgewire.assemble({ runtime, env });
  const app = {
    /** like Hono's app.request: a path (or URL) and init, answered through the instance */
    request: (path: string, init?: RequestInit) => instance.fetch(new Request(new URL(path, "http://localhost"), init)),
  };
  return { app, engine: instance.engine, instance, edgewire, upgrades };
}
