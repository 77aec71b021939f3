/**
 * The Redis broker in process, on the real shared Redis (its own key prefix):
 * a sequenced message its subscription never saw — Pub/Sub does not
 * redeliver, e.g. one published while it was re-subscribing after a Redis
 * restart — is read from the room's stream before the next one is delivered,
 * so members get every message once and in order; what the stream lost too
 * (trimmed) is stepped past instead of blocking the room. A keyed push's key is stored by the
 * publish script with the window as its TTL, and any broker on the Redis answers its repeat.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@redis/client";
import { type Delivery, roomRef } from "../../src/pubsub/broker.ts";
import { RedisBroker } from "../../src/pubsub/redis.ts";
import { cleanup, requireRedis, SHARED_REDIS, testPrefix } from "../support/redis.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("redis broker", () => {
  const prefix = testPrefix("broker");
  let broker: RedisBroker;
  before(async () => {
    await requireRedis();
    broker = new RedisBroker({ url: SHARED_REDIS, prefix });
    await broker.start();
  });
  after(async () => {
    await broker.close();
    await cleanup(SHARED_REDIS, prefix);
  });

  /** A room with one member and message 1 delivered; `seqs` collects every message's seq, in order. */
  async function roomWithOne(name: string) {
    const ref = roomRef("room", name);
    const seqs: number[] = [];
    const off = broker.subscribe(ref, (d: Delivery) => {
      const frame = JSON.parse(d.frame as string) as { type: string; seq?: number };
      if (frame.type === "message") seqs.push(frame.seq as number);
    });
    await broker.join(ref, { id: "m1", joinedAt: 1 });
    await broker.publish(ref, "m1", { n: 1 });
    return { ref, seqs, off, key: (part: string) => `${prefix}r:${ref.key}:${part}` };
  }

  /** Behind the broker's back, on a connection of its own. */
  const redisClient = () => createClient({ url: SHARED_REDIS });
  async function withRedis(use: (redis: ReturnType<typeof redisClient>) => Promise<void>): Promise<void> {
    const redis = redisClient();
    await redis.connect();
    try {
      await use(redis);
    } finally {
      await redis.quit();
    }
  }

  async function until(seqs: number[], count: number): Promise<void> {
    for (let i = 0; i < 100 && seqs.length < count; i++) await sleep(20);
  }

  it("fills a hole in the live stream from the room's stream before delivering past it", async () => {
    const { ref, seqs, off, key } = await roomWithOne("holes");
    // Message 2 as a publish whose Pub/Sub copy was lost: sequenced and kept in the stream, never published.
    await withRedis(async (redis) => {
      const seq = await redis.incr(key("seq"));
      assert.equal(seq, 2);
      const frame = JSON.stringify({
        type: "message",
        room: ref.name,
        seq,
        from: "m1",
        data: { n: 2 },
        ts: Date.now(),
      });
      await redis.xAdd(key("log"), `${seq}-0`, { f: frame });
    });
    await broker.publish(ref, "m1", { n: 3 });
    await until(seqs, 3);
    assert.deepEqual(seqs, [1, 2, 3], "the missed message arrives, before the one after it, once");
    off();
  });

  it("a keyed publish stores its key in the same script, expiring with the window; a repeat through another broker publishes nothing", async () => {
    const { ref, seqs, off } = await roomWithOne("keyed");
    const other = new RedisBroker({ url: SHARED_REDIS, prefix, idempotencyWindowMs: 60_000 });
    await other.start();
    try {
      const key = { key: "order 42/retry", fingerprint: "f1" };
      const first = await broker.publishKeyed(ref, "server", { n: 2 }, key);
      assert.equal(first.kind, "published");
      await withRedis(async (redis) => {
        const stored = `${prefix}k:${ref.key}:${key.key}`;
        assert.equal(await redis.get(stored), "2 f1", "the key names its seq and the data's fingerprint");
        const ttl = await redis.pTTL(stored);
        assert.ok(ttl > 86_000_000 && ttl <= 86_400_000, `the default window (a day) is its TTL: ${ttl}`);
      });
      assert.deepEqual(await other.publishKeyed(ref, "server", { n: 2 }, key), { kind: "repeat", seq: 2 });
      assert.deepEqual(await other.publishKeyed(ref, "server", { n: 3 }, { ...key, fingerprint: "f2" }), {
        kind: "reused",
        seq: 2,
      });
      const second = await other.publishKeyed(ref, "server", { n: 3 }, { key: "k2", fingerprint: "f3" });
      assert.equal(second.kind, "published");
      await withRedis(async (redis) => {
        const ttl = await redis.pTTL(`${prefix}k:${ref.key}:k2`);
        assert.ok(ttl > 59_000 && ttl <= 60_000, `that broker's window is its TTL: ${ttl}`);
      });
      await until(seqs, 3);
      await sleep(100);
      assert.deepEqual(seqs, [1, 2, 3], "each push delivered once");
    } finally {
      off();
      await other.close();
    }
  });

  it("steps past a hole the stream does not hold either (trimmed) instead of waiting on it", async () => {
    const { ref, seqs, off, key } = await roomWithOne("trimmed");
    await withRedis(async (redis) => {
      await redis.incr(key("seq")); // seq 2: in neither Pub/Sub nor the stream
    });
    await broker.publish(ref, "m1", { n: 3 });
    await broker.publish(ref, "m1", { n: 4 });
    await until(seqs, 3);
    assert.deepEqual(seqs, [1, 3, 4], "delivery goes on past what no one can have");
    off();
  });
});
