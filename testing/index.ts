/**
 * edgewire/testing: start your edgewire under node, deno, bun and workerd and
 * talk to it over real sockets — the harness edgewire's own conformance suite
 * runs on. Give it a module that exports your edgewire (and, if you mount it,
 * your Hono app as `app`); it writes a tiny launcher per runtime next to your
 * node_modules, starts it on a free port, waits until it answers and stops the
 * whole process group after. This is Node tooling for tests (it spawns
 * processes), so it lives outside `src/`, which touches no runtime API.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The runtimes an edgewire runs on. */
export const RUNTIMES = ["node", "deno", "bun", "workerd"] as const;
/** One of the runtimes. */
export type RuntimeName = (typeof RUNTIMES)[number];

/** How to start an edgewire. */
export interface StartOptions {
  /** the module exporting the edgewire (a path, relative to `root`) */
  entry: string;
  /** the export holding the edgewire (default "default") */
  export?: string;
  /** the export holding your Hono app with the edgewire mounted in it, if any (default: "app" when present) */
  appExport?: string;
  /** environment variables (on workerd: vars) */
  env?: Record<string, string>;
  /** the project directory holding node_modules (default: process.cwd()) */
  root?: string;
  /** the path that answers 200 once the server is up (default "/healthz") */
  health?: string;
  /** the port to listen on (default: a free one) — e.g. a successor started where a stopped server's clients come back */
  port?: number;
  /** how long to wait for it (default 60 s) */
  timeoutMs?: number;
  /** workerd: the compatibility date of the generated wrangler config (default 2026-04-26) */
  compatibilityDate?: string;
  /**
   * the PEM certificate to trust when `env` turns TLS on (EDGEWIRE_TLS_CERT/KEY): the harness then
   * probes over https and hands out https:// and wss:// addresses
   */
  ca?: string;
}

/** A running server. */
export interface RunningServer {
  runtime: RuntimeName;
  /** `http://127.0.0.1:<port>` (`https://` with TLS) */
  http: string;
  /** `ws://127.0.0.1:<port>` (`wss://` with TLS) */
  ws: string;
  port: number;
  /** everything the process printed, for failure reports */
  output(): string;
  /** send a signal to the server's process group (e.g. SIGTERM, to watch a graceful shutdown) */
  signal(signal: NodeJS.Signals): void;
  /** resolves with the exit code (null when killed by a signal) once the process has exited */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Offline settings wrangler needs on a machine with no network. */
export const WRANGLER_ENV = {
  CI: "true",
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

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

// This file runs from source (.ts, in edgewire's own repo) or built (.js, in a user's node_modules):
// the adapters sit next to it either way.
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const adapterFile = (runtime: string) => fileURLToPath(new URL(`../adapters/${runtime}${ext}`, import.meta.url));

// Relative specifiers: esbuild (wrangler) does not resolve file: URLs, and Deno wants plain paths from a launcher.
function specifier(fromDir: string, file: string): string {
  const rel = relative(fromDir, file).split(sep).join("/");
  return JSON.stringify(rel.startsWith(".") ? rel : `./${rel}`);
}

/** A binary from the project's node_modules/.bin, else from PATH. */
function binary(root: string, name: string): string {
  const local = join(root, "node_modules/.bin", name);
  return existsSync(local) ? local : name;
}

/** `wrangler dev` on `port`, offline, with a fresh state directory (every run starts with empty Durable Objects). */
export function wranglerDev(root: string, port: number, inspector: number, extra: string[] = []): [string, string[]] {
  const state = mkdtempSync(join(tmpdir(), "edgewire-wrangler-"));
  const args = ["dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspector)];
  return [binary(root, "wrangler"), [...args, "--persist-to", state, ...extra]];
}

let launchers = 0;

// The launcher lives under the project's node_modules so every runtime resolves packages from there.
function writeLauncher(root: string, runtime: RuntimeName, options: StartOptions): string {
  const dir = join(root, "node_modules/.cache/edgewire-testing");
  mkdirSync(dir, { recursive: true });
  const entry = specifier(dir, isAbsolute(options.entry) ? options.entry : resolve(root, options.entry));
  if (runtime === "deno") {
    // Evaluated with cwd = root, so its specifiers are relative to root.
    const fromRoot = (file: string) => specifier(root, file);
    const abs = isAbsolute(options.entry) ? options.entry : resolve(root, options.entry);
    const code = `import * as mod from ${fromRoot(abs)};\nimport { serve } from ${fromRoot(adapterFile("deno"))};\nconst edgewire = mod[${JSON.stringify(options.export ?? "default")}];\nconst app = mod[${JSON.stringify(options.appExport ?? "app")}];\nawait serve(edgewire, { port: Number(Deno.env.get("PORT")), hostname: "127.0.0.1", ...(app ? { app } : {}) });\n`;
    const file = join(dir, `launch-${process.pid}-${launchers++}-deno.ts`);
    writeFileSync(file, code);
    return file;
  }
  const pick = `const edgewire = mod[${JSON.stringify(options.export ?? "default")}];\nconst app = mod[${JSON.stringify(options.appExport ?? "app")}];`;
  const name = `launch-${process.pid}-${launchers++}-${runtime}`;
  if (runtime === "workerd") {
    const code = `import * as mod from ${entry};\nimport { cloudflare } from ${specifier(dir, adapterFile("cloudflare"))};\n${pick}\nconst { worker, RoomObject } = cloudflare(edgewire, app ? { app } : {});\nexport default worker;\nexport { RoomObject };\n`;
    writeFileSync(join(dir, `${name}.ts`), code);
    const toml = [
      `name = "edgewire-test"`,
      `main = "${name}.ts"`,
      `compatibility_date = "${options.compatibilityDate ?? "2026-04-26"}"`,
      `[[durable_objects.bindings]]\nname = "ROOMS"\nclass_name = "RoomObject"`,
      `[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["RoomObject"]`,
    ].join("\n");
    writeFileSync(join(dir, `${name}.toml`), `${toml}\n`);
    return join(dir, `${name}.toml`);
  }
  const code = `import * as mod from ${entry};\nimport { serve } from ${specifier(dir, adapterFile(runtime))};\n${pick}\nawait serve(edgewire, { port: Number(process.env.PORT), hostname: "127.0.0.1", ...(app ? { app } : {}) });\n`;
  // Plain JavaScript (`process` exists on all three runtimes), so Node runs it without tsx when the entry
  // is JS; Deno wants a .ts launcher to import TypeScript.
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, code);
  return file;
}

function command(
  root: string,
  runtime: RuntimeName,
  launcher: string,
  entry: string,
  port: number,
  inspector: number,
  env: Record<string, string>,
): [string, string[]] {
  switch (runtime) {
    case "node":
      // Node 20 runs TypeScript only through tsx (a dev dependency of the project under test), as a
      // loader in the one process: the tsx CLI is a parent that relays signals and SIGKILLs a child
      // that has not acknowledged one within 30 ms — a busy draining server under load, say.
      return /\.[mc]?ts$/.test(entry)
        ? [process.execPath, ["--import", "tsx", launcher]]
        : [process.execPath, [launcher]];
    case "deno":
      // Deno treats files under node_modules as npm packages and will not load TypeScript from
      // them, so it evaluates the launcher's code (cwd = the project, whose config it finds).
      return [binary(root, "deno"), ["eval", "--ext=ts", readFileSync(launcher, "utf8")]];
    case "bun":
      return [binary(root, "bun"), [launcher]];
    case "workerd":
      // A Worker reads its configuration from vars, not from the process environment.
      return wranglerDev(root, port, inspector, [
        "--config",
        launcher,
        ...Object.entries(env).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
      ]);
  }
}

// A port freePort() found free was taken before the server bound it (servers and clients started
// side by side draw from the same ephemeral range): seen in a fresh-clone CI run, workerd's bind failed.
class PortTaken extends Error {}

/** Start your edgewire under `runtime` and wait until it answers `health`. */
export async function startServer(runtime: RuntimeName, options: StartOptions): Promise<RunningServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(runtime, options);
    } catch (error) {
      // Again on other ports (a given port: again a moment later, as its last holder lets go); a
      // server that fails for any other reason fails at once.
      if (!(error instanceof PortTaken) || attempt >= 3) throw error;
      if (options.port !== undefined) await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function startOnce(runtime: RuntimeName, options: StartOptions): Promise<RunningServer> {
  const root = options.root ?? process.cwd();
  const env = options.env ?? {};
  const port = options.port ?? (await freePort());
  const inspector = await freePort();
  const launcher = writeLauncher(root, runtime, options);
  const [cmd, args] = command(root, runtime, launcher, options.entry, port, inspector, env);
  let output = "";
  const child: ChildProcess = spawn(cmd, args, {
    cwd: root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...WRANGLER_ENV, DENO_NO_UPDATE_CHECK: "1", PORT: String(port), HOST: "127.0.0.1", ...env },
  });
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  // A missing binary is an 'error' event, not an exit: without a listener it is an uncaught exception.
  let spawnError: Error | undefined;
  child.once("error", (e) => (spawnError = e));
  let exited = false;
  const exitCode = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const gone = exitCode.then(() => {});
  child.once("exit", () => (exited = true));
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, sig);
    } catch {}
  };
  const stop = async () => {
    if (!exited) await stopGroup(child, gone);
  };
  const tls = env.EDGEWIRE_TLS_CERT !== undefined && runtime !== "workerd";
  const http = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  const ms = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + ms;
  const health = options.health ?? "/healthz";
  let notFound = 0;
  for (;;) {
    if (spawnError) {
      const pkg = runtime === "workerd" ? "wrangler" : runtime;
      throw new Error(
        `${runtime}: could not start ${cmd} (${spawnError.message}); add it to your project (npm i -D ${pkg}) or put it on PATH`,
      );
    }
    if (exited) {
      const message = `${runtime} exited before serving:\n${output}`;
      throw /EADDRINUSE|address already in use/i.test(output) ? new PortTaken(message) : new Error(message);
    }
    let status = 0;
    try {
      status = await probe(`${http}${health}`, options.ca);
    } catch {}
    if (status >= 200 && status < 300) break;
    // A server that is up but answers 404 there will not start answering: say why at once, not after the timeout.
    notFound = status === 404 ? notFound + 1 : 0;
    if (notFound >= 5) {
      await stop();
      throw new Error(
        `${runtime} is up but answers 404 at ${health}: if your edgewire is mounted under a prefix in your Hono app, pass health: "<prefix>${health}"\n${output}`,
      );
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${runtime} did not serve ${health} within ${ms} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const ws = `${tls ? "wss" : "ws"}://127.0.0.1:${port}`;
  return { runtime, http, ws, port, output: () => output, signal, exited: exitCode, stop };
}

/** The status `url` answers with; over https, trusting `ca` (global fetch cannot be given a CA). */
async function probe(url: string, ca: string | undefined): Promise<number> {
  if (!url.startsWith("https:")) {
    const res = await fetch(url);
    await res.body?.cancel();
    return res.status;
  }
  return new Promise((done, fail) => {
    httpsGet(url, { ca }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    }).on("error", fail);
  });
}
