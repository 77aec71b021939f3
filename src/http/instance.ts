/**
 * What the endpoints need of the instance serving a request (assemble.ts's Instance implements
 * it): its engine, admission, polling sessions and counters, and its placement — where its
 * rooms and sessions live, the one thing that differs between a process, a Worker and a
 * Durable Object.
 */
import type { Context } from "hono";
import type { Config } from "../config.ts";
import type { Engine } from "../core/engine.ts";
import type { ConnRecord } from "../core/ports.ts";
import type { Admission } from "./admission.ts";
import type { InspectorSource } from "./inspector.ts";
import type { PollTransport } from "./long-poll.ts";
import type { Placement, PollHost } from "./placement.ts";

/** What the app needs of the instance serving a request. */
export interface Serving extends InspectorSource, PollHost {
  /** where its rooms and sessions live, and what is checked here: what the endpoints ask instead of a mode */
  readonly placement: Placement;
  readonly runtimeName: string;
  readonly instanceId: string | undefined;
  readonly engine: Engine;
  readonly admission: Admission;
  readonly polling: PollTransport;
  /** the validated configuration (the batch push's bounds) */
  readonly config: Config;
  /** the bearer token /metrics requires, if any */
  readonly metricsToken: string | undefined;
  /** upgrade an admitted connection (the runtime's) */
  upgrade(c: Context, record: ConnRecord): Response | Promise<Response>;
  /** the Prometheus exposition of this instance's counters */
  metricsText(): string;
  /** whether the instance takes new connections (not draining, broker up) */
  ready(): boolean;
}
