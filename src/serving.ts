/**
 * What the long-running server adapters (Node, Deno, Bun) share: the options
 * of `serve(edgewire, options)` and the server it resolves to. The same
 * shape on all three, so switching runtime is changing one import.
 */
import type { Hono } from "hono";
import { type Edgewire, type Instance, listeningLine } from "./assemble.ts";
import type { Runtime } from "./core/ports.ts";
import { PresencePolicy } from "./pubsub/presence.ts";

/** Where and how to serve an edgewire. */
export interface ServeOptions {
  /** port to listen on (default: the config's PORT, 8787; 0 picks a free one) */
  port?: number;
  /** address to listen on (default: the config's HOST, 127.0.0.1) */
  hostname?: string;
  /** your Hono app with the edgewire mounted in it (default: the edgewire's own app) */
  app?: Hono;
  /** where configuration is read from (default: the process environment) */
  env?: Record<string, string | undefined>;
  /** on SIGINT/SIGTERM close every socket and exit (default true) */
  signals?: boolean;
  /** serve https:// and wss:// with this PEM certificate and key (default: the files EDGEWIRE_TLS_CERT/KEY name) */
  tls?: Tls;
}

// Headers the 101 itself decides (the handshake's own, and those of a body it does not have).
const HANDSHAKE_HEADERS = new Set([
  "connection",
  "upgrade",
  "content-length",
  "content-type",
  "transfer-encoding",
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "sec-websocket-version",
]);

/**
 * The headers a user's middleware set on the app's answer to an upgrade (secureHeaders(),
 * timing(), a request id), to put on the 101 where the runtime writes the 101 itself (`ws` on
 * Node, Bun): every runtime then sends what the middleware set.
 */
export function upgradeHeaders(response: Response): [string, string][] {
  const out: [string, string][] = [];
  response.headers.forEach((value, name) => {
    if (!HANDSHAKE_HEADERS.has(name)) out.push([name, value]);
  });
  return out;
}

/** The Fetch Request of an upgrade a runtime hands over as raw HTTP/1.1 parts (Node's IncomingMessage). */
export function upgradeRequest(
  req: { readonly headers: Readonly<Record<string, string | string[] | undefined>>; readonly url?: string | undefined },
  scheme: string,
): Request {
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers))
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(", ") : value);
  return new Request(`${scheme}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, { headers });
}

/** The head of an HTTP/1.1 answer refusing an upgrade, for a runtime that writes it to the socket itself (Node). */
export function refusalHead(response: Response, statusText: string, bodyLength: number): string {
  let head = `HTTP/1.1 ${response.status} ${statusText}\r\n`;
  response.headers.forEach((value, key) => {
    if (key !== "content-length" && key !== "connection") head += `${key}: ${value}\r\n`;
  });
  return `${head}content-length: ${bodyLength}\r\nconnection: close\r\n\r\n`;
}

/** A PEM certificate (chain) and its private key. */
export interface Tls {
  cert: string;
  key: string;
}

/** A running edgewire server. */
export interface EdgewireServer {
  /** the port it listens on */
  readonly port: number;
  /** the assembled instance (config, engine) */
  readonly instance: Instance;
  /** close every socket (1001 going away), stop listening, release the broker */
  stop(): Promise<void>;
  /** the backend push token in force (generated for this run when none was configured) */
  readonly pushToken: string | undefined;
}

/** What a server adapter supplies to `serveWith`: its runtime, how it listens, signals and exit. */
export interface ServerParts {
  runtime: Runtime;
  /** listen; resolves to the bound port and a function that stops listening once connections are closed */
  listen(
    instance: Instance,
    app: Hono,
    port: number,
    hostname: string,
    tls: Tls | undefined,
  ): Promise<{ port: number; close(): Promise<void> }>;
  /** read a text file (the TLS certificate and key) */
  readText(path: string): Promise<string>;
  /** call `handler` on SIGINT and SIGTERM */
  onSignal(handler: () => void): void;
  /** end the process */
  exit(code: number): void;
}

/** The flow Node, Deno and Bun share: assemble, listen, print where, heartbeats, drain and stop on signals. */
export async function serveWith(
  edgewire: Edgewire,
  options: ServeOptions,
  env: Record<string, string | undefined>,
  parts: ServerParts,
): Promise<EdgewireServer> {
  const source = { ...(options.env ?? env) };
  // Backend push is closed without a credential. So that local development stays one command,
  // a server without one makes a random token for this run and says it once.
  let generated: string | undefined;
  if (!source.EDGEWIRE_PUSH_TOKEN && !/^(true|1)$/.test(source.EDGEWIRE_PUSH_OPEN ?? "")) {
    generated = randomToken();
    source.EDGEWIRE_PUSH_TOKEN = generated;
  }
  // A fleet: with REDIS_URL, rooms live in Redis — its module imported only then (Workers never bundle
  // it), the broker made by the assembly from the one configuration it loads.
  const redis = source.REDIS_URL ? (await import("./pubsub/redis.ts")).RedisBroker : undefined;
  const instance = edgewire.assemble({
    runtime: parts.runtime,
    env: source,
    ...(redis
      ? {
          broker: (config, log) =>
            new redis({
              url: config.redisUrl as string,
              prefix: config.redisPrefix,
              presence: new PresencePolicy({ limit: config.presenceLimit }),
              historyLimit: config.historyLimit,
              historyMaxAgeMs: config.historyMaxAgeMs,
              roomIdleMs: config.roomIdleMs,
              idempotencyWindowMs: config.idempotencyWindowMs,
              log,
            }),
        }
      : {}),
  });
  await instance.start();
  const hostname = options.hostname ?? instance.config.host;
  const { tlsCert, tlsKey } = instance.config;
  const tls =
    options.tls ??
    (tlsCert && tlsKey ? { cert: await parts.readText(tlsCert), key: await parts.readText(tlsKey) } : undefined);
  const listening = await parts.listen(
    instance,
    options.app ?? edgewire.app,
    options.port ?? instance.config.port,
    hostname,
    tls,
  );
  instance.log.info(listeningLine(parts.runtime.name, hostname, listening.port, tls !== undefined), {
    port: listening.port,
  });
  if (generated) {
    instance.log.info(`backend push token for this run: ${generated} (set EDGEWIRE_PUSH_TOKEN to choose one)`, {
      pushToken: generated,
    });
  }
  const stop = () => instance.close(undefined, undefined, () => listening.close());
  if (options.signals ?? true) {
    let stopping = 0;
    parts.onSignal(() => {
      // A second signal stops waiting — but not one that arrives with the first: Ctrl-C reaches the
      // whole process group, and wrappers in it (npm, tsx, the bun shim) relay the same signal again.
      // "With" is within a second: a starved process (seen under load in CI) handled a copy sent
      // 50 ms after the first more than 0.5 s later.
      if (stopping) return Date.now() - stopping > 1000 ? parts.exit(1) : undefined;
      stopping = Date.now();
      // Bounded: the drain window, the closing handshakes, and a little more.
      const deadline = setTimeout(() => parts.exit(0), instance.config.drainMs + 3000);
      void instance
        .drain()
        .then(stop)
        .finally(() => {
          clearTimeout(deadline);
          parts.exit(0);
        });
    });
  }
  return { port: listening.port, instance, stop, pushToken: instance.config.pushToken };
}

/** 128 random bits, URL-safe. */
function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
