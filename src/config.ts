/**
 * One validated configuration. Values come from three places, later ones
 * winning: the built-in defaults, what the app's code sets
 * (`createEdgewire({ config })`), and the environment (process environment on
 * Node/Deno/Bun, `[vars]` and secrets on Cloudflare) — so an operator can tune
 * a deployed app without touching its code. Every setting is one row of
 * SETTINGS below: its variable, its schema, its default and what it means; the
 * README's configuration table is checked against it by a test.
 */
import * as v from "valibot";
import { describeIssues } from "./protocol.ts";

// The defaults of the parts below, here (the design's rule: defaults live in config, not below), so
// every part can read them and config depends on none of the parts.

/** Default largest accepted frame: 1 MiB, the Cloudflare Workers limit, so behaviour is the same everywhere. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** Default bounded history length per room. */
export const DEFAULT_HISTORY_LIMIT = 1000;
/** Default oldest message kept in history: a day. */
export const DEFAULT_HISTORY_MAX_AGE_MS = 24 * 3_600_000;
/** Default time an unoccupied room without messages is remembered: 10 minutes. */
export const DEFAULT_ROOM_IDLE_MS = 10 * 60_000;
/** Default time a push's idempotency key is remembered: a day, as Stripe's API keeps them. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;
/** Default most idempotency keys kept (the memory broker's, all rooms; a Durable Object's, its room). */
export const DEFAULT_IDEMPOTENCY_MAX_KEYS = 100_000;
/** How long push keys are remembered, and how many at most (the oldest go first past it). */
export interface KeyBounds {
  windowMs: number;
  maxKeys: number;
}
/**
 * Default most messages in one batch: 100, a dashboard's tick of widget updates. (A Worker sends
 * each room's part as one subrequest, and Workers Free allows 50 per request: there, a batch
 * should name at most 50 rooms; a part refused by the platform answers try_again_later.)
 */
export const DEFAULT_BATCH_MAX_MESSAGES = 100;
/** Default largest batch body: 4 MiB, four messages at the default message limit (the body is parsed whole). */
export const DEFAULT_BATCH_MAX_BYTES = 4 * 1024 * 1024;
/** Default largest room state, as JSON: 64 KiB, so a change's view costs little to send to every member. */
export const DEFAULT_ROOM_STATE_MAX_BYTES = 64 * 1024;
/** The largest room state a route may allow: 128 KiB, a Durable Object storage value's limit. */
export const MAX_ROOM_STATE_BYTES = 128 * 1024;
/** Most pending timers per room. */
export const DEFAULT_MAX_ROOM_TIMERS = 100;
/** Largest data a timer carries, as JSON. */
export const MAX_TIMER_DATA_BYTES = 4096;
/** Members above which a room announces counts instead of joins and leaves. */
export const DEFAULT_PRESENCE_LIMIT = 100;
/** Long-polling's defaults (docs/protocol.md). */
export const DEFAULT_POLL_OPTIONS = {
  timeoutMs: 25_000,
  idleMs: 60_000,
  batchBytes: 256 * 1024,
  maxQueuedBytes: 4 * 1024 * 1024,
  maxSessions: 10_000,
} as const;

const int = (min: number, max: number) =>
  v.pipe(v.string(), v.regex(/^\d+$/, "must be a whole number"), v.transform(Number), v.minValue(min), v.maxValue(max));
const text = v.pipe(v.string(), v.minLength(1));
const list = v.pipe(
  v.string(),
  v.transform((s) =>
    s
      .split(/[\s,]+/)
      .map((e) => e.trim())
      .filter(Boolean),
  ),
);
const flag = v.pipe(
  v.picklist(["true", "false", "1", "0"], "must be true or false"),
  v.transform((s) => s === "true" || s === "1"),
);

/** One setting: the variable it is read from, how it is parsed, its default (as the variable would spell it). */
interface Setting<S extends v.GenericSchema<string, unknown>> {
  env: string;
  schema: S;
  default?: string;
  /** one line for the configuration reference */
  doc: string;
}
// Keeps each row's exact type, so whether it has a default shows in Config.
const setting = <T extends Setting<v.GenericSchema<string, unknown>>>(s: T): T => s;

/** Every setting edgewire reads. */
export const SETTINGS = {
  port: setting({ env: "PORT", schema: int(0, 65535), default: "8787", doc: "where to listen (Node, Deno, Bun)" }),
  host: setting({ env: "HOST", schema: text, default: "127.0.0.1", doc: "address to listen on (Node, Deno, Bun)" }),
  logLevel: setting({
    env: "EDGEWIRE_LOG_LEVEL",
    schema: v.picklist(["debug", "info", "warn", "error", "silent"]),
    default: "info",
    doc: "structured JSON logs on stdout/stderr at this level and above",
  }),
  allowedOrigins: setting({
    env: "EDGEWIRE_ALLOWED_ORIGINS",
    schema: list,
    doc: "browser origins that may connect: exact (`https://app.example.com`), `https://*.example.com`, or `*` for any; unset: the request's own host only",
  }),
  jwtSecret: setting({ env: "EDGEWIRE_JWT_SECRET", schema: text, doc: "HS256 secret: verify JWTs with it (a secret)" }),
  jwtPublicKey: setting({
    env: "EDGEWIRE_JWT_PUBLIC_KEY",
    schema: text,
    doc: "public key (PEM SPKI or JWK JSON) to verify JWTs with, with `EDGEWIRE_JWT_ALGORITHM`",
  }),
  jwtAlgorithm: setting({
    env: "EDGEWIRE_JWT_ALGORITHM",
    schema: v.picklist(["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]),
    default: "RS256",
    doc: "algorithm of `EDGEWIRE_JWT_PUBLIC_KEY`",
  }),
  jwksUrl: setting({
    env: "EDGEWIRE_JWKS_URL",
    schema: v.pipe(v.string(), v.url()),
    doc: "a JWKS URL to verify JWTs with (keys cached 5 min)",
  }),
  jwtIssuer: setting({ env: "EDGEWIRE_JWT_ISSUER", schema: text, doc: "the `iss` a token must carry" }),
  jwtAudience: setting({ env: "EDGEWIRE_JWT_AUDIENCE", schema: text, doc: "the `aud` a token must carry" }),
  auth: setting({
    env: "EDGEWIRE_AUTH",
    schema: v.picklist(["required", "optional"]),
    doc: 'with a JWT key configured: `required` (default) refuses connections without a valid token, `optional` admits them anonymously (routes with `auth: "required"` still refuse)',
  }),
  pushToken: setting({
    env: "EDGEWIRE_PUSH_TOKEN",
    schema: text,
    doc: "bearer token the backend push API requires (a secret); Node/Deno/Bun make a random one per run when unset, Workers refuse every push",
  }),
  pushOpen: setting({
    env: "EDGEWIRE_PUSH_OPEN",
    schema: flag,
    default: "false",
    doc: "`true` opens the backend push API to anyone (only for trusted networks)",
  }),
  metricsToken: setting({
    env: "EDGEWIRE_METRICS_TOKEN",
    schema: text,
    doc: "bearer token `/metrics` requires when set (a secret)",
  }),
  inspector: setting({
    env: "EDGEWIRE_INSPECTOR",
    schema: flag,
    default: "false",
    doc: "`true` serves the live inspector at `/inspector/` (Node, Deno, Bun); its data needs `EDGEWIRE_METRICS_TOKEN`, which must then be set",
  }),
  trustedProxies: setting({
    env: "EDGEWIRE_TRUSTED_PROXIES",
    schema: list,
    doc: "proxies (IPs, CIDRs) whose `X-Forwarded-For` names the client; unset: none, the peer address is the client",
  }),
  redisUrl: setting({
    env: "REDIS_URL",
    schema: v.pipe(v.string(), v.regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")),
    doc: "run on the Redis broker (a fleet of Node/Deno/Bun instances shares rooms); unset: the embedded memory broker",
  }),
  redisPrefix: setting({
    env: "EDGEWIRE_REDIS_PREFIX",
    schema: v.pipe(v.string(), v.regex(/^[\w:.-]{1,64}$/, "letters, digits, _ : . -")),
    default: "edgewire:",
    doc: "prefix of every Redis key and channel, so several apps (or tests) share one Redis",
  }),
  tlsCert: setting({
    env: "EDGEWIRE_TLS_CERT",
    schema: text,
    doc: "path of a PEM certificate (chain): serve `https://` and `wss://` yourself (Node, Deno, Bun); needs `EDGEWIRE_TLS_KEY`",
  }),
  tlsKey: setting({
    env: "EDGEWIRE_TLS_KEY",
    schema: text,
    doc: "path of the PEM private key of `EDGEWIRE_TLS_CERT` (a secret)",
  }),
  maxMessageBytes: setting({
    env: "EDGEWIRE_MAX_MESSAGE_BYTES",
    schema: int(1024, 64 * 1024 * 1024),
    default: String(DEFAULT_MAX_MESSAGE_BYTES),
    doc: "largest frame or push body; larger frames close with 1009",
  }),
  maxRoomNameLength: setting({
    env: "EDGEWIRE_MAX_ROOM_NAME",
    schema: int(1, 256),
    default: "64",
    doc: "longest room name; longer ones are refused with 400 `invalid_room`",
  }),
  maxRoomMembers: setting({
    env: "EDGEWIRE_MAX_ROOM_MEMBERS",
    schema: int(1, 10_000_000),
    default: "10000",
    doc: "members per room; one more is refused with 503 `room_full` before the upgrade",
  }),
  maxRooms: setting({
    env: "EDGEWIRE_MAX_ROOMS",
    schema: int(1, 10_000_000),
    default: "10000",
    doc: "rooms with members on one instance; a new one beyond is refused with 503 `too_many_rooms`",
  }),
  rateLimit: setting({
    env: "EDGEWIRE_RATE_LIMIT",
    schema: int(1, 10_000_000),
    default: "100",
    doc: "frames per second a room member may send (token bucket); over it: error frame `rate_limited` with `retryAfterMs`",
  }),
  rateBurst: setting({
    env: "EDGEWIRE_RATE_BURST",
    schema: int(1, 10_000_000),
    default: "200",
    doc: "frames a room member may send at once; more than this many refused within a second close the connection with 1008 (`rate_limited: flooding`), unanswered",
  }),
  maxConnectionsPerAddress: setting({
    env: "EDGEWIRE_MAX_CONNECTIONS_PER_ADDRESS",
    schema: int(1, 10_000_000),
    default: "256",
    doc: "open connections (sockets and polling sessions) per client address on one instance; more: 429 `too_many_connections`",
  }),
  maxBufferedBytes: setting({
    env: "EDGEWIRE_MAX_BUFFERED_BYTES",
    schema: int(64 * 1024, 1024 * 1024 * 1024),
    default: String(4 * 1024 * 1024),
    doc: "bytes queued to one connection that does not read; past it the connection is closed with 1013 `slow_consumer`",
  }),
  heartbeatMs: setting({
    env: "EDGEWIRE_HEARTBEAT_MS",
    schema: int(100, 600_000),
    default: "25000",
    doc: "ping interval, below every proxy's idle timeout (nginx 60 s, ALB 60 s, Heroku 55 s, GCP 30 s); two missed: closed",
  }),
  closeTimeoutMs: setting({
    env: "EDGEWIRE_CLOSE_TIMEOUT_MS",
    schema: int(100, 600_000),
    default: "5000",
    doc: "after the server's Close, how long a peer has to answer before its TCP connection is dropped (ws's own is 30 s; Deno kept it forever)",
  }),
  drainMs: setting({
    env: "EDGEWIRE_DRAIN_MS",
    schema: int(0, 600_000),
    default: "5000",
    doc: "on SIGTERM/SIGINT, sockets are closed with 1012 spread over this window, so clients do not reconnect at once",
  }),
  historyLimit: setting({
    env: "EDGEWIRE_HISTORY_LIMIT",
    schema: int(0, 1_000_000),
    default: String(DEFAULT_HISTORY_LIMIT),
    doc: "messages kept per room (memory, or SQLite in a Durable Object)",
  }),
  historyMaxAgeMs: setting({
    env: "EDGEWIRE_HISTORY_MAX_AGE_MS",
    schema: int(1000, 365 * 24 * 3_600_000),
    default: String(DEFAULT_HISTORY_MAX_AGE_MS),
    doc: "messages older than this leave the history (a resume further back is answered `resync`)",
  }),
  roomIdleMs: setting({
    env: "EDGEWIRE_ROOM_IDLE_MS",
    schema: int(1000, 7 * 24 * 3_600_000),
    default: String(DEFAULT_ROOM_IDLE_MS),
    doc: "a room nobody is in and nobody wrote to for this long is forgotten (it starts again at seq 1, in a new epoch): the memory broker drops it; on Redis its keys expire (an instance's heartbeat refreshes them for the rooms it has members in, a publish for the others)",
  }),
  pushBatchMaxMessages: setting({
    env: "EDGEWIRE_PUSH_BATCH_MAX_MESSAGES",
    schema: int(1, 10_000),
    default: String(DEFAULT_BATCH_MAX_MESSAGES),
    doc: "messages one batch push (`POST /messages`) may carry; more: 413 `batch_too_large`",
  }),
  pushBatchMaxBytes: setting({
    env: "EDGEWIRE_PUSH_BATCH_MAX_BYTES",
    schema: int(1024, 256 * 1024 * 1024),
    default: String(DEFAULT_BATCH_MAX_BYTES),
    doc: "largest batch push body; larger: 413 `batch_too_large` (each message's data is still held to `EDGEWIRE_MAX_MESSAGE_BYTES`)",
  }),
  idempotencyWindowMs: setting({
    env: "EDGEWIRE_IDEMPOTENCY_WINDOW_MS",
    schema: int(1000, 30 * 24 * 3_600_000),
    default: String(DEFAULT_IDEMPOTENCY_WINDOW_MS),
    doc: "a backend push repeating an `Idempotency-Key` used in its room within this long publishes nothing and answers the first push's seq; keys expire after it (Redis expires each itself)",
  }),
  idempotencyMaxKeys: setting({
    env: "EDGEWIRE_IDEMPOTENCY_MAX_KEYS",
    schema: int(1, 10_000_000),
    default: String(DEFAULT_IDEMPOTENCY_MAX_KEYS),
    doc: "push keys kept at most, oldest dropped first: by the memory broker over all rooms (about 250 B each with a UUID key: 25 MB at the default), by a Durable Object for its room; Redis keeps every key for the window",
  }),
  presenceLimit: setting({
    env: "EDGEWIRE_PRESENCE_LIMIT",
    schema: int(1, 100_000),
    default: String(DEFAULT_PRESENCE_LIMIT),
    doc: "rooms with more members announce a coalesced count (≤ 4/s) instead of every join and leave",
  }),
  pollTimeoutMs: setting({
    env: "EDGEWIRE_POLL_TIMEOUT_MS",
    schema: int(100, 120_000),
    default: String(DEFAULT_POLL_OPTIONS.timeoutMs),
    doc: "how long a long-polling GET is held",
  }),
  pollIdleMs: setting({
    env: "EDGEWIRE_POLL_IDLE_MS",
    schema: int(100, 3_600_000),
    default: String(DEFAULT_POLL_OPTIONS.idleMs),
    doc: "a polling session with no GET for this long is closed (as 1006)",
  }),
  pollMaxSessions: setting({
    env: "EDGEWIRE_POLL_MAX_SESSIONS",
    schema: int(1, 10_000_000),
    default: String(DEFAULT_POLL_OPTIONS.maxSessions),
    doc: "polling sessions per instance; more: 503 `try_again_later`",
  }),
  pollMaxQueuedBytes: setting({
    env: "EDGEWIRE_POLL_MAX_QUEUED_BYTES",
    schema: int(64 * 1024, 1024 * 1024 * 1024),
    default: String(DEFAULT_POLL_OPTIONS.maxQueuedBytes),
    doc: "bytes waiting for a polling session's GETs; past it the session is closed with 1013 `slow_consumer`",
  }),
} as const;

type Settings = typeof SETTINGS;
type Value<K extends keyof Settings> = v.InferOutput<Settings[K]["schema"]>;

/** The parsed configuration: every setting, with its default where it has one. */
export type Config = {
  [K in keyof Settings]: Settings[K] extends { default: string } ? Value<K> : Value<K> | undefined;
};

/** The settings an app may set in code (`createEdgewire({ config })`), as values. */
export type ConfigInput = Partial<{ [K in keyof Settings]: Value<K> | string | number | boolean }>;

/** The environment variables edgewire reads, as a valibot schema (strings in, typed values out). */
export const ConfigSchema = v.object(
  Object.fromEntries(
    Object.values(SETTINGS).map((s) => [
      s.env,
      "default" in s ? v.optional(s.schema, s.default) : v.optional(s.schema),
    ]),
  ) as Record<string, v.GenericSchema>,
);

// An app's code default, spelled as the environment would spell it.
function spell(value: unknown): string {
  return Array.isArray(value) ? value.join(",") : String(value);
}

/** Parse `env` over the app's own `defaults`; throws one readable error naming every bad variable. */
export function loadConfig(env: Record<string, unknown>, defaults: ConfigInput = {}): Config {
  const strings: Record<string, string> = {};
  // The app's values go through the same validation as the environment's.
  for (const [key, value] of Object.entries(defaults)) {
    const s = SETTINGS[key as keyof Settings];
    if (!s) throw new Error(`edgewire: bad configuration: no setting named ${key}`);
    if (value !== undefined) strings[s.env] = spell(value);
  }
  // Only strings count: a Worker's env also holds bindings (Durable Object namespaces).
  for (const s of Object.values(SETTINGS)) {
    const value = env[s.env];
    if (typeof value === "string" && value !== "") strings[s.env] = value;
  }
  const parsed = v.safeParse(ConfigSchema, strings);
  if (!parsed.success) throw new Error(`edgewire: bad configuration: ${describeIssues(parsed.issues)}`);
  const out = parsed.output as Record<string, unknown>;
  const config: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS)) config[key] = out[s.env];
  // Half a TLS setup would serve plain HTTP where the operator expected wss://: refuse it.
  if (!config.tlsCert !== !config.tlsKey)
    throw new Error("edgewire: bad configuration: EDGEWIRE_TLS_CERT and EDGEWIRE_TLS_KEY go together");
  // An inspector shows room names, members and message contents: never without a credential.
  if (config.inspector && !config.metricsToken)
    throw new Error(
      "edgewire: bad configuration: EDGEWIRE_INSPECTOR needs EDGEWIRE_METRICS_TOKEN (its API's bearer token)",
    );
  return config as Config;
}

/** The bounds of a history store (memory or a Durable Object's SQLite) from `config`: one mapping for both. */
export function historyBounds(config: Config): { limit: number; maxAgeMs: number; keys: KeyBounds } {
  return {
    limit: config.historyLimit,
    maxAgeMs: config.historyMaxAgeMs,
    keys: { windowMs: config.idempotencyWindowMs, maxKeys: config.idempotencyMaxKeys },
  };
}
