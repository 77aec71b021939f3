/**
 * Turning run records into the Markdown results: medians per scenario and
 * target, ratios edgewire/raw and edgewire/peer, the issues' goals, and the
 * machine and versions the numbers came from. "raw" on Node is the corked `ws`
 * (raw-ws-corked), with the plain send loop (raw-ws) as a second column.
 */
import type { LoadResult } from "./client.ts";
import type { PollResult } from "./longpoll.ts";
import { type Family, NAIVE_RAW_OF, PEERS_OF, rawOf, type Target } from "./targets.ts";

/** One benchmark scenario. */
export interface Scenario {
  id: string;
  family: Family;
  title: string;
  conns?: number;
  window?: number;
  size?: number;
  batch?: boolean;
  members?: number;
  paced?: boolean;
  /** many-to-many: rooms of `members` each */
  rooms?: number;
  /** many-to-many: updates per second per member; 0 = saturation */
  rate?: number;
  /** many-to-many: binary frames relayed (else JSON, or MessagePack on -msgpack targets, broadcast) */
  binary?: boolean;
  /** many-to-many: the scenarios one client run measures, as its phases in order */
  group?: string;
  duration: number;
  warmup: number;
}

/** One client run against one target. */
export interface RunRecord {
  scenario: string;
  target: string;
  round: number;
  ok: boolean;
  error?: string;
  unsupported?: string;
  result?: LoadResult;
  poll?: PollResult;
  /** RSS before connecting, with half and with all connections held; perConn = (during − mid) ÷ the second half */
  rss?: { before: number; mid?: number; during: number; perConn: number };
}

/** Where and with what the numbers were measured. */
export interface Meta {
  mode: string;
  date: string;
  seconds: number;
  rounds: number;
  commit: string;
  machine: Record<string, string>;
  versions: Record<string, string>;
}

/** Medians of one target in one scenario. */
export interface Agg {
  target: string;
  n: number;
  /** the headline number: msgs/s (echo, long-polling), deliveries/s (fan-out), bytes of RSS per connection (idle) */
  main: number;
  spread: number;
  p50: number;
  p95: number;
  p99: number;
  serverCpu: number;
  usPerMsg: number;
  clientCpu: number;
  /** median share of the server core used by other processes during the window */
  others: number;
  fair: number;
  connectRate: number;
  connectS: number;
  pubsPerS: number;
  rate: number;
  delivered: number;
  settle: number;
  /** many-to-many: median own updates sent back to their sender, and updates from another room */
  self: number;
  foreign: number;
  errors: string[];
  unsupported?: string;
  /** the headline number of each round, for paired ratios */
  byRound: Map<number, number>;
  /** server µs per message of each round, for paired cost ratios */
  costByRound: Map<number, number>;
}

const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** medians of every target that ran in `s` */
export function aggregate(s: Scenario, records: RunRecord[]): Map<string, Agg> {
  const out = new Map<string, Agg>();
  const byTarget = new Map<string, RunRecord[]>();
  for (const r of records) if (r.scenario === s.id) byTarget.set(r.target, [...(byTarget.get(r.target) ?? []), r]);
  for (const [target, runs] of byTarget) {
    const ok = runs.filter((r) => r.ok);
    const res = ok.map((r) => r.result).filter((x): x is LoadResult => !!x);
    const poll = ok.map((r) => r.poll).filter((x): x is PollResult => !!x);
    const mainOf = (r: RunRecord): number =>
      s.family === "idle"
        ? (r.rss?.perConn ?? Number.NaN)
        : s.family === "longpoll"
          ? (r.poll?.msgs_per_s ?? Number.NaN)
          : (r.result?.msgs_per_s ?? Number.NaN);
    const mains = ok.map(mainOf).filter((x) => Number.isFinite(x) && x > 0);
    const byRound = new Map(
      ok.map((r) => [r.round, mainOf(r)] as const).filter(([, x]) => Number.isFinite(x) && x > 0),
    );
    const costOf = (r: RunRecord) => r.poll?.server_us_per_msg ?? r.result?.server_us_per_msg ?? Number.NaN;
    const costByRound = new Map(
      ok.map((r) => [r.round, costOf(r)] as const).filter(([, x]) => Number.isFinite(x) && x > 0),
    );
    const m = median(mains);
    const pick = (f: (x: LoadResult) => number) => median(res.map(f));
    const pickP = (f: (x: PollResult) => number) => median(poll.map(f));
    const lat = (k: "p50" | "p95" | "p99") => (poll.length ? pickP((x) => x.lat_us[k]) : pick((x) => x.lat_us[k]));
    out.set(target, {
      target,
      n: ok.length,
      main: m,
      spread: mains.length > 1 ? (Math.max(...mains) - Math.min(...mains)) / m : 0,
      p50: lat("p50"),
      p95: lat("p95"),
      p99: lat("p99"),
      serverCpu: poll.length ? pickP((x) => x.server_cpu) : pick((x) => x.server_cpu),
      usPerMsg: poll.length ? pickP((x) => x.server_us_per_msg) : pick((x) => x.server_us_per_msg),
      clientCpu: poll.length ? pickP((x) => x.client_cpu) : pick((x) => x.client_cpu),
      others: pick((x) =>
        x.server_core_busy >= 0 && x.server_cpu >= 0 ? x.server_core_busy - x.server_cpu : Number.NaN,
      ),
      fair: median(res.map((x) => x.per_conn.fair)),
      connectRate: pick((x) => x.connect_rate),
      connectS: pick((x) => x.connect_s),
      pubsPerS: pick((x) => {
        const sent = x.fanout?.published_measured ?? x.m2m?.sent_measured;
        return sent === undefined ? Number.NaN : sent / x.seconds;
      }),
      rate: pick((x) => x.fanout?.rate ?? x.m2m?.rate ?? Number.NaN),
      delivered: pick((x) => x.fanout?.delivered_ratio ?? x.m2m?.delivered_ratio ?? Number.NaN),
      settle: pick((x) => x.fanout?.settle_s ?? x.m2m?.settle_s ?? Number.NaN),
      self: pick((x) => x.m2m?.self_deliveries ?? Number.NaN),
      foreign: pick((x) => x.m2m?.foreign_deliveries ?? Number.NaN),
      errors: [...new Set(runs.filter((r) => r.error).map((r) => r.error as string))],
      byRound,
      costByRound,
      ...(runs.every((r) => r.unsupported) ? { unsupported: runs[0]?.unsupported } : {}),
    });
  }
  return out;
}

/** A many-to-many scenario at a fixed rate (below saturation by design). */
export const pacedM2m = (s: Scenario): boolean => s.family === "m2m" && (s.rate ?? 0) > 0;

/** A run is client-bound when the server used under 90 % of its core (paced fan-out, paced many-to-many and idle are below by design). */
export const clientBound = (s: Scenario, a: Agg): boolean =>
  (s.family === "echo" ||
    (s.family === "fanout" && !s.paced) ||
    (s.family === "m2m" && !pacedM2m(s)) ||
    s.family === "longpoll") &&
  Number.isFinite(a.serverCpu) &&
  a.serverCpu < 0.9;

/** a note when other processes took a noticeable share of the server core */
const interference = (a: Agg): string =>
  a.others > 0.05 ? `other processes used ${(a.others * 100).toFixed(0)} % of the server core` : "";

const f = {
  k: (n: number) =>
    !Number.isFinite(n)
      ? "–"
      : n >= 1e6
        ? `${(n / 1e6).toFixed(2)} M`
        : n >= 1e4
          ? `${(n / 1e3).toFixed(0)} k`
          : n >= 1e3
            ? `${(n / 1e3).toFixed(1)} k`
            : n.toFixed(0),
  us: (n: number) =>
    !Number.isFinite(n) || n < 0
      ? "–"
      : n >= 10_000
        ? `${(n / 1000).toFixed(0)} ms`
        : n >= 1000
          ? `${(n / 1000).toFixed(1)} ms`
          : `${n.toFixed(0)} µs`,
  pct: (n: number) => (!Number.isFinite(n) || n < 0 ? "–" : `${(n * 100).toFixed(0)} %`),
  x: (n: number) => (!Number.isFinite(n) ? "–" : `${n.toFixed(2)}×`),
  n2: (n: number) => (!Number.isFinite(n) || n < 0 ? "–" : n.toFixed(2)),
  kb: (n: number) => (!Number.isFinite(n) ? "–" : `${(n / 1024).toFixed(1)} KB`),
};

/** per-round ratios a ÷ b over the rounds both ran, sorted */
function paired(x: Map<number, number> | undefined, y: Map<number, number> | undefined): number[] {
  if (!x || !y) return [];
  const out: number[] = [];
  for (const [round, a] of x) {
    const b = y.get(round);
    if (b !== undefined) out.push(a / b);
  }
  return out.sort((p, q) => p - q);
}

/**
 * Ratio of edgewire to `other` on the scenario's headline number (higher is
 * better, except idle RSS where lower is better): the median of the per-round
 * ratios. Both ran in the same round, next to each other (run.ts groups a
 * runtime's targets), so a slow minute of the host hits both sides of a pair.
 */
function ratio(aggs: Map<string, Agg>, a: string, b: string | undefined): number {
  return b ? median(paired(aggs.get(a)?.byRound, aggs.get(b)?.byRound)) : Number.NaN;
}

/** the lowest and highest per-round ratio, as text */
function ratioRange(aggs: Map<string, Agg>, a: string, b: string | undefined): string {
  const r = b ? paired(aggs.get(a)?.byRound, aggs.get(b)?.byRound) : [];
  return r.length > 1 ? `${f.n2(r[0] as number)}–${f.n2(r.at(-1) as number)}` : "–";
}

/** CPU cost ratio: other's server µs per message ÷ edgewire's (higher is better; independent of client-bound runs) */
function costRatio(aggs: Map<string, Agg>, a: string, b: string | undefined): number {
  return b ? median(paired(aggs.get(b)?.costByRound, aggs.get(a)?.costByRound)) : Number.NaN;
}

/** The whole Markdown results document. */
export function renderReport(
  meta: Meta,
  scenarios: Scenario[],
  targets: Target[],
  records: RunRecord[],
  chartFile: string,
): string {
  const L: string[] = [];
  const names = new Set(targets.map((t) => t.name));
  const raw = (runtime: string) => rawOf(runtime, names);
  L.push(`# edgewire benchmarks — ${meta.mode} run`, "");
  L.push(
    `Measured ${meta.date.slice(0, 16).replace("T", " ")} UTC in ${Math.round(meta.seconds)} s; ${meta.rounds} interleaved rounds per scenario, medians shown; edgewire at commit ${meta.commit || "?"} (as the servers were started).`,
  );
  L.push(
    "Server on core 1, load client (`bench/loadgen.c`, C/epoll) on core 0; compression off on both sides. Column meanings: `bench/README.md`.",
    "",
  );
  L.push("| machine | |", "| --- | --- |");
  for (const [k, v] of Object.entries(meta.machine)) L.push(`| ${k} | ${v} |`);
  L.push("", "| software | version |", "| --- | --- |");
  for (const [k, v] of Object.entries(meta.versions)) L.push(`| ${k} | ${v || "?"} |`);
  L.push("", `![chart](${chartFile})`, "");

  const all = new Map(scenarios.map((s) => [s.id, aggregate(s, records)]));

  // Summary of ratios
  L.push("## Ratios", "");
  L.push(
    "Headline number of edgewire divided by the other server's, same scenario, same run: msgs/s for echo and long-polling,",
  );
  L.push(
    "deliveries/s for fan-out (higher is better, goal ≥ 0.95× raw for echo and ≥ 0.90× for Bun fan-out), RSS per idle",
  );
  L.push(
    "connection for idle (lower is better, goal ≤ 1.15× raw). `control` is edgewire-node / a second identical edgewire-node",
  );
  L.push(
    "process: how far apart two equal servers land, i.e. the noise. † = one side was client-bound (server < 90 % CPU).",
    `Node's raw is ${raw("node")}${raw("node") === "raw-ws-corked" ? " (`ws` corked until the tick ends, as edgewire's adapter does); `×plain ws` is against the plain send loop (raw-ws)" : ""}.`,
    "Many-to-many rows at a fixed rate (`-20hz`, `-60hz`): the deliveries are set by the rate, so 1.00× means it kept up;",
    "read their latency and server µs/delivery in the scenario's table.",
    "",
  );
  const cols: [string, string, string | undefined][] = [
    ["node ×raw", "edgewire-node", raw("node")],
    // (a run from before raw-ws-corked: its raw is the plain loop already)
    ["node ×plain ws", "edgewire-node", raw("node") === NAIVE_RAW_OF.node ? undefined : NAIVE_RAW_OF.node],
    ["corked ws ×plain ws", "raw-ws-corked", NAIVE_RAW_OF.node],
    ["deno ×raw", "edgewire-deno", raw("deno")],
    ["bun ×raw", "edgewire-bun", raw("bun")],
    ["workerd ×raw", "edgewire-workerd", raw("workerd")],
    ["node ×crossws", "edgewire-node", "crossws-node"],
    ["node ×socket.io", "edgewire-node", "socket.io-node"],
    ["deno ×crossws", "edgewire-deno", "crossws-deno"],
    ["bun ×crossws", "edgewire-bun", "crossws-bun"],
    // raw-bun relaying edgewire-sized frames: what edgewire's own work costs, and what the bigger frame costs
    ["bun ×raw envelope relay", "edgewire-bun", "raw-bun-envelope"],
    ["envelope relay ×raw", "raw-bun-envelope", "raw-bun"],
    ["envelope without room ×crossws", "raw-bun-envelope-no-room", "crossws-bun"],
    ["envelope without room ×envelope", "raw-bun-envelope-no-room", "raw-bun-envelope"],
    // many-to-many: raw-bun relaying edgewire's broadcast frame — edgewire's own work, and the bigger frame's cost
    ["bun ×broadcast relay", "edgewire-bun", "raw-bun-broadcast-envelope"],
    ["broadcast relay ×raw", "raw-bun-broadcast-envelope", "raw-bun"],
    // edgewire.v1+msgpack: against the same ceilings, against JSON on the same server, and its own relay
    ["node msgpack ×raw", "edgewire-node-msgpack", raw("node")],
    ["deno msgpack ×raw", "edgewire-deno-msgpack", raw("deno")],
    ["bun msgpack ×raw", "edgewire-bun-msgpack", raw("bun")],
    ["workerd msgpack ×raw", "edgewire-workerd-msgpack", raw("workerd")],
    ["bun msgpack ×crossws", "edgewire-bun-msgpack", "crossws-bun"],
    ["node msgpack ×JSON", "edgewire-node-msgpack", "edgewire-node"],
    ["deno msgpack ×JSON", "edgewire-deno-msgpack", "edgewire-deno"],
    ["bun msgpack ×JSON", "edgewire-bun-msgpack", "edgewire-bun"],
    ["workerd msgpack ×JSON", "edgewire-workerd-msgpack", "edgewire-workerd"],
    ["bun msgpack ×msgpack relay", "edgewire-bun-msgpack", "raw-bun-envelope-msgpack"],
    ["msgpack relay ×envelope relay", "raw-bun-envelope-msgpack", "raw-bun-envelope"],
    ["control", "edgewire-node", "edgewire-node#2"],
    // Today's code ÷ the code before a change (EDGEWIRE_BENCH_BASELINE: targets.ts)
    ["node ×baseline", "edgewire-node", "baseline-node"],
    ["deno ×baseline", "edgewire-deno", "baseline-deno"],
    ["bun ×baseline", "edgewire-bun", "baseline-bun"],
  ];
  // A MessagePack column shows only where a scenario measured it (echo and idle are left to the JSON sibling).
  const measured = (a: string, b: string) =>
    !/msgpack/.test(`${a} ${b}`) ||
    scenarios.some((s) => Number.isFinite(ratio(all.get(s.id) as Map<string, Agg>, a, b)));
  const used = cols.filter(([, a, b]) => names.has(a) && b && names.has(b) && measured(a, b));
  L.push(`| scenario | ${used.map((c) => c[0]).join(" | ")} |`, `| --- | ${used.map(() => "---:").join(" | ")} |`);
  for (const s of scenarios) {
    const aggs = all.get(s.id) as Map<string, Agg>;
    const cells = used.map(([, a, b]) => {
      const r = ratio(aggs, a, b);
      const cb = [a, b].some((n) => n && aggs.get(n) && clientBound(s, aggs.get(n) as Agg));
      return Number.isFinite(r) ? `${f.x(r)}${cb ? " †" : ""}` : "–";
    });
    L.push(`| ${s.id} | ${cells.join(" | ")} |`);
  }
  L.push("");

  // Goals of issue 5
  L.push(`## Goals (issue 5${scenarios.some((s) => s.family === "m2m") ? "; many-to-many: issue 25" : ""})`, "");
  L.push(
    "`measured` is the median of the per-round ratios, `rounds` their range; `CPU cost` is the other server's",
    "server µs per message ÷ edgewire's (≥ 1: edgewire spends no more CPU per message), which holds even when a run",
    "was client-bound. Read every row against the control (edgewire-node ÷ edgewire-node#2) at the end.",
    "",
  );
  L.push("| goal | measured | rounds | CPU cost | met |", "| --- | --- | --- | --- | --- |");
  const goal = (label: string, value: number, ok: (v: number) => boolean, fmt = f.x, range = "–", cost = Number.NaN) =>
    L.push(
      `| ${label} | ${fmt(value)} | ${range} | ${f.x(cost)} | ${Number.isFinite(value) ? (ok(value) ? "yes" : "**no**") : "not measured"} |`,
    );
  const pairGoal = (s: Scenario, label: string, a: string, b: string | undefined, ok: (v: number) => boolean) => {
    const aggs = all.get(s.id) as Map<string, Agg>;
    const cost = s.family === "idle" ? Number.NaN : costRatio(aggs, a, b);
    goal(label, ratio(aggs, a, b), ok, f.x, ratioRange(aggs, a, b), cost);
  };
  // edgewire-<rt>, then edgewire-<rt>-msgpack when this run had it and it serves the family (reports without it stay as they were)
  const edgewireOf = (rt: string, family: string) =>
    [`edgewire-${rt}`, `edgewire-${rt}-msgpack`].filter(
      (n, i) =>
        i === 0 ||
        (names.has(n) && !targets.find((t) => t.name === n)?.unsupported[family as keyof Target["unsupported"]]),
    );
  for (const s of scenarios.filter((x) => x.family === "echo"))
    for (const rt of ["node", "deno", "bun"])
      for (const ew of edgewireOf(rt, s.family))
        pairGoal(s, `${s.id}: ${ew} ≥ 0.95× raw`, ew, raw(rt), (v) => v >= 0.95);
  for (const s of scenarios.filter((x) => x.family === "fanout" && !x.paced))
    for (const ew of edgewireOf("bun", s.family))
      pairGoal(s, `${s.id}: ${ew} ≥ 0.90× Bun server.publish`, ew, "raw-bun", (v) => v >= 0.9);
  for (const s of scenarios.filter((x) => x.family === "idle"))
    for (const rt of ["node", "deno", "bun"])
      for (const ew of edgewireOf(rt, s.family))
        pairGoal(s, `${s.id}: RSS/conn ${ew} ≤ 1.15× raw`, ew, raw(rt), (v) => v <= 1.15);
  // Issue 25: many-to-many at saturation — ≥ 0.90× the runtime's raw relay (Node: the corked ws), and on Bun no
  // more than 1.1× raw's CPU per delivery (CPU cost ratio raw ÷ edgewire ≥ 1/1.1); ≥ 1.0× crossws is the
  // "ahead of" rows below.
  for (const s of scenarios.filter((x) => x.family === "m2m" && !pacedM2m(x)))
    for (const rt of ["node", "deno", "bun", "workerd"])
      for (const ew of edgewireOf(rt, s.family).filter((n) => !(s.binary && n.endsWith("-msgpack")))) {
        const base = raw(rt);
        if (!names.has(ew) || !base || !names.has(base)) continue;
        pairGoal(s, `${s.id}: ${ew} ≥ 0.90× ${base}`, ew, base, (v) => v >= 0.9);
        if (rt !== "bun") continue;
        const aggs = all.get(s.id) as Map<string, Agg>;
        const cost = costRatio(aggs, ew, base);
        goal(`${s.id}: ${ew} server µs/delivery ≤ 1.1× ${base}'s`, cost, (v) => v >= 1 / 1.1, f.x, "–", cost);
      }
  for (const s of scenarios.filter((x) => x.family === "echo")) {
    const aggs = all.get(s.id) as Map<string, Agg>;
    const fairs = [...aggs.values()].filter((a) => a.target.startsWith("edgewire") && Number.isFinite(a.fair));
    if (fairs.length) {
      const worst = fairs.reduce((m, a) => (a.fair < m.fair ? a : m));
      // The raw server of the same runtime, for context: a runtime that starves connections by itself shows it there too.
      const rawName = raw(targets.find((t) => t.name === worst.target)?.runtime ?? "");
      const rawAgg = rawName ? aggs.get(rawName) : undefined;
      const rawNote = rawAgg && Number.isFinite(rawAgg.fair) ? `; ${rawName}: ${f.n2(rawAgg.fair)}` : "";
      goal(
        `${s.id}: every edgewire connection served fairly (min/max ≥ 0.5; worst: ${worst.target}${rawNote})`,
        worst.fair,
        (v) => v >= 0.5,
        f.n2,
      );
    }
  }
  // (at a fixed many-to-many rate every server delivers the same: read its table's latency and CPU instead)
  for (const s of scenarios.filter((x) => !pacedM2m(x))) {
    const aggs = all.get(s.id) as Map<string, Agg>;
    for (const rt of ["node", "deno", "bun"]) {
      for (const ew of edgewireOf(rt, s.family))
        for (const peer of PEERS_OF[rt] ?? []) {
          const r = ratio(aggs, ew, peer);
          if (!Number.isFinite(r)) continue;
          const better = s.family === "idle" ? r <= 1 : r >= 1;
          const cost = s.family === "idle" ? Number.NaN : costRatio(aggs, ew, peer);
          L.push(
            `| ${s.id}: ${ew} ahead of ${peer} | ${f.x(r)} | ${ratioRange(aggs, ew, peer)} | ${f.x(cost)} | ${better ? "yes" : "**no**"} |`,
          );
        }
    }
  }
  for (const s of scenarios) {
    const aggs = all.get(s.id) as Map<string, Agg>;
    const r = ratio(aggs, "edgewire-node", "edgewire-node#2");
    if (!Number.isFinite(r)) continue;
    const cost = s.family === "idle" ? Number.NaN : costRatio(aggs, "edgewire-node", "edgewire-node#2");
    L.push(
      `| ${s.id}: control, edgewire-node ÷ edgewire-node#2 (the same server twice: 1.00× means no noise) | ${f.x(r)} | ${ratioRange(aggs, "edgewire-node", "edgewire-node#2")} | ${f.x(cost)} | (noise) |`,
    );
  }
  L.push("");

  renderM2mGlance(L, scenarios, targets, all, raw);

  // Per-scenario tables
  for (const s of scenarios) {
    const aggs = all.get(s.id) as Map<string, Agg>;
    L.push(
      `## ${s.id}`,
      "",
      `${s.title}; ${s.duration ? `${s.duration} s measured after ${s.warmup} s warm-up` : "held, RSS read from /proc after settling"}.`,
      "",
    );
    const rows = targets.map((t) => aggs.get(t.name)).filter((a): a is Agg => !!a);
    const rawOfTarget = (name: string) => raw(targets.find((t) => t.name === name)?.runtime ?? "");
    if (s.family === "idle") {
      L.push(
        "| target | connected | connect rate /s | RSS / conn | ×raw | errors |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
      );
      for (const a of rows) {
        if (a.unsupported) {
          L.push(`| ${a.target} | unsupported: ${a.unsupported} | | | | |`);
          continue;
        }
        const runs = records.filter((r) => r.scenario === s.id && r.target === a.target && r.result);
        const conn = median(runs.map((r) => r.result?.ready ?? 0));
        L.push(
          `| ${a.target} | ${Number.isFinite(conn) ? conn : "–"} | ${f.k(a.connectRate)} | ${f.kb(a.main)} | ${f.x(ratio(aggs, a.target, rawOfTarget(a.target)))} | ${a.errors.join("; ").slice(0, 200)} |`,
        );
      }
    } else if (s.family === "fanout") {
      L.push(
        "| target | deliveries/s | publishes/s | p50 | p95 | p99 | delivered | server CPU | server µs/delivery | client CPU | ×raw | join s | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
      );
      for (const a of rows) {
        if (a.unsupported) {
          L.push(`| ${a.target} | unsupported: ${a.unsupported} |||||||||||`);
          continue;
        }
        const notes = [
          clientBound(s, a) ? "client-bound" : "",
          interference(a),
          s.paced && Number.isFinite(a.rate) ? `paced at ${f.k(a.rate)}/s` : "",
          ...a.errors,
        ]
          .filter(Boolean)
          .join("; ");
        L.push(
          `| ${a.target} | ${f.k(a.main)} | ${f.k(a.pubsPerS)} | ${f.us(a.p50)} | ${f.us(a.p95)} | ${f.us(a.p99)} | ${f.pct(a.delivered)} | ${f.pct(a.serverCpu)} | ${f.n2(a.usPerMsg)} | ${f.pct(a.clientCpu)} | ${f.x(ratio(aggs, a.target, rawOfTarget(a.target)))} | ${f.n2(a.connectS + (Number.isFinite(a.settle) ? a.settle : 0))} | ${notes.slice(0, 240)} |`,
        );
      }
    } else if (s.family === "m2m") {
      const plain = raw("node") === NAIVE_RAW_OF.node ? undefined : NAIVE_RAW_OF.node;
      L.push(
        `| target | deliveries/s | spread | updates sent/s | p50 | p99 | delivered | server CPU | server µs/delivery | client CPU | ×raw | CPU ×raw |${plain ? " ×plain ws |" : ""} notes |`,
        `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${plain ? " ---: |" : ""} --- |`,
      );
      for (const a of rows) {
        if (a.unsupported) {
          L.push(`| ${a.target} | unsupported: ${a.unsupported} |||||||||||${plain ? "|" : ""}`);
          continue;
        }
        const node = targets.find((t) => t.name === a.target)?.runtime === "node";
        const notes = [
          clientBound(s, a) ? "client-bound" : "",
          interference(a),
          a.self > 0 ? `${f.k(a.self)} own updates sent back` : "",
          a.foreign > 0 ? `${f.k(a.foreign)} updates from other rooms` : "",
          ...a.errors,
        ]
          .filter(Boolean)
          .join("; ");
        const base = rawOfTarget(a.target);
        L.push(
          `| ${a.target} | ${f.k(a.main)} | ${f.pct(a.spread)} | ${f.k(a.pubsPerS)} | ${f.us(a.p50)} | ${f.us(a.p99)} | ${f.pct(a.delivered)} | ${f.pct(a.serverCpu)} | ${f.n2(a.usPerMsg)} | ${f.pct(a.clientCpu)} | ${f.x(ratio(aggs, a.target, base))} | ${f.x(costRatio(aggs, a.target, base))} |${plain ? ` ${node ? f.x(ratio(aggs, a.target, plain)) : "–"} |` : ""} ${notes.slice(0, 240)} |`,
        );
      }
    } else {
      L.push(
        "| target | msgs/s | spread | p50 | p99 | server CPU | server µs/msg | client CPU | fair (min/max) | ×raw | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
      );
      for (const a of rows) {
        if (a.unsupported) {
          L.push(`| ${a.target} | unsupported: ${a.unsupported} |||||||||`);
          continue;
        }
        const notes = [clientBound(s, a) ? "client-bound" : "", interference(a), ...a.errors]
          .filter(Boolean)
          .join("; ");
        L.push(
          `| ${a.target} | ${f.k(a.main)} | ${f.pct(a.spread)} | ${f.us(a.p50)} | ${f.us(a.p99)} | ${f.pct(a.serverCpu)} | ${f.n2(a.usPerMsg)} | ${f.pct(a.clientCpu)} | ${f.n2(a.fair)} | ${f.x(ratio(aggs, a.target, rawOfTarget(a.target)))} | ${notes.slice(0, 240)} |`,
        );
      }
    }
    L.push("");
  }

  // Largest member count with p95 < 50 ms (paced fan-out)
  const paced = scenarios.filter((s) => s.family === "fanout" && s.paced);
  if (paced.length) {
    L.push(
      "## Fan-out: largest room with p95 < 50 ms (paced at half capacity)",
      "",
      "| target | largest members | p95 there |",
      "| --- | ---: | ---: |",
    );
    for (const t of targets) {
      let best = 0;
      let p95 = Number.NaN;
      for (const s of paced) {
        const a = all.get(s.id)?.get(t.name);
        if (a && a.p95 < 50_000 && (s.members ?? 0) > best) {
          best = s.members ?? 0;
          p95 = a.p95;
        }
      }
      L.push(`| ${t.name} | ${best || "none tested"} | ${f.us(p95)} |`);
    }
    L.push("", `Only ${paced.map((s) => s.members).join(", ")} members were tested in this run.`, "");
  }
  return `${L.join("\n")}\n`;
}

/**
 * Many-to-many at a glance: one row per target, for every saturation scenario its deliveries/s, server µs
 * per delivery and ratio to its runtime's raw server (median of per-round ratios, with their range), for every
 * fixed-rate scenario its p50 / p99.
 */
function renderM2mGlance(
  L: string[],
  scenarios: Scenario[],
  targets: Target[],
  all: Map<string, Map<string, Agg>>,
  raw: (runtime: string) => string | undefined,
): void {
  const m2m = scenarios.filter((s) => s.family === "m2m");
  if (!m2m.length) return;
  const sat = m2m.filter((s) => !pacedM2m(s));
  const paced = m2m.filter(pacedM2m);
  L.push(
    "## Many-to-many at a glance (issue 25)",
    "",
    "Saturation: deliveries/s · server µs per delivery · ×raw (the runtime's raw server, Node's corked `ws`; median of the",
    "per-round ratios and their range) · the load client's share of its own core. Fixed rates: publish-to-delivery",
    "p50 / p99 from the timestamp in each update.",
    "Every member sends ~64 B updates; each must reach every other member of its room (delivered: see the scenario's table).",
    "",
  );
  const head = [
    ...sat.map((s) => `${s.id} deliveries/s · µs · ×raw · client`),
    ...paced.map((s) => `${s.id} p50 / p99`),
  ];
  L.push(`| target | ${head.join(" | ")} |`, `| --- | ${head.map(() => "---:").join(" | ")} |`);
  for (const t of targets) {
    const cells = [
      ...sat.map((s) => {
        const aggs = all.get(s.id) as Map<string, Agg>;
        const a = aggs.get(t.name);
        if (!a || a.unsupported || !Number.isFinite(a.main)) return "–";
        const base = raw(t.runtime);
        const r = base && base !== t.name ? ratio(aggs, t.name, base) : Number.NaN;
        const range = base && base !== t.name ? ratioRange(aggs, t.name, base) : "–";
        const cb = clientBound(s, a) ? " †" : "";
        return `${f.k(a.main)}${cb} · ${f.n2(a.usPerMsg)} · ${Number.isFinite(r) ? `${f.x(r)} (${range})` : "–"} · ${f.pct(a.clientCpu)}`;
      }),
      ...paced.map((s) => {
        const a = all.get(s.id)?.get(t.name);
        if (!a || a.unsupported || !Number.isFinite(a.main)) return "–";
        const kept = Number.isFinite(a.delivered) && a.delivered < 0.999 ? ` (${f.pct(a.delivered)} delivered)` : "";
        return `${f.us(a.p50)} / ${f.us(a.p99)}${kept}`;
      }),
    ];
    if (cells.every((c) => c === "–")) continue;
    L.push(`| ${t.name} | ${cells.join(" | ")} |`);
  }
  L.push("", "† = the server used under 90 % of its core (client-bound or latency-bound).", "");
}
