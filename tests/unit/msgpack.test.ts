/** The MessagePack wire format, the data model check, and a room mixing JSON and MessagePack members. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Frame } from "../../src/core/contract.ts";
import { dataIssue, MAX_DATA_DEPTH } from "../../src/json-data.ts";
import { decodeValue, encodeFrame, encodeRelay, encodeValue, fromWire } from "../../src/msgpack.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { engineWith, FakePeer, record, settle } from "../support/fakes.ts";

const nest = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { a: [value] }.a;
  return value;
};

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
    for (const p of [json, ...packed]) engine.open(p);
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

  it("with native topic publish: one topic per encoding, the sender left out on its own", async () => {
    const published: [string, Frame][] = [];
    const engine = engineWith({ publish: (topic, frame) => published.push([topic, frame]) });
    const native = { subscribed: [] as string[], others: [] as [string, Frame][] };
    const j = member("t", "", native);
    const m = member("t", MP, native);
    engine.open(j);
    engine.open(m);
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
