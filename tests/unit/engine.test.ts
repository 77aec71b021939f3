/** The engine with fake peers: routing from records, ordering, errors, fan-out paths, restore. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { utf8Length } from "../../src/bytes.ts";
import type { Frame } from "../../src/core/ports.ts";
import { defineRoom } from "../../src/index.ts";
import { type Broker, broadcastText, type JoinSnapshot } from "../../src/pubsub/broker.ts";
import { MemoryHistory } from "../../src/pubsub/history.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { engineWith, FakePeer, record, roomKey, settle } from "../support/fakes.ts";

async function joined(engine: ReturnType<typeof engineWith>, room: string): Promise<FakePeer> {
  const peer = new FakePeer(record("room", room));
  engine.opened(peer);
  await settle();
  return peer;
}

describe("engine", () => {
  it("echoes text and bytes unchanged", () => {
    const engine = engineWith();
    const peer = new FakePeer(record("echo"));
    engine.opened(peer);
    const bytes = new Uint8Array([0, 1, 255]);
    engine.message(peer, "héllo");
    engine.message(peer, bytes);
    assert.deepEqual(peer.sent, ["héllo", bytes]);
  });

  it("echo takes text as undecoded UTF-8 bytes and sends it back flagged as text; rooms insist on strings", () => {
    const engine = engineWith();
    const echo = new FakePeer(record("echo"));
    const room = new FakePeer(record("room", "r"));
    assert.equal(engine.readsText(echo), false);
    assert.equal(engine.readsText(room), true);
    const utf8 = new TextEncoder().encode("héllo");
    engine.message(echo, utf8, true);
    engine.message(echo, utf8);
    assert.deepEqual(echo.sent, [utf8, utf8]);
    assert.deepEqual(echo.textFlags, [true, false], "text stays text, binary stays binary");
  });

  it("welcomes with members and seq, then tells others of joins and leaves", async () => {
    const engine = engineWith();
    const a = await joined(engine, "r");
    const b = await joined(engine, "r");
    const welcome = b.ofType<{ members: { id: string }[]; seq: number }>("welcome")[0];
    assert.deepEqual(
      welcome?.members.map((m) => m.id),
      [a.record.id, b.record.id],
    );
    assert.equal(b.saves, 1, "the record is saved after the welcome sets its seq");
    assert.deepEqual(
      a.ofType<{ event: string }>("presence").map((p) => p.event),
      ["join"],
    );
    assert.equal(b.ofType("presence").length, 0, "a member is not told of its own join");
    engine.closed(b, 4000, "bye");
    await settle();
    const left = a.ofType<{ event: string; code: number; reason: string; count: number }>("presence")[1];
    assert.deepEqual([left?.event, left?.code, left?.reason, left?.count], ["leave", 4000, "bye", 1]);
  });

  it("sequences publishes in one order for every member and acks by id", async () => {
    const engine = engineWith();
    const a = await joined(engine, "r");
    const b = await joined(engine, "r");
    for (let i = 0; i < 5; i++) {
      engine.message(a, JSON.stringify({ type: "publish", data: `a${i}`, id: `k${i}` }));
      engine.message(b, JSON.stringify({ type: "publish", data: `b${i}` }));
    }
    await settle();
    const order = (p: FakePeer) => p.ofType<{ seq: number; data: string }>("message").map((m) => `${m.seq}${m.data}`);
    assert.deepEqual(order(a), order(b));
    assert.deepEqual(
      a.ofType<{ seq: number }>("message").map((m) => m.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.deepEqual(
      a.ofType<{ id: string }>("ack").map((k) => k.id),
      ["k0", "k1", "k2", "k3", "k4"],
    );
    assert.equal(b.ofType("ack").length, 0);
  });

  it("answers bad frames with error codes and keeps the connection", async () => {
    const engine = engineWith();
    const a = await joined(engine, "r");
    engine.message(a, "{nope");
    engine.message(a, JSON.stringify({ type: "publish" }));
    engine.message(a, JSON.stringify({ type: "dance", id: "d1" }));
    engine.message(a, JSON.stringify([1, 2]));
    engine.message(a, JSON.stringify({ type: "ping" }));
    await settle();
    assert.deepEqual(
      a.ofType<{ code: string }>("error").map((e) => e.code),
      ["invalid_json", "invalid_message", "invalid_message", "invalid_message"],
    );
    assert.equal(a.ofType<{ id?: string }>("error")[2]?.id, "d1");
    assert.equal(a.sent.at(-1), '{"type":"pong"}');
    assert.equal(a.closed, undefined);
  });

  it("short JSON skips the data walk but not its checks: a long exponent (Infinity) and a missing data are refused, deep data past 200 characters is walked", async () => {
    const engine = engineWith();
    const a = await joined(engine, "r");
    const b = await joined(engine, "r");
    engine.message(a, '{"type":"publish","data":{"x":1e999},"id":"inf"}');
    engine.message(a, '{"type":"publish","data":[-1E+400],"id":"neg"}');
    engine.message(a, '{"type":"publish","id":"none"}');
    const deep = `${"[".repeat(101)}${"]".repeat(101)}`;
    engine.message(a, `{"type":"publish","data":${deep},"id":"deep"}`);
    engine.message(a, '{"type":"publish","data":{"e":"e999 in a string","n":1e308},"id":"ok"}');
    await settle();
    assert.deepEqual(
      a.ofType<{ id: string; code: string }>("error").map((e) => `${e.id}:${e.code}`),
      ["inf:invalid_message", "neg:invalid_message", "none:invalid_message", "deep:invalid_message"],
    );
    assert.deepEqual(
      b.ofType<{ data: unknown }>("message").map((m) => m.data),
      [{ e: "e999 in a string", n: 1e308 }],
      "a string that looks like an exponent is walked and passes",
    );
  });

  it("a broadcast frame is the JSON of {type, room, from, data}, without data when there is none", () => {
    const room = { key: "rooms:acme/b1", name: "acme/b1" };
    assert.deepEqual(JSON.parse(broadcastText(room, "m1", { a: [1, "é\n"] })), {
      type: "broadcast",
      room: "acme/b1",
      from: "m1",
      data: { a: [1, "é\n"] },
    });
    assert.equal(
      broadcastText(room, "m1", undefined),
      JSON.stringify({ type: "broadcast", room: "acme/b1", from: "m1" }),
    );
    assert.equal(
      broadcastText(room, "m1", () => 1),
      JSON.stringify({ type: "broadcast", room: "acme/b1", from: "m1" }),
    );
  });

  it("relays binary to the other members only", async () => {
    const engine = engineWith();
    const a = await joined(engine, "r");
    const b = await joined(engine, "r");
    const bytes = new Uint8Array([7, 7, 7]);
    engine.message(a, bytes);
    await settle();
    assert.ok(b.sent.includes(bytes));
    assert.ok(!a.sent.includes(bytes));
  });

  it("closes an oversized frame with 1009 before parsing it", () => {
    const engine = engineWith({ maxMessageBytes: 1024 });
    const text = new FakePeer(record("echo"));
    engine.message(text, "é".repeat(513)); // 1026 bytes in UTF-8, 513 characters
    assert.equal(text.closed?.code, 1009);
    const bin = new FakePeer(record("echo"));
    engine.message(bin, new Uint8Array(1025));
    assert.equal(bin.closed?.code, 1009);
    const fits = new FakePeer(record("echo"));
    engine.message(fits, "x".repeat(1024));
    assert.equal(fits.closed, undefined);
  });

  it("closes only the faulty connection with 1011 when a handler throws", async () => {
    const broker = new MemoryBroker();
    broker.publish = () => {
      throw new Error("boom");
    };
    const logged: string[] = [];
    const engine = engineWith({ broker, log: (m) => logged.push(m) });
    const a = await joined(engine, "r");
    const b = await joined(engine, "r");
    engine.message(a, JSON.stringify({ type: "publish", data: 1 }));
    await settle();
    assert.equal(a.closed?.code, 1011);
    assert.equal(b.closed, undefined);
    assert.equal(logged.length, 1);
  });

  it("uses native topic publish where the runtime has it, one frame per broadcast", async () => {
    const published: [string, Frame][] = [];
    const engine = engineWith({ publish: (topic, frame) => published.push([topic, frame]) });
    const subscribed: string[] = [];
    const others: [string, Frame][] = [];
    const native = (room: string) => {
      const peer = new FakePeer(record("room", room));
      Object.assign(peer, {
        subscribe: (t: string) => subscribed.push(t),
        publishOthers: (t: string, f: Frame) => others.push([t, f]),
      });
      return peer;
    };
    const a = native("r");
    engine.opened(a);
    await settle();
    const b = native("r");
    engine.opened(b);
    await settle();
    assert.deepEqual(subscribed, ["room:room:r", "room:room:r"]);
    engine.message(a, JSON.stringify({ type: "publish", data: "x" }));
    await settle();
    assert.equal(published.filter(([, f]) => typeof f === "string" && f.includes('"type":"message"')).length, 1);
    assert.equal(a.ofType("message").length, 0, "native members are not sent to one by one");
    engine.message(a, new Uint8Array([1]));
    await settle();
    assert.equal(others.length, 1, "binary goes to the others through the sender's own publish");
  });

  it("holds frames for a member while its join is in flight, without duplicates", async () => {
    const inner = new MemoryBroker();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const broker: Broker = Object.create(inner);
    broker.join = async (room, member): Promise<JoinSnapshot> => {
      await inner.join(room, member);
      await gate;
      return inner.snapshot(room);
    };
    broker.subscribe = inner.subscribe.bind(inner);
    broker.publish = inner.publish.bind(inner);
    const engine = engineWith({ broker });
    const peer = new FakePeer(record("room", "r"));
    engine.opened(peer);
    await settle();
    await engine.push("room", "r", "during");
    release();
    await settle();
    const frames = peer.json<{ type: string; seq?: number }>();
    assert.equal(frames[0]?.type, "welcome", "nothing precedes the welcome");
    assert.equal(frames[0]?.seq, 1, "the welcome covers the message published during the join");
    assert.equal(peer.ofType("message").length, 0, "so that message is not repeated");
    await engine.push("room", "r", "later");
    await settle();
    assert.deepEqual(
      peer.ofType<{ data: string; seq: number }>("message").map((m) => [m.seq, m.data]),
      [[2, "later"]],
    );
  });

  it("a state change made while the join is in flight is what the room shows once the join lands", async () => {
    // As on Redis: the broker stores the member only when its join lands, and ignores an update before.
    const named = defineRoom({
      path: "/named/:room",
      state: v.object({ name: v.string() }),
      initialState: () => ({ name: "before" }),
      member: (state) => ({ name: state.name }),
      message(ctx, data) {
        ctx.connection.setState({ name: String(data) });
      },
    });
    const inner = new MemoryBroker();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const broker: Broker = Object.create(inner);
    broker.join = async (room, member): Promise<JoinSnapshot> => {
      await gate;
      return inner.join(room, member);
    };
    broker.subscribe = inner.subscribe.bind(inner);
    broker.update = inner.update.bind(inner);
    const engine = engineWith({ broker, routes: [named] });
    const peer = new FakePeer(record("named", "r", { name: "before" }));
    engine.opened(peer);
    await settle();
    engine.message(peer, JSON.stringify({ type: "publish", data: "after" }));
    await settle();
    release();
    await settle();
    const { members } = await inner.snapshot(engine.ref("named", "r"));
    assert.deepEqual(members[0]?.info, { name: "after" });
  });

  it("restores members of a woken object without telling anyone", async () => {
    const broker = new MemoryBroker();
    const engine = engineWith({ broker });
    const a = new FakePeer({ ...record("room", "r"), seq: 3 });
    const b = new FakePeer({ ...record("room", "r"), seq: 3 });
    engine.restored(a);
    engine.restored(b);
    assert.equal(a.sent.length + b.sent.length, 0);
    assert.equal((await broker.snapshot(engine.ref("room", "r"))).members.length, 2);
    engine.message(a, JSON.stringify({ type: "publish", data: "hi" }));
    await settle();
    assert.equal(b.ofType("message").length, 1);
    assert.equal(engine.metrics.route("room").messagesOut, 2, "the woken room's fan-out is counted (both members)");
  });

  it("forgets a room's local state when its last member leaves", async () => {
    const engine = engineWith();
    const a = await joined(engine, "r");
    assert.equal(engine.hub.localMembers(roomKey("r")), 1);
    engine.closed(a);
    await settle();
    assert.equal(engine.hub.localMembers(roomKey("r")), 0);
  });
});

describe("utf8Length", () => {
  it("matches TextEncoder", () => {
    for (const s of ["", "abc", "é", "你好", "🌍🚀", "a\uD800b", "\uDC00", "\uD800", "x\uD83D"]) {
      assert.equal(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
    }
  });
});

describe("resume", () => {
  const joinWith = async (
    engine: ReturnType<typeof engineWith>,
    room: string,
    resume?: { seq: number; epoch: string },
  ) => {
    const peer = new FakePeer({ ...record("room", room), ...(resume ? { resume } : {}) });
    engine.opened(peer);
    await settle();
    return peer;
  };

  it("replays what a resuming member missed, in order, then the live stream, with no duplicate at the seam", async () => {
    const engine = engineWith();
    const first = await joinWith(engine, "r");
    const epoch = first.ofType<{ epoch: string }>("welcome")[0]?.epoch as string;
    for (let i = 1; i <= 5; i++) await engine.push("room", "r", i);
    const back = await joinWith(engine, "r", { seq: 2, epoch });
    await engine.push("room", "r", 6);
    await settle();
    const welcome = back.ofType<{ seq: number; resumed?: boolean }>("welcome")[0];
    assert.deepEqual([welcome?.seq, welcome?.resumed], [2, true]);
    assert.deepEqual(
      back.ofType<{ seq: number }>("message").map((m) => m.seq),
      [3, 4, 5, 6],
    );
    assert.equal(back.ofType("resync").length, 0);
    assert.equal(back.record.resume, undefined, "the request is spent once welcomed");
  });

  it("answers resync (epoch_changed) for another epoch and (history_truncated) past the history's reach", async () => {
    const history = new MemoryHistory({ limit: 4 });
    const engine = engineWith({ broker: new MemoryBroker({ history }) });
    const first = await joinWith(engine, "r");
    const epoch = first.ofType<{ epoch: string }>("welcome")[0]?.epoch as string;
    // A new epoch the client has seen nothing of: it gets it from its start — here only 1–2 exist.
    await engine.push("room", "r", 1);
    await engine.push("room", "r", 2);
    const back = await joinWith(engine, "r", { seq: 7, epoch: "old-one" });
    assert.deepEqual(
      back
        .ofType<{ reason: string; seq: number; from: number; to?: number }>("resync")
        .map((f) => [f.reason, f.seq, f.from, f.to]),
      [["epoch_changed", 0, 8, undefined]],
      "what the old epoch lost: from the client's seq on, to an end nobody knows",
    );
    assert.equal(back.ofType<{ seq: number }>("welcome")[0]?.seq, 0, "the stream starts before the new epoch's first");
    assert.deepEqual(
      back.ofType<{ data: number }>("message").map((m) => m.data),
      [1, 2],
    );
    for (let i = 3; i <= 20; i++) await engine.push("room", "r", i);
    // Past what the new epoch's history keeps (4 messages): that part is a gap of its own.
    const stale = await joinWith(engine, "r", { seq: 3, epoch: "another" });
    assert.deepEqual(
      stale
        .ofType<{ reason: string; seq: number; epoch: string; from: number; to?: number }>("resync")
        .map((f) => [f.reason, f.seq, f.epoch, f.from, f.to]),
      [
        ["epoch_changed", 16, epoch, 4, undefined],
        ["history_truncated", 16, epoch, 1, 16],
      ],
    );
    assert.deepEqual(
      stale.ofType<{ data: number }>("message").map((m) => m.data),
      [17, 18, 19, 20],
    );
    const far = await joinWith(engine, "r", { seq: 3, epoch });
    assert.deepEqual(
      far.ofType<{ reason: string; from: number; to: number }>("resync").map((f) => [f.reason, f.from, f.to]),
      [["history_truncated", 4, 20]],
    );
    assert.equal(far.ofType("message").length, 0, "no partial replay: the client is told instead");
    assert.equal(far.ofType<{ seq: number }>("welcome")[0]?.seq, 20, "the stream continues from the room's seq");
  });

  it("a forgotten room starts a new epoch, so an old seq is never taken for a current one", () => {
    let now = 0;
    const history = new MemoryHistory({ idleMs: 1000, now: () => now });
    history.append("room:r", (seq) => ({ type: "message", room: "r", seq, from: "x", data: 1, ts: now }));
    const before = history.head("room:r");
    now = 5000;
    history.append("room:other", (seq) => ({ type: "message", room: "other", seq, from: "x", data: 1, ts: now }));
    history.append("room:r", (seq) => ({ type: "message", room: "r", seq, from: "x", data: 1, ts: now }));
    const after = history.head("room:r");
    assert.equal(after.seq, 1);
    assert.notEqual(after.epoch, before.epoch);
  });

  it("history is bounded by age too", () => {
    let now = 0;
    const history = new MemoryHistory({ maxAgeMs: 1000, now: () => now });
    for (let i = 0; i < 5; i++)
      history.append("room:r", (seq) => ({ type: "message", room: "r", seq, from: "x", data: i, ts: now }));
    now = 1500;
    history.append("room:r", (seq) => ({ type: "message", room: "r", seq, from: "x", data: 9, ts: now }));
    assert.deepEqual(
      history.since("room:r", 0, 100).map((f) => f.seq),
      [6],
    );
  });
});
