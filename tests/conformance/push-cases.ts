/**
 * Backend pushes a live dashboard leans on, on every runtime: an `Idempotency-Key` that makes a
 * retried push (its reply lost) answer the first push's seq and publish nothing — in memory, and
 * in a Durable Object's SQLite, across its eviction; and the batch push (`POST /messages`), many
 * rooms of several routes in one request, with per-message results, auth per room and keys per
 * message (on workerd, each room's part is forwarded to that room's object).
 */
import assert from "node:assert/strict";
import type { RunningServer } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";
import { type Case, freshRoom, join, joinPair, push, pushAcrossEviction } from "./cases.ts";
import { HARD_PUSH_TOKEN, token } from "./hardening-cases.ts";

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

/** A short name no other run uses (the hardened server allows 24 characters per value). */
const short = (tag: string) => freshRoom(tag).slice(0, 24);
let address = 0;
/** A member of the room at `path` on the hardened server, from an address of its own (connections per address are bounded there). */
async function memberAt(s: RunningServer, path: string): Promise<TestSocket> {
  const socket = new TestSocket(`${s.ws}${path}`, "edgewire.v1", {
    "x-forwarded-for": `203.0.113.${(address++ % 250) + 1}`,
  });
  await withTimeout(socket.opened, 10_000, `join ${path}`);
  await socket.until("welcome");
  return socket;
}

/** A batch push to the hardened server: the status and the body. */
async function batch(s: RunningServer, messages: unknown[], authorization = `Bearer ${HARD_PUSH_TOKEN}`) {
  const res = await fetch(`${s.http}/messages`, {
    method: "POST",
    body: JSON.stringify({ messages }),
    headers: { authorization, "content-type": "application/json" },
  });
  return { status: res.status, body: (await res.json()) as { results: Json[]; error?: Json } };
}

/** The code of each error result, or the result itself. */
const codes = (results: Json[]) => results.map((r) => (r.error as Json | undefined)?.code ?? r);

/** The push cases (the service, and the hardened server for batches). */
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
  {
    name: "batch push: messages to rooms of several routes (a multi-parameter path, a schema) mixed with invalid ones get one result each, in order; each room's members receive exactly theirs, in order; a retried batch's keyed messages publish nothing",
    clients: ["ws"],
    server: "hardened",
    async run(s) {
      const a = short("ba");
      const [org, board] = [short("bo"), short("bb")];
      const c = short("bc");
      const rooms = { a: `/rooms/${a}`, b: `/org/${org}/board/${board}`, c: `/scores/${c}` };
      const [ma, ma2, mb, mc] = await Promise.all([
        memberAt(s, rooms.a),
        memberAt(s, rooms.a),
        memberAt(s, rooms.b),
        memberAt(s, rooms.c),
      ]);
      const keyA = `a1-${a}`;
      const keyB = `b2-${board}`;
      const messages = [
        { to: rooms.a, data: "a1", key: keyA },
        { to: rooms.b, data: "b1" },
        { to: rooms.c, data: { score: 1 } },
        { to: rooms.c, data: { score: "high" } }, // fails the route's schema
        { to: "/nowhere/x", data: 1 },
        { to: `/rooms/${"x".repeat(25)}`, data: 1 }, // a room name over the server's 24
        { to: rooms.a, data: "a2" },
        { to: rooms.b, data: "b2", key: keyB },
        { to: rooms.a, data: "a3", Key: "misspelt" }, // refused, not ignored
        { to: "/echo", data: 1 }, // a plain route has no rooms
        { to: rooms.b, data: "b3", key: "x".repeat(256) },
        { to: rooms.c, data: { score: 2 } },
      ];
      const first = await batch(s, messages);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const b = `${org}/${board}`;
      assert.deepEqual(codes(first.body.results), [
        { room: a, seq: 1 },
        { room: b, seq: 1 },
        { room: c, seq: 1 },
        "invalid_body",
        "not_found",
        "invalid_room",
        { room: a, seq: 2 },
        { room: b, seq: 2 },
        "invalid_body",
        "not_found",
        "invalid_idempotency_key",
        { room: c, seq: 2 },
      ]);
      // The retry a backend sends when the reply was lost: its keyed messages are answered, not published.
      const retry = await batch(s, [messages[0], messages[7], { to: rooms.c, data: { score: 3 }, key: keyA }]);
      assert.deepEqual(retry.body.results, [
        { room: a, seq: 1, repeated: true },
        { room: b, seq: 2, repeated: true },
        { room: c, seq: 3 }, // keys are per room: keyA in room c is another push
      ]);
      const last = await batch(s, [
        { to: rooms.a, data: "last" },
        { to: rooms.b, data: "last" },
        { to: rooms.c, data: { score: -1 } },
      ]);
      assert.deepEqual(codes(last.body.results), [
        { room: a, seq: 3 },
        { room: b, seq: 3 },
        { room: c, seq: 4 },
      ]);
      for (const m of [ma, ma2]) assert.deepEqual(await received(m, "last"), ["a1", "a2", "last"]);
      assert.deepEqual(await received(mb, "last"), ["b1", "b2", "last"]);
      assert.deepEqual(await received(mc, { score: -1 }), [{ score: 1 }, { score: 2 }, { score: 3 }, { score: -1 }]);
      await Promise.all([ma, ma2, mb, mc].map((m) => m.close()));
    },
  },
  {
    name: "batch push: auth per room (a JWT's push claim covers some rooms, the others are forbidden); no credential or a bad one is 401; more messages than the bound is 413 batch_too_large; a malformed body is 400",
    clients: ["ws"],
    server: "hardened",
    async run(s) {
      const mine = short("mine");
      const other = short("other");
      const jwt = await token({ push: [`room:${mine}`, "org/board:*"] }); // claims name a route by its name: `room` for /rooms/:room
      const allowed = await batch(
        s,
        [
          { to: `/rooms/${mine}`, data: 1 },
          { to: `/rooms/${other}`, data: 1 },
          { to: `/org/${mine}/board/b`, data: 1 },
          { to: `/vault/${mine}`, data: 1 }, // the room's name matches, but on another route
        ],
        `Bearer ${jwt}`,
      );
      assert.equal(allowed.status, 200);
      assert.deepEqual(codes(allowed.body.results), [
        { room: mine, seq: 1 },
        "forbidden",
        { room: `${mine}/b`, seq: 1 },
        "forbidden",
      ]);
      const noClaim = await batch(s, [{ to: `/rooms/${mine}`, data: 1 }], `Bearer ${await token({})}`);
      assert.deepEqual(codes(noClaim.body.results), ["forbidden"], "a JWT without a push claim pushes nowhere");
      for (const authorization of [
        "",
        "Bearer wrong",
        `Bearer ${await token({ push: true }, { secret: "x".repeat(48) })}`,
      ]) {
        const res = await batch(s, [{ to: `/rooms/${mine}`, data: 1 }], authorization);
        assert.deepEqual([res.status, res.body.error?.code], [401, "unauthorized"], authorization);
      }
      const many = await batch(
        s,
        Array.from({ length: 21 }, (_, n) => ({ to: `/rooms/${mine}`, data: n })),
      );
      assert.deepEqual([many.status, many.body.error?.code], [413, "batch_too_large"]);
      for (const body of ["{", '{"messages":[]}', '{"messages":{}}', '[{"to":"/rooms/x","data":1}]']) {
        const res = await fetch(`${s.http}/messages`, {
          method: "POST",
          body,
          headers: { authorization: `Bearer ${HARD_PUSH_TOKEN}` },
        });
        assert.deepEqual([res.status, ((await res.json()) as { error: Json }).error.code], [400, "invalid_body"], body);
      }
      const presence = (await (await fetch(`${s.http}/rooms/${mine}`)).json()) as Json;
      assert.equal(presence.seq, 1, "nothing refused was published");
    },
  },
];
