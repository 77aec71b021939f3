/**
 * Room state on a Redis fleet, in process, on the real shared Redis (its own key prefix): three
 * brokers — three instances — commit transactions on one room as fast as they can. Every commit is
 * one script under a version check; a batch that lost the race runs again on the state that won.
 * What must hold: no update lost (the final state counts every committed transaction), the
 * messages strictly in seq order with each one's view the state after it, a refused transaction
 * changing nothing, the state coming with the join's head, and commits near one round trip each.
 * Timers: one firing takes effect once however many runs it gets; and all of it through kill -9
 * of a redis-server of the test's own (AOF, fsync always).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@redis/client";
import { ClientError } from "../../src/core/route.ts";
import { type ChangeFn, type Delivery, type FiredTimer, roomRef, TimerSpentError } from "../../src/pubsub/broker.ts";
import { RedisBroker, type RedisBrokerOptions } from "../../src/pubsub/redis.ts";
import { cleanup, ownRedis, requireRedis, SHARED_REDIS, testPrefix } from "../support/redis.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A counter transaction, as a compiled route makes it: the next state, one message, the view.
const add =
  (by: number, limit = Number.POSITIVE_INFINITY): ChangeFn =>
  (stored) => {
    const n = stored === undefined ? 0 : (JSON.parse(stored) as { n: number }).n;
    if (n + by > limit) throw new ClientError("full", "past the limit");
    return { state: JSON.stringify({ n: n + by }), messages: [{ by }], view: { value: { n: n + by } } };
  };

/** Brokers on the shared Redis under a fresh prefix (`run` gets it too), one per options, started; closed and cleaned up after `run`. */
async function withBrokers(
  tag: string,
  options: Partial<RedisBrokerOptions>[],
  run: (brokers: [RedisBroker, RedisBroker], prefix: string) => Promise<void>,
): Promise<void> {
  await requireRedis();
  const prefix = testPrefix(tag);
  const brokers = options.map((o) => new RedisBroker({ url: SHARED_REDIS, prefix, ...o }));
  try {
    for (const broker of brokers) await broker.start();
    await run(brokers as [RedisBroker, RedisBroker], prefix);
  } finally {
    for (const broker of brokers) await broker.close();
    await cleanup(SHARED_REDIS, prefix);
  }
}

describe("redis room state", () => {
  const prefix = testPrefix("room-state");
  const brokers: RedisBroker[] = [];
  before(async () => {
    await requireRedis();
    for (let i = 0; i < 3; i++) {
      const broker = new RedisBroker({ url: SHARED_REDIS, prefix });
      await broker.start();
      brokers.push(broker);
    }
  });
  after(async () => {
    for (const broker of brokers) await broker.close();
    await cleanup(SHARED_REDIS, prefix);
  });

  it("three instances contending on one room: every commit counted once, messages in seq order with their views", async () => {
    const ref = roomRef("lot", "contended");
    const frames: { seq: number; view: { n: number } }[] = [];
    const off = brokers[0]?.subscribe(ref, (d: Delivery) => {
      const frame = JSON.parse(d.frame as string) as { type: string; seq: number; view: { n: number } };
      if (frame.type === "message") frames.push(frame);
    });
    await brokers[0]?.join(ref, { id: "watcher", joinedAt: 1 });
    // Count the scripts Redis runs while the instances race.
    const monitor = createClient({ url: SHARED_REDIS });
    await monitor.connect();
    const before = Number((await monitor.info("commandstats")).match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
    const perInstance = 200;
    const results = await Promise.allSettled(
      brokers.flatMap((broker, i) =>
        Array.from({ length: perInstance }, (_, k) => broker.commit(ref, `m${i}-${k}`, add(1))),
      ),
    );
    const after = Number((await monitor.info("commandstats")).match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
    await monitor.quit();
    const committed = results.filter((r) => r.status === "fulfilled").length;
    const refused = results.filter((r) => r.status === "rejected");
    for (const r of refused) assert.equal((r.reason as { code?: string }).code, "try_again_later");
    const snapshot = await brokers[1]?.snapshot(ref);
    assert.deepEqual(JSON.parse(snapshot?.state ?? "null"), { n: committed }, "no update lost, none counted twice");
    for (let i = 0; i < 100 && frames.length < committed; i++) await sleep(20);
    assert.equal(frames.length, committed);
    frames.forEach((f, i) => {
      assert.equal(f.seq, i + 1, "strictly in seq order, no hole");
      assert.equal(f.view.n, i + 1, "each message's view is the state after it");
    });
    const scripts = after - before;
    console.log(
      `room state on redis: ${committed} commits (${refused.length} told to try again) from 3 instances in ${scripts} scripts: ${(scripts / committed).toFixed(2)} per commit`,
    );
    assert.ok(committed >= perInstance * 3 * 0.9, `most commits land under contention (${committed})`);
    off?.();
    await brokers[0]?.leave(ref, "watcher");
  });

  it("a refused transaction changes nothing; a join carries the state of its head; another instance runs on the fresh state", async () => {
    const ref = roomRef("lot", "refused");
    const [a, b] = brokers as [RedisBroker, RedisBroker];
    await a.commit(ref, "m", add(5));
    await assert.rejects(a.commit(ref, "m", add(10, 10)), (e: Error) => e instanceof ClientError);
    const joined = await b.join(ref, { id: "j", joinedAt: 1 });
    assert.deepEqual([joined.seq, JSON.parse(joined.state ?? "null")], [1, { n: 5 }]);
    // b's cache is warm from the join; a commits again behind its back, b's next commit loses the race once.
    await a.commit(ref, "m", add(1));
    const c = await b.commit(ref, "m", add(1));
    assert.deepEqual(
      c.frames.map((f) => [f.seq, f.type === "message" && f.view]),
      [[3, { n: 7 }]],
    );
    await b.leave(ref, "j");
  });
});

describe("redis room state: refusals are linearizable too", () => {
  it("a transaction that refuses on an instance whose cache another instance outdated is decided on the fresh state", async () => {
    await withBrokers("room-state-refusal", [{}, {}], async ([a, b]) => {
      const ref = roomRef("lot", "stale");
      // b's cache: n = 0, from its join.
      await b.join(ref, { id: "j", joinedAt: 1 });
      for (let i = 0; i < 3; i++) await a.commit(ref, "m", add(4)); // n = 12, behind b's back
      // Needs n ≥ 10: on b's stale cache (0) it would refuse — and, writing nothing, never ask Redis.
      const needsTen: ChangeFn = (stored) => {
        const n = stored === undefined ? 0 : (JSON.parse(stored) as { n: number }).n;
        if (n < 10) throw new ClientError("too_early", `n is ${n}`);
        return { messages: [] };
      };
      await b.commit(ref, "m", needsTen);
      // And the reverse: a refusal that is right on the fresh state stays a refusal.
      const atMostFive: ChangeFn = (stored) => {
        const n = stored === undefined ? 0 : (JSON.parse(stored) as { n: number }).n;
        if (n > 5) throw new ClientError("too_late", `n is ${n}`);
        return { state: JSON.stringify({ n: 0 }), messages: [] };
      };
      await assert.rejects(
        b.commit(ref, "m", atMostFive),
        (e: Error) => e instanceof ClientError && /12/.test(e.message),
      );
      assert.equal(JSON.parse((await a.snapshot(ref)).state as string).n, 12, "nothing written by the refusal");
      await b.leave(ref, "j");
    });
  });
});

describe("redis room state when Redis loses the room (a restart without persistence, a flush)", () => {
  it("a new epoch, and the state starts again from nothing: the next transaction runs on the route's initial state", async () => {
    await withBrokers("room-state-lost", [{}, {}], async ([a, b], prefix) => {
      const ref = roomRef("lot", "lost");
      const head = await a.join(ref, { id: "m", joinedAt: 1 });
      for (let i = 0; i < 3; i++) await a.commit(ref, "m", add(2));
      // What Redis forgets: every key of the room (its seq, epoch, log and state).
      const redis = createClient({ url: SHARED_REDIS });
      await redis.connect();
      for (const part of ["seq", "epoch", "log", "st", "m", "t"]) await redis.del(`${prefix}r:lot:lost:${part}`);
      await redis.quit();
      // Another instance (no cache of the room) finds it new: a new epoch, no state.
      const after = await b.join(ref, { id: "n", joinedAt: 2 });
      assert.notEqual(after.epoch, head.epoch, "a new epoch: resuming clients get resync");
      assert.deepEqual([after.seq, after.state], [0, undefined], "no state: the route's initial one");
      const first = await b.commit(ref, "n", add(1));
      assert.deepEqual(
        first.frames.map((f) => [f.seq, f.type === "message" && f.view]),
        [[1, { n: 1 }]],
        "the first transaction of the new epoch ran on the initial state",
      );
      // The instance whose cache held the old state loses its race once and runs on the fresh one.
      const stale = await a.commit(ref, "m", add(1));
      assert.deepEqual(
        stale.frames.map((f) => [f.seq, f.type === "message" && f.view]),
        [[2, { n: 2 }]],
      );
      await b.leave(ref, "n");
    });
  });
});

describe("redis: occupied and vacated across instances", () => {
  it("of members joining on two instances at once exactly one sees the room go from 0 to 1, and of the leaves exactly the last sees 0 — round after round", async () => {
    await withBrokers("room-hooks", [{}, {}], async ([a, b]) => {
      const ref = roomRef("visits", "hooks");
      for (let round = 0; round < 20; round++) {
        // Joins racing on both instances: the count comes from the join script, atomic with the join.
        const joins = await Promise.all([
          a.join(ref, { id: `a${round}`, joinedAt: 1 }),
          b.join(ref, { id: `b${round}`, joinedAt: 1 }),
          a.join(ref, { id: `c${round}`, joinedAt: 1 }),
        ]);
        assert.deepEqual(
          joins.map((j) => j.count).sort(),
          [1, 2, 3],
          `round ${round}: one occupier (the hub runs occupied for count 1 only)`,
        );
        const leaves = await Promise.all([
          a.leave(ref, `a${round}`),
          b.leave(ref, `b${round}`),
          a.leave(ref, `c${round}`),
        ]);
        assert.deepEqual(
          leaves.map(Number).sort(),
          [0, 1, 2],
          `round ${round}: one vacater (the hub runs vacated for 0 only)`,
        );
      }
    });
  });
});

describe("redis: a room emptied by the sweep of a lost instance", () => {
  it("is told as vacated (no leave of its last member says so)", async () => {
    // `lost` beats once at its start, then never within the test: to `sweeper` it is dead after 600 ms.
    await withBrokers("room-swept", [{ heartbeatMs: 60_000 }, { instanceTtlMs: 600 }], async ([lost, sweeper]) => {
      const ref = roomRef("visits", "swept");
      const other = roomRef("visits", "kept");
      const vacated: string[] = [];
      sweeper.onVacated((room) => vacated.push(room.key));
      await lost.join(ref, { id: "gone", joinedAt: 1 });
      await lost.join(other, { id: "gone-too", joinedAt: 1 });
      await sweeper.join(other, { id: "stays", joinedAt: 2 });
      const deadline = Date.now() + 5_000;
      while (vacated.length === 0 && Date.now() < deadline) await sleep(100);
      assert.deepEqual(vacated, [ref.key], "the room left empty, not the one with a member elsewhere");
      assert.equal(await sweeper.count(ref), 0);
      assert.equal(await sweeper.count(other), 1);
      await sweeper.leave(other, "stays");
    });
  });
});

describe("redis room timers", () => {
  const prefix = testPrefix("room-timers");
  it("the schedule lives in Redis: a timer scheduled by an instance that is gone fires once, on one of the others", async () => {
    await requireRedis();
    const brokers: RedisBroker[] = [];
    for (let i = 0; i < 3; i++) {
      const broker = new RedisBroker({ url: SHARED_REDIS, prefix });
      await broker.start();
      brokers.push(broker);
    }
    const [gone, b, c] = brokers as [RedisBroker, RedisBroker, RedisBroker];
    const ref = roomRef("lot", "timed");
    const ran: string[] = [];
    try {
      await gone.timers.schedule(ref, { name: "deadline", at: Date.now() + 300, data: { why: "end" } });
      await gone.timers.schedule(ref, { name: "reminder", at: Date.now() + 200 });
      await gone.timers.schedule(ref, { name: "cancelled", at: Date.now() + 200 });
      assert.equal(await gone.timers.cancel(ref, "cancelled"), true);
      assert.deepEqual(
        (await b.timers.list(ref)).map((t) => t.name),
        ["reminder", "deadline"],
        "any instance lists them",
      );
      await gone.close(); // never fires anything
      brokers.shift();
      for (const [name, broker] of [
        ["b", b],
        ["c", c],
      ] as const)
        broker.timers.start(
          async (_ref, { timer }) => void ran.push(`${timer.name}@${name}:${JSON.stringify(timer.data ?? null)}`),
        );
      await sleep(1500);
      assert.deepEqual(
        ran.map((r) => r.replace(/@[bc]/, "")).sort(),
        ['deadline:{"why":"end"}', "reminder:null"],
        "each once, on one instance, with its data",
      );
      assert.deepEqual(await b.timers.list(ref), [], "nothing left pending");
    } finally {
      for (const broker of brokers) await broker.close();
      await cleanup(SHARED_REDIS, prefix);
    }
  });

  it("a run that outlives its lease and a second run of the same firing: the timer takes effect once", async () => {
    const lease = { timerLeaseMs: 300 };
    await withBrokers("room-timers-once", [lease, lease], async ([slow, quick]) => {
      const ref = roomRef("lot", "once");
      await slow.timers.schedule(ref, { name: "close", at: Date.now() + 50 });
      // The slow instance claims it and stalls mid-run (as one that froze or lost Redis would) …
      let resume!: () => void;
      const stalled = new Promise<void>((r) => (resume = r));
      let slowRun!: Promise<unknown>;
      const claimed = new Promise<void>((taken) =>
        slow.timers.start(async (_ref, fired: FiredTimer) => {
          taken();
          await stalled;
          slowRun = Promise.resolve(slow.commit(ref, "server", add(1), fired)).then(
            () => "committed",
            (e: unknown) => (e instanceof TimerSpentError ? "spent" : e),
          );
          await slowRun;
        }),
      );
      await claimed;
      assert.deepEqual(await quick.timers.list(ref), [], "a timer whose run is under way is not pending");
      // … its lease runs out, and the other instance runs the same firing and commits.
      const quickRuns: string[] = [];
      quick.timers.start(async (_ref, fired) => {
        await quick.commit(ref, "server", add(1), fired);
        quickRuns.push(fired.timer.name);
      });
      for (let i = 0; i < 40 && quickRuns.length === 0; i++) await sleep(50);
      assert.deepEqual(quickRuns, ["close"], "taken over once its lease ran out");
      resume();
      while (!slowRun) await sleep(10);
      assert.equal(await slowRun, "spent", "the stalled run's commit is refused: the firing took effect already");
      await sleep(700); // past another lease: nothing left to take over
      assert.deepEqual(quickRuns, ["close"], "not run again");
      const frames = await quick.history(ref, 0, 10);
      assert.deepEqual(
        frames.map((f) => f.type === "message" && f.view),
        [{ n: 1 }],
        "one commit of the timer's effect",
      );
      assert.deepEqual(await quick.timers.list(ref), [], "nothing pending");
    });
  });

  it("a run that committed and then died is not run again when its lease runs out", async () => {
    const lease = { timerLeaseMs: 200 };
    await withBrokers("room-timers-died", [lease, lease], async ([dying, other]) => {
      const ref = roomRef("lot", "died");
      await dying.timers.schedule(ref, { name: "close", at: Date.now() + 50 });
      const committed = new Promise<void>((done) =>
        dying.timers.start(async (_ref, fired) => {
          await dying.commit(ref, "server", add(1), fired);
          done();
          await new Promise(() => {}); // dies before it says it ran: the lease stays behind
        }),
      );
      await committed;
      const otherRuns: string[] = [];
      other.timers.start(async (_ref, fired) => void otherRuns.push(fired.timer.name));
      await sleep(800); // four leases
      assert.deepEqual(otherRuns, [], "the commit spent the run with its claim");
      assert.equal((await other.history(ref, 0, 10)).length, 1);
    });
  });
});

describe("redis room state through kill -9 of Redis (its own redis-server, AOF fsync always)", () => {
  it("every acknowledged commit, the state, its version, the epoch and a pending timer survive; commits go on where they stopped", async () => {
    const redis = await ownRedis();
    const prefix = testPrefix("room-state-kill");
    const ref = roomRef("lot", "kill");
    const committer = new RedisBroker({ url: redis.url, prefix });
    let fresh: RedisBroker | undefined;
    try {
      await committer.start();
      const head = await committer.join(ref, { id: "m", info: null, joinedAt: Date.now() });
      await committer.timers.schedule(ref, { name: "close", at: Date.now() + 2500 });
      const acked: number[] = [];
      let refused = 0;
      let stop = false;
      const committing = (async () => {
        while (!stop) {
          try {
            const { frames } = await committer.commit(ref, "m", add(1));
            acked.push(...frames.map((f) => f.seq));
          } catch {
            refused++; // Redis gone: not acknowledged
            await sleep(20);
          }
        }
      })();
      while (acked.length < 200) await sleep(5);
      await redis.kill();
      const ackedBeforeKill = acked.length;
      await sleep(300);
      await redis.start();
      for (let i = 0; i < 200 && !committer.up; i++) await sleep(25);
      const ackedAtRestart = acked.length;
      while (acked.length < ackedAtRestart + 100) await sleep(5);
      stop = true;
      await committing;
      assert.ok(refused > 0, "the kill was felt: some commits were refused, none acknowledged");
      // A fresh instance (as after a restart of ours too) reads what Redis kept.
      fresh = new RedisBroker({ url: redis.url, prefix });
      await fresh.start();
      const after = await fresh.snapshot(ref);
      assert.equal(after.epoch, head.epoch, "same epoch: nothing was lost, no resync");
      const state = JSON.parse(after.state as string) as { n: number };
      assert.equal(state.n, after.seq, "one message per commit: the state counts every one");
      const kept = new Set((await fresh.history(ref, 0, 1000)).map((f) => f.seq));
      assert.deepEqual(
        acked.filter((seq) => !kept.has(seq)),
        [],
        `every acknowledged commit is in history (${ackedBeforeKill} before the kill, ${acked.length} in all)`,
      );
      assert.deepEqual(
        (await fresh.timers.list(ref)).map((t) => t.name),
        ["close"],
        "the pending timer is still scheduled",
      );
      const closed = new Promise<number>((done) =>
        fresh?.timers.start(async (_ref, fired) => {
          const { frames } = await (fresh as RedisBroker).commit(ref, "server", add(1000), fired);
          done(frames[0]?.seq ?? -1);
        }),
      );
      assert.equal(await closed, after.seq + 1, "it fires after the restart and commits on the kept state");
      const final = await fresh.snapshot(ref);
      assert.equal((JSON.parse(final.state as string) as { n: number }).n, after.seq + 1000);
    } finally {
      await committer.close();
      await fresh?.close();
      await redis.stop();
    }
  });
});
