/**
 * What the long-running server adapters (Node, Deno, Bun) share: the options
 * of `serve(edgewire, options)` and the server it resolves to. The same
 * shape on all three, so switching runtime is changing one import.
 */
import type { Hono } from "hono";
import { type Edgewire, type Instance, listeningLine } from "./assemble.ts";
import type { Runtime } from "./core/contract.ts";

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
}

/** A running edgewire server. */
export interface EdgewireServer {
  /** the port it listens on */
  readonly port: number;
  /** the assembled instance (config, engine) */
  readonly instance: Instance;
  /** close every socket (1001 going away), stop listening, release the broker */
  stop(): Promise<void>;
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
  ): Promise<{ port: number; close(): Promise<void> }>;
  /** call `handler` on SIGINT and SIGTERM */
  onSignal(handler: () => void): void;
  /** end the process */
  exit(code: number): void;
}

/** The flow Node, Deno and Bun share: assemble, listen, print where, stop on signals. */
export async function serveWith(
  edgewire: Edgewire,
  options: ServeOptions,
  env: Record<string, string | undefined>,
  parts: ServerParts,
): Promise<EdgewireServer> {
  const instance = edgewire.assemble({ runtime: parts.runtime, env: options.env ?? env });
  // Requests reaching the edgewire's app some other way (a user's own fetch call) are served here too.
  edgewire.setFallback(instance);
  const hostname = options.hostname ?? instance.config.host;
  const listening = await parts.listen(
    instance,
    options.app ?? edgewire.app,
    options.port ?? instance.config.port,
    hostname,
  );
  console.log(listeningLine(parts.runtime.name, hostname, listening.port));
  const stop = async () => {
    await instance.close();
    await listening.close();
  };
  if (options.signals ?? true) {
    let stopping = false;
    parts.onSignal(() => {
      if (stopping) return parts.exit(1); // a second signal: stop waiting
      stopping = true;
      const deadline = setTimeout(() => parts.exit(0), 5000);
      void stop().finally(() => {
        clearTimeout(deadline);
        parts.exit(0);
      });
    });
  }
  return { port: listening.port, instance, stop };
}
