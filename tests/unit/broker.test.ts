/** Memory broker, history stores and configuration. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBase64, randomId, toBase64 } from "../../src/bytes.ts";
import { loadConfig } from "../../src/config.ts";
import { type ChangeFn, roomRef } from "../../src/pubsub/broker.ts";
import { MemoryHistory } from "../../src/pubsub/history.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { PresencePolicy } from "../../src/pubsub/presence.ts";

const R = roomRef("room", "r");
const OTHER = roomRef("room", "other");

describe("memory broker", () => {
  it("delivers in publish order with growing seq, per room", async () => {
    const broker = new MemoryBroker({ now: () => 42 });
    const got: string[] = [];
    const off = broker.subscribe(R, (d) => got.push(d.frame as string));
    const frames = await Promise.all([
      broker.publish(R, "a", 1),
      broker.publish(R, "b", 2),
      broker.publish(OTHER, "c", 3),
    ]);
    assert.deepEqual(
      frames.map((f) => f.seq),
      [1, 2, 1],
    );
    assert.deepEqual(
      got.map((t) => JSON.parse(t).seq),
      [1, 2],
    );
    assert.deepEqual(JSON.parse(got[0] as string), { type: "message", room: "r", seq: 1, from: "a", data: 1, ts: 42 });
    off();
  });

  it("keeps presence and tells subscribers of joins and leaves except the subject", async () => {
    const broker = new MemoryBroker();
    const got: { frame: string; except?: string }[] = [];
    broker.subscribe(R, (d) => got.push(d as { frame: string; except?: string }));
    const snap = await broker.join(R, { id: "m1", joinedAt: 1 });
    assert.deepEqual(snap, { members: [{ id: "m1", joinedAt: 1 }], count: 1, seq: 0, epoch: snap.epoch });
    assert.match(snap.epoch, /^[\w-]{16}$/, "a joined room has an epoch");
    broker.leave(R, "m1", 1006, "");
    assert.deepEqual(
      got.map((d) => [JSON.parse(d.frame).event, d.except]),
      [
        ["join", "m1"],
        ["leave", "m1"],
      ],
    );
    assert.equal(JSON.parse(got[1]?.frame as string).code, 1006);
    broker.leave(R, "ghost");
    assert.equal(got.length, 2, "leaving twice tells nobody");
  });

  it("replaces a member's info, announcing it to everyone (the member too) only when asked and within the limit", async () => {
    const broker = new MemoryBroker({ presence: new PresencePolicy({ limit: 2 }) });
    const got: { frame: string; except?: string }[] = [];
    broker.subscribe(R, (d) => got.push(d as { frame: string; except?: string }));
    await broker.join(R, { id: "m1", joinedAt: 1, info: { name: "a" } });
    got.length = 0;
    broker.update(R, { id: "m1", joinedAt: 1, info: { name: "b" } }, false);
    assert.equal(got.length, 0, "without announce, nobody is told");
    assert.deepEqual((await broker.snapshot(R)).members[0]?.info, { name: "b" }, "but the next welcome shows it");
    broker.update(R, { id: "m1", joinedAt: 1, info: { name: "c" } }, true);
    assert.deepEqual(
      got.map((d) => [JSON.parse(d.frame), d.except]),
      [
        [
          {
            type: "presence",
            room: "r",
            event: "update",
            member: { id: "m1", joinedAt: 1, info: { name: "c" } },
            count: 1,
          },
          undefined,
        ],
      ],
    );
    broker.update(R, { id: "ghost", joinedAt: 9 }, true);
    assert.equal(got.length, 1, "a member not in the room is not brought back, nor announced");
    await broker.join(R, { id: "m2", joinedAt: 2 });
    await broker.join(R, { id: "m3", joinedAt: 3 });
    got.length = 0;
    broker.update(R, { id: "m1", joinedAt: 1, info: { name: "d" } }, true);
    assert.equal(got.length, 0, "above the limit no member is listed, so no update goes out");
    broker.close();
  });

  it("above the presence limit: capped welcome lists, coalesced counts, then one sync when back within it", async () => {
    let now = 1000;
    const broker = new MemoryBroker({
      presence: new PresencePolicy({ limit: 3, intervalMs: 100, now: () => now }),
      now: () => now,
    });
    const got: { event: string; count: number; members?: { id: string }[] }[] = [];
    broker.subscribe(R, (d) => got.push(JSON.parse(d.frame as string)));
    for (let i = 1; i <= 3; i++) await broker.join(R, { id: `m${i}`, joinedAt: i });
    assert.deepEqual(
      got.map((f) => f.event),
      ["join", "join", "join"],
      "within the limit every join is announced",
    );
    got.length = 0;
    const snap = await broker.join(R, { id: "m4", joinedAt: 4 });
    assert.deepEqual(
      [snap.members.map((m) => m.id), snap.count],
      [["m1", "m2", "m3"], 4],
      "the welcome lists the oldest members up to the limit, and the true count",
    );
    assert.deepEqual(
      [...got],
      [{ type: "presence", room: "r", event: "count", count: 4 }],
      "the first count goes out at once",
    );
    await broker.join(R, { id: "m5", joinedAt: 5 });
    await broker.join(R, { id: "m6", joinedAt: 6 });
    assert.equal(got.length, 1, "further counts within the interval wait");
    now += 100;
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(
      got.map((f) => [f.event, f.count]),
      [
        ["count", 4],
        ["count", 6],
      ],
      "one trailing count with the latest number",
    );
    got.length = 0;
    broker.leave(R, "m6", 1000);
    broker.leave(R, "m5", 1000);
    assert.equal(got.length, 0, "leaves above the limit wait for the interval");
    broker.leave(R, "m1", 1000);
    assert.deepEqual(
      got.map((f) => [f.event, f.count, f.members?.map((m) => m.id)]),
      [["sync", 3, ["m2", "m3", "m4"]]],
      "back at the limit: the whole list, and the pending count is dropped",
    );
    broker.leave(R, "m2", 1000);
    assert.deepEqual(got.at(-1)?.event, "leave");
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(got.length, 2, "no stale count after the sync");
    broker.close();
  });
});

describe("memory broker: draining", () => {
  it("refuses to sequence once draining when its history dies with the process, and goes on when it does not", async () => {
    const ref = roomRef("room", "r");
    const mortal = new MemoryBroker();
    assert.equal((await mortal.publish(ref, "a", 1)).seq, 1);
    mortal.drain();
    await assert.rejects(
      Promise.resolve(mortal.publish(ref, "a", 2)),
      (e: Error & { code?: string }) => e.name === "BrokerUnavailableError" && e.code === "draining",
    );
    assert.equal((await mortal.snapshot(ref)).seq, 1, "nothing was sequenced");
    // A history that outlives the process (a Durable Object's SQLite) keeps taking messages.
    const kept = Object.assign(new MemoryHistory(), { durable: true });
    const durable = new MemoryBroker({ history: kept });
    durable.drain();
    assert.equal((await durable.publish(ref, "a", 1)).seq, 1);
  });
});

describe("memory history", () => {
  it("keeps a bounded, ordered log and answers since()", () => {
    const history = new MemoryHistory({ limit: 10 });
    for (let i = 0; i < 30; i++)
      history.append("r", (seq) => ({ type: "message", room: "r", seq, from: "x", data: i, ts: Date.now() }));
    assert.equal(history.head("r").seq, 30);
    const recent = history.since("r", 25, 100);
    assert.deepEqual(
      recent.map((f) => f.seq),
      [26, 27, 28, 29, 30],
    );
    const all = history.since("r", 0, 100);
    assert.ok(all.length >= 10 && all.length <= 13, `bounded: ${all.length}`);
    assert.deepEqual(
      history.since("r", 28, 1).map((f) => f.seq),
      [29],
    );
    assert.equal(history.head("unknown").seq, 0);
  });
});

describe("memory history: idle rooms are forgotten", () => {
  it("forgets a room nobody is in and nobody wrote to for idleMs, and keeps every other", async () => {
    let now = 0;
    const history = new MemoryHistory({ idleMs: 1000, now: () => now });
    const broker = new MemoryBroker({ history, now: () => now });
    // 5 000 rooms that each got one backend push and no member: the case that leaked before.
    for (let i = 0; i < 5000; i++) await broker.publish(roomRef("room", `r${i}`), "server", i);
    const busy = roomRef("room", "busy");
    await broker.join(busy, { id: "m", joinedAt: 0 });
    await broker.publish(busy, "m", "kept");
    assert.equal(history.size, 5001);
    now = 999;
    await broker.publish(roomRef("room", "r0"), "server", "again"); // a message restarts the room's idle time
    now = 1000;
    await broker.publish(roomRef("room", "late"), "server", 1); // any write sweeps
    assert.equal(history.size, 3, "r0 (written at 999), busy (occupied) and late remain");
    assert.equal(history.head(busy.key).seq, 1, "an occupied room keeps its sequence");
    assert.equal(history.head("room:r1").seq, 0, "a forgotten room starts again");
    broker.leave(busy, "m");
    now = 2500;
    broker.leave(busy, "nobody");
    await broker.publish(roomRef("room", "fresh"), "server", 1);
    assert.equal(history.size, 1, "a vacated room is forgotten once idle too");
  });

  it("a forgotten stateful room forgets its state with its history: a new epoch, no state (the initial one again)", async () => {
    let now = 0;
    const history = new MemoryHistory({ idleMs: 1000, now: () => now });
    const broker = new MemoryBroker({ history, now: () => now });
    const ref = roomRef("lot", "a");
    const add: ChangeFn = (stored) => {
      const n = stored === undefined ? 0 : (JSON.parse(stored) as { n: number }).n;
      return { state: JSON.stringify({ n: n + 1 }), messages: [{ n: n + 1 }] };
    };
    await broker.commit(ref, "m", add);
    await broker.commit(ref, "m", add);
    const before = history.head(ref.key);
    assert.deepEqual([before.seq, before.state], [2, '{"n":2}']);
    now = 1000;
    await broker.publish(roomRef("lot", "other"), "server", 1); // any write sweeps
    const after = (await broker.join(ref, { id: "m", joinedAt: now })) as {
      seq: number;
      epoch: string;
      state?: string;
    };
    assert.deepEqual([after.seq, after.state], [0, undefined], "the state went with the history");
    assert.notEqual(after.epoch, before.epoch, "a new epoch: resuming clients get resync and the initial view");
    assert.deepEqual(
      (await broker.commit(ref, "m", add)).frames.map((f) => ("data" in f ? f.data : f)),
      [{ n: 1 }],
      "transactions start again from it",
    );
  });
});

describe("memory broker: idempotency keys", () => {
  const key = (k: string, fingerprint = "f1") => ({ key: k, fingerprint });

  it("a repeated key publishes nothing and answers the first seq; other data is `reused`; keys are per room", async () => {
    const broker = new MemoryBroker();
    const ref = roomRef("room", "dash");
    const seen: string[] = [];
    broker.subscribe(ref, (d) => seen.push(d.frame as string));
    const first = await broker.publishKeyed(ref, "server", { n: 1 }, key("k1"));
    assert.equal(first.kind, "published");
    assert.deepEqual(await broker.publishKeyed(ref, "server", { n: 1 }, key("k1")), { kind: "repeat", seq: 1 });
    assert.deepEqual(await broker.publishKeyed(ref, "server", { n: 2 }, key("k1", "f2")), { kind: "reused", seq: 1 });
    assert.equal((await broker.publishKeyed(ref, "server", { n: 2 }, key("k2"))).kind, "published");
    const other = await broker.publishKeyed(roomRef("room", "other"), "server", { n: 1 }, key("k1"));
    assert.equal(other.kind, "published", "the same key in another room is another push");
    assert.equal(seen.length, 2, "members saw the first push once, and the second key's");
  });

  it("keys expire with the window, outlive a forgotten room, and the oldest go first past the bound", async () => {
    let now = 0;
    const history = new MemoryHistory({ idleMs: 1000, keys: { windowMs: 10_000, maxKeys: 3 }, now: () => now });
    const broker = new MemoryBroker({ history, now: () => now });
    const ref = roomRef("room", "r");
    await broker.publishKeyed(ref, "server", 1, key("a"));
    now = 5000; // the room was forgotten (idle 1 s); its key was not
    await broker.publish(roomRef("room", "sweep"), "server", 0);
    assert.equal(history.head(ref.key).seq, 0, "the room itself is forgotten");
    assert.deepEqual(await broker.publishKeyed(ref, "server", 1, key("a")), { kind: "repeat", seq: 1 });
    now = 10_001; // past the window
    assert.equal((await broker.publishKeyed(ref, "server", 1, key("a"))).kind, "published");
    for (const k of ["b", "c", "d"]) await broker.publishKeyed(ref, "server", 1, key(k));
    assert.equal(history.keyCount, 3, "bounded");
    assert.equal((await broker.publishKeyed(ref, "server", 1, key("a"))).kind, "published", "the oldest went first");
    assert.deepEqual(await broker.publishKeyed(ref, "server", 1, key("d")), { kind: "repeat", seq: 4 });
  });
});

describe("config", () => {
  it("has defaults and reads overrides", () => {
    const c = loadConfig({});
    assert.equal(c.port, 8787);
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.maxMessageBytes, 1024 * 1024);
    assert.equal(c.pollTimeoutMs, 25_000);
    const d = loadConfig({ PORT: "9000", EDGEWIRE_PUSH_TOKEN: "t", ROOMS: { binding: true } });
    assert.equal(d.port, 9000);
    assert.equal(d.pushToken, "t");
  });

  it("names every bad variable in one error", () => {
    assert.throws(
      () => loadConfig({ PORT: "http", EDGEWIRE_MAX_MESSAGE_BYTES: "1" }),
      /PORT.*EDGEWIRE_MAX_MESSAGE_BYTES/s,
    );
  });

  it("refuses half a TLS setup instead of serving plain HTTP", () => {
    assert.throws(() => loadConfig({ EDGEWIRE_TLS_CERT: "cert.pem" }), /EDGEWIRE_TLS_CERT and EDGEWIRE_TLS_KEY/);
    assert.throws(() => loadConfig({ EDGEWIRE_TLS_KEY: "key.pem" }), /EDGEWIRE_TLS_CERT and EDGEWIRE_TLS_KEY/);
    assert.equal(loadConfig({ EDGEWIRE_TLS_CERT: "c.pem", EDGEWIRE_TLS_KEY: "k.pem" }).tlsKey, "k.pem");
  });
});

describe("randomId", () => {
  it("is 16 URL-safe characters and does not repeat", () => {
    const ids = new Set(Array.from({ length: 1000 }, randomId));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{16}$/);
  });
});

describe("base64", () => {
  it("round-trips bytes of every value and large sizes", () => {
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) % 256);
    assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
    assert.equal(toBase64(new Uint8Array([255, 0, 1])), Buffer.from([255, 0, 1]).toString("base64"));
  });
});
