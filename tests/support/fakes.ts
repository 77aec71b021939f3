/** Fakes for unit tests: peers that record what they are sent, and a runtime that records upgrades. */
import { createApp } from "../../src/app.ts";
import type { Broker } from "../../src/brokers/broker.ts";
import { MemoryBroker } from "../../src/brokers/memory.ts";
import { Engine, type EngineOptions } from "../../src/engine.ts";
import type { Runtime } from "../../src/runtime.ts";
import type { ConnRecord, Frame, Peer, RouteName } from "../../src/transports/peer.ts";

/** A peer that keeps every frame and its close. */
export class FakePeer implements Peer {
  sent: Frame[] = [];
  /** the `text` flag of each send (bytes that are undecoded UTF-8 text) */
  textFlags: (boolean | undefined)[] = [];
  closed: { code: number; reason: string } | undefined;
  saves = 0;
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
/** A record for a fake connection. */
export function record(route: RouteName, room: string | null = null): ConnRecord {
  return { v: 1, id: `p${++ids}`, route, room, protocol: "", seq: 0, at: 1000 };
}

/** Let pending promise callbacks run. */
export const settle = () => new Promise((r) => setTimeout(r, 0));

/** An engine over a memory broker (or the given one). */
export function engineWith(options: Partial<EngineOptions> = {}): Engine {
  return new Engine({ broker: options.broker ?? (new MemoryBroker() as Broker), log: () => {}, ...options });
}

/** An app over a fake runtime that records the upgrades it was asked for. */
export function fakeApp(options: { pushToken?: string; engine?: Engine } = {}) {
  const upgrades: ConnRecord[] = [];
  const runtime: Runtime = {
    name: "fake",
    upgrade(_c, rec) {
      upgrades.push(rec);
      return new Response(null, { status: 200, headers: { "x-upgraded": "1" } });
    },
  };
  const engine = options.engine ?? engineWith();
  const app = createApp({ runtime, engine, ...(options.pushToken ? { pushToken: options.pushToken } : {}) });
  return { app, engine, upgrades };
}
