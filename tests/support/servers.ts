/**
 * Start the real server under each runtime as a child process on a free port,
 * wait until `/healthz` answers, and stop it (the whole process group) after.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** The runtimes every conformance case runs on. */
export const RUNTIMES = ["node", "deno", "bun", "workerd"] as const;
/** One of the runtimes. */
export type RuntimeName = (typeof RUNTIMES)[number];

/** A running server. */
export interface RunningServer {
  runtime: RuntimeName;
  http: string;
  ws: string;
  port: number;
  /** everything the process printed, for failure reports */
  output(): string;
  stop(): Promise<void>;
}

const root = resolve(import.meta.dirname, "../..");
const bin = (name: string) => join(root, "node_modules/.bin", name);

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Offline settings wrangler needs on a machine with no network. */
export const WRANGLER_ENV = {
  CI: "true",
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

/** `wrangler dev` on `port`, offline, with a fresh state directory (every run starts with empty Durable Objects). */
export function wranglerDev(port: number, inspector: number, extra: string[] = []): [string, string[]] {
  const state = mkdtempSync(join(tmpdir(), "edgewire-wrangler-"));
  const args = ["dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspector)];
  return [bin("wrangler"), [...args, "--persist-to", state, ...extra]];
}

/** Stop a detached child and its whole process group: SIGTERM, then SIGKILL after 3 s. */
export async function stopGroup(child: ChildProcess, gone: Promise<unknown>): Promise<void> {
  if (child.pid === undefined) return;
  const pid = child.pid;
  try {
    process.kill(-pid, "SIGTERM");
  } catch {}
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {}
  }, 3000);
  await gone;
  clearTimeout(timer);
}

function command(
  runtime: RuntimeName,
  port: number,
  inspector: number,
  env: Record<string, string>,
): [string, string[]] {
  switch (runtime) {
    case "node":
      return [bin("tsx"), ["main/node.ts"]];
    case "deno":
      return [bin("deno"), ["run", "--allow-net", "--allow-env", "main/deno.ts"]];
    case "bun":
      return [bin("bun"), ["main/bun.ts"]];
    case "workerd":
      // A Worker reads its configuration from vars, not from the process environment.
      return wranglerDev(
        port,
        inspector,
        Object.entries(env).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
      );
  }
}

/** Start `runtime` and wait (up to `ms`) until it serves `/healthz`. */
export async function startServer(
  runtime: RuntimeName,
  env: Record<string, string> = {},
  ms = 60_000,
): Promise<RunningServer> {
  const port = await freePort();
  const inspector = await freePort();
  const [cmd, args] = command(runtime, port, inspector, env);
  let output = "";
  const child: ChildProcess = spawn(cmd, args, {
    cwd: root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...WRANGLER_ENV, DENO_NO_UPDATE_CHECK: "1", PORT: String(port), HOST: "127.0.0.1", ...env },
  });
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  let exited = false;
  child.once("exit", () => (exited = true));
  const stop = async () => {
    if (exited) return;
    await stopGroup(child, new Promise<void>((r) => child.once("exit", () => r())));
  };
  const http = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + ms;
  for (;;) {
    if (exited) throw new Error(`${runtime} exited before serving:\n${output}`);
    try {
      const res = await fetch(`${http}/healthz`);
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${runtime} did not serve /healthz within ${ms} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { runtime, http, ws: `ws://127.0.0.1:${port}`, port, output: () => output, stop };
}
