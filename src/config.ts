/**
 * One validated configuration. Values come from three places, later ones
 * winning: the built-in defaults, what the app's code sets
 * (`createEdgewire({ config })`), and the environment (process environment on
 * Node/Deno/Bun, `[vars]` and secrets on Cloudflare) — so an operator can tune
 * a deployed app without touching its code. Every adapter feeds the same parser.
 */
import * as v from "valibot";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./core/engine.ts";
import { DEFAULT_POLL_OPTIONS } from "./http/long-poll.ts";
import { describeIssues } from "./protocol.ts";
import { DEFAULT_HISTORY_LIMIT, DEFAULT_ROOM_IDLE_MS } from "./pubsub/history.ts";
import { DEFAULT_PRESENCE_LIMIT } from "./pubsub/presence.ts";

const intFrom = (min: number, max: number) =>
  v.pipe(v.string(), v.regex(/^\d+$/, "must be a whole number"), v.transform(Number), v.minValue(min), v.maxValue(max));

/** Environment variables edgewire reads, with their defaults. */
export const ConfigSchema = v.object({
  PORT: v.optional(intFrom(0, 65535), "8787"),
  HOST: v.optional(v.pipe(v.string(), v.minLength(1)), "127.0.0.1"),
  /** when set, `POST {room route}/messages` needs `Authorization: Bearer <token>` */
  EDGEWIRE_PUSH_TOKEN: v.optional(v.pipe(v.string(), v.minLength(1))),
  EDGEWIRE_MAX_MESSAGE_BYTES: v.optional(intFrom(1024, 64 * 1024 * 1024), String(DEFAULT_MAX_MESSAGE_BYTES)),
  EDGEWIRE_HISTORY_LIMIT: v.optional(intFrom(0, 1_000_000), String(DEFAULT_HISTORY_LIMIT)),
  /** a room with no members and no messages for this long is forgotten (memory broker) */
  EDGEWIRE_ROOM_IDLE_MS: v.optional(intFrom(1000, 7 * 24 * 3_600_000), String(DEFAULT_ROOM_IDLE_MS)),
  /** rooms with more members than this announce counts instead of each join and leave */
  EDGEWIRE_PRESENCE_LIMIT: v.optional(intFrom(1, 100_000), String(DEFAULT_PRESENCE_LIMIT)),
  /** how long a long-polling GET is held without frames */
  EDGEWIRE_POLL_TIMEOUT_MS: v.optional(intFrom(100, 120_000), String(DEFAULT_POLL_OPTIONS.timeoutMs)),
  /** a long-polling session with no GET for this long is closed */
  EDGEWIRE_POLL_IDLE_MS: v.optional(intFrom(100, 3_600_000), String(DEFAULT_POLL_OPTIONS.idleMs)),
});

/** The parsed configuration. */
export interface Config {
  port: number;
  host: string;
  pushToken: string | undefined;
  maxMessageBytes: number;
  historyLimit: number;
  roomIdleMs: number;
  presenceLimit: number;
  pollTimeoutMs: number;
  pollIdleMs: number;
}

/** Which variable each setting is read from. */
const VARIABLES: Record<keyof Config, keyof typeof ConfigSchema.entries> = {
  port: "PORT",
  host: "HOST",
  pushToken: "EDGEWIRE_PUSH_TOKEN",
  maxMessageBytes: "EDGEWIRE_MAX_MESSAGE_BYTES",
  historyLimit: "EDGEWIRE_HISTORY_LIMIT",
  roomIdleMs: "EDGEWIRE_ROOM_IDLE_MS",
  presenceLimit: "EDGEWIRE_PRESENCE_LIMIT",
  pollTimeoutMs: "EDGEWIRE_POLL_TIMEOUT_MS",
  pollIdleMs: "EDGEWIRE_POLL_IDLE_MS",
};

/** Parse `env` over the app's own `defaults`; throws one readable error naming every bad variable. */
export function loadConfig(env: Record<string, unknown>, defaults: Partial<Config> = {}): Config {
  const strings: Record<string, string> = {};
  // The app's values go through the same validation as the environment's.
  for (const [key, value] of Object.entries(defaults)) {
    if (value !== undefined) strings[VARIABLES[key as keyof Config]] = String(value);
  }
  // Only strings count: a Worker's env also holds bindings (Durable Object namespaces).
  for (const key of Object.keys(ConfigSchema.entries)) {
    const value = env[key];
    if (typeof value === "string" && value !== "") strings[key] = value;
  }
  const parsed = v.safeParse(ConfigSchema, strings);
  if (!parsed.success) throw new Error(`edgewire: bad configuration: ${describeIssues(parsed.issues)}`);
  const c = parsed.output;
  return {
    port: c.PORT,
    host: c.HOST,
    pushToken: c.EDGEWIRE_PUSH_TOKEN,
    maxMessageBytes: c.EDGEWIRE_MAX_MESSAGE_BYTES,
    historyLimit: c.EDGEWIRE_HISTORY_LIMIT,
    roomIdleMs: c.EDGEWIRE_ROOM_IDLE_MS,
    presenceLimit: c.EDGEWIRE_PRESENCE_LIMIT,
    pollTimeoutMs: c.EDGEWIRE_POLL_TIMEOUT_MS,
    pollIdleMs: c.EDGEWIRE_POLL_IDLE_MS,
  };
}
