/**
 * Process plumbing for the bench: free ports, launching a server pinned to a
 * core with a raised fd limit, the process tree of a server, its CPU time and
 * RSS from /proc.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { freePort, stopGroup } from "../../tests/support/servers.ts";

/** A TCP port nobody listens on right now (shared with the tests). */
export { freePort };

/** pid → parent pid for every process on the machine */
function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      map.set(Number(entry), Number(fields[1]));
    } catch {
      // the process ended while we looked
    }
  }
  return map;
}

/** `root` and all its descendants */
export function processTree(root: number): number[] {
  const ppid = parents();
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, parent] of ppid) if (parent === tree[i]) tree.push(pid);
  return tree.filter((pid) => ppid.has(pid));
}

/** CPU seconds (user + system, all threads) of the given processes */
export function cpuSeconds(pids: number[]): number {
  const hz = 100; // USER_HZ is 100 on Linux x86-64
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(f[11]) + Number(f[12])) / hz;
    } catch {}
  }
  return total;
}

/** resident set size in bytes, summed over the given processes */
export function rssBytes(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
    } catch {}
  }
  return total;
}

/** A server process started by the bench. */
export interface Launched {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited(): boolean;
  /** how it ended: "code N" or "signal S" ("" while running) */
  exitStatus(): string;
  stop(): Promise<void>;
}

/** Start `cmd` pinned to `core` with a raised fd limit, in its own process group. */
export function launch(
  cmd: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; core: number; nofile: number },
): Launched {
  const child = spawn(
    "prlimit",
    [`--nofile=${options.nofile}:${options.nofile}`, "taskset", "-c", String(options.core), cmd, ...args],
    {
      cwd: options.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...options.env },
    },
  );
  let output = "";
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 20_000) output = output.slice(-10_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let gone = false;
  let status = "";
  const exit = new Promise<void>((r) =>
    child.once("exit", (code, signal) => {
      gone = true;
      status = signal ? `signal ${signal}` : `code ${code}`;
      r();
    }),
  );
  return {
    child,
    pid: child.pid ?? -1,
    output: () => output,
    exited: () => gone,
    exitStatus: () => status,
    async stop() {
      if (gone || child.pid === undefined) return;
      await stopGroup(child, exit);
      // and anything of its group still around (workerd under wrangler)
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    },
  };
}

/** First line of a command's output, or "" when it fails. */
export function firstLine(cmd: string, args: string[], env: Record<string, string> = {}): string {
  try {
    return (
      execFileSync(cmd, args, {
        encoding: "utf8",
        env: { ...process.env, ...env },
        timeout: 20_000,
        stdio: ["ignore", "pipe", "pipe"],
      })
        .trim()
        .split("\n")[0] ?? ""
    );
  } catch {
    return "";
  }
}
