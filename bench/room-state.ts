/**
 * Room state transactions on a Redis fleet, side by side in one run: edgewire's commits (three
 * broker instances, as three servers would hold them) against what a user would write instead —
 * a WATCH/MULTI/EXEC loop with the same Redis client that reads the state, writes it and
 * sequences, stores and publishes the message — under the same contention: C clients spread over
 * the three instances, each committing "+1" as fast as its last commit returns, on one room.
 * Printed per round: committed transactions per second, Redis commands per commit (scripts and
 * EXECs counted by INFO commandstats: a round trip each), p50/p99 commit latency; rounds alternate
 * the two, and the medians with their ranges are the result.
 *
 *   npm run bench:state -- [--clients=10] [--seconds=5] [--rounds=5] [--out=name]
 *
 * With `--mode=runtimes`: one contended room of `--members=100` on each runtime (node, deno, bun,
 * workerd; `--runtimes=` narrows), every member bidding as soon as its last bid was acknowledged,
 * through a transaction (`/tx/:room`: the best bid checked and raised with the message) beside
 * plain publishes of the same data (`/pub/:room`), rounds alternated; printed: acknowledged bids
 * per second and the ratio. The clients are Node `ws` sockets on the other core, the same for both.
 *
 * REDIS_URL (default redis://127.0.0.1:6379/14); keys under a bench prefix, removed after.
 */

import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient, type RedisClientType } from "@redis/client";
import WebSocket from "ws";
import { type ChangeFn, roomRef } from "../src/pubsub/broker.ts";
import { RedisBroker } from "../src/pubsub/redis.ts";
import { freePort, type RuntimeName, startServer, stopGroup, WRANGLER_ENV, wranglerDev } from "../testing/index.ts";

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const CLIENTS = Number(arg("clients", "10"));
const SECONDS = Number(arg("seconds", "5"));
const ROUNDS = Number(arg("rounds", "5"));
const OUT = arg("out", "");
const MODE = arg("mode", "fleet");
const MEMBERS = Number(arg("members", "100"));
const RUNTIME_LIST = arg("runtimes", "node,deno,bun,workerd").split(",") as RuntimeName[];
const URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379/14";
const PREFIX = `bench:state:${process.pid}:`;

interface Round {
  committed: number;
  perSecond: number;
  commandsPerCommit: number;
  p50: number;
  p99: number;
  lost: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

async function calls(admin: RedisClientType, command: string): Promise<number> {
  const stats = await admin.info("commandstats");
  return Number(stats.match(new RegExp(`cmdstat_${command}:calls=(\\d+)`))?.[1] ?? 0);
}

// Each client commits as soon as its last commit returned, for the round's length.
async function closedLoop(
  clients: number,
  commit: (client: number) => Promise<boolean>,
): Promise<{ latencies: number[]; lost: number }> {
  const latencies: number[] = [];
  let lost = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < end) {
        const t = performance.now();
        if (await commit(c)) latencies.push(performance.now() - t);
        else lost++;
      }
    }),
  );
  return { latencies, lost };
}

const add: ChangeFn = (stored) => {
  const n = stored === undefined ? 0 : (JSON.parse(stored) as { n: number }).n;
  return { state: JSON.stringify({ n: n + 1 }), messages: [{ bid: n + 1 }], view: { value: { n: n + 1 } } };
};

async function edgewireRound(brokers: RedisBroker[], admin: RedisClientType, room: string): Promise<Round> {
  const ref = roomRef("bench", room);
  // A member on each instance, as in a live room: its join warms the instance's state cache.
  for (const [i, b] of brokers.entries()) await b.join(ref, { id: `watcher${i}`, joinedAt: 1 });
  const before = await calls(admin, "evalsha");
  const { latencies, lost } = await closedLoop(CLIENTS, (c) =>
    (brokers[c % brokers.length] as RedisBroker).commit(ref, `c${c}`, add).then(
      () => true,
      () => false,
    ),
  );
  const scripts = (await calls(admin, "evalsha")) - before;
  for (const [i, b] of brokers.entries()) await b.leave(ref, `watcher${i}`);
  return summary(latencies, lost, scripts - 2 * brokers.length);
}

// What a user writes without edgewire: optimistic WATCH on the state, then one MULTI that writes it
// with the message's seq, history entry and publish; a null EXEC (someone committed first) retries.
async function watchRound(conns: RedisClientType[], admin: RedisClientType, room: string): Promise<Round> {
  const k = (part: string) => `${PREFIX}w:${room}:${part}`;
  const before = (await calls(admin, "exec")) + (await calls(admin, "watch")) + (await calls(admin, "get"));
  const { latencies, lost } = await closedLoop(CLIENTS, async (c) => {
    const redis = conns[c] as RedisClientType;
    for (let attempt = 0; attempt < 50; attempt++) {
      await redis.watch(k("state"));
      const n = Number(JSON.parse((await redis.get(k("state"))) ?? '{"n":0}').n);
      const frame = JSON.stringify({ type: "message", room, from: `c${c}`, data: { bid: n + 1 }, view: { n: n + 1 } });
      const done = await redis
        .multi()
        .set(k("state"), JSON.stringify({ n: n + 1 }))
        .incr(k("seq"))
        .xAdd(k("log"), "*", { f: frame }, { TRIM: { strategy: "MAXLEN", strategyModifier: "~", threshold: 1000 } })
        .publish(k("c"), frame)
        .exec()
        .catch(() => null);
      if (done !== null) return true;
    }
    return false;
  });
  const commands = (await calls(admin, "exec")) + (await calls(admin, "watch")) + (await calls(admin, "get")) - before;
  return summary(latencies, lost, commands);
}

function summary(latencies: number[], lost: number, commands: number): Round {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    committed: latencies.length,
    perSecond: latencies.length / SECONDS,
    commandsPerCommit: commands / Math.max(1, latencies.length),
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    lost,
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const range = (values: number[], digits = 0) =>
  `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;

async function main(): Promise<void> {
  const admin = createClient({ url: URL }) as RedisClientType;
  await admin.connect();
  const brokers: RedisBroker[] = [];
  for (let i = 0; i < 3; i++) {
    const broker = new RedisBroker({ url: URL, prefix: PREFIX });
    await broker.start();
    brokers.push(broker);
  }
  const conns: RedisClientType[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    const conn = createClient({ url: URL }) as RedisClientType;
    await conn.connect();
    conns.push(conn);
  }
  const results: { edgewire: Round[]; watch: Round[] } = { edgewire: [], watch: [] };
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Paired and alternated, so drift on the machine falls on both.
      const first = r % 2 === 0;
      for (const which of first ? ["edgewire", "watch"] : ["watch", "edgewire"]) {
        const room = `r${r}-${which}`;
        const round =
          which === "edgewire" ? await edgewireRound(brokers, admin, room) : await watchRound(conns, admin, room);
        results[which as "edgewire" | "watch"].push(round);
        console.log(
          `round ${r + 1} ${which.padEnd(8)} ${round.perSecond.toFixed(0).padStart(7)} commits/s  ${round.commandsPerCommit.toFixed(2)} round trips/commit  p50 ${round.p50.toFixed(2)} ms  p99 ${round.p99.toFixed(2)} ms  gave up ${round.lost}`,
        );
      }
    }
  } finally {
    for (const b of brokers) await b.close();
    for (const c of conns) await c.quit();
    for await (const keys of admin.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 500 }))
      if (keys.length) await admin.del(keys);
    await admin.quit();
  }
  const ew = results.edgewire;
  const w = results.watch;
  const ratios = ew.map((e, i) => e.perSecond / (w[i]?.perSecond ?? 1));
  const lines = [
    `Room state commits on a 3-instance Redis fleet, ${CLIENTS} contending clients, one room, ${SECONDS} s × ${ROUNDS} paired rounds`,
    "",
    "| | commits/s (median, range) | round trips per commit | p50 ms | p99 ms |",
    "| --- | --- | --- | --- | --- |",
    `| edgewire (one script per batch) | ${median(ew.map((r) => r.perSecond)).toFixed(0)} (${range(ew.map((r) => r.perSecond))}) | ${median(ew.map((r) => r.commandsPerCommit)).toFixed(2)} | ${median(ew.map((r) => r.p50)).toFixed(2)} | ${median(ew.map((r) => r.p99)).toFixed(2)} |`,
    `| WATCH/MULTI/EXEC loop | ${median(w.map((r) => r.perSecond)).toFixed(0)} (${range(w.map((r) => r.perSecond))}) | ${median(w.map((r) => r.commandsPerCommit)).toFixed(2)} | ${median(w.map((r) => r.p50)).toFixed(2)} | ${median(w.map((r) => r.p99)).toFixed(2)} |`,
    "",
    `edgewire ÷ WATCH loop, committed per second: ${median(ratios).toFixed(2)}× (${range(ratios, 2)})`,
  ];
  console.log(`\n${lines.join("\n")}`);
  if (OUT) {
    const dir = join(import.meta.dirname, "results");
    writeFileSync(
      join(dir, `${OUT}.json`),
      `${JSON.stringify({ clients: CLIENTS, seconds: SECONDS, results }, null, 2)}\n`,
    );
    writeFileSync(
      join(dir, `${OUT}.md`),
      `${lines.join("\n")}\n\nCommand: \`npm run bench:state -- --clients=${CLIENTS} --seconds=${SECONDS} --rounds=${ROUNDS} --out=${OUT}\`\n`,
    );
  }
}

// One round on one route: MEMBERS sockets in one room, each bidding as soon as its last bid was acked.
async function roomRound(ws: string, route: "tx" | "pub" | "raw", room: string): Promise<number> {
  const sockets: WebSocket[] = [];
  let acked = 0;
  let running = true;
  await Promise.all(
    Array.from({ length: MEMBERS }, (_, m) => {
      const socket = new WebSocket(`${ws}/${route}/${room}`, "edgewire.v1");
      sockets.push(socket);
      let n = 0;
      const bid = () => socket.send(`{"type":"publish","id":"${m}-${n++}","data":{"amount":${n}}}`);
      return new Promise<void>((resolve, reject) => {
        socket.on("error", reject);
        socket.on("message", (data: Buffer) => {
          // Only the acks matter here; every other frame (a hundred messages per bid) is skipped unparsed.
          const head = data.toString("latin1", 0, 16);
          if (head.startsWith('{"type":"welcome')) resolve();
          else if (head.startsWith('{"type":"ack"') && running) {
            acked++;
            bid();
          }
        });
      });
    }),
  );
  const start = performance.now();
  const before = acked;
  for (const [m, socket] of sockets.entries()) socket.send(`{"type":"publish","id":"${m}-first","data":{"amount":0}}`);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  running = false;
  const rate = (acked - before) / ((performance.now() - start) / 1000);
  for (const socket of sockets) socket.terminate();
  await new Promise((r) => setTimeout(r, 300));
  return rate;
}

// The raw Durable Object control (bench/state/raw-do): storage.put and broadcast, by hand.
async function rawDurableObject(): Promise<{ ws: string; stop: () => Promise<void> }> {
  const root = join(import.meta.dirname, "..");
  const port = await freePort();
  const [command, args] = wranglerDev(root, port, await freePort(), [
    "--config",
    join(root, "bench/state/raw-do/wrangler.toml"),
    "--log-level",
    "warn",
  ]);
  const child = spawn(command, args, {
    cwd: root,
    detached: true,
    stdio: "ignore",
    env: { ...process.env, ...WRANGLER_ENV },
  });
  const gone = new Promise((r) => child.once("exit", r));
  const deadline = Date.now() + 90_000;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/x/probe`).then(
      (r) => r.status === 426,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error("the raw Durable Object did not start");
    await new Promise((r) => setTimeout(r, 500));
  }
  return { ws: `ws://127.0.0.1:${port}`, stop: () => stopGroup(child, gone) };
}

async function runtimes(): Promise<void> {
  const env = {
    EDGEWIRE_RATE_LIMIT: "10000000",
    EDGEWIRE_RATE_BURST: "10000000",
    EDGEWIRE_MAX_CONNECTIONS_PER_ADDRESS: "100000",
    EDGEWIRE_LOG_LEVEL: "warn",
  };
  const lines = [
    `Transactions beside plain publishes in one room of ${MEMBERS} members, every member bidding, ${SECONDS} s × ${ROUNDS} paired rounds`,
    "",
    "| runtime | transactions/s (median, range) | publishes/s (median, range) | transactions ÷ publishes |",
    "| --- | --- | --- | --- |",
  ];
  const all: Record<string, { tx: number[]; pub: number[] }> = {};
  for (const runtime of RUNTIME_LIST) {
    const server = await startServer(runtime, {
      entry: "bench/state/app.ts",
      env,
      root: join(import.meta.dirname, ".."),
    });
    const rates = { tx: [] as number[], pub: [] as number[] };
    try {
      for (let r = 0; r < ROUNDS; r++) {
        for (const route of r % 2 === 0 ? (["tx", "pub"] as const) : (["pub", "tx"] as const)) {
          const rate = await roomRound(server.ws, route, `r${r}${route}`);
          rates[route].push(rate);
          console.log(
            `${runtime} round ${r + 1} ${route.padEnd(3)} ${rate.toFixed(0).padStart(7)} acknowledged bids/s`,
          );
        }
      }
    } finally {
      await server.stop();
    }
    all[runtime] = rates;
    const ratios = rates.tx.map((t, i) => t / (rates.pub[i] ?? 1));
    lines.push(
      `| ${runtime} | ${median(rates.tx).toFixed(0)} (${range(rates.tx)}) | ${median(rates.pub).toFixed(0)} (${range(rates.pub)}) | ${median(ratios).toFixed(2)}× (${range(ratios, 2)}) |`,
    );
    if (runtime !== "workerd") continue;
    // workerd's control: the same room by hand, storage.put and broadcast, in rounds of its own
    // paired with edgewire's transactions.
    const raw = await rawDurableObject();
    const rawRates: number[] = [];
    const ours: number[] = [];
    try {
      for (let r = 0; r < ROUNDS; r++) {
        const pair = r % 2 === 0 ? (["raw", "tx"] as const) : (["tx", "raw"] as const);
        for (const which of pair) {
          if (which === "raw") rawRates.push(await roomRound(raw.ws, "raw", `raw${r}`));
          else ours.push(rates.tx[r] ?? 0);
        }
        console.log(`workerd raw Durable Object round ${r + 1} ${rawRates.at(-1)?.toFixed(0)} acknowledged bids/s`);
      }
    } finally {
      await raw.stop();
    }
    all["raw-do"] = { tx: rawRates, pub: [] };
    const vsRaw = ours.map((t, i) => t / (rawRates[i] ?? 1));
    lines.push(
      `| workerd raw Durable Object (storage.put + broadcast) | ${median(rawRates).toFixed(0)} (${range(rawRates)}) | | edgewire's transactions ÷ raw: ${median(vsRaw).toFixed(2)}× (${range(vsRaw, 2)}) |`,
    );
  }
  console.log(`\n${lines.join("\n")}`);
  if (OUT) {
    const dir = join(import.meta.dirname, "results");
    writeFileSync(
      join(dir, `${OUT}.json`),
      `${JSON.stringify({ members: MEMBERS, seconds: SECONDS, rates: all }, null, 2)}\n`,
    );
    writeFileSync(
      join(dir, `${OUT}.md`),
      `${lines.join("\n")}\n\nCommand: \`npm run bench:state -- --mode=runtimes --members=${MEMBERS} --seconds=${SECONDS} --rounds=${ROUNDS} --out=${OUT}\`\n`,
    );
  }
}

await (MODE === "runtimes" ? runtimes() : main());
