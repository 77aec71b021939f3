/**
 * Backend pushes a live dashboard leans on, on every runtime: an `Idempotency-Key` that makes a
 * retried push (its reply lost) answer the first push's seq and publish nothing — in memory, and
 * in a Durable Object's SQLite, across its eviction.
 */
import assert from "node:assert/strict";
import type { RunningServer } from "../support/servers.ts";
import type { TestSocket } from "../support/test-socket.ts";
import { type Case, freshRoom, join, joinPair, push, pushAcrossEviction } from "./cases.ts";

type Json = Record<string, unknown>;

/** The data of every message `socket` receives until (and with) the one whose data is `last`. */
async function received(socket: TestSocket, last: unknown): Promise<unknown[]> {
  const seen: unknown[] = [];
  do seen.push((await socket.until<{ data: unknown }>("message")).data);
  while (JSON.stringify(seen.at(-1)) !== JSON.stringify(last));
  return seen;
}

/** A push with an idempotency key: the status, the replay header and the body. */
async function keyed(s: RunningServer, room: string, body: string, key: string) {
  const res = await push(s, room, body, { "idempotency-key": key });
  return { status: res.status, replayed: res.headers.get("idempotent-replayed"), body: (await res.json()) as Json };
}

/** The push cases (the service). */
export const pushCases: Case[] = [
  {
    name: "push: a retry with the same Idempotency-Key answers the first seq (repeated) and members see it once; another key publishes again; the key with other data is 422, a bad key 400; keys are per room",
    clients: ["ws"],
    async run(s) {
      const room = freshRoom("idem");
      const { a, b } = await joinPair(s, room);
      const key = `retry-${room}`;
      const first = await keyed(s, room, JSON.stringify({ v: 1 }), key);
      assert.deepEqual([first.status, first.replayed, first.body], [200, null, { room, seq: 1 }]);
      // The retry a backend sends when the first reply was lost (ECONNRESET): the same key and data.
      for (let i = 0; i < 3; i++) {
        const retry = await keyed(s, room, JSON.stringify({ v: 1 }), key);
        assert.deepEqual([retry.status, retry.replayed, retry.body], [200, "true", { room, seq: 1, repeated: true }]);
      }
      const reused = await keyed(s, room, JSON.stringify({ v: 2 }), key);
      assert.deepEqual([reused.status, (reused.body.error as Json).code], [422, "idempotency_key_reused"]);
      const bad = await keyed(s, room, "1", "x".repeat(256));
      assert.deepEqual([bad.status, (bad.body.error as Json).code], [400, "invalid_idempotency_key"]);
      const other = await keyed(s, room, JSON.stringify({ v: 1 }), `${key}-2`);
      assert.deepEqual(other.body, { room, seq: 2 }, "another key is another push");
      const elsewhere = freshRoom("idem-other");
      assert.deepEqual((await keyed(s, elsewhere, JSON.stringify({ v: 1 }), key)).body, { room: elsewhere, seq: 1 });
      assert.equal((await push(s, room, JSON.stringify("last"))).status, 200);
      for (const m of [a, b]) assert.deepEqual(await received(m.socket, "last"), [{ v: 1 }, { v: 1 }, "last"]);
      const history = (await (await fetch(`${s.http}/rooms/${room}/history`)).json()) as { messages: Json[] };
      assert.deepEqual(
        history.messages.map((m) => m.seq),
        [1, 2, 3],
        "history holds each push once",
      );
      await Promise.all([a.socket.close(), b.socket.close()]);
    },
  },
  {
    name: "push: a Durable Object evicted and rebuilt still answers a retry with the first seq (the key is in its SQLite, written with the message)",
    clients: ["ws"],
    unsupported: (r) =>
      r === "workerd"
        ? undefined
        : "one process keeps its keys in memory (a restart forgets them); a Redis fleet keeps them in Redis (fleet.test.ts)",
    async run(s) {
      const room = freshRoom("idem-evict");
      const m = await join(s, room); // a hibernatable socket: the object is evicted, not the room
      const key = `evict-${room}`;
      assert.deepEqual((await keyed(s, room, '"first"', key)).body, { room, seq: 1 });
      const after = await pushAcrossEviction(s, room, '"wake"');
      assert.equal(after.seq, 2);
      const retry = await keyed(s, room, '"first"', key);
      assert.deepEqual([retry.replayed, retry.body], ["true", { room, seq: 1, repeated: true }]);
      assert.equal((await push(s, room, '"last"')).status, 200);
      assert.deepEqual(await received(m.socket, "last"), ["first", "wake", "last"]);
      await m.socket.close();
    },
  },
];
