/**
 * `edgewire.v1+msgpack` on every runtime: the same rooms in MessagePack next
 * to JSON members (positional message and broadcast frames, maps for the
 * rest, relays both ways, resume), its bad input, the encoding surviving a
 * Durable Object's eviction, and the SDK's codec on a user's typed route.
 */
import assert from "node:assert/strict";
import { Encoder } from "@msgpack/msgpack";
import WebSocket from "ws";
import { joinRoom, type RoomClient, type WebSocketConstructor } from "../../src/client/index.ts";
import { msgpack } from "../../src/client/msgpack.ts";
import type { RunningServer } from "../support/servers.ts";
import { type ClientKind, type TestSocket, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { connect, freshRoom, push, pushAcrossEviction } from "./cases.ts";

const MP = "edgewire.v1+msgpack";
// Deeper than the library's default limit (100), to send what the server must refuse.
const deepEncoder = new Encoder({ maxDepth: 1000 });
const encode = (value: unknown) => deepEncoder.encode(value);
type Json = Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isType = (type: string) => (v: unknown) => (v as Json | null)?.type === type;
const isMessage = (v: unknown) => Array.isArray(v) && v[0] === 0;

/** Join `room` speaking MessagePack: the socket and its welcome (a map). */
async function joinPacked(s: RunningServer, room: string, kind: ClientKind = "ws", query = "") {
  const socket = await connect(`${s.ws}/rooms/${room}${query}`, MP, kind);
  assert.equal(socket.protocol, MP, "the server answered the MessagePack subprotocol");
  const welcome = await socket.value<Json>();
  assert.equal(welcome.type, "welcome", "the welcome is a MessagePack map, as the JSON frame");
  return { socket, welcome: welcome as Json & { id: string; seq: number; epoch: string } };
}

/** Everything `socket` receives for `ms`, as values. */
async function drain(socket: TestSocket, ms: number): Promise<unknown[]> {
  const got: unknown[] = [];
  for (;;) {
    const v = await socket.value(ms).catch(() => undefined);
    if (v === undefined) return got;
    got.push(v);
  }
}

/** The cases against the service. */
export const msgpackCases: Case[] = [
  {
    name: "MessagePack (edgewire.v1+msgpack): a room's messages positional, other frames as maps, JSON members alongside, relays both ways",
    async run(s, k) {
      const room = freshRoom("mp");
      const a = await joinPacked(s, room, k);
      const b = await connect(`${s.ws}/rooms/${room}`, "edgewire.v1");
      const bWelcome = await b.json<{ id: string; protocol: string }>();
      assert.equal(bWelcome.protocol, "edgewire.v1", "a JSON member of the same room stays on JSON");
      const joined = await a.socket.untilValue<Json>(isType("presence"));
      assert.deepEqual([joined.event, (joined.member as Json).id], ["join", bWelcome.id]);

      const data = { text: "grüße", n: 1.5, list: [1, null, true], nested: { ok: false } };
      a.socket.send(Buffer.from(encode({ type: "publish", data, id: "m1" })));
      const frames = [await a.socket.value(), await a.socket.value()];
      const message = frames.find(isMessage) as [number, number, string, unknown, number];
      const ack = frames.find(isType("ack"));
      assert.ok(message, `a message frame [0, seq, from, data, ts] (got ${JSON.stringify(frames)})`);
      assert.deepEqual(message.slice(0, 4), [0, 1, a.welcome.id, data], "positional: tag, seq, from, data");
      assert.deepEqual(ack, { type: "ack", id: "m1", seq: 1 });
      const asJson = await b.json<Json>();
      assert.deepEqual(asJson, { type: "message", room, seq: 1, from: a.welcome.id, data, ts: message[4] });

      b.sendJson({ type: "publish", data: [1, "two"], id: "j1" });
      const fromJson = await a.socket.untilValue<unknown[]>(isMessage);
      assert.deepEqual(fromJson.slice(0, 4), [0, 2, bWelcome.id, [1, "two"]], "a JSON publish reaches it packed");

      // Relays: a bin from the MessagePack member reaches a JSON member as plain bytes, and back.
      a.socket.send(Buffer.from(encode(new Uint8Array([1, 2, 3]))));
      let relayed = await b.next();
      while (!relayed.binary) relayed = await b.next(); // its own message and ack come first
      assert.deepEqual([...(relayed.data as Buffer)], [1, 2, 3]);
      b.send(Buffer.from([4, 5]));
      const back = await a.socket.untilValue<Uint8Array>((v) => v instanceof Uint8Array);
      assert.deepEqual([...back], [4, 5], "plain bytes arrive as a MessagePack bin");

      // Text is JSON on a MessagePack connection too (the SDK's heartbeat ping is text).
      a.socket.send('{"type":"ping","id":"p1"}');
      assert.deepEqual(await a.socket.untilValue(isType("pong")), { type: "pong", id: "p1" });
      await b.close();
      const left = await a.socket.untilValue<Json>(isType("presence"));
      assert.deepEqual([left.event, left.code], ["leave", 1005]);
      await a.socket.close();
    },
  },
  {
    name: "MessagePack bad input: not one value, bytes or extension types or non-string keys or 101 levels in data — error frames, the socket stays usable, the others see nothing",
    clients: ["ws"],
    async run(s) {
      const room = freshRoom("mp-bad");
      const a = await joinPacked(s, room);
      const watcher = await connect(`${s.ws}/rooms/${room}`, "edgewire.v1");
      await watcher.json();
      await a.socket.untilValue(isType("presence"));
      let deep: unknown = 1;
      for (let i = 0; i < 101; i++) deep = [deep];
      const hostile: [string, Buffer, string, string?][] = [
        ["a reserved byte", Buffer.from([0xc1]), "invalid_msgpack"],
        [
          "trailing bytes",
          Buffer.concat([Buffer.from(encode({ type: "ping" })), Buffer.from([0x01])]),
          "invalid_msgpack",
        ],
        [
          "a truncated value",
          Buffer.from(encode({ type: "publish", data: "x".repeat(40) })).subarray(0, 20),
          "invalid_msgpack",
        ],
        ["a non-string key", Buffer.from([0x81, 0x01, 0x02]), "invalid_msgpack"], // {1: 2}
        ["an array claiming 10^8 elements", Buffer.from([0xdd, 0x05, 0xf5, 0xe1, 0x00, 0xc0]), "invalid_msgpack"],
        [
          "__proto__ as a key",
          Buffer.from(encode({ type: "publish", data: JSON.parse('{"__proto__":{"x":1}}') })),
          "invalid_msgpack",
        ],
        [
          "bytes inside data",
          Buffer.from(encode({ type: "publish", data: { b: new Uint8Array(2) }, id: "b1" })),
          "invalid_message",
          "b1",
        ],
        [
          "a timestamp extension",
          Buffer.from(encode({ type: "publish", data: [new Date()], id: "t1" })),
          "invalid_message",
          "t1",
        ],
        ["101 levels", Buffer.from(encode({ type: "publish", data: deep, id: "d1" })), "invalid_message", "d1"],
        ["a server frame", Buffer.from(encode({ type: "welcome" })), "invalid_message"],
        ["a string", Buffer.from(encode("hello")), "invalid_message"],
      ];
      for (const [what, bytes, code, id] of hostile) {
        a.socket.send(bytes);
        const error = await a.socket.untilValue<Json>(isType("error"));
        assert.equal(error.code, code, `${what}: ${JSON.stringify(error)}`);
        assert.equal(error.id, id, `${what}: the refusal names the publish`);
      }
      let ok: unknown = 1;
      for (let i = 0; i < 100; i++) ok = [ok];
      a.socket.send(Buffer.from(encode({ type: "publish", data: ok, id: "fine" })));
      assert.deepEqual(
        await a.socket.untilValue(isType("ack")),
        { type: "ack", id: "fine", seq: 1 },
        "100 levels pass",
      );
      const seen = await drain(watcher, 500);
      assert.deepEqual(
        seen.map((f) => (f as Json).type),
        ["message"],
        "the JSON member saw only the valid publish",
      );
      await Promise.all([a.socket.close(), watcher.close()]);
    },
  },
  {
    name: "data nested deeper than 100 levels is refused on JSON too: an error frame over WebSocket, 400 invalid_body for a push — never a server fault",
    clients: ["ws"],
    async run(s) {
      const logged = s.output().length;
      const room = freshRoom("deep");
      const a = await connect(`${s.ws}/rooms/${room}`, "edgewire.v1");
      await a.json();
      // 20 000 levels: deep enough to overflow JSON.stringify's stack on every runtime, were it to reach one.
      a.send(`{"type":"publish","id":"deep","data":${"[".repeat(20_000)}${"]".repeat(20_000)}}`);
      const error = await a.until<Json>("error");
      assert.deepEqual([error.code, error.id], ["invalid_message", "deep"]);
      assert.match(String(error.message), /deeper than 100/);
      const pushed = await push(s, room, `${"[".repeat(20_000)}${"]".repeat(20_000)}`);
      assert.equal(pushed.status, 400);
      assert.equal(((await pushed.json()) as { error: Json }).error.code, "invalid_body");
      a.sendJson({ type: "publish", data: "still here", id: "ok" });
      assert.deepEqual(
        (await a.until<Json>("ack")).seq,
        1,
        "the connection stays usable; nothing was sequenced before",
      );
      await a.close();
      assert.doesNotMatch(s.output().slice(logged), /handler fault/, "no fault was logged");
    },
  },
  {
    name: "MessagePack resume: ?seq=&epoch= replays the missed messages positional, in order, once, then the live stream",
    clients: ["ws"],
    async run(s) {
      const room = freshRoom("mp-resume");
      const first = await joinPacked(s, room);
      await first.socket.close();
      for (const n of [1, 2, 3]) await push(s, room, JSON.stringify({ n }));
      const again = await joinPacked(s, room, "ws", `?seq=1&epoch=${first.welcome.epoch}`);
      assert.deepEqual([again.welcome.resumed, again.welcome.seq], [true, 1]);
      const replayed = [await again.socket.value<unknown[]>(), await again.socket.value<unknown[]>()];
      assert.deepEqual(
        replayed.map((m) => m.slice(0, 4)),
        [
          [0, 2, "server", { n: 2 }],
          [0, 3, "server", { n: 3 }],
        ],
      );
      await push(s, room, JSON.stringify({ n: 4 }));
      assert.deepEqual((await again.socket.value<unknown[]>()).slice(0, 4), [0, 4, "server", { n: 4 }]);
      await again.socket.close();
    },
  },
  {
    name: "MessagePack on a Durable Object: a socket's encoding is in its record, so the object rebuilt after eviction still speaks it",
    clients: ["ws"],
    unsupported: (r) =>
      r === "workerd" ? undefined : "no hibernation: the connection's context lives in the process for its whole life",
    async run(s) {
      const room = freshRoom("mp-evict");
      const keeper = await joinPacked(s, room);
      await push(s, room, JSON.stringify("one"));
      assert.deepEqual((await keeper.socket.value<unknown[]>()).slice(0, 4), [0, 1, "server", "one"]);
      await pushAcrossEviction(s, room, JSON.stringify("two"));
      assert.deepEqual((await keeper.socket.value<unknown[]>()).slice(0, 4), [0, 2, "server", "two"]);
      keeper.socket.send(Buffer.from(encode({ type: "publish", data: "three", id: "k3" })));
      assert.deepEqual(await keeper.socket.untilValue(isType("ack")), { type: "ack", id: "k3", seq: 3 });
      await keeper.socket.close();
    },
  },
];

const KEY = "demo-key";

/** The SDK's codec on a user's typed route (the chat example, mounted under /realtime in examples/hono-app). */
export const msgpackExampleCases: Case[] = [
  {
    name: "chat example over MessagePack (SDK codec): typed messages, replies, typing broadcast, renames — the same events as JSON",
    clients: ["sdk-websocket", "sdk-polling"],
    server: "examples",
    async run(s, k) {
      const room = freshRoom("mp-chat");
      const open = (name: string) =>
        joinRoom<typeof import("../../examples/chat/chat.ts").chat>(`${s.ws}/realtime?key=${KEY}&name=${name}`, room, {
          path: "/chat/:room",
          codec: msgpack,
          WebSocket: WebSocket as unknown as WebSocketConstructor,
          transport: k === "sdk-polling" ? "polling" : "websocket",
          reconnect: false,
        });
      const clients: RoomClient<unknown, unknown>[] = [];
      try {
        const ada = open("ada");
        clients.push(ada as RoomClient<unknown, unknown>);
        await withTimeout(ada.ready, 15_000, "ada joins");
        const bob = open("bob");
        clients.push(bob as RoomClient<unknown, unknown>);
        await withTimeout(bob.ready, 15_000, "bob joins");
        assert.equal(ada.socket.protocol, MP);
        const adaSaw: unknown[] = [];
        const bobSaw: unknown[] = [];
        ada.on("message", (m) => adaSaw.push(["message", m.seq, m.room, m.data]));
        bob.on("message", (m) => bobSaw.push(["message", m.seq, m.room, m.data]));
        bob.on("broadcast", (m) => bobSaw.push(["broadcast", m.from, m.room, m.data]));
        bob.on("presence", (p) => bobSaw.push(["presence", p.event]));
        assert.deepEqual(await ada.publish({ type: "say", text: " hi " }), { seq: 1 });
        assert.deepEqual(await bob.publish({ type: "say", text: "hello", replyTo: 1 }), { seq: 2 });
        ada.send({ type: "typing", typing: true });
        await ada.publish({ type: "rename", name: "ada l." });
        const refused = await ada
          .publish({ type: "say", text: "x", replyTo: 99 })
          .catch((e: { code: string }) => e.code);
        assert.equal(refused, "invalid_reply", "a route's own error code reaches the publish");
        const deadline = Date.now() + 10_000;
        while (bobSaw.length < 5 && Date.now() < deadline) await sleep(20);
        assert.deepEqual(bobSaw, [
          ["message", 1, room, { type: "say", text: "hi", by: "ada" }],
          ["message", 2, room, { type: "say", text: "hello", replyTo: 1, by: "bob" }],
          ["broadcast", ada.id, room, { type: "typing", typing: true }],
          ["presence", "update"],
          ["broadcast", ada.id, room, { type: "rename", name: "ada l." }],
        ]);
        assert.deepEqual(adaSaw.slice(0, 2), bobSaw.slice(0, 2), "both saw what was said, in one order");
        assert.deepEqual(bob.members.find((m) => m.id === ada.id)?.info, { name: "ada l." });
      } finally {
        for (const c of clients) c.close();
      }
    },
  },
];
