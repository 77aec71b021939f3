/**
 * The one assembly of an edgewire: configuration, broker, engine, admission,
 * long-polling, the placement and the app, built the same way for a Node, Deno
 * or Bun process, a Cloudflare Worker and every Durable Object. `createEdgewire`
 * makes the definition (routes and options, and the Hono app to mount); an
 * adapter assembles it into an Instance for its runtime.
 */
import type { Context, Hono } from "hono";
import { type Config, type ConfigInput, historyBounds, loadConfig } from "./config.ts";

import { Engine } from "./core/engine.ts";
import type { ConnectionEvents, ConnRecord, Runtime } from "./core/ports.ts";
import { type AnyRoute, RouteError } from "./core/route.ts";
import { Admission } from "./http/admission.ts";
import { type AppOptions, buildApp, builtinPaths } from "./http/app.ts";
import type { Serving } from "./http/instance.ts";
import { type PollDone, type PollOp, PollTransport, runPollOp } from "./http/long-poll.ts";
import {
  type Forward,
  localPlacement,
  type Mode,
  objectPlacement,
  type Placement,
  workerPlacement,
} from "./http/placement.ts";
import { Sampler } from "./inspector/sampler.ts";
import { jsonLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { CloseCode, CloseReason } from "./protocol.ts";
import type { Broker } from "./pubsub/broker.ts";
import { type HistoryStore, MemoryHistory } from "./pubsub/history.ts";
import { MemoryBroker } from "./pubsub/memory.ts";
import { PresencePolicy } from "./pubsub/presence.ts";

/** After a draining instance's last close, until it is gone: the closing handshakes (ms), polling replies' 250 ms, the listener. */
const DRAIN_TAIL_MS = 400;
/** How long after a single instance is gone its clients are told to come back: its successor listening (the SDK retries every ≤ 0.5 s after a restart hint, so a late one costs little). */
const RESTART_MARGIN_MS = 250;
/** Reconnect hints are spread over this much, so the clients of one instance do not arrive at once. */
const RESTART_SPREAD_MS = 500;

// The one place the serving mode is read for the endpoints: they ask the placement it gives.
function placementOf(mode: Mode, forward: Forward | undefined): Placement {
  if (mode === "local") return localPlacement;
  if (mode === "object") return objectPlacement;
  if (!forward) throw new Error('edgewire: an instance in "worker" mode needs `forward` to reach its Durable Objects');
  return workerPlacement(forward);
}

/** What an edgewire is made of. */
export interface EdgewireOptions extends AppOptions {
  /** the routes it serves (`defineRoute`, `defineRoom`) */
  routes: readonly AnyRoute[];
  /** the app's own configuration defaults; the environment overrides them */
  config?: ConfigInput;
  /** where logs go (default: JSON lines on the console at EDGEWIRE_LOG_LEVEL) */
  logger?: Logger;
}

/** How an adapter assembles an edgewire for its runtime. */
export interface AssembleOptions {
  /** the adapter's runtime (upgrade, native publish, client address) */
  runtime: Runtime;
  /** environment-like record the configuration is read from */
  env?: Record<string, unknown>;
  /** "local" (default), "worker" or "object" (Cloudflare) */
  mode?: Mode;
  /** where sequence numbers and history live (default: memory; a Durable Object's SQLite), or how to make it from the config */
  history?: HistoryStore | ((config: Config) => HistoryStore);
  /** how a Worker reaches its objects */
  forward?: Forward;
  /** the broker, made from the config (the Redis broker for a fleet); default: the memory broker */
  broker?: (config: Config, log: Logger) => Broker;
}

/** An edgewire assembled for one runtime: what an adapter drives. */
export class Instance implements Serving {
  /** the edgewire this instance serves */
  readonly edgewire: Edgewire;
  /** how it serves (local, worker, object) */
  readonly mode: Mode;
  /** where its rooms and sessions live, chosen once from `mode`: what the endpoints ask instead of the mode */
  readonly placement: Placement;
  /** the adapter's runtime */
  readonly runtime: Runtime;
  /** the validated configuration */
  readonly config: Config;
  /** the pub/sub engine rooms run on */
  readonly broker: Broker;
  /** the connection engine */
  readonly engine: Engine;
  /** where the adapter reports its connections' events (the engine, seen through its port) */
  readonly events: ConnectionEvents;
  /** the checks every new connection passes */
  readonly admission: Admission;
  /** the long-polling sessions */
  readonly polling: PollTransport;
  /** how a Worker reaches its objects */
  readonly forward: Forward | undefined;
  /** the counters behind /metrics */
  readonly metrics: Metrics;
  /** structured logs */
  readonly log: Logger;

  /** assemble `edgewire` as `options` say */
  constructor(edgewire: Edgewire, options: AssembleOptions) {
    this.edgewire = edgewire;
    this.mode = options.mode ?? "local";
    this.runtime = options.runtime;
    this.forward = options.forward;
    this.placement = placementOf(this.mode, options.forward);
    const config = loadConfig(options.env ?? {}, edgewire.options.config);
    this.config = config;
    this.log = edgewire.options.logger ?? jsonLogger(config.logLevel);
    this.metrics = new Metrics();
    const history =
      typeof options.history === "function"
        ? options.history(config)
        : (options.history ?? new MemoryHistory({ ...historyBounds(config), idleMs: config.roomIdleMs }));
    this.broker = options.broker
      ? options.broker(config, this.log)
      : new MemoryBroker({ history, presence: new PresencePolicy({ limit: config.presenceLimit }) });
    // A stateful route on a broker that holds no room state (a custom one) would fail at its first
    // transaction: refused here, at start, naming the route.
    const stateful = edgewire.routes.find((route) => route.options.roomState !== undefined);
    if (stateful && !this.broker.commit) {
      throw new RouteError(stateful.name, "has roomState, and this broker holds no room state (it has no commit)");
    }
    const publish = options.runtime.publish?.bind(options.runtime);
    this.engine = new Engine({
      routes: edgewire.routes,
      broker: this.broker,
      maxMessageBytes: config.maxMessageBytes,
      rate: { perSecond: config.rateLimit, burst: config.rateBurst },
      maxBufferedBytes: config.maxBufferedBytes,
      heartbeatMs: config.heartbeatMs,
      closeTimeoutMs: config.closeTimeoutMs,
      metrics: this.metrics,
      // Only an instance that admitted a connection counts it against its address (a Worker's objects do not).
      closed: (record) => this.admission.release(record),
      log: (msg, error) => this.log.error(msg, { error }),
      ...(publish ? { publish } : {}),
    });
    this.events = this.engine;
    // Only the instance that holds a connection counts it against its address: not a Worker, which forwards.
    this.admission = new Admission(this.engine, options.runtime, config, this.metrics, this.log, this.mode === "local");
    this.polling = new PollTransport(this.engine, {
      timeoutMs: config.pollTimeoutMs,
      idleMs: config.pollIdleMs,
      maxSessions: config.pollMaxSessions,
      maxQueuedBytes: config.pollMaxQueuedBytes,
    });
    // Only a process sees its own connections and rooms: a Worker's are spread over isolates and objects.
    this.sampler =
      config.inspector && this.mode === "local" ? new Sampler(this.engine, this.broker, this.metrics) : undefined;
    // A fleet broker carries long-polling requests to the instance holding the session.
    const fleet = this.broker.fleet;
    this.fleetId = fleet?.instanceId;
    this.fleetRequest = fleet
      ? async (to, op, timeoutMs) => (await fleet.request(to, op, timeoutMs)) as PollDone | undefined
      : undefined;
  }

  #started = false;

  /**
   * Start what runs by itself: the broker's connection (Redis), answering the fleet's requests, and
   * in a long-running process (local mode) the heartbeats and the inspector's sampler. Constructing
   * an instance starts nothing; an adapter calls this once, before it serves.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.broker.start?.();
    this.broker.fleet?.serveRequests((op) => runPollOp(this.polling, op as PollOp));
    // Rooms' timers fire where rooms live: a process, or a Durable Object (its alarm); a Worker has none.
    if (this.mode !== "worker") this.broker.timers?.start((ref, fired) => this.engine.fireTimer(ref, fired));
    this.broker.onVacated?.((ref) => this.engine.roomVacated(ref));
    if (this.mode !== "local") return;
    this.engine.startHeartbeat(this.config.heartbeatMs);
    this.sampler?.start();
  }

  /** this instance's id in a fleet */
  readonly fleetId: string | undefined;
  /** run a polling operation on the fleet instance holding the session */
  readonly fleetRequest:
    | ((instance: string, op: PollOp, timeoutMs: number) => Promise<PollDone | undefined>)
    | undefined;

  /** the inspector's sampler, when EDGEWIRE_INSPECTOR is on (Node, Deno and Bun) */
  readonly sampler: Sampler | undefined;

  /** long-polling sessions open */
  pollSessions(): number {
    return this.polling.size;
  }

  /** whether `route` is one of this edgewire's room routes and `room` a valid name */
  isRoom(route: string, room: string): boolean {
    const handlers = this.engine.route(route);
    return handlers?.kind === "room" && this.admission.validRoomName(room, handlers.params);
  }

  /** the bearer token /metrics requires */
  get metricsToken(): string | undefined {
    return this.config.metricsToken;
  }

  /** whether new connections are taken: not draining, and the broker reaches its backend */
  ready(): boolean {
    return !this.admission.draining && this.broker.up !== false;
  }

  /** the Prometheus exposition of this instance */
  metricsText(): string {
    const engine = this.engine;
    return this.metrics.render(
      {
        connections: () => engine.connectionsByRoute(),
        rooms: () => engine.hub.roomCount,
        pollSessions: () => this.polling.size,
        draining: () => this.admission.draining,
        brokerUp: () => this.broker.up !== false,
        memory: () => this.runtime.memory?.(),
      },
      this.runtime.name,
    );
  }

  /** when a draining instance will be gone (ms since the epoch), once drain() has begun */
  #goneAt: number | undefined;

  /**
   * How long a client refused by this draining instance should wait before trying again (the
   * `Retry-After` of its 503s): in a fleet, a second (the load balancer, seeing readiness fail,
   * sends it elsewhere; sooner it would only find this one again); alone, until this one is gone
   * and its successor can be there. Undefined while not draining.
   */
  retryAfterMs(): number | undefined {
    if (this.#goneAt === undefined) return undefined;
    return this.fleetId ? 1000 : Math.round(Math.max(0, this.#goneAt - Date.now()) + RESTART_MARGIN_MS);
  }

  /**
   * Drain for shutdown: refuse new connections (readiness turns 503, with `Retry-After`), stop
   * acknowledging publishes a non-durable broker would lose with the process, then close every
   * connection with 1012 (service restart), each at a random moment within `windowMs` so clients do
   * not all reconnect at once, and a hint that covers the drain: alone, when this instance will be
   * gone (plus a spread), so clients do not come back to it; in a fleet, "now" — elsewhere. Resolves
   * when all are closed (or the window and a second passed).
   */
  async drain(windowMs = this.config.drainMs): Promise<void> {
    this.admission.drain(() => this.retryAfterMs());
    this.broker.drain?.();
    const peers = this.engine.openPeers();
    const start = Date.now();
    const moments = peers.map(() => Math.random() * windowMs);
    const last = Math.max(0, ...moments);
    // Gone once the last close is sent, the handshakes done and the listener closed (below): ~1.3 s.
    this.#goneAt = start + last + DRAIN_TAIL_MS;
    this.log.info("draining", { connections: peers.length, windowMs });
    const spread = () => Math.floor(Math.random() * RESTART_SPREAD_MS);
    await Promise.all(
      peers.map(
        (peer, i) =>
          new Promise<void>((done) => {
            setTimeout(() => {
              // A fleet member: "now, elsewhere" (readiness already sends new connections to the others).
              const hint = this.fleetId ? spread() : (this.retryAfterMs() ?? 0) + spread();
              try {
                peer.close(CloseCode.serviceRestart, CloseReason.restart(hint));
              } catch {}
              done();
            }, moments[i]);
          }),
      ),
    );
    // Closing handshakes need a moment, and a polling client its next GET to fetch the close: wait
    // for both within a bound (polling.size counts sessions whose close was not fetched yet).
    const until = Date.now() + 1000;
    while ((this.engine.connections > 0 || this.polling.size > 0) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    // A session leaves `polling` when its last reply is built, not when it is written: give those
    // replies a moment before the listener goes (Bun's stop(true) cuts responses still in flight).
    await new Promise((r) => setTimeout(r, 250));
  }

  /** the runtime's name */
  get runtimeName(): string {
    return this.runtime.name;
  }

  /** the runtime's instance id (a Durable Object's incarnation) */
  get instanceId(): string | undefined {
    return this.runtime.instance;
  }

  /** complete an admitted upgrade with the runtime */
  upgrade(c: Context, record: ConnRecord): Response | Promise<Response> {
    return this.runtime.upgrade(c, record, this.engine);
  }

  /** serve `request` with `app` (the edgewire's own, or a user's app it is mounted in) through this instance */
  fetch(request: Request, env?: unknown, executionCtx?: unknown, app: Hono = this.edgewire.app): Promise<Response> {
    return this.edgewire.serveRequest(this, request, env, executionCtx, app);
  }

  /** close every connection (1001 going away), end polling sessions, then `beforeBroker` (stop listening), then release the broker */
  async close(
    code: number = CloseCode.goingAway,
    reason: string = CloseReason.goingAway,
    beforeBroker: () => Promise<void> = async () => {},
  ): Promise<void> {
    this.engine.stopHeartbeat();
    this.sampler?.stop();
    this.engine.closeAll(code, reason);
    this.polling.closeAll(code, reason);
    // The listener goes first: a request still arriving (a backend's push on a keep-alive connection)
    // must find the broker there, not be refused try_again_later by an instance that could keep it.
    await beforeBroker();
    await this.broker.close();
  }
}

/** An edgewire: routes and options, and the Hono app that serves them (mount it into your own app). */
export class Edgewire {
  /** the routes it serves */
  readonly routes: readonly AnyRoute[];
  /** the options it was made with */
  readonly options: EdgewireOptions;
  /** the Hono app: serve it, or mount it with `yourApp.route("/prefix", edgewire.app)` */
  readonly app: Hono;
  // Which instance serves a request: set by the adapter that received it.
  readonly #requests = new WeakMap<Request, Instance>();

  /** an edgewire serving `options.routes`; throws on duplicate route names or paths, or a path an endpoint of ours takes */
  constructor(options: EdgewireOptions) {
    this.routes = [...options.routes];
    this.options = options;
    const names = new Set<string>();
    const paths = new Set<string>();
    const builtin = new Set(builtinPaths(options));
    for (const route of this.routes) {
      // Hono would serve whichever came first, silently: the user's route or our endpoint.
      if (builtin.has(route.path))
        throw new Error(
          `edgewire: route "${route.name}" has the path ${route.path}, which edgewire's own endpoint takes; move the route, or turn the endpoint off or move it (options health, readiness, metrics, demo, clientScript, asyncapi, batchPush)`,
        );
      if (names.has(route.name))
        throw new Error(`edgewire: two routes are named "${route.name}"; give one of them a name`);
      if (paths.has(route.path)) throw new Error(`edgewire: two routes have the path ${route.path}`);
      names.add(route.name);
      paths.add(route.path);
    }
    this.app = buildApp(this.routes, options, (c) => this.#instanceOf(c));
  }

  /** assemble this edgewire for a runtime */
  assemble(options: AssembleOptions): Instance {
    return new Instance(this, options);
  }

  /** serve `request` with `app` through `instance` (see Instance.fetch) */
  async serveRequest(
    instance: Instance,
    request: Request,
    env: unknown,
    executionCtx: unknown,
    app: Hono,
  ): Promise<Response> {
    this.#requests.set(request, instance);
    // biome-ignore lint/suspicious/noExplicitAny: Hono's fetch takes the runtime's own env and execution context
    return app.fetch(request, env as any, executionCtx as any);
  }

  // Registered by Instance.fetch, the one way in: a request that reached the app any other way (an
  // app.fetch called directly, a Worker exporting the Hono app instead of cloudflare()'s handler, a
  // sub-app mounted with app.mount(), which makes a new Request) fails loudly here, never silently
  // served by some other instance in another mode.
  #instanceOf(c: Context): Instance {
    const instance = this.#requests.get(c.req.raw);
    if (!instance) {
      throw new Error(
        "edgewire: this request did not come through an adapter: serve the edgewire with edgewire/node, /deno or /bun's serve(), or export cloudflare()'s worker — and mount it with app.route(), not app.mount()",
      );
    }
    return instance;
  }
}

/** Make an edgewire from route definitions; hand it to an adapter, or mount `edgewire.app` into your Hono app. */
export function createEdgewire(options: EdgewireOptions): Edgewire {
  return new Edgewire(options);
}

/** The one line Node, Deno and Bun print when they listen. */
export function listeningLine(runtime: string, host: string, port: number, tls = false): string {
  return `edgewire (${runtime}) listening on ${tls ? "https" : "http"}://${host}:${port}`;
}
