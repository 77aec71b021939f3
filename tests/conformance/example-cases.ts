/**
 * Conformance cases for the examples — user code built on the public API —
 * run against `examples/hono-app` (a user's Hono app with its own middleware,
 * serving the chat and cursor routes under /realtime) on every runtime.
 */
import assert from "node:assert/strict";
import WebSocket from "ws";
import { joinRoom, type WebSocketConstructor } from "../../src/client/index.ts";
import { RawSocket } from "../support/raw-socket.ts";
import type { RunningServer } from "../support/servers.ts";
import type { ClientKind } from "../support/test-socket.ts";
import { TestSocket } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { connect, freshRoom } from "./cases.ts";

/** Where the example app mounts edgewire, and the key its middleware asks for. */
const BASE = "/realtime";
const KEY = "demo-key";

type Json = Record<string, unknown>;
type Member = { id: string; info?: Json };
type Welcome = { id: string; members: Member[]; seq: number; count: number };

/** Join `path` (a room URL path under the mount) with query `q`, after the welcome. */
async function enter(s: RunningServer, path: string, q: Record<string, string> = {}, kind: ClientKind = "ws") {
  const query = new URLSearchParams({ key: KEY, ...q });
  const socket = await connect(`${s.ws}${BASE}${path}?${query}`, "edgewire.v1", kind);
  const welcome = (await socket.json()) as Welcome & { type: string };
  assert.equal(welcome.type, "welcome");
  return { socket, welcome };
}

const info = (welcome: Welcome, id: string) => welcome.members.find((m) => m.id === id)?.info;

/** The example cases (run against the examples app). */
export const exampleCases: Case[] = (
  [
    {
      name: "mounted in a user's Hono app: its middleware runs before the upgrade, its REST routes and CORS work",
      clients: ["ws"],
      async run(s) {
        const refused = new TestSocket(`${s.ws}${BASE}/chat/${freshRoom("nokey")}`, "edgewire.v1");
        const error = (await refused.opened.then(
          () => assert.fail("a socket without the API key must be refused"),
          (e: unknown) => e,
        )) as { status?: number; body?: string };
        assert.equal(error.status, 401, "the app's own middleware refused the upgrade");
        assert.equal(JSON.parse(error.body ?? "{}").error?.code, "unauthorized");
        const room = freshRoom("mounted");
        const { socket } = await enter(s, `/chat/${room}`);
        await socket.close();
        const status = await fetch(`${s.http}/api/status`, { headers: { origin: "https://app.example" } });
        assert.deepEqual(await status.json(), { ok: true, service: "my-app" });
        assert.equal(status.headers.get("access-control-allow-origin"), "https://app.example");
        const presence = await fetch(`${s.http}${BASE}/chat/${room}`, { headers: { "x-api-key": KEY } });
        assert.equal(presence.status, 200, "the room's presence answers under the prefix");
        // hono/logger logs every request it sees, the upgrade included.
        await new Promise((r) => setTimeout(r, 300));
        assert.match(s.output(), new RegExp(`GET /realtime/chat/${room}`), "the app's logger saw the upgrade");
      },
    },
    {
      name: "a user's stock middleware that sets headers after next() (secureHeaders, timing) works on room routes: the 101, the presence GET, history and polling carry its headers",
      clients: ["ws"],
      async run(s) {
        const room = freshRoom("headers");
        const raw = await RawSocket.upgrade(s.port, `${BASE}/chat/${room}?key=${KEY}`, {
          "Sec-WebSocket-Protocol": "edgewire.v1",
        });
        raw.socket.destroy();
        const head = raw.response.toLowerCase();
        assert.match(head, /^http\/1.1 101/);
        assert.match(head, /\r\nx-content-type-options: nosniff\r\n/, "secureHeaders() reached the 101");
        assert.match(head, /\r\nserver-timing: /, "timing() reached the 101");
        assert.match(head, /\r\nsec-websocket-protocol: edgewire.v1\r\n/, "the handshake's own headers stay");
        for (const path of [`/chat/${room}`, `/chat/${room}/history`]) {
          const res = await fetch(`${s.http}${BASE}${path}`, { headers: { "x-api-key": KEY } });
          assert.equal(res.status, 200, `${path} answers (no immutable-headers 500)`);
          assert.equal(res.headers.get("x-content-type-options"), "nosniff");
          assert.ok(res.headers.get("server-timing") !== null, "timing() on the GET");
        }
        const poll = await fetch(`${s.http}${BASE}/chat/${room}/poll?key=${KEY}`, { method: "POST" });
        assert.equal(poll.status, 200);
        assert.equal(poll.headers.get("x-content-type-options"), "nosniff");
        const { sid } = (await poll.json()) as { sid: string };
        await fetch(`${s.http}${BASE}/chat/${room}/poll/${sid}?key=${KEY}`, { method: "DELETE" });
      },
    },
    {
      name: "chat example: typed messages, replies, typing broadcast, names as member info",
      async run(s, k) {
        const room = freshRoom("chat");
        const a = await enter(s, `/chat/${room}`, { name: "ada" }, k);
        const b = await enter(s, `/chat/${room}`, { name: "bob" }, k);
        assert.deepEqual(info(b.welcome, a.welcome.id), { name: "ada" }, "the welcome shows each member's name");
        const joined = await a.socket.until<{ member: Member }>("presence");
        assert.deepEqual(joined.member.info, { name: "bob" });
        a.socket.sendJson({ type: "publish", id: "s1", data: { type: "say", text: "  hello  " } });
        for (const m of [a, b]) {
          const f = await m.socket.until<{ seq: number; from: string; data: Json }>("message");
          assert.deepEqual(
            [f.seq, f.from, f.data],
            [1, a.welcome.id, { type: "say", text: "hello", by: "ada" }],
            "trimmed by the schema, stamped with its author's name by the handler (publishes)",
          );
        }
        assert.equal((await a.socket.until<{ id: string; seq: number }>("ack")).seq, 1);
        b.socket.sendJson({ type: "publish", id: "r1", data: { type: "say", text: "hi ada", replyTo: 1 } });
        const reply = await a.socket.until<{ seq: number; data: Json }>("message");
        assert.deepEqual([reply.seq, reply.data.replyTo, reply.data.by], [2, 1, "bob"]);
        b.socket.sendJson({ type: "publish", data: { type: "typing", typing: true } });
        const typing = await a.socket.until<{ from: string; data: Json; seq?: number }>("broadcast");
        assert.deepEqual(
          [typing.from, typing.data, typing.seq],
          [b.welcome.id, { type: "typing", typing: true }, undefined],
        );
        b.socket.sendJson({ type: "publish", id: "bad", data: { type: "say", text: "" } });
        const invalid = await b.socket.until<{ code: string; id: string; message: string }>("error");
        assert.deepEqual([invalid.code, invalid.id], ["invalid_message", "bad"], invalid.message);
        b.socket.sendJson({ type: "publish", id: "far", data: { type: "say", text: "?", replyTo: 99 } });
        const refused = await b.socket.until<{ code: string; id: string }>("error");
        assert.deepEqual(
          [refused.code, refused.id],
          ["invalid_reply", "far"],
          "the handler refused it with its own code",
        );
        b.socket.sendJson({ type: "publish", id: "n1", data: { type: "rename", name: "bobby" } });
        for (const m of [a, b]) {
          // memberUpdates: the new name reaches every list (b's own too) before the handler's broadcast.
          const updated = await m.socket.until<{ event: string; member: Member; count: number }>("presence");
          assert.deepEqual(
            [updated.event, updated.member.id, updated.member.info, updated.count],
            ["update", b.welcome.id, { name: "bobby" }, 2],
          );
          const renamed = await m.socket.until<{ from: string; data: Json }>("broadcast");
          assert.deepEqual([renamed.from, renamed.data], [b.welcome.id, { type: "rename", name: "bobby" }]);
        }
        assert.equal(
          (await b.socket.until<{ id: string; seq?: number }>("ack")).seq,
          undefined,
          "acked, not sequenced",
        );
        const c = await enter(s, `/chat/${room}`, { name: "cy" }, k);
        assert.deepEqual(info(c.welcome, b.welcome.id), { name: "bobby" }, "the rename changed b's state");
        assert.equal(c.welcome.seq, 2, "nothing but what was said is sequenced");
        await Promise.all([a, b, c].map((m) => m.socket.close()));
      },
    },
    {
      name: "cursor example: colour and position are per-connection state that survives (workerd: a real eviction)",
      clients: ["ws"],
      async run(s) {
        const room = freshRoom("cursors");
        const path = `/cursors/${room}`;
        const a = await enter(s, path, { colour: "#ff0000" });
        a.socket.sendJson({ type: "publish", id: "m1", data: { type: "move", x: 10, y: 20 } });
        await a.socket.until("ack");
        const b = await enter(s, path, { colour: "#00ff00" });
        assert.deepEqual(info(b.welcome, a.welcome.id), { colour: "#ff0000", x: 10, y: 20 });
        const presence = async () =>
          (await (await fetch(`${s.http}${BASE}${path}`, { headers: { "x-api-key": KEY } })).json()) as {
            instance?: string;
            count: number;
          };
        const before = await presence();
        if (s.runtime === "workerd") {
          // workerd evicts an object ~10 s after its last event when only hibernatable sockets remain.
          await new Promise((r) => setTimeout(r, 13_000));
          const after = await presence();
          assert.ok(before.instance && after.instance, "the object reports its incarnation");
          assert.notEqual(after.instance, before.instance, "the object was evicted and rebuilt");
          assert.equal(after.count, 2);
        }
        const c = await enter(s, path);
        assert.deepEqual(info(c.welcome, a.welcome.id), { colour: "#ff0000", x: 10, y: 20 }, "a's state came back");
        assert.deepEqual(info(c.welcome, b.welcome.id), { colour: "#00ff00", x: 0, y: 0 });
        a.socket.sendJson({ type: "publish", data: { type: "move", x: 30, y: 40 } });
        // compactBroadcasts: a move arrives positional, [1, from, data].
        for (const m of [b, c]) {
          const moved = await m.socket.untilValue<[1, string, Json]>((f) => Array.isArray(f) && f[0] === 1);
          assert.deepEqual(moved, [1, a.welcome.id, { type: "move", x: 30, y: 40 }]);
        }
        const d = await enter(s, path);
        assert.deepEqual(info(d.welcome, a.welcome.id), { colour: "#ff0000", x: 30, y: 40 }, "moves keep the colour");
        a.socket.sendJson({ type: "publish", id: "off", data: { type: "move", x: -1, y: 0 } });
        assert.equal((await a.socket.until<{ code: string }>("error")).code, "invalid_message");
        await Promise.all([a, b, c, d].map((m) => m.socket.close()));
      },
    },
    {
      name: "cursor example through the SDK: compact broadcasts arrive as broadcast events, over WebSocket and long-polling",
      clients: ["ws"],
      async run(s) {
        const room = freshRoom("cursors-sdk");
        const join = (transport: "websocket" | "polling") =>
          joinRoom(`${s.ws}${BASE}?key=${KEY}`, room, {
            path: "/cursors/:room",
            WebSocket: WebSocket as unknown as WebSocketConstructor,
            transport,
            reconnect: false,
          });
        const [mover, ws, polling] = [join("websocket"), join("websocket"), join("polling")];
        try {
          await Promise.all([mover.ready, ws.ready, polling.ready]);
          const seen = [ws, polling].map((c) => {
            const got: { from: string; data: unknown; room: string }[] = [];
            c.on("broadcast", (b) => got.push({ from: b.from, data: b.data, room: b.room }));
            return got;
          });
          mover.send({ type: "move", x: 5, y: 6 });
          const deadline = Date.now() + 10_000;
          while (seen.some((g) => g.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          for (const got of seen) assert.deepEqual(got, [{ from: mover.id, data: { type: "move", x: 5, y: 6 }, room }]);
        } finally {
          for (const c of [mover, ws, polling]) c.close();
        }
      },
    },
  ] satisfies Case[]
).map((c) => ({ ...c, server: "examples" as const }));
