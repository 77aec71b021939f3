/**
 * A restart under load, as a live dashboard meets it: 25 rooms, each with an SDK client, a
 * backend pushing ~250 updates/s over the push API; SIGTERM, the server drains and exits, and a
 * successor starts on the same port (as a process manager would). On the memory broker (node,
 * deno, bun) a draining instance refuses pushes (503 draining with Retry-After: nothing it could
 * not keep is acknowledged), clients wait for the successor as the 1012 hint says, and what the
 * successor acknowledged before a client came back is replayed to it from the new epoch's start.
 * On Redis (node) the draining instance keeps accepting, and clients resume exactly. In both,
 * every push acknowledged with 200 reaches its room's client.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import WebSocket from "ws";
import type { auction } from "../../examples/auction/auction.ts";
import { joinRoom, type RoomClient, type RoomGap, type WebSocketConstructor } from "../../src/client/index.ts";
import { cleanup, requireRedis, SHARED_REDIS, testPrefix } from "../support/redis.ts";
import { type RunningServer, type RuntimeName, startModule } from "../support/servers.ts";
import { withTimeout } from "../support/test-socket.ts";

const ROOMS = 25;
const PUSH_EVERY_MS = 4; // ~250/s over all rooms
const TOKEN = "restart-push-token";
const DRAIN_MS = 2000;
/** The goal: every widget back within this long of the successor answering its health check. */
const BACK_WITHIN_MS = 1000;

const selected = (process.env.EDGEWIRE_RUNTIMES?.split(",") ?? ["node", "deno", "bun"]).filter(
  (r) => r !== "workerd",
) as RuntimeName[];

interface Widget {
  room: string;
  client: RoomClient;
  /** the data `n` of every message received, by epoch */
  seen: Set<number>;
  gaps: RoomGap[];
  /** when each welcome arrived */
  welcomes: number[];
  /** reconnect attempts since the signal */
  attempts: number;
}

const start = (runtime: RuntimeName, env: Record<string, string>, port?: number) =>
  startModule(runtime, {
    entry: "service/service.ts",
    export: "service",
    env: { EDGEWIRE_PUSH_TOKEN: TOKEN, EDGEWIRE_DRAIN_MS: String(DRAIN_MS), ...env },
    ...(port === undefined ? {} : { port }),
  });

/** Push `n` to `room`: "acked" (200, with the seq), "refused" (503, with its code and Retry-After), or "lost". */
async function push(server: string, room: string, n: number) {
  try {
    const res = await fetch(`${server}/rooms/${room}/messages`, {
      method: "POST",
      body: JSON.stringify({ n }),
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = (await res.json()) as { error?: { code: string } };
    if (res.status === 200) return { kind: "acked" as const };
    return {
      kind: "refused" as const,
      status: res.status,
      code: body.error?.code,
      retryAfter: res.headers.get("retry-after"),
    };
  } catch {
    return { kind: "lost" as const };
  }
}

async function restart(runtime: RuntimeName, env: Record<string, string>, durable: boolean): Promise<void> {
  const tag = `${runtime}-${Date.now().toString(36)}`;
  let server: RunningServer = await start(runtime, env);
  let successor: RunningServer | undefined;
  const widgets: Widget[] = [];
  try {
    for (let i = 0; i < ROOMS; i++) {
      const room = `w${i}-${tag}`;
      const client = joinRoom(server.ws, room, { WebSocket: WebSocket as unknown as WebSocketConstructor });
      const w: Widget = { room, client, seen: new Set(), gaps: [], welcomes: [], attempts: 0 };
      client.on("message", (m) => w.seen.add((m.data as { n: number }).n));
      client.on("gap", (g) => w.gaps.push(g));
      client.on("welcome", () => w.welcomes.push(Date.now()));
      widgets.push(w);
    }
    await withTimeout(Promise.all(widgets.map((w) => w.client.ready)), 20_000, "25 widgets live");
    // The backend: one push every few ms, round robin over the rooms, never waiting for a reply.
    const acked: { room: string; n: number }[] = [];
    const refused: { status: number; code?: string; retryAfter: string | null }[] = [];
    let n = 0;
    let pushing = true;
    const inflight = new Set<Promise<void>>();
    const pusher = setInterval(() => {
      if (!pushing || inflight.size > 50) return;
      const k = ++n;
      const room = widgets[k % ROOMS]?.room as string;
      const p = push(server.http, room, k).then((r) => {
        if (r.kind === "acked") acked.push({ room, n: k });
        else if (r.kind === "refused") refused.push(r);
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }, PUSH_EVERY_MS);
    await new Promise((r) => setTimeout(r, 1000));
    const signalledAt = Date.now();
    const log: string[] = [];
    for (const w of widgets)
      w.client.on("reconnecting", (e) => {
        w.attempts++;
        if (process.env.DEBUG_RESTART)
          log.push(
            `${w.room.slice(0, 3)} +${Date.now() - signalledAt} a${e.attempt} d${e.delayMs} ${e.code} ${e.reason}`,
          );
      });
    server.signal("SIGTERM");
    const exit = await withTimeout(server.exited, DRAIN_MS + 6000, "the draining server exits");
    assert.ok(exit === 0 || exit === null, `exited ${exit}`);
    // A process manager starts the successor on the same port.
    successor = await start(runtime, env, server.port);
    server = successor;
    const readyAt = Date.now();
    await withTimeout(
      (async () => {
        while (widgets.some((w) => (w.welcomes.at(-1) ?? 0) < signalledAt)) await new Promise((r) => setTimeout(r, 20));
      })(),
      20_000,
      "every widget back",
    );
    const backAt = Math.max(...widgets.map((w) => w.welcomes.at(-1) as number));
    await new Promise((r) => setTimeout(r, 1000));
    pushing = false;
    clearInterval(pusher);
    await Promise.all(inflight);
    await new Promise((r) => setTimeout(r, 1500));
    const attempts = widgets.map((w) => w.attempts);
    if (process.env.DEBUG_RESTART)
      console.log(
        log.join("\n"),
        "\nready at +",
        readyAt - signalledAt,
        "refused",
        JSON.stringify(refused.slice(0, 3)),
        widgets.map((w) => w.welcomes.map((t) => t - signalledAt).join(",")).join(" | "),
      );
    console.log(
      `${runtime}${durable ? " on Redis" : ""}: every widget back ${backAt - readyAt} ms after the successor was ready; attempts ${Math.min(...attempts)}–${Math.max(...attempts)}; ${acked.length} pushes acked, ${refused.length} refused while draining`,
    );
    // Nothing acknowledged is lost: every 200 reached its room's client, live or replayed.
    const missing = acked.filter(({ room, n }) => !widgets.find((w) => w.room === room)?.seen.has(n));
    assert.deepEqual(
      missing.slice(0, 5),
      [],
      `${missing.length} of ${acked.length} acknowledged pushes never delivered`,
    );
    if (durable) {
      assert.deepEqual(refused, [], "a Redis fleet member keeps taking pushes while it drains (others deliver)");
      assert.deepEqual(
        widgets.flatMap((w) => w.gaps),
        [],
        "history outlives the instance: every client resumes exactly",
      );
    } else {
      assert.ok(refused.length > 0, "the drain refused pushes");
      for (const r of refused) {
        assert.deepEqual([r.status, r.code], [503, "draining"]);
        assert.match(r.retryAfter ?? "", /^\d+$/, "with Retry-After");
      }
      // Each client learns the old epoch's history is gone (its gap), and gets the new one from its start.
      for (const w of widgets)
        assert.ok(
          w.gaps.some((g) => g.reason === "epoch_changed"),
          `${w.room} told of the new epoch`,
        );
    }
    assert.ok(
      backAt - readyAt <= BACK_WITHIN_MS,
      `every widget back within ${BACK_WITHIN_MS} ms of the successor being ready (took ${backAt - readyAt} ms)`,
    );
  } catch (error) {
    throw Object.assign(error as Error, { serverOutput: server.output().slice(-3000) });
  } finally {
    for (const w of widgets) w.client.close();
    await server.stop();
    await successor?.stop();
  }
}

/**
 * A stateful room (examples/auction, in examples/hono-app) across a restart, through the SDK's own
 * reconnect: on the memory broker the state goes with the history — a new epoch, the client's gap
 * says so and its view is the initial one again, and bidding starts over; on Redis it survives —
 * an exact resume, the view kept, and the next bid is checked against the best one before.
 */
async function statefulRestart(env: Record<string, string>, durable: boolean): Promise<void> {
  const startApp = (port?: number) =>
    startModule("node", {
      entry: "examples/hono-app/app.ts",
      health: "/realtime/healthz",
      env: { EDGEWIRE_DRAIN_MS: "500", ...env },
      ...(port === undefined ? {} : { port }),
    });
  type View = { best: { amount: number; bidder: string } | null; bids: number; closed: boolean };
  let server = await startApp();
  const item = `lot-${Date.now().toString(36)}`;
  const client = joinRoom<typeof auction>(`${server.ws}/realtime?key=demo-key&name=ada`, item, {
    path: "/auction/:item",
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    reconnect: { minDelayMs: 100 },
  });
  const gaps: RoomGap[] = [];
  const welcomes: number[] = [];
  let resumed: boolean | undefined;
  client.on("gap", (g) => gaps.push(g));
  client.on("welcome", (w) => {
    welcomes.push(Date.now());
    resumed = w.resumed;
  });
  try {
    await withTimeout(client.ready, 15_000, "join");
    assert.deepEqual(await client.publish({ type: "bid", amount: 10 }), { seq: 1 });
    assert.deepEqual(await client.publish({ type: "bid", amount: 20 }), { seq: 2 });
    const before: View = { best: { amount: 20, bidder: "ada" }, bids: 2, closed: false };
    assert.deepEqual(client.state, before);
    const epoch = client.epoch;
    server.signal("SIGTERM");
    await withTimeout(server.exited, 10_000, "the draining server exits");
    server = await startApp(server.port);
    await withTimeout(
      (async () => {
        while (welcomes.length < 2) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 200)); // a resync follows its welcome
      })(),
      20_000,
      "back on the successor",
    );
    if (durable) {
      assert.equal(resumed, true, "an exact resume");
      assert.deepEqual(gaps, []);
      assert.equal(client.epoch, epoch);
      assert.deepEqual(client.state, before, "the state survived the instance");
      const low = await client.publish({ type: "bid", amount: 15 }).catch((e: { code: string }) => e.code);
      assert.equal(low, "bid_too_low", "checked against the best bid of before the restart");
      assert.deepEqual(await client.publish({ type: "bid", amount: 30 }), { seq: 3 });
    } else {
      assert.deepEqual(
        gaps.map((g) => [g.reason, g.from, g.to]),
        [["epoch_changed", 3, undefined]],
        "the old epoch's loss, told",
      );
      assert.notEqual(client.epoch, epoch);
      assert.deepEqual(client.state, { best: null, bids: 0, closed: false }, "the initial view of the new epoch");
      assert.deepEqual(await client.publish({ type: "bid", amount: 10 }), { seq: 1 }, "bidding starts over");
    }
  } finally {
    client.close();
    await server.stop();
  }
}

describe("a stateful room across a restart", { concurrency: 1 }, () => {
  it(
    "node, memory broker: a new epoch — the SDK's gap, the initial view, bidding starts over",
    { timeout: 60_000 },
    () => statefulRestart({}, false),
  );
  it("node on Redis: the state survives the instance — an exact resume, the view kept, bids checked against it", {
    timeout: 60_000,
  }, async () => {
    await requireRedis();
    const prefix = testPrefix("restart-state");
    try {
      await statefulRestart({ REDIS_URL: SHARED_REDIS, EDGEWIRE_REDIS_PREFIX: prefix }, true);
    } finally {
      await cleanup(SHARED_REDIS, prefix);
    }
  });
});

describe("restart under load", { concurrency: 1 }, () => {
  for (const runtime of selected) {
    it(
      `${runtime}, memory broker: a draining instance acknowledges nothing it cannot keep; the widgets are back within ${BACK_WITHIN_MS} ms of the successor, with what it took meanwhile`,
      {
        timeout: 90_000,
      },
      () => restart(runtime, {}, false),
    );
  }
  it(`node on Redis: the draining instance keeps accepting; the widgets resume exactly on the successor`, {
    timeout: 90_000,
  }, async () => {
    await requireRedis();
    const prefix = testPrefix("restart");
    try {
      await restart("node", { REDIS_URL: SHARED_REDIS, EDGEWIRE_REDIS_PREFIX: prefix }, true);
    } finally {
      await cleanup(SHARED_REDIS, prefix);
    }
  });
});
