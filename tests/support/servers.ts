/**
 * The edgewire service under each runtime, started with the public harness
 * (`edgewire/testing`) exactly as a user would start their own edgewire.
 */
import { resolve } from "node:path";
import {
  freePort,
  RUNTIMES,
  type RunningServer,
  type RuntimeName,
  type StartOptions,
  startServer as startWith,
  stopGroup,
  WRANGLER_ENV,
  wranglerDev as wranglerDevIn,
} from "../../testing/index.ts";

export { freePort, RUNTIMES, type RunningServer, type RuntimeName, stopGroup, WRANGLER_ENV };

/** The repository's root. */
export const ROOT = resolve(import.meta.dirname, "../..");

/** `wrangler dev` in this repository (see edgewire/testing). */
export const wranglerDev = (port: number, inspector: number, extra: string[] = []) =>
  wranglerDevIn(ROOT, port, inspector, extra);

/** Start the edgewire service (service/service.ts) under `runtime` and wait (up to `ms`) until it serves `/healthz` (over TLS trusting `ca`, when `env` turns TLS on). */
export function startServer(
  runtime: RuntimeName,
  env: Record<string, string> = {},
  ms = 60_000,
  ca?: string,
): Promise<RunningServer> {
  return startWith(runtime, {
    entry: "service/service.ts",
    export: "service",
    root: ROOT,
    env,
    timeoutMs: ms,
    ...(ca ? { ca } : {}),
  });
}

/** Start any edgewire module of this repository (an example) under `runtime`. */
export function startModule(runtime: RuntimeName, options: StartOptions): Promise<RunningServer> {
  return startWith(runtime, { root: ROOT, ...options });
}
