/**
 * Running the native load client: build it with gcc into bench/.work/, start
 * it pinned to the client core, parse its JSON result and progress events.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./targets.ts";

/** where the built client lives (gitignored) */
export const LOADGEN = join(ROOT, "bench/.work/loadgen");

/** Build bench/loadgen.c when the binary is missing or older than the source. */
export function buildLoadgen(): void {
  const src = join(ROOT, "bench/loadgen.c");
  mkdirSync(join(ROOT, "bench/.work"), { recursive: true });
  if (existsSync(LOADGEN) && statSync(LOADGEN).mtimeMs > statSync(src).mtimeMs) return;
  execFileSync("gcc", ["-O2", "-Wall", "-o", LOADGEN, src], { stdio: "inherit" });
}

/** What loadgen prints (the fields the report reads). */
export interface LoadResult {
  mode: string;
  phase: string;
  conns: number;
  ready: number;
  connect_errors: number;
  handshake_errors: number;
  closed_early: number;
  connect_s: number;
  connect_rate: number;
  seconds: number;
  msgs: number;
  msgs_per_s: number;
  lat_us: { p50: number; p95: number; p99: number; max: number };
  per_conn: { min: number; max: number; fair: number };
  client_cpu: number;
  server_cpu: number;
  server_cpu_s: number;
  server_us_per_msg: number;
  /** busy share of the server's core (any process) during the window; well above server_cpu = interference */
  server_core_busy: number;
  fanout?: {
    members: number;
    rate: number;
    published: number;
    published_measured: number;
    deliveries: number;
    expected: number;
    delivered_ratio: number;
    settle_s: number;
  };
  /** many-to-many: one phase (saturation or a rate per member) */
  m2m?: {
    rooms: number;
    members: number;
    /** updates per second per member; 0 = saturation */
    rate: number;
    window: number;
    /** members still connected at the end of the phase */
    alive: number;
    sent: number;
    sent_measured: number;
    deliveries: number;
    expected: number;
    delivered_ratio: number;
    /** a member's own update sent back to it (work a broadcast "to the others" does not do) */
    self_deliveries: number;
    /** updates from another room, or without a sender index */
    foreign_deliveries: number;
    settle_s: number;
  };
}

/** Run loadgen with `args` on `core`; `onEvent` sees its stderr JSON events. Resolves to its last result. */
export async function runLoadgen(
  args: string[],
  options: { core: number; timeoutMs: number; onEvent?: (event: Record<string, unknown>) => void },
): Promise<LoadResult> {
  return (await runLoadgenPhases(args, options)).at(-1) as LoadResult;
}

/** Run loadgen; resolves to every result it printed (one per phase: fan-out burst, then paced; many-to-many's phases). */
export function runLoadgenPhases(
  args: string[],
  options: { core: number; timeoutMs: number; onEvent?: (event: Record<string, unknown>) => void },
): Promise<LoadResult[]> {
  return new Promise((resolveRun, reject) => {
    const child = spawn("taskset", ["-c", String(options.core), LOADGEN, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let pending = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.length > 8000) err = err.slice(-4000);
      pending += d.toString();
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          options.onEvent?.(JSON.parse(line));
        } catch {}
        nl = pending.indexOf("\n");
      }
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      try {
        const results = out
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((line) => JSON.parse(line) as LoadResult);
        if (!results.length) throw new Error("no result");
        resolveRun(results);
      } catch {
        reject(
          new Error(
            `loadgen ${signal ? `killed (${signal}, timeout)` : `exited ${code}`}: ${err.trim().split("\n").slice(-3).join(" | ")}`,
          ),
        );
      }
    });
  });
}
