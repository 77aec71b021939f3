/**
 * What every long-running server adapter (Node, Deno, Bun) builds the same way:
 * configuration, the embedded broker, the engine and the app. The adapter only
 * adds its runtime's sockets and listener.
 */
import type { Hono } from "hono";
import { type AppOptions, createApp } from "./app.ts";
import { MemoryBroker } from "./brokers/memory.ts";
import { type Config, loadConfig } from "./config.ts";
import { Engine } from "./engine.ts";
import { MemoryHistory } from "./rooms/history.ts";
import type { Runtime } from "./runtime.ts";

/** The assembled service for one process. */
export interface Edgewire {
  config: Config;
  engine: Engine;
  app: Hono;
}

/** Assemble edgewire from environment variables and the adapter's runtime. */
export function createEdgewire(env: Record<string, unknown>, runtime: Runtime): Edgewire {
  const config = loadConfig(env);
  const broker = new MemoryBroker({
    history: new MemoryHistory(config.historyLimit),
    presenceLimit: config.presenceLimit,
  });
  const publish = runtime.publish?.bind(runtime);
  const engine = new Engine({ broker, maxMessageBytes: config.maxMessageBytes, ...(publish ? { publish } : {}) });
  const app = createApp({ runtime, engine, ...appOptions(config) });
  return { config, engine, app };
}

/** The app options that come from configuration (shared with the Cloudflare adapter). */
export function appOptions(config: Config): Pick<AppOptions, "pushToken" | "poll"> {
  return {
    ...(config.pushToken ? { pushToken: config.pushToken } : {}),
    poll: { timeoutMs: config.pollTimeoutMs, idleMs: config.pollIdleMs },
  };
}

/** The one line every adapter logs when it listens. */
export function listeningLine(runtime: string, host: string, port: number): string {
  return `edgewire (${runtime}) listening on http://${host}:${port}`;
}
