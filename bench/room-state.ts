/**
 * Room state transactions on a Redis fleet, side by side in one run: edgewire's commits (three
 * instances, each a process with its broker as three servers would hold them: bench/state/instance.ts)
 * against what a user would write instead — a WATCH/MULTI/EXEC loop with the same Redis client that
 * reads the state, writes it and sequences, stores and publishes the message, run from the same three
 * processes — under the same contention: C clients spread over the three instances, each committing
 * "+1" as fast as its last commit returns, on one room; and the same contention through the whole
 * path — three Node servers on the same Redis, the clients WebSocket members bidding on a route.
 * Printed per round: committed transactions per second, Redis commands per commit (scripts and
 * EXECs counted by INFO commandstats: a round trip each), p50/p99 commit latency; rounds alternate
 * the two, and the medians with their ranges are the result.
 *
 *   npm run bench:state -- [--clients=10] [--seconds=5] [--rounds=5] [--out=name]
 *
 * With `--mode=runtimes`: one contended room of `--members=100` on each runtime (node, deno, bun,
 * workerd; `--runtimes=` narrows), every member bidding as soon as its last bid was acknowledged,
 * through a transaction (`/tx/:room`: the best bid checked and raised with the message) beside
 * plain publishes of the same data (`/pub/:room`), and the same transactions with a view that shows
 * nothing (`/hidden/:room`: what the view costs, and so the most a patch of it could save), rounds
 * alternated; printed: acknowledged bids per second and the ratios. The clients are Node `ws` sockets on the other core, the same for both,
 * offering no permessage-deflate: workerd accepts it when offered, and inflating every frame made
 * the clients, not the servers, the bottleneck there (about 7× fewer bids per second).
 *
 * REDIS_URL (default redis://127.0.0.1:6379/14); keys under a bench prefix, removed after.
 */

import { type ChildProcess, fork, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient, type RedisClientType } from "@redis/client";
import WebSocket from "ws";
import {
  freePort,
  type RunningServer,
  type RuntimeName,
  startServer,
  stopGroup,
  WRANGLER_ENV,
  wranglerDev,
} from "../testing/index.ts";
import type { RoundOrder, RoundReport } from "./state/instance.ts";

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

// One round on the fleet: every instance runs its clients over the same wall-clock window.
async function fleetRound(
  instances: ChildProcess[],
  admin: RedisClientType,
  order: Omit<RoundOrder, "start" | "end">,
): Promise<Round> {
  const counted = order.which === "edgewire" ? ["evalsha"] : ["exec", "watch", "get"];
  const count = async () => (await Promise.all(counted.map((c) => calls(admin, c)))).reduce((a, b) => a + b, 0);
  const before = await count();
  const start = Date.now() + 300;
  const reports = await Promise.all(
    instances.map(
      (child) =>
        new Promise<RoundReport>((resolve) => {
          child.once("message", (report: RoundReport) => resolve(report));
          child.send({ ...order, start, end: start + SECONDS * 1000 });
        }),
    ),
  );
  // edgewire's instances each joined and left the room once around the round: two scripts apiece
  // (the three servers' timer-claim polls, about 12 a second, are counted too: ~0.002 per commit).
  const commands = (await count()) - before - (order.which === "edgewire" ? 2 * instances.length : 0);
  return summary(
    reports.flatMap((r) => r.latencies),
    reports.reduce((n, r) => n + r.lost, 0),
    commands,
  );
}

// The same contention through the whole path: each client a WebSocket member of one of three Node
// servers on the same Redis (bench/state/app.ts, `/tx/:room`), bidding as soon as its last bid was
// acknowledged; latency is publish to ack as the client sees it, round trips are Redis's scripts
// over acknowledged bids (the servers' timer-claim polls, four a second each, included).
async function serversRound(servers: RunningServer[], admin: RedisClientType, room: string): Promise<Round> {
  const members = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const server = servers[c % servers.length] as RunningServer;
      const socket = new WebSocket(`${server.ws}/tx/${room}`, "edgewire.v1", { perMessageDeflate: false });
      // Answered: true for an ack, false for a refusal (try_again_later) or a closed socket.
      let acked: ((ok: boolean) => void) | undefined;
      await new Promise<void>((resolve, reject) => {
        socket.on("error", reject);
        socket.on("message", (data: Buffer) => {
          const head = data.toString("latin1", 0, 16);
          if (head.startsWith('{"type":"welcome')) resolve();
          else if (head.startsWith('{"type":"ack"')) acked?.(true);
          else if (head.startsWith('{"type":"error"')) acked?.(false);
        });
        socket.on("close", () => acked?.(false));
      });
      return {
        socket,
        open: () => socket.readyState === WebSocket.OPEN,
        bid: (n: number) =>
          new Promise<boolean>((resolve) => {
            acked = resolve;
            socket.send(`{"type":"publish","id":"${c}-${n}","data":{"amount":${n}}}`);
          }),
      };
    }),
  );
  const before = await calls(admin, "evalsha");
  const latencies: number[] = [];
  let lost = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    members.map(async (m) => {
      for (let n = 1; performance.now() < end && m.open(); n++) {
        const t = performance.now();
        if (await m.bid(n)) latencies.push(performance.now() - t);
        else lost++;
      }
    }),
  );
  const scripts = (await calls(admin, "evalsha")) - before;
  for (const m of members) m.socket.terminate();
  return summary(latencies, lost, scripts);
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
  // Three instances, each a process of its own (bench/state/instance.ts); client c is on instance c % 3.
  const instances = await Promise.all(
    [0, 1, 2].map((i) => {
      const mine = Array.from({ length: CLIENTS }, (_, c) => c).filter((c) => c % 3 === i);
      const child = fork(join(import.meta.dirname, "state/instance.ts"), [URL, PREFIX, String(i), mine.join(",")], {
        execArgv: ["--import", "tsx"],
      });
      return new Promise<ChildProcess>((resolve, reject) => {
        child.once("message", () => resolve(child));
        child.once("exit", (code) => reject(new Error(`instance ${i} exited (${code})`)));
      });
    }),
  );
  // And three Node servers on the same Redis, for the same contention through WebSockets and the route.
  const servers = await Promise.all(
    [0, 1, 2].map(() =>
      startServer("node", {
        entry: "bench/state/app.ts",
        root: join(import.meta.dirname, ".."),
        env: {
          REDIS_URL: URL,
          EDGEWIRE_REDIS_PREFIX: PREFIX,
          EDGEWIRE_RATE_LIMIT: "10000000",
          EDGEWIRE_RATE_BURST: "10000000",
          EDGEWIRE_LOG_LEVEL: "warn",
        },
      }),
    ),
  );
  const results: { edgewire: Round[]; watch: Round[]; servers: Round[] } = { edgewire: [], watch: [], servers: [] };
  const sides = ["edgewire", "watch", "servers"] as const;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Alternated (the order rotates round by round), so drift on the machine falls on every side.
      for (const which of sides.map((_, i) => sides[(i + r) % sides.length] as (typeof sides)[number])) {
        const room = `r${r}-${which}`;
        const round =
          which === "servers"
            ? await serversRound(servers, admin, room)
            : await fleetRound(instances, admin, { which, room });
        results[which].push(round);
        console.log(
          `round ${r + 1} ${which.padEnd(8)} ${round.perSecond.toFixed(0).padStart(7)} commits/s  ${round.commandsPerCommit.toFixed(2)} round trips/commit  p50 ${round.p50.toFixed(2)} ms  p99 ${round.p99.toFixed(2)} ms  gave up ${round.lost}`,
        );
      }
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await Promise.all(
      instances.map((child) => {
        const gone = new Promise((r) => child.once("exit", r));
        child.send("close");
        return Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]).then(() => child.kill());
      }),
    );
    for await (const keys of admin.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 500 }))
      if (keys.length) await admin.del(keys);
    await admin.quit();
  }
  const ew = results.edgewire;
  const w = results.watch;
  const sv = results.servers;
  const ratios = ew.map((e, i) => e.perSecond / (w[i]?.perSecond ?? 1));
  const lines = [
    `Room state commits on a 3-instance Redis fleet, ${CLIENTS} contending clients, one room, ${SECONDS} s × ${ROUNDS} paired rounds`,
    "",
    "| | commits/s (median, range) | round trips per commit | p50 ms | p99 ms |",
    "| --- | --- | --- | --- | --- |",
    `| edgewire (one script per batch) | ${median(ew.map((r) => r.perSecond)).toFixed(0)} (${range(ew.map((r) => r.perSecond))}) | ${median(ew.map((r) => r.commandsPerCommit)).toFixed(2)} | ${median(ew.map((r) => r.p50)).toFixed(2)} | ${median(ew.map((r) => r.p99)).toFixed(2)} |`,
    `| WATCH/MULTI/EXEC loop | ${median(w.map((r) => r.perSecond)).toFixed(0)} (${range(w.map((r) => r.perSecond))}) | ${median(w.map((r) => r.commandsPerCommit)).toFixed(2)} | ${median(w.map((r) => r.p50)).toFixed(2)} | ${median(w.map((r) => r.p99)).toFixed(2)} |`,
    `| edgewire through three Node servers (WebSocket members bidding on a \`/tx\` route; latency publish → ack) | ${median(sv.map((r) => r.perSecond)).toFixed(0)} (${range(sv.map((r) => r.perSecond))}) | ${median(sv.map((r) => r.commandsPerCommit)).toFixed(2)} | ${median(sv.map((r) => r.p50)).toFixed(2)} | ${median(sv.map((r) => r.p99)).toFixed(2)} |`,
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

/** The rooms of a round: transactions with the view, transactions whose view shows nothing, plain publishes, the raw object. */
type Route = "tx" | "hidden" | "pub" | "raw";

// One round on one route: MEMBERS sockets in one room, each bidding as soon as its last bid was acked.
async function roomRound(ws: string, route: Route, room: string): Promise<number> {
  const sockets: WebSocket[] = [];
  let acked = 0;
  let running = true;
  await Promise.all(
    Array.from({ length: MEMBERS }, (_, m) => {
      const socket = new WebSocket(`${ws}/${route}/${room}`, "edgewire.v1", { perMessageDeflate: false });
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
    "| runtime | transactions/s (median, range) | without a view | publishes/s (median, range) | transactions ÷ publishes | without a view ÷ publishes |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  const all: Record<string, Partial<Record<Route, number[]>>> = {};
  for (const runtime of RUNTIME_LIST) {
    const server = await startServer(runtime, {
      entry: "bench/state/app.ts",
      env,
      root: join(import.meta.dirname, ".."),
    });
    // workerd's control, the same room by hand (storage.put and broadcast), runs beside edgewire
    // under its own `wrangler dev`: both are up for the whole run and their rounds alternate, so a
    // slow phase of the machine or of wrangler's proxy falls on both sides of a pair.
    let raw: { ws: string; stop: () => Promise<void> } | undefined;
    const rates: Record<Route, number[]> = { tx: [], hidden: [], pub: [], raw: [] };
    try {
      if (runtime === "workerd") raw = await rawDurableObject();
      const routes: Route[] = raw ? ["tx", "hidden", "pub", "raw"] : ["tx", "hidden", "pub"];
      for (let r = 0; r < ROUNDS; r++) {
        // The order rotates round by round, so none of them always goes first.
        const order = routes.map((_, i) => routes[(i + r) % routes.length] as Route);
        for (const route of order) {
          const rate = await roomRound(route === "raw" && raw ? raw.ws : server.ws, route, `r${r}${route}`);
          rates[route].push(rate);
          console.log(
            `${runtime} round ${r + 1} ${route.padEnd(6)} ${rate.toFixed(0).padStart(7)} acknowledged bids/s`,
          );
        }
      }
    } finally {
      await raw?.stop();
      await server.stop();
    }
    all[runtime] = raw ? rates : { tx: rates.tx, hidden: rates.hidden, pub: rates.pub };
    const ratios = rates.tx.map((t, i) => t / (rates.pub[i] ?? 1));
    const hiddenRatios = rates.hidden.map((t, i) => t / (rates.pub[i] ?? 1));
    lines.push(
      `| ${runtime} | ${median(rates.tx).toFixed(0)} (${range(rates.tx)}) | ${median(rates.hidden).toFixed(0)} (${range(rates.hidden)}) | ${median(rates.pub).toFixed(0)} (${range(rates.pub)}) | ${median(ratios).toFixed(2)}× (${range(ratios, 2)}) | ${median(hiddenRatios).toFixed(2)}× (${range(hiddenRatios, 2)}) |`,
    );
    if (!raw) continue;
    const vsRaw = rates.tx.map((t, i) => t / (rates.raw[i] ?? 1));
    lines.push(
      `| workerd raw Durable Object (storage.put + broadcast), in the same rounds | ${median(rates.raw).toFixed(0)} (${range(rates.raw)}) | | | edgewire's transactions ÷ raw: ${median(vsRaw).toFixed(2)}× (${range(vsRaw, 2)}) | |`,
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
