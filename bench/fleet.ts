/**
 * The fleet bench: `npm run bench:fleet` (about 10 minutes; `-- --rounds=N`,
 * `--members=M`). Fleets of 2 and 3 edgewire-node instances on one Redis
 * against socket.io with @socket.io/redis-adapter on the same Redis and the
 * same member layout (members spread round-robin over the instances, the
 * publisher on the first), in paired rounds: deliveries per second in a
 * burst, then publish-to-delivery latency (p50/p99) at half that rate. Also
 * one edgewire instance with REDIS_URL against one on the memory broker (the
 * cost of Redis), and the resume scenario: a client rejoining 1 000 messages
 * behind, time until it has caught up. Writes bench/results/fleet.md and .json
 * (`--out=NAME`: NAME.md and NAME.json). `--fleets=ew1-redis,ew1-memory` runs only those
 * fleets (keys: ew2, sio2, ew3, sio3, ew1-redis, ew1-memory, raw1), for a quick A/B; `--window=N`
 * publishes in flight in the burst (default 32); `--duration=S` / `--warmup=S` seconds measured /
 * warmed up per phase (default 2 / 0.5). `raw1` is raw `ws` in one process: the control for
 * the latency goal. Redis is a redis-server the bench starts on the load client's core at nice -10
 * (`--redis-nice=N`; EDGEWIRE_BENCH_REDIS: another Redis).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@redis/client";
import WebSocket from "ws";
import { redisStarted } from "../tests/support/redis.ts";
import { buildLoadgen, type LoadResult, runLoadgenPhases } from "./lib/client.ts";
import { freePort, type Launched, launch, processTree } from "./lib/proc.ts";
import { EDGEWIRE_BENCH_ENV, ROOT } from "./lib/targets.ts";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const ROUNDS = Number(arg("rounds") ?? 3);
const MEMBERS = Number(arg("members") ?? 1000);
const OUT = arg("out") ?? "fleet";
// publishes the burst keeps in flight (default 32): more tells a round-trip bound from a CPU bound
const WINDOW = Number(arg("window") ?? 32);
// seconds measured per phase, after WARMUP seconds of the same load that are not counted
const DURATION = Number(arg("duration") ?? 2);
const WARMUP = Number(arg("warmup") ?? 0.5);
const SERVER_CORE = 1;
const CLIENT_CORE = 0;
// Redis: a redis-server of the bench's own (no persistence), pinned to the load client's core, so its
// CPU (7–13 µs per publish script: bench/redis/script-cost.mjs) is never taken from the servers' core — on a real fleet Redis has
// its own machine, and the machine's shared Redis goes wherever the scheduler puts it.
// EDGEWIRE_BENCH_REDIS=redis://… uses that Redis instead (the machine's: redis://127.0.0.1:6379/12).
const OWN_REDIS = process.env.EDGEWIRE_BENCH_REDIS === undefined;
const redisPort = OWN_REDIS ? await freePort() : 0;
const redisServer = OWN_REDIS
  ? launch("redis-server", ["--port", String(redisPort), "--save", "", "--appendonly", "no"], {
      cwd: ROOT,
      env: {},
      core: CLIENT_CORE,
      nofile: 20_000,
    })
  : undefined;
// The load client keeps core 0 at ~95 %, and a redis-server of equal priority waits behind its time
// slices before it answers: that wait is the shared core's, not the round trip a fleet pays where
// Redis has a machine of its own. So the bench's Redis runs at a higher priority (nice -10, the
// CPU it uses is the same); `--redis-nice=0` measures it at the load client's priority.
const REDIS_NICE = Number(arg("redis-nice") ?? -10);
if (redisServer && REDIS_NICE !== 0)
  execFileSync("renice", ["-n", String(REDIS_NICE), "-p", String(redisServer.pid)], { stdio: "ignore" });
const REDIS = process.env.EDGEWIRE_BENCH_REDIS ?? `redis://127.0.0.1:${redisPort}/0`;
const TOKEN = "bench-push-token";
const GC_HOOK = join(ROOT, "bench/gc-hook.js");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fleet {
  /** short name for --fleets */
  key: string;
  name: string;
  kind: "edgewire" | "socket.io" | "raw";
  instances: number;
  redis: boolean;
}
const ALL_FLEETS: Fleet[] = [
  { key: "ew2", name: "edgewire ×2", kind: "edgewire", instances: 2, redis: true },
  { key: "sio2", name: "socket.io+redis ×2", kind: "socket.io", instances: 2, redis: true },
  { key: "ew3", name: "edgewire ×3", kind: "edgewire", instances: 3, redis: true },
  { key: "sio3", name: "socket.io+redis ×3", kind: "socket.io", instances: 3, redis: true },
  { key: "ew1-redis", name: "edgewire ×1 redis", kind: "edgewire", instances: 1, redis: true },
  { key: "ew1-memory", name: "edgewire ×1 memory", kind: "edgewire", instances: 1, redis: false },
  // the control for the latency goal: raw `ws` relaying the same publishes, one process, no broker —
  // what one core's socket writes allow, whatever a framework or broker adds
  { key: "raw1", name: "raw ws ×1", kind: "raw", instances: 1, redis: false },
];
const ONLY = arg("fleets")?.split(",");
const FLEETS = ONLY ? ALL_FLEETS.filter((f) => ONLY.includes(f.key)) : ALL_FLEETS;
if (FLEETS.length === 0)
  throw new Error(`--fleets: none of ${ONLY?.join(",")} (keys: ${ALL_FLEETS.map((f) => f.key).join(", ")})`);

interface Running {
  ports: number[];
  procs: Launched[];
}

async function start(fleet: Fleet, round: number): Promise<Running> {
  const prefix = `bench:${process.pid}:${round}:${fleet.instances}:`;
  const procs: Launched[] = [];
  const ports: number[] = [];
  for (let i = 0; i < fleet.instances; i++) {
    const port = await freePort();
    const script = {
      edgewire: "service/node.ts",
      "socket.io": "bench/targets/socketio.ts",
      raw: "bench/targets/raw-ws.ts",
    }[fleet.kind];
    const env: Record<string, string> = {
      PORT: String(port),
      HOST: "127.0.0.1",
      NODE_ENV: "production",
      ...EDGEWIRE_BENCH_ENV,
      EDGEWIRE_PUSH_TOKEN: TOKEN,
      SOCKETIO_KEY: prefix,
      ...(fleet.redis ? { REDIS_URL: REDIS, SOCKETIO_REDIS_URL: REDIS, EDGEWIRE_REDIS_PREFIX: prefix } : {}),
    };
    procs.push(
      launch(process.execPath, ["--expose-gc", "--import", GC_HOOK, "--import", "tsx", script], {
        cwd: ROOT,
        env,
        core: SERVER_CORE,
        nofile: 20_000,
      }),
    );
    ports.push(port);
  }
  for (const port of ports) {
    for (let i = 0; ; i++) {
      if (
        await fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 300) throw new Error(`${fleet.name} did not start`);
      await sleep(100);
    }
  }
  return { ports, procs };
}

/**
 * One loadgen run on a fresh room: a burst (WINDOW publishes in flight), then either paced at half
 * the burst rate (`rate` undefined) or, with `rate`, only paced at that many publishes/s.
 */
async function fanout(fleet: Fleet, run: Running, round: number, rate?: number): Promise<LoadResult[]> {
  const room = `fleet-${round}-${Date.now() % 100000}`;
  const path = fleet.kind === "socket.io" ? `/socket.io/?EIO=4&transport=websocket&room=${room}` : `/rooms/${room}`;
  const pids = run.procs.flatMap((p) => processTree(p.pid));
  return runLoadgenPhases(
    [
      "--server-pids",
      pids.join(","),
      "--ports",
      run.ports.join(","),
      "--mode",
      "fanout",
      "--path",
      path,
      ...(fleet.kind === "socket.io" ? ["--proto", "sio"] : []),
      "--conns",
      String(MEMBERS),
      "--window",
      String(WINDOW),
      "--size",
      "64",
      "--duration",
      String(DURATION),
      "--warmup",
      String(WARMUP),
      "--welcome",
      "--settle",
      "0.5",
      "--settle-max",
      "60",
      "--connect-timeout",
      "60",
      ...(rate === undefined ? ["--then-paced", "0.5"] : ["--rate", String(rate)]),
    ],
    { core: CLIENT_CORE, timeoutMs: 240_000 },
  );
}

/** A client that left after seq `behind` messages ago rejoins: ms until it has every one of them. */
async function resume(run: Running, behind: number): Promise<number> {
  const base = `ws://127.0.0.1:${run.ports[0]}`;
  const room = `resume-${Date.now() % 100000}`;
  const first = new WebSocket(`${base}/rooms/${room}`, "edgewire.v1");
  const welcome = await new Promise<{ epoch: string; seq: number }>((r) =>
    first.once("message", (d) => r(JSON.parse(String(d)))),
  );
  first.close();
  const http = `http://127.0.0.1:${run.ports.at(-1)}`;
  for (let i = 0; i < behind; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, behind - i) }, (_, k) =>
        fetch(`${http}/rooms/${room}/messages`, {
          method: "POST",
          body: JSON.stringify({ n: i + k, text: "x".repeat(40) }),
          headers: { authorization: `Bearer ${TOKEN}` },
        }).then((r) => r.text()),
      ),
    );
  }
  await sleep(300);
  const t0 = performance.now();
  const back = new WebSocket(`${base}/rooms/${room}?seq=${welcome.seq}&epoch=${welcome.epoch}`, "edgewire.v1");
  let got = 0;
  await new Promise<void>((done) =>
    back.on("message", (d) => {
      if (String(d).startsWith('{"type":"message"') && ++got === behind) done();
    }),
  );
  const ms = performance.now() - t0;
  back.close();
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length
    ? ((s[Math.floor((s.length - 1) / 2)] as number) + (s[Math.ceil((s.length - 1) / 2)] as number)) / 2
    : Number.NaN;
};

buildLoadgen();
if (OWN_REDIS) await redisStarted(REDIS);
interface Row {
  burst: number[];
  /** server CPU µs per delivery in the burst: the broker's cost per delivery, whatever the client's core allows */
  burstUs: number[];
  /** the load client's share of its core in the burst (Redis shares that core) */
  burstClientCpu: number[];
  p50: number[];
  p99: number[];
  pacedCpu: number[];
  capacity: number[];
  steadyRate: number[];
  steadyP50: number[];
  steadyP99: number[];
  steadyCpu: number[];
  resumeMs: number[];
}
const results = new Map<string, Row>();
for (const f of ALL_FLEETS)
  results.set(f.name, {
    burst: [],
    burstUs: [],
    burstClientCpu: [],
    p50: [],
    p99: [],
    pacedCpu: [],
    capacity: [],
    steadyRate: [],
    steadyP50: [],
    steadyP99: [],
    steadyCpu: [],
    resumeMs: [],
  });
const perRound: Record<string, number[]> = {};
for (let round = 1; round <= ROUNDS; round++) {
  // Pairs back to back (edgewire, then socket.io with the same layout), the order alternating per round.
  const order = round % 2 ? FLEETS : [...FLEETS].reverse();
  for (const fleet of order) {
    const run = await start(fleet, round);
    try {
      const [burst, paced] = await fanout(fleet, run, round);
      const r = results.get(fleet.name) as Row;
      r.burst.push(burst?.msgs_per_s ?? 0);
      r.burstUs.push(burst?.server_us_per_msg ?? Number.NaN);
      r.burstClientCpu.push(burst?.client_cpu ?? Number.NaN);
      if (paced) {
        r.p50.push(paced.lat_us.p50 / 1000);
        r.p99.push(paced.lat_us.p99 / 1000);
        r.pacedCpu.push(paced.server_cpu);
      }
      // A burst rides write coalescing (many publishes per writev); paced publishes do not, so a paced
      // publish costs more CPU and half the burst rate can already saturate the servers. Capacity is
      // therefore measured for paced publishing: a probe at an eighth of the burst rate gives the
      // servers' CPU per paced publish, capacity = 1 / that, and the latency goal is read at half of it.
      const pubs = (x: LoadResult | undefined) => (x?.fanout ? x.fanout.published_measured / x.seconds : 0);
      const probeRate = Math.max(1, pubs(burst) / 8);
      const [probe] = await fanout(fleet, run, round, probeRate);
      const capacity = probe && probe.server_cpu > 0 ? pubs(probe) / probe.server_cpu : probeRate;
      r.capacity.push(capacity);
      const [steady] = await fanout(fleet, run, round, Math.max(1, capacity / 2));
      if (steady) {
        r.steadyRate.push((steady.fanout?.published_measured ?? 0) / steady.seconds);
        r.steadyP50.push(steady.lat_us.p50 / 1000);
        r.steadyP99.push(steady.lat_us.p99 / 1000);
        r.steadyCpu.push(steady.server_cpu);
      }
      if (fleet.kind === "edgewire" && fleet.instances <= 2) r.resumeMs.push(await resume(run, 1000));
      process.stderr.write(
        `[round ${round}] ${fleet.name}: ${Math.round((burst?.msgs_per_s ?? 0) / 1000)}k deliveries/s, paced p50 ${paced?.lat_us.p50 ?? "?"} µs p99 ${paced?.lat_us.p99 ?? "?"} µs\n`,
      );
      perRound[fleet.name] = [...(perRound[fleet.name] ?? []), burst?.msgs_per_s ?? 0];
    } finally {
      await Promise.all(run.procs.map((p) => p.stop()));
    }
  }
}
// Clean the bench's keys.
const redis = createClient({ url: REDIS });
await redis.connect();
for await (const keys of redis.scanIterator({ MATCH: `bench:${process.pid}:*`, COUNT: 500 }))
  if (keys.length) await redis.del(keys);
await redis.close();
await redisServer?.stop();

const row = (name: string) => results.get(name) as Row;
const ratio = (a: string, b: string) => {
  const xs = perRound[a] ?? [];
  const ys = perRound[b] ?? [];
  return median(xs.map((x, i) => x / (ys[i] ?? Number.NaN)));
};
// What a delivery costs the server, Redis against memory, per round: the throughput ratio also moves
// with the load client's core, which Redis shares here.
const cpuRatio = median(
  row("edgewire ×1 memory").burstUs.map((m, i) => m / (row("edgewire ×1 redis").burstUs[i] ?? Number.NaN)),
);
// each goal's figure, computed once for its cell and its verdict
const vsSio2 = ratio("edgewire ×2", "socket.io+redis ×2");
const vsSio3 = ratio("edgewire ×3", "socket.io+redis ×3");
const p99two = median(row("edgewire ×2").steadyP99);
const p99three = median(row("edgewire ×3").steadyP99);
const redisOne = ratio("edgewire ×1 redis", "edgewire ×1 memory");
const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "–");
// a goal's verdict; a fleet left out by --fleets has no figure, and that is not a miss
const met = (x: number, ok: boolean) => (Number.isFinite(x) ? (ok ? "yes" : "**no**") : "not run");
const lines = [
  "# edgewire fleet bench",
  "",
  `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; ${ROUNDS} paired rounds; ${MEMBERS} members spread round-robin over the instances, one publisher on the first keeping ${WINDOW} publishes in flight (64 B); every server process on core 1, the load client on core 0, ${OWN_REDIS ? `Redis (the bench's own redis-server, no persistence) on core 0 with the load client${REDIS_NICE ? ` at nice ${REDIS_NICE}` : ""}` : `Redis at ${REDIS} wherever the OS puts it`}. Burst: deliveries/s. ½ burst: the same room paced at half the burst rate, publish-to-delivery latency. Paced capacity: publishes/s the servers could sustain at the CPU a paced publish costs (a probe at ⅛ of the burst rate: its rate ÷ its server CPU; a burst rides write coalescing that paced publishes do not get, so half the burst rate can already saturate them — the ½-burst CPU column). Steady: a fresh run paced at half that capacity — where the latency goal is read. \`npm run bench:fleet${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}\``,
  "",
  "| fleet | burst deliveries/s (server µs per delivery, load client's CPU) | ½ burst: p50 / p99 (server CPU) | paced capacity | steady: publishes/s, p50 / p99 (server CPU) | resume 1 000 behind |",
  "| --- | ---: | ---: | ---: | ---: | ---: |",
  ...FLEETS.map((f) => {
    const r = row(f.name);
    const pct = (xs: number[]) => `${Math.round(median(xs) * 100)} %`;
    return `| ${f.name} | ${Math.round(median(r.burst) / 1000)} k (${fmt(median(r.burstUs))} µs, ${pct(r.burstClientCpu)}) | ${fmt(median(r.p50))} / ${fmt(median(r.p99))} ms (${pct(r.pacedCpu)}) | ${fmt(median(r.capacity), 0)} publishes/s | ${fmt(median(r.steadyRate), 0)}/s, ${fmt(median(r.steadyP50))} / ${fmt(median(r.steadyP99))} ms (${pct(r.steadyCpu)}) | ${r.resumeMs.length ? `${fmt(median(r.resumeMs), 0)} ms` : "–"} |`;
  }),
  "",
  "| goal | measured (median of per-round ratios) | met |",
  "| --- | --- | --- |",
  `| 2 instances: edgewire ≥ 3× socket.io + redis-adapter | ${fmt(vsSio2)}× | ${met(vsSio2, vsSio2 >= 3)} |`,
  `| 3 instances: edgewire ≥ 3× socket.io + redis-adapter | ${fmt(vsSio3)}× | ${met(vsSio3, vsSio3 >= 3)} |`,
  `| cross-instance p99 at half the sustained capacity < 10 ms (2 / 3 instances; steady column) | ${fmt(p99two)} / ${fmt(p99three)} ms | ${met(p99two + p99three, p99two < 10 && p99three < 10)} |`,
  `| (control) raw \`ws\`, one process, no broker: steady p99 | ${fmt(median(row("raw ws ×1").steadyP99))} ms | – |`,
  `| one instance: Redis broker ≥ 0.8× memory broker | ${fmt(redisOne)}× | ${met(redisOne, redisOne >= 0.8)} |`,
  `| one instance, per server CPU: Redis's deliveries per server CPU-second ÷ memory's (burst) | ${fmt(cpuRatio)}× | ${met(cpuRatio, cpuRatio >= 0.8)} |`,
  "",
  `Per round (deliveries/s): ${FLEETS.map((f) => `${f.name} ${(perRound[f.name] ?? []).map((x) => `${Math.round(x / 1000)}k`).join(" / ")}`).join("; ")}.`,
  "",
];
const dir = join(ROOT, "bench/results");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${OUT}.md`), `${lines.join("\n")}\n`);
writeFileSync(
  join(dir, `${OUT}.json`),
  `${JSON.stringify({ rounds: ROUNDS, members: MEMBERS, results: Object.fromEntries(results), perRound }, null, 1)}\n`,
);
process.stderr.write(`${lines.join("\n")}\nwrote bench/results/${OUT}.md and ${OUT}.json\n`);
