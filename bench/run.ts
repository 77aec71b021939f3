/**
 * edgewire benchmarks, side by side: edgewire on Node, Deno, Bun and workerd
 * against the raw runtime servers and against socket.io and crossws, driven by
 * one native load client (bench/loadgen.c): echo, fan-out, many-to-many rooms,
 * idle connections, long-polling.
 *
 *   npm run bench                      short version (a few minutes)
 *   npm run bench -- --full            the long one
 *   options: --rounds=N (default 3)  --targets=a,b (names, prefix match)  --scenarios=a,b (id prefix)
 *            --m2m-window=W (many-to-many saturation: updates in flight per member, default 2)
 *            --profile (Node and Bun targets write --cpu-prof profiles to bench/.work/prof)
 *            --out=NAME (results file name, default "short" or "full")
 *            --render (measure nothing: redo NAME.md and the chart from NAME.json)
 *
 * Servers run on core 1, the client (and this harness) on core 0. Rounds are
 * interleaved: every round runs each target once, in a rotated order, and the
 * tables report medians. See bench/README.md for what each column means.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { renderChart } from "./lib/chart.ts";
import { buildLoadgen, type LoadResult, runLoadgen, runLoadgenPhases } from "./lib/client.ts";
import { type PollResult, runLongPoll, supportsLongPoll } from "./lib/longpoll.ts";
import { firstLine, freePort, type Launched, launch, processTree, rssBytes } from "./lib/proc.ts";
import { type Meta, type RunRecord, renderReport, type Scenario } from "./lib/report.ts";
import { EDGEWIRE_BENCH_ENV, forcesGc, ROOT, TARGETS, type Target, WRANGLER_ENV } from "./lib/targets.ts";

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const FULL = flag("full");
const ROUNDS = Math.max(1, Number(option("rounds") ?? 3));
const PROFILE = flag("profile");
const OUT = option("out") ?? (FULL ? "full" : "short");
const SERVER_CORE = 1;
const CLIENT_CORE = 0;
/** the fd limit servers get: the hard limit of this machine (raising it needs CAP_SYS_RESOURCE) */
const NOFILE = Math.min(200_000, Number(firstLine("sh", ["-c", "ulimit -Hn"])) || 1024);
/** many-to-many saturation: updates each member keeps in flight (not yet delivered to every other member) */
const M2M_WINDOW = Number(option("m2m-window") ?? 2);

// ---------- scenarios ----------
function scenarios(): Scenario[] {
  const list: Scenario[] = [];
  // Ratios pair runs a few seconds apart (roundOrder), which tames the host's drift more than longer windows would.
  const d = FULL ? { duration: 2, warmup: 0.5 } : { duration: 1, warmup: 0.4 };
  const echo = (conns: number, window: number, size: number, batch = false) =>
    list.push({
      id: `echo-${conns}c-w${window}-${size >= 1024 ? `${size / 1024}KiB` : `${size}B`}${batch ? "-batch" : ""}`,
      family: "echo",
      title: `echo: ${conns} connections, window ${window}, ${size} B${batch ? ", batched writes" : ""}`,
      conns,
      window,
      size,
      batch,
      ...d,
    });
  // One client run per round does both: burst, then (same room, same members) paced at half the burst rate.
  const fanout = (members: number) => {
    for (const paced of [false, true])
      list.push({
        id: `fanout-${members}m-${paced ? "paced" : "burst"}`,
        family: "fanout",
        title: `fan-out: 1 room, ${members} members, ${paced ? "paced at half of the burst rate this server just reached" : "burst (publisher keeps 32 publishes in flight)"}`,
        members,
        paced,
        window: 32,
        size: 64,
        ...d,
      });
  };
  // Many-to-many (issue 25): rooms × members, every member's ~64 B updates to the room's others. One client
  // run per group: its phases (saturation, then each rate) on the same connections, in order.
  const m2m = (rooms: number, members: number, rates: number[], binary = false) => {
    const group = `m2m-${rooms}r${members}m${binary ? "-binary" : ""}`;
    for (const rate of rates)
      list.push({
        id: `${group}-${rate ? `${rate}hz` : "sat"}`,
        family: "m2m",
        title: `many-to-many: ${rooms} rooms × ${members} members, ${binary ? "binary frames relayed" : "JSON (MessagePack on -msgpack targets) broadcast"} to the room's others, ${rate ? `every member at ${rate} Hz` : `saturation (each member keeps ${M2M_WINDOW} updates in flight)`}`,
        rooms,
        members,
        rate,
        binary,
        group,
        window: M2M_WINDOW,
        size: 64,
        ...d,
      });
  };
  const idle = (conns: number) =>
    list.push({
      id: `idle-${conns / 1000}k`,
      family: "idle",
      title: `idle: ${conns} connections held`,
      conns,
      duration: 0,
      warmup: 0,
    });
  if (FULL) {
    for (const conns of [100, 1000])
      for (const window of [1, 16]) for (const size of [64, 4096, 65536]) echo(conns, window, size);
    echo(100, 16, 64, true);
    echo(1000, 16, 64, true);
    for (const m of [100, 1000, 10000]) fanout(m);
    m2m(4, 50, [0]);
    m2m(4, 50, [0], true);
    m2m(5, 10, [0, 20, 60]);
    idle(10_000);
    idle(50_000);
  } else {
    echo(100, 1, 64);
    echo(100, 16, 64, true);
    fanout(100);
    m2m(4, 50, [0]);
    m2m(4, 50, [0], true);
    m2m(5, 10, [20, 60]);
    idle(5_000);
  }
  list.push({
    id: "longpoll-echo",
    family: "longpoll",
    title: "long-polling echo: 50 sessions, 64 B, one POST and one held GET each",
    conns: 50,
    size: 64,
    ...d,
  });
  const only = option("scenarios")?.split(",");
  return only ? list.filter((s) => only.some((o) => s.id.startsWith(o))) : list;
}

// ---------- servers ----------
interface Running {
  target: Target;
  port: number;
  http: string;
  proc: Launched;
  error?: string;
  longpoll?: boolean;
}

async function start(target: Target): Promise<Running> {
  const port = await freePort();
  const inspector = await freePort();
  const [cmd, args] = target.command(port, inspector, PROFILE);
  const proc = launch(cmd, args, {
    cwd: ROOT,
    core: SERVER_CORE,
    nofile: NOFILE,
    env: {
      ...WRANGLER_ENV,
      DENO_NO_UPDATE_CHECK: "1",
      PORT: String(port),
      HOST: "127.0.0.1",
      NODE_ENV: "production",
      // The same raised limits for another checkout of edgewire (baseline-*) as for this one.
      ...(target.name.startsWith("edgewire") || target.name.startsWith("baseline") ? EDGEWIRE_BENCH_ENV : {}),
    },
  });
  const http = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + target.startMs;
  for (;;) {
    if (proc.exited()) return { target, port, http, proc, error: `exited before serving: ${tail(proc.output())}` };
    try {
      const res = await fetch(`${http}/healthz`);
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      await proc.stop();
      return {
        target,
        port,
        http,
        proc,
        error: `no /healthz within ${target.startMs / 1000} s: ${tail(proc.output())}`,
      };
    }
    await sleep(200);
  }
  return { target, port, http, proc };
}

/** busy seconds of one core so far, from /proc/stat */
function coreBusy(core: number): number {
  const line = readFileSync("/proc/stat", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`cpu${core} `));
  const f = (line ?? "").split(/\s+/).slice(1).map(Number);
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / 100;
}

/**
 * Wait (at most 15 s) until the server core is quiet: a server still busy after
 * its own run (workerd closing 1 000 sockets, say) would otherwise steal the
 * next target's core. Seen: raw-ws at 54 % CPU whenever it ran right after workerd.
 */
async function waitQuiet(core: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let quiet = 0;
  while (Date.now() < deadline && quiet < 2) {
    const b0 = coreBusy(core);
    await sleep(150);
    quiet = (coreBusy(core) - b0) / 0.15 < 0.05 ? quiet + 1 : 0;
  }
}

const tail = (s: string) => s.trim().split("\n").slice(-3).join(" | ").slice(0, 300);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- one run ----------
/** One client run of `s` on `r`; `followers` are the scenarios the same run measures next (its later phases). */
async function runOne(s: Scenario, r: Running, round: number, followers: Scenario[]): Promise<RunRecord[]> {
  const base: RunRecord = { scenario: s.id, target: r.target.name, round, ok: false };
  const also = (rec: RunRecord): RunRecord[] => [rec, ...followers.map((f) => ({ ...rec, scenario: f.id }))];
  try {
    return await runScenario(s, r, base, followers, also);
  } catch (error) {
    return also({ ...base, error: (error as Error).message });
  }
}

async function runScenario(
  s: Scenario,
  r: Running,
  base: RunRecord,
  followers: Scenario[],
  also: (rec: RunRecord) => RunRecord[],
): Promise<RunRecord[]> {
  const pacedOf = s.family === "fanout" ? followers[0] : undefined;
  if (r.error) return also({ ...base, error: r.error });
  const why = refusal(r.target, s);
  if (why) return also({ ...base, unsupported: why });
  if (r.proc.exited())
    return also({ ...base, error: `server died (${r.proc.exitStatus()}): ${tail(r.proc.output())}` });
  await waitQuiet(SERVER_CORE);
  const pids = processTree(r.proc.pid);
  const common = [
    "--server-core",
    String(SERVER_CORE),
    "--port",
    String(r.port),
    "--server-pids",
    pids.join(","),
    ...protoArgs(r.target),
  ];
  {
    if (s.family === "echo") {
      const res = await runLoadgen(
        [
          ...common,
          "--mode",
          "echo",
          "--path",
          r.target.echoPath,
          "--conns",
          String(s.conns),
          ...load(s),
          ...(s.batch ? ["--batch"] : []),
          "--connect-timeout",
          "60",
        ],
        { core: CLIENT_CORE, timeoutMs: 120_000 },
      );
      return [
        { ...base, ok: res.ready > 0 && res.msgs > 0, result: res, ...(res.msgs > 0 ? {} : { error: failure(res) }) },
      ];
    }
    if (s.family === "fanout") {
      const tooMany = fdShortfall(s.members as number, r.target);
      if (tooMany) return also({ ...base, unsupported: tooMany });
      const room = `bench-${s.id}-${base.round}-${Date.now() % 100000}`;
      const settleMax = Math.min(300, 30 + (s.members as number) / 50);
      const runs = await runLoadgenPhases(
        [
          ...common,
          "--mode",
          "fanout",
          "--path",
          r.target.roomPath(room),
          "--conns",
          String(s.members),
          ...load(s),
          "--welcome",
          "--settle",
          "0.3",
          "--settle-max",
          String(settleMax),
          "--connect-timeout",
          "120",
          ...(pacedOf ? ["--then-paced", "0.5"] : []),
        ],
        { core: CLIENT_CORE, timeoutMs: (settleMax + 240) * 1000 },
      );
      const recs: RunRecord[] = [];
      for (const [i, res] of runs.entries()) {
        const id = i === 0 ? s.id : (pacedOf as Scenario).id;
        recs.push({
          ...base,
          scenario: id,
          ok: res.msgs > 0,
          result: res,
          ...(res.msgs > 0 ? {} : { error: failure(res) }),
        });
      }
      if (pacedOf && runs.length < 2)
        recs.push({ ...base, scenario: pacedOf.id, error: "the burst phase delivered nothing to pace from" });
      return recs;
    }
    if (s.family === "m2m") {
      const rooms = s.rooms as number;
      const members = s.members as number;
      const tooMany = fdShortfall(rooms * members, r.target);
      if (tooMany) return also({ ...base, unsupported: tooMany });
      // "{}": loadgen puts each member's room index there. Short names, as an app's would be: edgewire puts the
      // room's name in every broadcast frame, a raw relay does not.
      const path = r.target.m2mPath?.(`${(Date.now() % 1e6).toString(36)}-{}`, s.binary === true);
      if (!path) return also({ ...base, unsupported: "no many-to-many room route" });
      const phases = [s, ...followers];
      const runs = await runLoadgenPhases(
        [
          ...common,
          "--mode",
          "m2m",
          "--path",
          path,
          "--rooms",
          String(rooms),
          "--conns",
          String(members),
          "--rates",
          phases.map((p) => p.rate ?? 0).join(","),
          // saturation: reads batched (pauses ≤ 5 ms, ≤ a quarter of the server's backlog): loadgen.c says why
          "--read-pause-us",
          "5000",
          // workerd under a slow minute of the host can be seconds behind at saturation: wait for its last deliveries
          "--drain",
          "5",
          ...load(s),
          ...(s.binary ? ["--binary"] : []),
          "--welcome",
          "--settle",
          "0.3",
          "--settle-max",
          "30",
          "--connect-timeout",
          "60",
        ],
        { core: CLIENT_CORE, timeoutMs: 120_000 + phases.length * 30_000 },
      );
      return phases.map((p, i) => {
        const res = runs[i];
        if (!res) return { ...base, scenario: p.id, error: "the client ended before this phase" };
        const m = res.m2m;
        const lost = m && m.alive < rooms * members ? `${rooms * members - m.alive} members dropped; ` : "";
        const ok = res.msgs > 0 && !!m && m.alive === rooms * members;
        return {
          ...base,
          scenario: p.id,
          ok,
          result: res,
          ...(ok ? {} : { error: `${lost}${failure(res)}` }),
        };
      });
    }
    if (s.family === "idle") {
      const tooMany = fdShortfall(s.conns as number, r.target);
      if (tooMany) return [{ ...base, unsupported: tooMany }];
      // A forced full GC before each RSS reading, so handshake garbage is not counted as per-connection memory.
      const gc = async (ms: number) => {
        if (forcesGc(r.target)) {
          try {
            process.kill(r.proc.pid, "SIGUSR2");
          } catch {}
        }
        await sleep(ms);
      };
      await gc(FULL ? 1000 : 500);
      const before = rssBytes(processTree(r.proc.pid));
      const settle = FULL ? 3000 : 1000;
      // Two halves: RSS per connection is the slope from N/2 to N held connections, so
      // what the first handshakes cost once (heap growth, JIT code) is not spread over N.
      const half = Math.floor((s.conns as number) / 2);
      const open = (hold: number, onHolding: () => void) =>
        runLoadgen(
          [
            ...common,
            "--mode",
            "idle",
            "--path",
            r.target.echoPath,
            "--conns",
            String(half),
            "--hold",
            String(hold),
            "--max-pending",
            "200",
            "--connect-timeout",
            "120",
          ],
          { core: CLIENT_CORE, timeoutMs: 240_000, onEvent: (e) => e.event === "holding" && onHolding() },
        );
      const sample = async () => {
        await sleep(settle / 2);
        await gc(settle / 2);
        return rssBytes(processTree(r.proc.pid));
      };
      let firstHeld = () => {};
      const firstHolding = new Promise<void>((resolve) => (firstHeld = resolve));
      // The first half holds until the second half has been sampled (the second connects in well under 10 s here).
      const first = open((2 * settle) / 1000 + 10, firstHeld);
      await Promise.race([firstHolding, first]);
      const mid = await sample();
      let during = 0;
      let secondSampled: Promise<void> = Promise.resolve();
      const second = await open(settle / 1000 + 0.3, () => {
        secondSampled = sample().then((v) => {
          during = v;
        });
      });
      await secondSampled;
      const firstRes = await first.catch(() => undefined);
      await sleep(FULL ? 1000 : 300);
      const ready = (firstRes?.ready ?? 0) + second.ready;
      const perConn = second.ready > 0 && during > 0 && mid > 0 ? (during - mid) / second.ready : -1;
      const res: LoadResult = { ...second, ready, conns: s.conns as number };
      return [
        {
          ...base,
          ok: ready > 0 && perConn > 0,
          result: res,
          rss: { before, mid, during, perConn },
          ...(ready === s.conns
            ? {}
            : {
                error: `${ready}/${s.conns} connected (${res.connect_errors} connect, ${res.handshake_errors} handshake errors)`,
              }),
        },
      ];
    }
    // long-polling
    if (r.longpoll === undefined) r.longpoll = await supportsLongPoll(r.http);
    if (!r.longpoll)
      return [{ ...base, unsupported: "POST /echo/poll is not served (long-polling transport not in this build)" }];
    const res: PollResult = await runLongPoll(r.http, s.conns as number, s.warmup, s.duration, pids, s.size as number);
    return [
      {
        ...base,
        ok: res.msgs > 0,
        poll: res,
        ...(res.msgs > 0 ? {} : { error: `no message came back (${res.errors} errors)` }),
      },
    ];
  }
}

/** why target `t` does not serve scenario `s`, or undefined when it does */
function refusal(t: Target, s: Scenario): string | undefined {
  if (s.family === "m2m" && !t.m2mPath) return t.unsupported.m2m ?? "no many-to-many room route";
  return t.unsupported[s.family] ?? (s.family === "m2m" && s.binary ? t.unsupported["m2m-binary"] : undefined);
}

/** why `conns` client connections to `t` cannot be held here, or undefined when they can */
function fdShortfall(conns: number, t: Target): string | undefined {
  const fds = conns * (t.fdsPerConn ?? 1) + 200;
  if (fds <= NOFILE) return undefined;
  const per = t.fdsPerConn ? ` (${t.fdsPerConn} per connection under wrangler dev)` : "";
  return `needs ~${fds} descriptors${per}; the hard fd limit here is ${NOFILE} and raising it needs CAP_SYS_RESOURCE, which this machine does not grant`;
}

/** loadgen's --proto for a target: none for plain WebSocket (its default), else sio or mp */
const protoArgs = (t: Target): string[] => (t.proto === "ws" ? [] : ["--proto", t.proto]);

/** the loadgen flags every echo and fan-out run takes from its scenario */
function load(s: Scenario): string[] {
  return [
    "--window",
    String(s.window),
    "--size",
    String(s.size),
    "--duration",
    String(s.duration),
    "--warmup",
    String(s.warmup),
  ];
}

function failure(res: LoadResult): string {
  return `${res.ready}/${res.conns} ready, ${res.connect_errors} connect errors, ${res.handshake_errors} handshake errors, ${res.closed_early} closed early`;
}

// ---------- machine and versions ----------
/** the commit the servers were started from (read before they start: others may commit during a long run) */
function commitNow(): string {
  try {
    let commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "adapters"], {
      cwd: ROOT,
      encoding: "utf8",
    }).trim();
    if (dirty) commit += " (+ uncommitted changes in src/ or adapters/)";
    return commit;
  } catch {
    return "";
  }
}

function meta(started: Date, seconds: number, commit: string): Meta {
  const pkg = (name: string) => {
    try {
      return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version as string;
    } catch {
      return "?";
    }
  };
  const bin = (name: string) => join(ROOT, "node_modules/.bin", name);
  return {
    mode: FULL ? "full" : "short",
    date: started.toISOString(),
    seconds,
    rounds: ROUNDS,
    commit,
    machine: {
      cpu: `${cpus()[0]?.model ?? "?"} × ${cpus().length}`,
      memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
      kernel: firstLine("uname", ["-sr"]),
    },
    versions: {
      node: process.version,
      deno: firstLine(bin("deno"), ["--version"], { DENO_NO_UPDATE_CHECK: "1" }),
      bun: firstLine(bin("bun"), ["--version"]),
      wrangler: pkg("wrangler"),
      workerd: pkg("workerd"),
      ws: pkg("ws"),
      "socket.io": pkg("socket.io"),
      crossws: pkg("crossws"),
      hono: pkg("hono"),
      valibot: pkg("valibot"),
      gcc: firstLine("gcc", ["--version"]),
    },
  };
}

// ---------- main ----------
/** Write the Markdown, SVG and PNG of a run (also used by --render to redo them from a run's JSON). */
async function writeResults(m: Meta, list: Scenario[], targets: Target[], records: RunRecord[]): Promise<void> {
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${OUT}.md`), renderReport(m, list, targets, records, `${OUT}.png`));
  writeFileSync(join(dir, `${OUT}.json`), `${JSON.stringify({ meta: m, scenarios: list, records }, null, 1)}\n`);
  const png = await renderChart(m, list, targets, records);
  writeFileSync(join(dir, `${OUT}.svg`), png.svg);
  if (png.png) writeFileSync(join(dir, `${OUT}.png`), png.png);
  process.stderr.write(
    `wrote bench/results/${OUT}.md, ${OUT}.json, ${OUT}.svg${png.png ? `, ${OUT}.png` : ` (no PNG: ${png.error})`} in ${fmtTime(m.seconds)}\n`,
  );
}

async function main(): Promise<void> {
  if (flag("render")) {
    // Re-render tables and chart from a run's JSON (after a change to the report), measuring nothing.
    const saved = JSON.parse(readFileSync(join(ROOT, "bench/results", `${OUT}.json`), "utf8"));
    const names = new Set((saved.records as RunRecord[]).map((r) => r.target));
    await writeResults(
      saved.meta,
      saved.scenarios,
      TARGETS.filter((t) => names.has(t.name)),
      saved.records,
    );
    return;
  }
  const started = new Date();
  const commit = commitNow();
  const t0 = performance.now();
  // The harness itself (and the long-polling client) stay on the client core.
  try {
    execFileSync("taskset", ["-a", "-p", "-c", String(CLIENT_CORE), String(process.pid)], { stdio: "ignore" });
  } catch {}
  buildLoadgen();
  const wanted = option("targets")?.split(",");
  const list = scenarios();
  // A target that serves none of the chosen scenarios is not started (raw-bun-envelope for many-to-many alone, say).
  // An instrumented target runs only when asked for by (at least) its own name.
  const named = (t: Target, w: string) => t.name.startsWith(w) && (!t.explicit || w.startsWith(t.explicit));
  const targets = TARGETS.filter((t) => wanted?.some((w) => named(t, w)) ?? !t.explicit).filter((t) =>
    list.some((s) => !refusal(t, s)),
  );
  process.stderr.write(
    `edgewire bench (${FULL ? "full" : "short"}): ${list.length} scenarios × ${targets.length} targets × ${ROUNDS} rounds\n`,
  );

  const running: Running[] = [];
  const stopAll = async () => {
    await Promise.all(running.map((r) => r.proc.stop()));
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.once(sig, () => {
      void stopAll().then(() => process.exit(130));
    });

  for (const t of targets) {
    process.stderr.write(`  starting ${t.name} ... `);
    const r = await start(t);
    running.push(r);
    process.stderr.write(r.error ? `FAILED: ${r.error}\n` : `port ${r.port}\n`);
  }

  // Warm every server up first (JIT, and a VM whose idle cores wake slowly): an unrecorded echo run each.
  for (const r of running) {
    if (r.error || r.target.unsupported.echo) continue;
    await runLoadgen(
      [
        "--port",
        String(r.port),
        "--path",
        r.target.echoPath,
        "--conns",
        "100",
        "--window",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.5",
        ...protoArgs(r.target),
      ],
      { core: CLIENT_CORE, timeoutMs: 60_000 },
    ).catch(() => {});
  }
  const records: RunRecord[] = [];
  // A client run measures a fan-out burst and its paced run, or a many-to-many group's phases, together.
  const followersOf = (s: Scenario): Scenario[] =>
    s.family === "fanout"
      ? list.filter((p) => p.family === "fanout" && p.paced && p.members === s.members)
      : s.family === "m2m"
        ? list.filter((p) => p.group === s.group && p !== s)
        : [];
  const runnable = list.filter(
    (s) => !(s.family === "fanout" && s.paced) && !(s.family === "m2m" && list.find((p) => p.group === s.group) !== s),
  );
  const total = runnable.length * ROUNDS * running.length;
  let done = 0;
  for (const s of runnable) {
    const followers = followersOf(s);
    for (let round = 1; round <= ROUNDS; round++) {
      const order = roundOrder(running, round);
      for (const r of order) {
        const t = performance.now();
        const recs = await runOne(s, r, round, followers);
        records.push(...recs);
        done++;
        const elapsed = (performance.now() - t0) / 1000;
        const eta = (elapsed / done) * (total - done);
        process.stderr.write(
          `[${String(done).padStart(4)}/${total} ${fmtTime(elapsed)} eta ${fmtTime(eta)}] ${s.id} r${round} ${r.target.name}: ${recs.map(summary).join(s.family === "m2m" ? " → " : " → paced: ")} (${((performance.now() - t) / 1000).toFixed(1)} s)\n`,
        );
      }
    }
  }
  await stopAll();

  await writeResults(meta(started, (performance.now() - t0) / 1000, commit), list, targets, records);
}

/**
 * The order of one round: a runtime's targets (edgewire, raw, peers, control)
 * run back to back, so every ratio compares two runs a few seconds apart and a
 * slow minute of the host hits both; within a group and across groups the order
 * rotates each round so nobody always runs first or last.
 */
function roundOrder(running: Running[], round: number): Running[] {
  const rotate = <T>(xs: T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length] as T);
  const groups = new Map<string, Running[]>();
  for (const r of running) groups.set(r.target.runtime, [...(groups.get(r.target.runtime) ?? []), r]);
  return rotate([...groups.values()], round - 1).flatMap((g) => rotate(g, round - 1));
}

function summary(rec: RunRecord): string {
  if (rec.unsupported) return `unsupported (${rec.unsupported})`;
  const res = rec.result;
  const err = rec.error ? `  ERROR ${rec.error}` : "";
  if (rec.poll) return `${fmtK(rec.poll.msgs_per_s)} msg/s p99 ${fmtUs(rec.poll.lat_us.p99)}${err}`;
  if (!res) return `ERROR ${rec.error}`;
  if (rec.rss)
    return `${res.ready} conns at ${fmtK(res.connect_rate)}/s, ${(rec.rss.perConn / 1024).toFixed(1)} KB/conn${err}`;
  if (res.m2m)
    return `${res.phase}: ${fmtK(res.msgs_per_s)} deliveries/s p50 ${fmtUs(res.lat_us.p50)} p99 ${fmtUs(res.lat_us.p99)} srv ${(res.server_cpu * 100).toFixed(0)}% ${res.server_us_per_msg.toFixed(2)} µs client ${(res.client_cpu * 100).toFixed(0)}% delivered ${(res.m2m.delivered_ratio * 100).toFixed(1)}%${res.m2m.self_deliveries ? ` self ${res.m2m.self_deliveries}` : ""}${err}`;
  return `${fmtK(res.msgs_per_s)} msg/s p99 ${fmtUs(res.lat_us.p99)} srv ${(res.server_cpu * 100).toFixed(0)}%${err}`;
}
const fmtK = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
const fmtUs = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(0)} µs`);
const fmtTime = (s: number) => `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;

await main();
