/**
 * The soak: `npm run soak` (10 minutes; `-- --minutes=N`, `--runtimes=node,bun`)
 * runs edgewire on Node, Deno and Bun side by side under churning connections
 * with good and bad traffic — joins and polite leaves, publishes, backend
 * pushes, long-polling sessions that are closed or abandoned, abrupt drops,
 * floods, slow readers, invalid frames, oversized frames, refused handshakes —
 * and reports each server's memory at the start, its peak and at the end
 * (after every client is gone and a forced GC), open descriptors, and the
 * refusals and closes by reason from its /metrics. Goal: the end within 10 %
 * of the start. Writes bench/results/soak.md and soak.json.
 */
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { freePort, launch, processTree, rssBytes } from "./lib/proc.ts";
import { ROOT } from "./lib/targets.ts";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const MINUTES = Number(arg("minutes") ?? 10);
const RUNTIMES = (arg("runtimes") ?? "node,deno,bun").split(",");
const TOKEN = "soak-push-token";
/** Rooms the clients spread over. */
const ROOMS = 40;
const GC_HOOK = join(ROOT, "bench/gc-hook.js");
const bin = (n: string) => join(ROOT, "node_modules/.bin", n);

const COMMANDS: Record<string, [string, string[]]> = {
  node: [process.execPath, ["--expose-gc", "--import", GC_HOOK, "--import", "tsx", "service/node.ts"]],
  deno: [
    bin("deno"),
    [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--v8-flags=--expose-gc",
      "--preload",
      GC_HOOK,
      "service/deno.ts",
    ],
  ],
  bun: [bin("bun"), ["--preload", GC_HOOK, "service/bun.ts"]],
};

// The soak's settings: the defaults, with a known push token and a short heartbeat so dead peers are reaped during the run.
const ENV = {
  EDGEWIRE_PUSH_TOKEN: TOKEN,
  EDGEWIRE_HEARTBEAT_MS: "5000",
  EDGEWIRE_POLL_IDLE_MS: "5000",
  EDGEWIRE_LOG_LEVEL: "error",
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
const fds = (pids: number[]) =>
  pids.reduce((n, pid) => {
    try {
      return n + readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      return n;
    }
  }, 0);

interface Stats {
  opened: number;
  failedOpens: number;
  published: number;
  pushes: number;
  polls: number;
  byBehaviour: Record<string, number>;
}

// A slow reader in a shared room hears too little to fill its 4 MiB outbound buffer, and the
// slow-consumer close would go untried. So a slow reader gets a room of its own and a feeder that
// sends binary frames into it: relayed to the reader, kept in no history, so the flood leaves
// nothing behind once the reader is closed with 1013.
const FEED_FRAME = new Uint8Array(256 * 1024).fill(7);
const FEED_FRAMES = 40; // 10 MiB: past the 4 MiB buffer and what the kernel holds for an unread socket

async function feed(url: string): Promise<void> {
  const feeder = new WebSocket(url, "edgewire.v1", { perMessageDeflate: false });
  feeder.on("error", () => {});
  const opened = await new Promise<boolean>((resolve) => {
    feeder.once("open", () => resolve(true));
    feeder.once("error", () => resolve(false));
  });
  if (!opened) return;
  for (let i = 0; i < FEED_FRAMES && feeder.readyState === WebSocket.OPEN; i++) {
    feeder.send(FEED_FRAME);
    await sleep(15); // under the default rate limit of 100 frames/s
  }
  feeder.close(1000);
}

/** One churning client: a random behaviour, then gone. */
async function client(base: string, stats: Stats, until: number): Promise<void> {
  const behaviour = pick([
    "member",
    "member",
    "member",
    "member",
    "dropper",
    "flooder",
    "slow",
    "garbage",
    "refused",
    "poller",
    "pusher",
  ] as const);
  stats.byBehaviour[behaviour] = (stats.byBehaviour[behaviour] ?? 0) + 1;
  // a slow reader's room is its own (its feeder floods it); everyone else shares ROOMS rooms
  const room =
    behaviour === "slow"
      ? `soak-slow-${Math.random().toString(36).slice(2)}`
      : `soak-${Math.floor(Math.random() * ROOMS)}`;
  if (behaviour === "pusher") {
    const res = await fetch(`${base.replace("ws:", "http:")}/rooms/${room}/messages`, {
      method: "POST",
      body: JSON.stringify({ pushed: Date.now() }),
      headers: { authorization: `Bearer ${pick([TOKEN, TOKEN, "wrong"])}` },
    }).catch(() => undefined);
    await res?.text().catch(() => {});
    stats.pushes++;
    return;
  }
  if (behaviour === "poller") {
    const http = base.replace("ws:", "http:");
    const open = await fetch(`${http}/rooms/${room}/poll`, {
      method: "POST",
      headers: { "x-edgewire-protocol": "edgewire.v1" },
    }).catch(() => undefined);
    if (!open?.ok) return;
    const { sid } = (await open.json()) as { sid: string };
    let cursor = 0;
    for (let i = 0; i < 2 + Math.floor(Math.random() * 3) && Date.now() < until; i++) {
      const r = await fetch(`${http}/rooms/${room}/poll/${sid}?cursor=${cursor}`).catch(() => undefined);
      if (!r?.ok) return;
      cursor = ((await r.json()) as { cursor: number }).cursor;
      stats.polls++;
    }
    // Half close politely, half are abandoned and expire.
    if (Math.random() < 0.5)
      await fetch(`${http}/rooms/${room}/poll/${sid}?code=1000`, { method: "DELETE" }).catch(() => {});
    return;
  }
  const headers = behaviour === "refused" ? { origin: "https://evil.example" } : undefined;
  const ws = new WebSocket(
    `${base}/rooms/${room}`,
    behaviour === "refused" && Math.random() < 0.5 ? "mqtt" : "edgewire.v1",
    {
      headers,
      perMessageDeflate: false,
    },
  );
  ws.on("error", () => {});
  const opened = await new Promise<boolean>((resolve) => {
    ws.once("open", () => resolve(true));
    ws.once("error", () => resolve(false));
    ws.once("unexpected-response", (req, res) => {
      res.resume();
      req.destroy(); // ws leaves a refused handshake's socket to the caller
      resolve(false);
    });
  });
  if (!opened) {
    stats.failedOpens++;
    return;
  }
  stats.opened++;
  const closed = new Promise<void>((r) => ws.once("close", () => r()));
  const life = 500 + Math.random() * 6000;
  switch (behaviour) {
    case "member": {
      const end = Date.now() + life;
      while (Date.now() < end && ws.readyState === WebSocket.OPEN) {
        ws.send(
          JSON.stringify({ type: "publish", id: `p${stats.published}`, data: { text: "hello", at: Date.now() } }),
        );
        stats.published++;
        await sleep(100 + Math.random() * 400);
      }
      ws.close(1000);
      break;
    }
    case "dropper":
      await sleep(life);
      ws.terminate();
      break;
    case "flooder":
      for (let i = 0; i < 2000 && ws.readyState === WebSocket.OPEN; i++)
        ws.send(JSON.stringify({ type: "publish", data: i }));
      await Promise.race([closed, sleep(3000)]);
      ws.terminate();
      break;
    case "slow":
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      await Promise.all([feed(`${base}/rooms/${room}`), sleep(life * 2)]);
      ws.terminate();
      break;
    case "garbage":
      ws.send("{not json");
      ws.send(JSON.stringify({ type: "nope" }));
      ws.send(Buffer.alloc(2048, 1));
      if (Math.random() < 0.3) ws.send("x".repeat(1024 * 1024 + 1)); // closed with 1009
      await sleep(300);
      ws.close(4000, "bye");
      break;
  }
  await Promise.race([closed, sleep(3000)]);
}

async function metric(http: string): Promise<Record<string, Record<string, number>>> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const out: Record<string, Record<string, number>> = {};
  for (const line of text.split("\n")) {
    const m = /^(edgewire_\w+)(?:\{(\w+)="([^"]*)"[^}]*\})? (\d+)$/.exec(line);
    if (!m) continue;
    const [, name, , label, value] = m;
    out[name as string] ??= {};
    (out[name as string] as Record<string, number>)[label ?? ""] = Number(value);
  }
  return out;
}

interface Report {
  runtime: string;
  minutes: number;
  rssStartMb: number;
  rssPeakMb: number;
  rssEndMb: number;
  endOverStart: number;
  heapStartMb: number;
  heapEndMb: number;
  fdsStart: number;
  fdsPeak: number;
  fdsEnd: number;
  stats: Stats;
  refused: Record<string, number>;
  closes: Record<string, number>;
  counters: Record<string, number>;
  exited: string | undefined;
}

async function soak(runtime: string): Promise<Report> {
  const port = await freePort();
  const [cmd, args] = COMMANDS[runtime] as [string, string[]];
  const server = launch(cmd, args, {
    cwd: ROOT,
    env: { ...ENV, PORT: String(port), HOST: "127.0.0.1" },
    core: 1,
    nofile: 20_000,
  });
  const http = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (
      await fetch(`${http}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(100);
  }
  const tree = () => processTree(server.pid);
  const gc = async () => {
    for (const pid of tree()) {
      try {
        process.kill(pid, "SIGUSR2");
      } catch {}
    }
    await sleep(1500);
  };
  // Warm up with the same churn (a fifth of the run, at most a minute), so the baseline is taken
  // after the allocators' one-time growth (JIT, pools, the heap's first expansions): what the
  // soak then measures is growth that keeps going — a leak — not warming up.
  // Bounded state goes to its bound first: every room's history is filled to the default limit
  // (1 000 messages), so a full history is part of the baseline, not growth.
  for (let room = 0; room < ROOMS; room++) {
    await Promise.all(
      Array.from({ length: 20 }, async (_, lane) => {
        for (let i = lane; i < 1000; i += 20) {
          const r = await fetch(`${http}/rooms/soak-${room}/messages`, {
            method: "POST",
            body: JSON.stringify({ text: "hello", at: Date.now(), i }),
            headers: { authorization: `Bearer ${TOKEN}` },
          });
          await r.text();
        }
      }),
    );
  }
  const warm: Stats = { opened: 0, failedOpens: 0, published: 0, pushes: 0, polls: 0, byBehaviour: {} };
  const warmUntil = Date.now() + Math.min(60_000, MINUTES * 12_000);
  await Promise.all(
    Array.from({ length: 60 }, async () => {
      while (Date.now() < warmUntil) await client(`ws://127.0.0.1:${port}`, warm, warmUntil).catch(() => {});
    }),
  );
  await sleep(12_000);
  await gc();
  const rssStart = rssBytes(tree());
  const fdsStart = fds(tree());
  const heapStart = (await metric(http)).edgewire_heap_used_bytes?.[""] ?? 0;
  let rssPeak = rssStart;
  let fdsPeak = fdsStart;
  const stats: Stats = { opened: 0, failedOpens: 0, published: 0, pushes: 0, polls: 0, byBehaviour: {} };
  const until = Date.now() + MINUTES * 60_000;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, rssBytes(tree()));
    fdsPeak = Math.max(fdsPeak, fds(tree()));
  }, 1000);
  // ~60 clients alive at a time, each replaced when it ends.
  await Promise.all(
    Array.from({ length: 60 }, async () => {
      while (Date.now() < until) await client(`ws://127.0.0.1:${port}`, stats, until).catch(() => {});
    }),
  );
  clearInterval(sampler);
  // Every client is gone; let heartbeats, polling expiry and idle rooms run out, then collect.
  await sleep(12_000);
  await gc();
  const rssEnd = rssBytes(tree());
  const fdsEnd = fds(tree());
  const m = await metric(http);
  const heapEnd = m.edgewire_heap_used_bytes?.[""] ?? 0;
  await server.stop();
  const mb = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;
  return {
    runtime,
    minutes: MINUTES,
    rssStartMb: mb(rssStart),
    rssPeakMb: mb(rssPeak),
    rssEndMb: mb(rssEnd),
    endOverStart: Math.round((rssEnd / rssStart) * 1000) / 1000,
    heapStartMb: mb(heapStart),
    heapEndMb: mb(heapEnd),
    fdsStart,
    fdsPeak,
    fdsEnd,
    stats,
    refused: m.edgewire_refused_total ?? {},
    closes: m.edgewire_closes_total ?? {},
    counters: Object.fromEntries(
      ["rate_limited", "flood_closes", "slow_consumer_closes", "heartbeat_timeouts", "handler_faults"].map((k) => [
        k,
        m[`edgewire_${k}_total`]?.[""] ?? 0,
      ]),
    ),
    exited: server.exited() ? server.exitStatus() : undefined,
  };
}

const started = new Date();
process.stderr.write(`edgewire soak: ${RUNTIMES.join(", ")} side by side for ${MINUTES} min\n`);
const reports = await Promise.all(RUNTIMES.map(soak));
const fmt = (o: Record<string, number>) =>
  Object.entries(o)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(", ") || "–";
const lines = [
  "# edgewire soak",
  "",
  `Measured ${started.toISOString().slice(0, 16).replace("T", " ")} UTC: ${MINUTES} minutes, ${RUNTIMES.join(", ")} side by side, ~60 churning clients each (\`npm run soak${MINUTES === 10 ? "" : ` -- --minutes=${MINUTES}`}\`).`,
  "Memory is the RSS of the server's process tree after a forced GC — start: after every room's history is filled to its limit (1 000) and a warm-up of the same churn (a fifth of the run, at most 1 min), then 12 s of quiet; end: after every client is gone and 12 s of quiet. Peak is sampled every second. Goal: end ≤ 1.10 × start.",
  "A slow reader stops reading in a room of its own while a feeder sends it 40 binary frames of 256 KiB (relayed, kept in no history): past the 4 MiB outbound limit it is closed. Node and Deno close it as edgewire's slow consumer (1013, counted); Bun closes it itself at the same limit (`closeOnBackpressureLimit`), so the client sees 1006 and edgewire's slow-consumer counter stays 0 there.",
  "",
  "| runtime | RSS start | peak | end | end ÷ start | met | JS heap start → end | descriptors start / peak / end | sockets opened | refused opens | publishes | pushes | polls |",
  "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ...reports.map(
    (r) =>
      `| ${r.runtime} | ${r.rssStartMb} MB | ${r.rssPeakMb} MB | ${r.rssEndMb} MB | ${r.endOverStart.toFixed(2)}× | ${r.endOverStart <= 1.1 ? "yes" : "**no**"} | ${r.heapStartMb} → ${r.heapEndMb} MB | ${r.fdsStart} / ${r.fdsPeak} / ${r.fdsEnd} | ${r.stats.opened} | ${r.stats.failedOpens} | ${r.stats.published} | ${r.stats.pushes} | ${r.stats.polls} |`,
  ),
  "",
  "| runtime | refused handshakes and sessions, by reason | closes, by code | rate-limited frames, flood / slow-consumer / heartbeat closes, faults |",
  "| --- | --- | --- | --- |",
  ...reports.map(
    (r) =>
      `| ${r.runtime} | ${fmt(r.refused)} | ${fmt(r.closes)} | ${r.counters.rate_limited} · ${r.counters.flood_closes} / ${r.counters.slow_consumer_closes} / ${r.counters.heartbeat_timeouts} · ${r.counters.handler_faults} |`,
  ),
  "",
  `Behaviours drawn: ${fmt(reports[0]?.stats.byBehaviour ?? {})} (per runtime, similar).`,
  "",
];
const dir = join(ROOT, "bench/results");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "soak.md"), `${lines.join("\n")}\n`);
writeFileSync(join(dir, "soak.json"), `${JSON.stringify({ started, minutes: MINUTES, reports }, null, 1)}\n`);
process.stderr.write(`${lines.join("\n")}\nwrote bench/results/soak.md and soak.json\n`);
