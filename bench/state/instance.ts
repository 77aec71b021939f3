/**
 * One instance of bench/room-state.ts's Redis fleet, in a process of its own as a server would be:
 * a RedisBroker and its share of the contending clients, plus — for the control — the same clients
 * as WATCH/MULTI/EXEC loops, each on its own connection of the same Redis client. The parent sends a
 * round (which side, the room, when to start and stop, wall clock); this process answers with every
 * commit's latency and how many gave up.
 */
import { createClient, type RedisClientType } from "@redis/client";
import { type ChangeFn, roomRef } from "../../src/pubsub/broker.ts";
import { RedisBroker } from "../../src/pubsub/redis.ts";

/** A round the parent asks for. */
export interface RoundOrder {
  which: "edgewire" | "watch";
  room: string;
  /** wall-clock ms: every instance starts and stops at the same moments */
  start: number;
  end: number;
}

/** What an instance answers: each commit's latency (ms) and the clients' commits that gave up. */
export interface RoundReport {
  latencies: number[];
  lost: number;
}

const [url = "", prefix = "", index = "0", clientList = ""] = process.argv.slice(2);
const clients = clientList.split(",").filter(Boolean).map(Number);

const add: ChangeFn = (stored) => {
  const n = stored === undefined ? 0 : (JSON.parse(stored) as { n: number }).n;
  return { state: JSON.stringify({ n: n + 1 }), messages: [{ bid: n + 1 }], view: { value: { n: n + 1 } } };
};

const broker = new RedisBroker({ url, prefix });
await broker.start();
const conns = new Map<number, RedisClientType>();
for (const c of clients) {
  const conn = createClient({ url }) as RedisClientType;
  await conn.connect();
  conns.set(c, conn);
}

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

// Each client commits as soon as its last commit returned, until the round's end.
async function closedLoop(order: RoundOrder, commit: (client: number) => Promise<boolean>): Promise<RoundReport> {
  const latencies: number[] = [];
  let lost = 0;
  await sleepUntil(order.start);
  await Promise.all(
    clients.map(async (c) => {
      while (Date.now() < order.end) {
        const t = performance.now();
        if (await commit(c)) latencies.push(performance.now() - t);
        else lost++;
      }
    }),
  );
  return { latencies, lost };
}

async function edgewireRound(order: RoundOrder): Promise<RoundReport> {
  const ref = roomRef("bench", order.room);
  // A member on this instance, as in a live room: its join warms the instance's state cache.
  await broker.join(ref, { id: `watcher${index}`, joinedAt: 1 });
  const report = await closedLoop(order, (c) =>
    broker.commit(ref, `c${c}`, add).then(
      () => true,
      () => false,
    ),
  );
  await broker.leave(ref, `watcher${index}`);
  return report;
}

// What a user writes without edgewire: optimistic WATCH on the state, then one MULTI that writes it
// with the message's seq, history entry and publish; a null EXEC (someone committed first) retries.
function watchRound(order: RoundOrder): Promise<RoundReport> {
  const k = (part: string) => `${prefix}w:${order.room}:${part}`;
  return closedLoop(order, async (c) => {
    const redis = conns.get(c) as RedisClientType;
    for (let attempt = 0; attempt < 50; attempt++) {
      await redis.watch(k("state"));
      const n = Number(JSON.parse((await redis.get(k("state"))) ?? '{"n":0}').n);
      const frame = JSON.stringify({
        type: "message",
        room: order.room,
        from: `c${c}`,
        data: { bid: n + 1 },
        view: { n: n + 1 },
      });
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
}

process.on("message", (message: RoundOrder | "close") => {
  if (message === "close") {
    void (async () => {
      await broker.close();
      for (const conn of conns.values()) await conn.quit();
      process.disconnect?.();
    })();
    return;
  }
  void (message.which === "edgewire" ? edgewireRound(message) : watchRound(message)).then(
    (report) => process.send?.(report),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
process.send?.("ready");
