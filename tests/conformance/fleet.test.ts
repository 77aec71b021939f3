/**
 * Fleets on a real Redis: Node, Bun and Deno instances of the service share
 * rooms; one killed with SIGKILL mid-stream loses nothing for its clients,
 * which resume on a survivor, and its members leave the survivors' presence
 * within the bound; Redis itself restarted mid-stream loses no acknowledged
 * message; history lost (keys gone) is told as a resync. The shared Redis is
 * used with its own database and key prefix; outages use a redis-server of
 * the test's own.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@redis/client";
import WebSocket from "ws";
import { joinRoom, type RoomClient, type RoomGap, type WebSocketConstructor } from "../../src/client/index.ts";
import { encodeValue } from "../../src/msgpack.ts";
import { cleanup, ownRedis, requireRedis, SHARED_REDIS, testPrefix } from "../support/redis.ts";
import { startRelay, startRoundRobin } from "../support/relay.ts";
import { type RunningServer, type RuntimeName, startModule, startServer } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";

const TOKEN = "fleet-push-token";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WS = WebSocket as unknown as WebSocketConstructor;
const FAST = { minDelayMs: 50, maxDelayMs: 300, jitter: 0 };

async function until(test: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

const push = (s: RunningServer, room: string, data: unknown) =>
  fetch(`${s.http}/rooms/${room}/messages`, {
    method: "POST",
    body: JSON.stringify(data),
    headers: { authorization: `Bearer ${TOKEN}` },
  });

/** A room client that records the `n` of every message, and its gaps. */
function member(url: string, room: string) {
  const client = joinRoom<{ n: number }>(url, room, { WebSocket: WS, reconnect: FAST });
  const seen: number[] = [];
  const gaps: RoomGap[] = [];
  client.on("message", (m) => seen.push(m.data.n));
  client.on("gap", (g) => gaps.push(g));
  return { client, seen, gaps };
}

const fleetEnv = (prefix: string, url = SHARED_REDIS) => ({
  REDIS_URL: url,
  EDGEWIRE_REDIS_PREFIX: prefix,
  EDGEWIRE_PUSH_TOKEN: TOKEN,
  EDGEWIRE_LOG_LEVEL: "warn",
});

describe("fleet on Redis", { concurrency: 1, timeout: 180_000 }, () => {
  before(() => requireRedis());

  describe("three instances — Node, Bun, Deno — on one Redis", () => {
    const prefix = testPrefix("fleet");
    const servers = new Map<RuntimeName, RunningServer>();
    before(async () => {
      for (const r of ["node", "bun", "deno"] as const) servers.set(r, await startServer(r, fleetEnv(prefix)));
    });
    after(async () => {
      await Promise.all([...servers.values()].map((s) => s.stop()));
      await cleanup(SHARED_REDIS, prefix);
    });

    it("share a room: one seq order on every instance, presence across them, a push on any instance reaches all, JSON and MessagePack members alike", async () => {
      const room = "shared";
      const members: { socket: TestSocket; got: string[]; packed: boolean }[] = [];
      for (const s of servers.values()) {
        for (let i = 0; i < 2; i++) {
          // One member per instance speaks MessagePack: each instance transcodes what Redis carries as JSON.
          const packed = i === 1;
          const socket = new TestSocket(`${s.ws}/rooms/${room}`, packed ? "edgewire.v1+msgpack" : "edgewire.v1");
          await withTimeout(socket.opened, 10_000, "join");
          await socket.untilValue((v) => (v as { type?: string }).type === "welcome");
          members.push({ socket, got: [], packed });
        }
      }
      const presence = (await (await fetch(`${(servers.get("deno") as RunningServer).http}/rooms/${room}`)).json()) as {
        count: number;
      };
      assert.equal(presence.count, 6, "every instance's members, seen from any instance");
      for (let i = 0; i < 10; i++)
        for (const [j, m] of members.entries()) {
          const frame = { type: "publish", data: `${j}:${i}` };
          if (m.packed) m.socket.send(Buffer.from(encodeValue(frame)));
          else m.socket.sendJson(frame);
        }
      assert.equal((await push(servers.get("bun") as RunningServer, room, "pushed")).status, 200);
      for (const m of members) {
        while (m.got.length < 61) {
          if (m.packed) {
            const f = await m.socket.untilValue<unknown[]>((v) => Array.isArray(v) && v[0] === 0, 20_000);
            m.got.push(`${f[1]}=${f[3]}`);
          } else {
            const f = await m.socket.until<{ seq: number; data: string }>("message", 20_000);
            m.got.push(`${f.seq}=${f.data}`);
          }
        }
      }
      for (const m of members)
        assert.deepEqual(m.got, members[0]?.got, "the same messages in the same order everywhere");
      assert.deepEqual(
        members[0]?.got.map((g) => Number(g.split("=")[0])),
        Array.from({ length: 61 }, (_, i) => i + 1),
      );
      await Promise.all(members.map((m) => m.socket.close()));
    });

    it("long-polling without sticky sessions: every request of a session may reach another instance", async () => {
      const room = "roundrobin";
      const a = servers.get("node") as RunningServer;
      const b = servers.get("deno") as RunningServer;
      const lb = await startRoundRobin([a.port, b.port]);
      const poller = joinRoom<{ n: number }>(`ws://127.0.0.1:${lb.port}`, room, {
        WebSocket: WS,
        transport: "polling",
        reconnect: FAST,
      });
      const seen: number[] = [];
      poller.on("message", (m) => seen.push(m.data.n));
      const socket = new TestSocket(`${b.ws}/rooms/${room}`, "edgewire.v1");
      try {
        await withTimeout(poller.ready, 15_000, "the polling client joined");
        await socket.until("welcome");
        for (let n = 1; n <= 20; n++) {
          await push(n % 2 ? a : b, room, { n });
          if (n % 5 === 0) await poller.publish({ n: 100 + n }); // its POSTs go to either instance too
        }
        await until(() => seen.length >= 24, 15_000, "every message over polling");
        const expected = [1, 2, 3, 4, 5, 105, 6, 7, 8, 9, 10, 110, 11, 12, 13, 14, 15, 115, 16, 17, 18, 19, 20, 120];
        assert.deepEqual(seen, expected, "one order, nothing lost or repeated, whichever instance answered");
        assert.ok(
          lb.served.every((n) => n > 3),
          `both instances served the session's requests (${lb.served.join(" / ")})`,
        );
      } finally {
        poller.close();
        await socket.close();
        await lb.close();
      }
    });

    it("SIGKILL one instance mid-stream: its clients resume on a survivor with nothing lost or duplicated; its members leave within 15 s", async () => {
      const room = "failover";
      const victim = servers.get("bun") as RunningServer;
      const survivor = servers.get("node") as RunningServer;
      const other = servers.get("deno") as RunningServer;
      // The victim's clients reach it through a relay, which fails over to a survivor (a load balancer's job).
      const relay = await startRelay(victim.port);
      const onVictim = member(`ws://127.0.0.1:${relay.port}`, room);
      const onOther = member(other.ws, room);
      // A member that stays on the victim, watched from a survivor: it must leave when the victim dies.
      const ghost = new TestSocket(`${victim.ws}/rooms/${room}`, "edgewire.v1");
      const ghostId = (await ghost.json<{ id: string }>()).id;
      const watcher = new TestSocket(`${survivor.ws}/rooms/${room}`, "edgewire.v1");
      await watcher.until("welcome");
      await Promise.all([onVictim.client.ready, onOther.client.ready]);
      const N = 120;
      let killedAt = 0;
      const publishing = (async () => {
        for (let n = 1; n <= N; n++) {
          assert.equal((await push(n % 2 ? survivor : other, room, { n })).status, 200);
          if (n === 40) {
            victim.signal("SIGKILL");
            killedAt = Date.now();
            relay.target = survivor.port;
            relay.cut();
          }
          await sleep(10);
        }
      })();
      let leftAfter = -1;
      const watching = (async () => {
        for (;;) {
          const p = await watcher.until<{ event: string; member?: { id: string }; code?: number }>("presence", 30_000);
          if (p.event === "leave" && p.member?.id === ghostId) {
            assert.equal(p.code, 1006);
            leftAfter = Date.now() - killedAt;
            return;
          }
        }
      })();
      await publishing;
      await until(() => onVictim.seen.length >= N && onOther.seen.length >= N, 30_000, "every message on both clients");
      await sleep(300);
      const all = Array.from({ length: N }, (_, i) => i + 1);
      assert.deepEqual(onOther.seen, all, "a survivor's client: every message once, in order");
      assert.deepEqual(
        onVictim.seen,
        all,
        "the dead instance's client resumed on a survivor: nothing lost, nothing twice",
      );
      assert.deepEqual([onVictim.gaps, onOther.gaps], [[], []]);
      await withTimeout(watching, 30_000, "the ghost's leave");
      assert.ok(
        leftAfter >= 0 && leftAfter <= 15_000,
        `the dead instance's member left after ${leftAfter} ms (bound 15 s)`,
      );
      onVictim.client.close();
      onOther.client.close();
      await watcher.close();
      await relay.close();
    });
  });

  it("a retried push (single or batched) reaching another instance answers the first seq, also after the instance that took it was killed; members see it once", async () => {
    const prefix = testPrefix("fleet-idem");
    const [first, second] = await Promise.all([
      startServer("node", fleetEnv(prefix)),
      startServer("bun", fleetEnv(prefix)),
    ]);
    const watcher = member(second.ws, "dashboard");
    const keyed = async (s: RunningServer, data: unknown, key: string) => {
      const res = await fetch(`${s.http}/rooms/dashboard/messages`, {
        method: "POST",
        body: JSON.stringify(data),
        headers: { authorization: `Bearer ${TOKEN}`, "idempotency-key": key },
      });
      return { status: res.status, replayed: res.headers.get("idempotent-replayed"), body: await res.json() };
    };
    try {
      await watcher.client.ready;
      assert.deepEqual((await keyed(first, { n: 1 }, "widget-7:update-1")).body, { room: "dashboard", seq: 1 });
      const retry = await keyed(second, { n: 1 }, "widget-7:update-1");
      assert.deepEqual([retry.replayed, retry.body], ["true", { room: "dashboard", seq: 1, repeated: true }]);
      const reused = await keyed(second, { n: 9 }, "widget-7:update-1");
      assert.equal(reused.status, 422, "other data under the key, seen from the other instance");
      // A batch's keyed message is the same push as a single one with that key (keys are per room).
      const batched = await fetch(`${first.http}/messages`, {
        method: "POST",
        body: JSON.stringify({ messages: [{ to: "/rooms/dashboard", data: { n: 2 }, key: "widget-7:update-2" }] }),
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.deepEqual(await batched.json(), { results: [{ room: "dashboard", seq: 2 }] });
      first.signal("SIGKILL");
      await first.exited;
      const late = await keyed(second, { n: 2 }, "widget-7:update-2");
      assert.deepEqual(
        [late.replayed, late.body],
        ["true", { room: "dashboard", seq: 2, repeated: true }],
        "the key lives in Redis, not in the instance that took the push",
      );
      const batchRetry = await fetch(`${second.http}/messages`, {
        method: "POST",
        body: JSON.stringify({ messages: [{ to: "/rooms/dashboard", data: { n: 1 }, key: "widget-7:update-1" }] }),
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.deepEqual(await batchRetry.json(), { results: [{ room: "dashboard", seq: 1, repeated: true }] });
      assert.deepEqual((await keyed(second, { n: 3 }, "widget-7:update-3")).body, { room: "dashboard", seq: 3 });
      await until(() => watcher.seen.length >= 3, 10_000, "the three pushes");
      await sleep(300);
      assert.deepEqual(watcher.seen, [1, 2, 3], "each push once, whichever instance the retries reached");
    } finally {
      watcher.client.close();
      await Promise.all([first.stop(), second.stop()]);
      await cleanup(SHARED_REDIS, prefix);
    }
  });

  it("a user route's presence update crosses instances: a rename on Node reaches a member on Bun (examples/chat)", async () => {
    const prefix = testPrefix("fleet-chat");
    const env = fleetEnv(prefix);
    const chatOn = (r: RuntimeName) => startModule(r, { entry: "examples/chat/server.ts", env });
    const [node, bun] = await Promise.all([chatOn("node"), chatOn("bun")]);
    const sockets: TestSocket[] = [];
    try {
      const enter = async (s: RunningServer, name: string) => {
        const socket = new TestSocket(`${s.ws}/chat/fleet-rename?name=${name}`, "edgewire.v1");
        sockets.push(socket);
        return { socket, welcome: await socket.until<{ id: string }>("welcome") };
      };
      const a = await enter(bun, "ada");
      const b = await enter(node, "bob");
      b.socket.sendJson({ type: "publish", data: { type: "rename", name: "bobby" } });
      // Frames in arrival order, up to the handler's broadcast: the update must come before it, as on
      // one instance (the UPDATE script publishes it, so the broadcast that follows cannot overtake it).
      const seen: { type: string; event?: string; member?: { id: string; info?: unknown } }[] = [];
      while (seen.at(-1)?.type !== "broadcast") seen.push(await a.socket.json(10_000));
      const update = seen.find((f) => f.type === "presence" && f.event === "update");
      assert.deepEqual(
        [update?.member?.id, update?.member?.info],
        [b.welcome.id, { name: "bobby" }],
        `the member on Bun saw ${JSON.stringify(seen)}`,
      );
      const listed = (await (await fetch(`${bun.http}/chat/fleet-rename`)).json()) as {
        members: { id: string; info?: unknown }[];
      };
      assert.deepEqual(
        listed.members.find((m) => m.id === b.welcome.id)?.info,
        { name: "bobby" },
        "and Redis keeps it",
      );
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await Promise.all([node.stop(), bun.stop()]);
      await cleanup(SHARED_REDIS, prefix);
    }
  });

  it("Redis restarted mid-stream (its own redis-server): instances recover, readiness and /metrics said so, every acknowledged message is delivered", async () => {
    const redis = await ownRedis();
    const prefix = testPrefix("outage");
    const a = await startServer("node", fleetEnv(prefix, redis.url));
    const b = await startServer("bun", fleetEnv(prefix, redis.url));
    const room = "outage";
    const clients: { client: RoomClient<{ n: number }>; seen: number[]; gaps: RoomGap[] }[] = [
      member(a.ws, room),
      member(b.ws, room),
    ];
    const publisher = joinRoom<{ n: number }>(a.ws, room, { WebSocket: WS, reconnect: FAST });
    try {
      await Promise.all([...clients.map((c) => c.client.ready), publisher.ready]);
      const acked: number[] = [];
      let refused = 0;
      let stop = false;
      const publishing = (async () => {
        for (let n = 1; !stop; n++) {
          try {
            await publisher.publish({ n });
            acked.push(n);
          } catch {
            refused++; // not stored, not acked: the outage
          }
          await sleep(15);
        }
      })();
      await sleep(800);
      await redis.stop();
      await sleep(1500);
      const ready = await fetch(`${a.http}/readyz`);
      assert.equal(ready.status, 503, "readiness fails while Redis is away");
      assert.match(await (await fetch(`${b.http}/metrics`)).text(), /edgewire_broker_up 0/);
      await redis.start();
      await until(() => acked.length > 0 && refused > 0, 10_000, "publishes refused during the outage");
      await sleep(2500); // reconnect with backoff, catch up
      const more = acked.length;
      await until(() => acked.length > more + 20, 15_000, "publishing again after the restart");
      stop = true;
      await publishing;
      assert.equal((await fetch(`${a.http}/readyz`)).status, 200, "ready again");
      const last = acked.at(-1) as number;
      for (const c of clients) await until(() => c.seen.includes(last), 15_000, "the last acknowledged message");
      for (const c of clients) {
        for (const n of acked) assert.ok(c.seen.includes(n), `acknowledged ${n} was delivered`);
        assert.equal(new Set(c.seen).size, c.seen.length, "nothing delivered twice");
        assert.deepEqual(
          c.seen,
          [...c.seen].sort((x, y) => x - y),
          "in order",
        );
        assert.deepEqual(c.gaps, [], "Redis kept its history (AOF): no gap");
      }
      assert.ok(refused > 0, "publishes were refused (not acked) during the outage");
    } finally {
      publisher.close();
      for (const c of clients) c.client.close();
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    }
  });

  it("no room key is kept forever: every key of a room carries the idle TTL, whether it was made by a join, a member's publish or a push to an empty room", async () => {
    const prefix = testPrefix("ttl");
    const idleMs = 60_000;
    const s = await startServer("node", { ...fleetEnv(prefix), EDGEWIRE_ROOM_IDLE_MS: String(idleMs) });
    const redis = createClient({ url: SHARED_REDIS });
    await redis.connect();
    // Every key under the prefix but the fleet's own registry has a TTL in (0, idleMs].
    const ttls = async (room: string) => {
      const out: Record<string, number> = {};
      for await (const keys of redis.scanIterator({ MATCH: `${prefix}r:room:${room}:*`, COUNT: 500 }))
        for (const key of keys) out[key.slice(prefix.length)] = await redis.pTTL(key);
      return out;
    };
    const bounded = (t: Record<string, number>, what: string) => {
      assert.ok(Object.keys(t).length > 0, `${what}: the room has keys`);
      for (const [key, ms] of Object.entries(t)) assert.ok(ms > 0 && ms <= idleMs, `${what}: ${key} has TTL ${ms}`);
    };
    try {
      // A room made by a member's publish (the member's instance heartbeats it).
      const m = new TestSocket(`${s.ws}/rooms/talk`, "edgewire.v1");
      await m.json();
      m.send(JSON.stringify({ type: "publish", data: 1 }));
      await m.until("message");
      bounded(await ttls("talk"), "member's room");
      await m.close();
      // A room nobody is in, made by pushes alone: no heartbeat covers it, the publish must.
      for (let n = 0; n < 3; n++) assert.equal((await push(s, "empty", n)).status, 200);
      const pushed = await ttls("empty");
      bounded(pushed, "pushed room");
      assert.ok(
        Object.keys(pushed).some((k) => k.endsWith(":log")),
        "the pushed room has its history stream",
      );
    } finally {
      await redis.close();
      await s.stop();
      await cleanup(SHARED_REDIS, prefix);
    }
  });

  it("history lost in Redis (its keys gone) or outrun: a resuming client is told (resync), never a silent gap", async () => {
    const prefix = testPrefix("resync");
    const s = await startServer("deno", { ...fleetEnv(prefix), EDGEWIRE_HISTORY_LIMIT: "50" });
    try {
      const room = "lost";
      const first = new TestSocket(`${s.ws}/rooms/${room}`, "edgewire.v1");
      const { epoch } = await first.json<{ epoch: string }>();
      for (let n = 1; n <= 3; n++) await push(s, room, n);
      for (let n = 1; n <= 3; n++) await first.until("message");
      // Outrun: far more than the stream keeps.
      for (let n = 4; n <= 200; n++) await push(s, room, n);
      const far = new TestSocket(`${s.ws}/rooms/${room}?seq=1&epoch=${epoch}`, "edgewire.v1");
      await far.json();
      const truncated = await far.json<{ type: string; reason: string }>();
      assert.deepEqual([truncated.type, truncated.reason], ["resync", "history_truncated"]);
      await far.close();
      await first.close();
      // Lost: the room's keys deleted (a flush) while nobody was in it.
      await sleep(300);
      await cleanup(SHARED_REDIS, `${prefix}r:room:${room}`);
      const back = new TestSocket(`${s.ws}/rooms/${room}?seq=200&epoch=${epoch}`, "edgewire.v1");
      const w = await back.json<{ epoch: string; seq: number }>();
      const resync = await back.json<{ type: string; reason: string }>();
      assert.notEqual(w.epoch, epoch, "a new epoch");
      assert.deepEqual([resync.type, resync.reason], ["resync", "epoch_changed"]);
      await back.close();
    } finally {
      await s.stop();
      await cleanup(SHARED_REDIS, prefix);
    }
  });
});
