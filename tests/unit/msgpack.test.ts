/** The MessagePack wire format, the data model check, and a room mixing JSON and MessagePack members. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Encoder } from "@msgpack/msgpack";
import fc from "fast-check";
import WebSocket, { WebSocketServer } from "ws";
import { joinRoom, type RoomError, type WebSocketConstructor } from "../../src/client/index.ts";
import { msgpack } from "../../src/client/msgpack.ts";
import { backendContext } from "../../src/core/backend.ts";
import type { Frame } from "../../src/core/ports.ts";
import { defineRoom } from "../../src/index.ts";
import { dataIssue, MAX_DATA_DEPTH } from "../../src/message-data.ts";
import { decodeValue, encodeFrame, encodeRelay, encodeValue, fromWire, structureIssue } from "../../src/msgpack.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { engineWith, FakePeer, record, settle } from "../support/fakes.ts";

const nest = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { a: [value] }.a;
  return value;
};

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

describe("msgpack wire format", () => {
  it("messages and broadcasts are positional and come back in their JSON shape; other frames are maps", () => {
    const message = {
      type: "message",
      room: "r",
      seq: 7,
      from: "AAAAAAAAAAAAAAAA",
      data: { bt: 2 ** 40, p: "x" },
      ts: 1.7e12,
    };
    assert.deepEqual(decodeValue(encodeFrame(message)), [0, 7, "AAAAAAAAAAAAAAAA", { bt: 2 ** 40, p: "x" }, 1.7e12]);
    assert.deepEqual(fromWire(decodeValue(encodeFrame(message)), "r"), message);
    const broadcast = { type: "broadcast", room: "r", from: "b", data: [1, "two"] };
    assert.deepEqual(fromWire(decodeValue(encodeFrame(broadcast)), "r"), broadcast);
    const welcome = { type: "welcome", id: "x", room: "r", seq: 0, members: [], count: 1 };
    assert.deepEqual(decodeValue(encodeFrame(welcome)), welcome);
    assert.deepEqual(fromWire(decodeValue(encodeRelay(new Uint8Array([1, 2]))), "r"), new Uint8Array([1, 2]));
    assert.deepEqual(fromWire([9, 1], "r"), [9, 1], "an unknown array is handed back for the caller to refuse");
  });

  it("a message for 1 000 members is less than half its JSON text (the bench's 64 B payload)", () => {
    const message = {
      type: "message",
      room: "r".repeat(32),
      seq: 123456,
      from: "AAAAAAAAAAAAAAAA",
      data: { bt: 1_234_567_890_123_456, p: "x".repeat(14) },
      ts: Date.now(),
    };
    const json = JSON.stringify(message).length;
    const packed = encodeFrame(message).byteLength;
    assert.ok(packed * 2 < json, `${packed} B packed vs ${json} B JSON`);
  });

  it("undefined properties are left out, as JSON.stringify leaves them", () => {
    assert.deepEqual(decodeValue(encodeValue({ a: 1, b: undefined })), { a: 1 });
  });

  it("an array or map header claiming more elements than its frame has bytes is refused before anything is allocated", () => {
    const frame = (head: number, claim: number) => {
      const bytes = new Uint8Array(5 + 100_000).fill(0xc0);
      bytes[0] = head;
      new DataView(bytes.buffer).setUint32(1, claim);
      return bytes;
    };
    assert.throws(() => decodeValue(frame(0xdd, 1e8)), /claims more elements/);
    assert.throws(() => decodeValue(frame(0xdf, 2 ** 31)), /claims more elements/);
    assert.equal((decodeValue(frame(0xdd, 100_000)) as unknown[]).length, 100_000, "an honest one decodes");
  });

  it("nested claims are refused too (a 65 KB frame of 21 845 array16 headers once ended the process)", () => {
    const nested = new Uint8Array(65_535);
    for (let i = 0; i < nested.length; i += 3) nested.set([0xdc, 0xff, 0xff], i);
    assert.throws(() => decodeValue(nested), /claims more elements/);
    const deep = new Uint8Array(200).fill(0x91); // [[[…]]] 200 deep, a nil inside
    assert.throws(() => decodeValue(Uint8Array.of(...deep, 0xc0)), /nested deeper/);
  });

  it("the header scan agrees with the decoder: every encoded value passes it, every prefix of one fails it (fast-check)", () => {
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 6 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.array(
        fc.oneof(fc.date({ noInvalidDate: true }), fc.double(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
        { maxLength: 5 },
      ),
    );
    fc.assert(
      fc.property(value, (v) => {
        const bytes = new Encoder({ useBigInt64: true }).encode(v);
        assert.equal(structureIssue(bytes), undefined);
        for (const cut of [1, 2, 5, 9])
          if (bytes.length > cut) assert.notEqual(structureIssue(bytes.subarray(0, bytes.length - cut)), undefined);
      }),
      { seed: 20261206, numRuns: 500 },
    );
  });

  it("random bytes are decoded or refused, never more (fast-check)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeValue(bytes);
        } catch (error) {
          assert.ok(error instanceof Error);
        }
      }),
      { seed: 20261206, numRuns: 2000 },
    );
  });

  it("decoding refuses trailing bytes, non-string keys, __proto__ and truncation", () => {
    assert.throws(() => decodeValue(new Uint8Array([0x01, 0x02])));
    assert.throws(() => decodeValue(new Uint8Array([0x81, 0x01, 0x02])));
    assert.throws(() => decodeValue(new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01])));
    assert.throws(() => decodeValue(encodeValue({ long: "x".repeat(50) }).subarray(0, 10)));
  });
});

describe("message data", () => {
  it("is JSON's data model, at most MAX_DATA_DEPTH deep", () => {
    for (const ok of [null, 1, "s", true, [], {}, { a: [1, { b: null }] }, nest(MAX_DATA_DEPTH)])
      assert.equal(dataIssue(ok), undefined, JSON.stringify(ok)?.slice(0, 40));
    assert.match(String(dataIssue(nest(MAX_DATA_DEPTH + 1))), /deeper than 100/);
    assert.match(String(dataIssue({ a: new Uint8Array(1) })), /bytes inside data/);
    assert.match(String(dataIssue([new Date()])), /not JSON data/);
    assert.match(String(dataIssue({ n: Number.NaN })), /non-finite/);
    assert.match(String(dataIssue([Number.POSITIVE_INFINITY])), /non-finite/);
    assert.match(String(dataIssue(10n)), /bigint/);
  });

  it("checks a million levels without exhausting the stack", () => {
    const deep = JSON.parse(`${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}`);
    assert.match(String(dataIssue(deep)), /deeper than/);
  });
});

describe("a room with JSON and MessagePack members", () => {
  const MP = "edgewire.v1+msgpack";
  const member = (room: string, protocol: string, native?: { subscribed: string[]; others: [string, Frame][] }) => {
    const peer = new FakePeer({ ...record("room", room), protocol });
    if (native)
      Object.assign(peer, {
        subscribe: (t: string) => native.subscribed.push(t),
        publishOthers: (t: string, f: Frame) => native.others.push([t, f]),
      });
    return peer;
  };

  it("sends each member its own encoding, encoding MessagePack once per delivery, and counts both", async () => {
    const broker = new MemoryBroker();
    const engine = engineWith({ broker });
    const json = member("mix", "edgewire.v1");
    const packed = [member("mix", MP), member("mix", MP)];
    for (const p of [json, ...packed]) engine.opened(p);
    await settle();
    for (const p of [json, ...packed]) p.sent = [];
    const stats = engine.metrics.route("room");
    const before = { frames: stats.messagesOut, bytes: stats.bytesOut };
    engine.message(json, JSON.stringify({ type: "publish", data: { hi: 1 } }));
    await settle();
    assert.equal(json.ofType("message").length, 1);
    const [a = [], b = []] = packed.map((p) => p.sent.filter((f) => typeof f !== "string"));
    assert.equal(a.length, 1);
    const frame = a[0] as Uint8Array;
    assert.equal(frame, b[0], "one encoded frame for both MessagePack members");
    assert.deepEqual((decodeValue(frame) as unknown[]).slice(0, 4), [0, 1, json.record.id, { hi: 1 }]);
    const jsonBytes = (json.sent.at(-1) as string).length;
    assert.equal(stats.messagesOut - before.frames, 3);
    assert.equal(stats.bytesOut - before.bytes, jsonBytes + 2 * frame.byteLength);
    // A relay from a MessagePack member (a bin) reaches the JSON member as plain bytes, the other as a bin.
    engine.message(packed[0] as FakePeer, encodeRelay(new Uint8Array([5])));
    await settle();
    assert.deepEqual(json.sent.at(-1), new Uint8Array([5]));
    assert.deepEqual(decodeValue(packed[1]?.sent.at(-1) as Uint8Array), new Uint8Array([5]));
    assert.equal(packed[0]?.sent.length, 1, "not to the sender");
  });

  it("what a handler publishes reaches both encodings as the same values; nested past the limit it is a fault before any seq", async () => {
    const odd = defineRoom({
      path: "/odd/:room",
      async message(ctx, data) {
        if (data === "deep") {
          let deep: unknown = 1;
          for (let i = 0; i < 101; i++) deep = [deep];
          return ctx.room.publish(deep);
        }
        return ctx.room.publish({ at: new Date(0), n: Number.NaN, gone: undefined });
      },
    });
    const faults: string[] = [];
    const engine = engineWith({ routes: [odd], log: (m) => faults.push(m) });
    const json = new FakePeer({ ...record("odd", "x"), protocol: "edgewire.v1" });
    const packed = new FakePeer({ ...record("odd", "x"), protocol: MP });
    engine.opened(json);
    engine.opened(packed);
    await settle();
    engine.message(json, JSON.stringify({ type: "publish", data: "dates" }));
    await settle();
    const seen = { at: "1970-01-01T00:00:00.000Z", n: null };
    assert.deepEqual(json.ofType<{ data: unknown }>("message")[0]?.data, seen);
    const message = packed.sent.map((f) => decodeValue(f as Uint8Array)).find(Array.isArray);
    assert.deepEqual((message as unknown[]).slice(0, 4), [0, 1, json.record.id, seen]);
    engine.message(packed, encodeValue({ type: "publish", data: "deep", id: "d" }));
    await settle();
    assert.equal(packed.closed?.code, 1011, "the handler's fault closes its connection");
    assert.match(faults.join("\n"), /handler fault/);
    assert.equal(json.ofType("message").length, 1, "nothing more reached anyone");
    assert.equal((await engine.broker.snapshot({ key: "odd:x", name: "x" })).seq, 1, "and no seq was spent");
  });

  it("a broadcast of a client's data as it came: both encodings get the same values, the MessagePack copy encoded from the value; data outside JSON's model is refused however short", async () => {
    const cast = defineRoom({ name: "cast", path: "/cast/:room", message: (ctx, data) => ctx.room.broadcast(data) });
    const reshaped = defineRoom({
      name: "reshaped",
      path: "/reshaped/:room",
      message: (ctx, data) => ctx.room.broadcast({ was: data, at: new Date(0) }),
    });
    const engine = engineWith({ routes: [cast, reshaped] });
    const peers = (route: string) =>
      [MP, "edgewire.v1", MP].map((protocol) => new FakePeer({ ...record(route, "x"), protocol }));
    const [sender, json, packed] = peers("cast") as [FakePeer, FakePeer, FakePeer];
    for (const p of [sender, json, packed]) engine.opened(p);
    await settle();
    const data = { x: 0.25, y: -3, tag: "é", list: [1, null, true] };
    engine.message(sender, encodeValue({ type: "publish", data }));
    // Short frames all the same, each outside JSON's data model: refused, not broadcast.
    const publishOf = (...data: number[]) =>
      Uint8Array.of(0x82, 0xa4, ...ascii("type"), 0xa7, ...ascii("publish"), 0xa4, ...ascii("data"), ...data);
    const f64nan = publishOf(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0);
    const f32inf = publishOf(0x91, 0xca, 0x7f, 0x80, 0, 0);
    const bytesIn = encodeValue({ type: "publish", data: { b: new Uint8Array([1]) } });
    const ext = publishOf(0xd4, 0x01, 0x00);
    for (const frame of [f64nan, f32inf, bytesIn, ext]) engine.message(sender, frame);
    await settle();
    assert.deepEqual(
      json.ofType<{ data: unknown }>("broadcast").map((b) => b.data),
      [data],
    );
    const got = packed.sent.map((f) => decodeValue(f as Uint8Array)).filter((v) => Array.isArray(v));
    assert.deepEqual(got, [[1, sender.record.id, data]]);
    const errors = sender.sent.map((f) => decodeValue(f as Uint8Array) as { type?: string; code?: string });
    assert.deepEqual(
      errors.filter((e) => e.type === "error").map((e) => e.code),
      ["invalid_message", "invalid_message", "invalid_message", "invalid_message"],
    );
    // Data a handler made anew goes through the JSON text: a Date is its ISO string in both encodings.
    const [s2, j2, p2] = peers("reshaped") as [FakePeer, FakePeer, FakePeer];
    for (const p of [s2, j2, p2]) engine.opened(p);
    await settle();
    engine.message(s2, encodeValue({ type: "publish", data: 1 }));
    await settle();
    const seen = { was: 1, at: "1970-01-01T00:00:00.000Z" };
    assert.deepEqual(j2.ofType<{ data: unknown }>("broadcast")[0]?.data, seen);
    assert.deepEqual(p2.sent.map((f) => decodeValue(f as Uint8Array)).find(Array.isArray), [1, s2.record.id, seen]);
  });

  it("compactBroadcasts: JSON members get [1, from, data], MessagePack members the same positional frame; the backend's broadcast too", async () => {
    const cursors = defineRoom({
      name: "cursors",
      path: "/cursors/:room",
      compactBroadcasts: true,
      message: (ctx, data) => ctx.room.broadcast(data),
    });
    const engine = engineWith({ routes: [cursors] });
    const [sender, json, packed] = ["edgewire.v1", "edgewire.v1", MP].map(
      (protocol) => new FakePeer({ ...record("cursors", "c"), protocol }),
    ) as [FakePeer, FakePeer, FakePeer];
    for (const p of [sender, json, packed]) engine.opened(p);
    await settle();
    engine.message(sender, JSON.stringify({ type: "publish", data: { x: 1, y: 2 } }));
    await settle();
    assert.equal(json.sent.at(-1), `[1,${JSON.stringify(sender.record.id)},{"x":1,"y":2}]`);
    assert.deepEqual(decodeValue(packed.sent.at(-1) as Uint8Array), [1, sender.record.id, { x: 1, y: 2 }]);
    assert.equal(
      sender.sent.filter((f) => typeof f === "string" && f.startsWith("[1,")).length,
      0,
      "not to the sender",
    );
    const route = engine.route("cursors");
    assert.ok(route);
    await backendContext(engine.broker, route, { key: "cursors:c", name: "c" }).room.broadcast("hi");
    assert.equal(json.sent.at(-1), '[1,"server","hi"]');
  });

  it("with native topic publish: one topic per encoding, the sender left out on its own", async () => {
    const published: [string, Frame][] = [];
    const engine = engineWith({ publish: (topic, frame) => published.push([topic, frame]) });
    const native = { subscribed: [] as string[], others: [] as [string, Frame][] };
    const j = member("t", "", native);
    const m = member("t", MP, native);
    engine.opened(j);
    engine.opened(m);
    await settle();
    assert.deepEqual(native.subscribed, ["room:room:t", "room:room:t#mp"]);
    published.length = 0;
    engine.message(m, JSON.stringify({ type: "publish", data: "x" }));
    await settle();
    assert.deepEqual(
      published.map(([t, f]) => [t, typeof f]),
      [
        ["room:room:t", "string"],
        ["room:room:t#mp", "object"],
      ],
    );
    // A relay from the MessagePack member: its own topic through its socket (not back to it), the JSON topic in full.
    published.length = 0;
    engine.message(m, encodeRelay(new Uint8Array([9])));
    await settle();
    assert.deepEqual(published, [["room:room:t", new Uint8Array([9])]]);
    assert.deepEqual(
      native.others.map(([t]) => t),
      ["room:room:t#mp"],
    );
  });
});

describe("the SDK's MessagePack codec", () => {
  it("sends what JSON would: a Date as its ISO string, NaN as null, undefined left out", () => {
    const frame = { type: "publish", data: { at: new Date(0), n: Number.NaN, gone: undefined } };
    const bytes = msgpack.encode(frame);
    assert.deepEqual(decodeValue(bytes), { type: "publish", data: { at: "1970-01-01T00:00:00.000Z", n: null } });
  });

  it("offers its subprotocol first, and a server answering another fails the join instead of misreading publishes", async () => {
    const offers: string[] = [];
    const server = new WebSocketServer({ port: 0, handleProtocols: () => "edgewire.v1" });
    server.on("connection", (ws, req) => {
      offers.push(String(req.headers["sec-websocket-protocol"]));
      ws.send(
        JSON.stringify({ type: "welcome", id: "x", room: "r", protocol: "edgewire.v1", seq: 0, members: [], count: 1 }),
      );
    });
    await new Promise((r) => server.once("listening", r));
    try {
      const { port } = server.address() as { port: number };
      const room = joinRoom(`ws://127.0.0.1:${port}`, "r", {
        codec: msgpack,
        protocols: ["edgewire.v1", "edgewire.bearer.abc"],
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        reconnect: false,
      });
      const refused = await room.ready.then(
        () => undefined,
        (e: RoomError) => e.code,
      );
      assert.equal(refused, "unsupported_protocol");
      assert.deepEqual(offers, ["edgewire.v1+msgpack,edgewire.v1,edgewire.bearer.abc"]);
      room.close();
    } finally {
      server.close();
    }
  });
});
