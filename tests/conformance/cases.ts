/**
 * The conformance cases: one list, run unchanged against every runtime over
 * real sockets. A case a runtime cannot do is declared in capabilities.ts with
 * the reason, and the run prints it in the capability table.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { RunningServer, RuntimeName } from "../support/servers.ts";
import { type ClientKind, TestSocket, withTimeout } from "../support/test-socket.ts";

/** One conformance case. */
export interface Case {
  name: string;
  /** run against `server`, connecting with the client `kind` */
  run(server: RunningServer, kind: ClientKind): Promise<void>;
  /** the clients this case runs with (default: all of CLIENT_KINDS); HTTP-level cases use only "ws" */
  clients?: readonly ClientKind[];
  /** why `runtime` cannot do this case, if it cannot; shown in the capability table */
  unsupported?(runtime: RuntimeName): string | undefined;
  /** a runtime's own behaviour the case accepts, shown next to "pass" in the capability table */
  note?(runtime: RuntimeName): string | undefined;
  /** which server it runs against: the edgewire service (default), the examples app, or the hardened fixture */
  server?: "service" | "examples" | "hardened";
}

let counter = 0;
/** A room name no other case uses. */
export const freshRoom = (tag: string) => `${tag}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

type Json = Record<string, unknown>;

/** Open a socket and wait for the handshake. */
export async function connect(
  url: string,
  protocols?: string | string[],
  kind: ClientKind = "ws",
): Promise<TestSocket> {
  const socket = new TestSocket(url, protocols, undefined, kind);
  await withTimeout(socket.opened, 10_000, `connect ${url}`);
  return socket;
}

/** The conformance servers' presence limit: small, so a room above it takes four members. */
export const PRESENCE_ENV = { EDGEWIRE_PRESENCE_LIMIT: "3" };

/** The backend push token of the conformance servers (push is closed without one). */
export const PUSH_TOKEN = "conformance-push-token";

/**
 * The service's settings for the functional cases: a known push token, and a
 * rate limit above the 2 000-frame burst case (limits are tried on the
 * hardened server, tests/conformance/hardening-cases.ts).
 */
export const SERVICE_ENV = {
  ...PRESENCE_ENV,
  EDGEWIRE_PUSH_TOKEN: PUSH_TOKEN,
  EDGEWIRE_RATE_LIMIT: "1000000",
  EDGEWIRE_RATE_BURST: "100000",
  // Small, so a resume case can outrun it with a few hundred pushes.
  EDGEWIRE_HISTORY_LIMIT: "100",
};

/** How many messages a room of the examples app keeps (EDGEWIRE_HISTORY_LIMIT of that server). */
export const EXAMPLES_HISTORY_LIMIT = 40;

/** A backend push to `room` with the conformance token. */
export function push(server: RunningServer, room: string, body: string, headers: Record<string, string> = {}) {
  return fetch(`${server.http}/rooms/${room}/messages`, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${PUSH_TOKEN}`, ...headers },
  });
}

/**
 * Let workerd evict the room's Durable Object (it does ~10 s after the object's last event once only
 * hibernatable sockets remain), push `body` to wake it, check it was rebuilt, and return the room's
 * presence afterwards.
 */
export async function pushAcrossEviction(server: RunningServer, room: string, body: string) {
  const presence = async () =>
    (await (await fetch(`${server.http}/rooms/${room}`)).json()) as { instance: string; seq: number };
  const before = await presence();
  await new Promise((r) => setTimeout(r, 13_000));
  await push(server, room, body);
  const after = await presence();
  assert.notEqual(after.instance, before.instance, "the object was evicted and rebuilt");
  return after;
}

/** A member: its socket and its welcome frame. */
type Joined = { socket: TestSocket; welcome: Json };

/** Join `room` and return the socket with its welcome frame. */
export async function join(server: RunningServer, room: string, kind: ClientKind = "ws"): Promise<Joined> {
  const socket = await connect(`${server.ws}/rooms/${room}`, "edgewire.v1", kind);
  const welcome = await socket.json();
  assert.equal(welcome.type, "welcome");
  return { socket, welcome };
}

/** Two members of `room`, after the first has seen the second join. */
export async function joinPair(server: RunningServer, room: string, kind: ClientKind = "ws") {
  const a = await join(server, room, kind);
  const b = await join(server, room, kind);
  await a.socket.until("presence");
  return { a, b };
}

/** `n` members of `room`, after each has seen the join of everyone who came after it. */
export async function joinAll(server: RunningServer, room: string, n: number, kind: ClientKind = "ws") {
  const members: Joined[] = [];
  for (let i = 0; i < n; i++) members.push(await join(server, room, kind));
  for (const [i, m] of members.entries()) for (let j = i + 1; j < n; j++) await m.socket.until("presence");
  return members;
}

async function echoOnce(server: RunningServer, kind: ClientKind, payload: string | Buffer): Promise<void> {
  const socket = await connect(`${server.ws}/echo`, undefined, kind);
  socket.send(payload);
  const frame = await socket.next();
  if (typeof payload === "string") {
    assert.equal(frame.binary, false, "text must come back as text");
    assert.equal(frame.data, payload);
  } else {
    assert.equal(frame.binary, true, "binary must come back as binary");
    assert.ok(Buffer.compare(frame.data as Buffer, payload) === 0, "bytes differ");
  }
  await socket.close();
}

/** Every conformance case, in the order the table prints them. */
export const cases: Case[] = [
  { name: "echo: ASCII text", run: (s, k) => echoOnce(s, k, "hello, edgewire") },
  { name: "echo: multi-byte UTF-8 text", run: (s, k) => echoOnce(s, k, "héllo wörld — 你好 🌍🚀 ∑") },
  { name: "echo: 1 MiB text", run: (s, k) => echoOnce(s, k, "x".repeat(1024 * 1024)) },
  { name: "echo: empty binary", run: (s, k) => echoOnce(s, k, Buffer.alloc(0)) },
  { name: "echo: 1 MiB binary byte-exact", run: (s, k) => echoOnce(s, k, randomBytes(1024 * 1024)) },
  {
    name: "echo: many frames keep their order",
    async run(s, k) {
      const socket = await connect(`${s.ws}/echo`, undefined, k);
      for (let i = 0; i < 200; i++) socket.send(`m${i}`);
      for (let i = 0; i < 200; i++) assert.equal((await socket.next()).data, `m${i}`);
      await socket.close();
    },
  },
  {
    name: "subprotocol edgewire.v1 accepted",
    async run(s, k) {
      const a = await connect(`${s.ws}/echo`, ["chat.v9", "edgewire.v1"], k);
      assert.equal(a.protocol, "edgewire.v1");
      await a.close();
      const b = await connect(`${s.ws}/rooms/${freshRoom("proto")}`, "edgewire.v1", k);
      assert.equal(b.protocol, "edgewire.v1");
      assert.equal((await b.json()).protocol, "edgewire.v1");
      await b.close();
      const none = await connect(`${s.ws}/echo`, undefined, k);
      assert.equal(none.protocol, "");
      await none.close();
    },
  },
  {
    name: "unknown subprotocol refused before the upgrade",
    clients: ["ws"],
    async run(s) {
      const socket = new TestSocket(`${s.ws}/echo`, "chat.v9");
      const error = (await socket.opened.then(
        () => assert.fail("upgrade should be refused"),
        (e: unknown) => e,
      )) as { status?: number; body?: string };
      assert.equal(error.status, 400);
      assert.equal(JSON.parse(error.body ?? "{}").error?.code, "unsupported_protocol");
    },
  },
  {
    name: "GET /asyncapi.json: the routes' AsyncAPI 3.0 document",
    clients: ["ws"],
    async run(s) {
      const response = await fetch(`${s.http}/asyncapi.json`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
      const document = (await response.json()) as { asyncapi: string; channels: Record<string, { address: string }> };
      assert.equal(document.asyncapi, "3.0.0");
      assert.deepEqual(
        Object.values(document.channels).map((c) => c.address),
        ["/echo", "/rooms/{room}"],
      );
    },
  },
  {
    name: "426 without upgrade, 404 unknown route, 400 bad room name",
    clients: ["ws"],
    async run(s) {
      const echo = await fetch(`${s.http}/echo`);
      assert.equal(echo.status, 426);
      assert.equal(((await echo.json()) as { error: Json }).error.code, "upgrade_required");
      const missing = await fetch(`${s.http}/nowhere`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { error: Json }).error.code, "not_found");
      const bad = await fetch(`${s.http}/rooms/${"x".repeat(65)}`);
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: Json }).error.code, "invalid_room");
      const badWs = new TestSocket(`${s.ws}/rooms/bad%20room`);
      const error = (await badWs.opened.then(
        () => assert.fail("bad room must be refused"),
        (e: unknown) => e,
      )) as { status?: number };
      assert.equal(error.status, 400);
    },
  },
  {
    name: "room broadcast: every member gets one order, seq grows",
    async run(s, k) {
      const room = freshRoom("order");
      // Presence frames for later joiners are not part of this check.
      const members = await joinAll(s, room, 3, k);
      const perMember = 10;
      for (let n = 0; n < perMember; n++)
        for (const [i, m] of members.entries()) m.socket.sendJson({ type: "publish", data: { i, n } });
      const total = perMember * members.length;
      const seen: string[][] = [];
      for (const m of members) {
        const order: string[] = [];
        let last = 0;
        while (order.length < total) {
          const f = await m.socket.until<{ seq: number; data: { i: number; n: number }; from: string }>("message");
          assert.ok(f.seq > last, `seq must grow: ${f.seq} after ${last}`);
          last = f.seq;
          order.push(`${f.seq}:${f.from}:${f.data.i}/${f.data.n}`);
        }
        seen.push(order);
      }
      assert.deepEqual(seen[1], seen[0]);
      assert.deepEqual(seen[2], seen[0]);
      await Promise.all(members.map((m) => m.socket.close()));
    },
  },
  {
    name: "presence: welcome lists members, join and leave reach the others",
    async run(s, k) {
      const room = freshRoom("presence");
      const a = await join(s, room, k);
      assert.deepEqual(
        (a.welcome.members as Json[]).map((m) => m.id),
        [a.welcome.id],
      );
      const b = await join(s, room, k);
      const ids = (b.welcome.members as Json[]).map((m) => m.id).sort();
      assert.deepEqual(ids, [a.welcome.id, b.welcome.id].sort());
      const joined = await a.socket.until<{ event: string; member: Json; count: number }>("presence");
      assert.equal(joined.event, "join");
      assert.equal(joined.member.id, b.welcome.id);
      assert.equal(joined.count, 2);
      const listed = (await (await fetch(`${s.http}/rooms/${room}`)).json()) as { count: number; members: Json[] };
      assert.equal(listed.count, 2);
      await b.socket.close();
      const left = await a.socket.until<{ event: string; member: Json; count: number }>("presence");
      assert.equal(left.event, "leave");
      assert.equal(left.member.id, b.welcome.id);
      assert.equal(left.count, 1);
      await a.socket.close();
    },
  },
  {
    name: "presence above the limit: capped welcome, counts, then a sync",
    async run(s, k) {
      // The conformance servers run with EDGEWIRE_PRESENCE_LIMIT=3 (PRESENCE_ENV).
      const room = freshRoom("crowd");
      const [a, b, c] = (await joinAll(s, room, 3, k)) as [Joined, Joined, Joined];
      const d = await join(s, room, k);
      assert.equal(d.welcome.count, 4);
      assert.deepEqual(
        (d.welcome.members as Json[]).map((m) => m.id),
        [a.welcome.id, b.welcome.id, c.welcome.id],
        "the welcome lists the oldest members up to the limit",
      );
      const counted = await a.socket.until<{ event: string; count: number; member?: Json }>("presence");
      assert.deepEqual([counted.event, counted.count, counted.member], ["count", 4, undefined]);
      await d.socket.close();
      const synced = await a.socket.until<{ event: string; count: number; members: Json[] }>("presence");
      assert.equal(synced.event, "sync");
      assert.equal(synced.count, 3);
      assert.deepEqual(
        synced.members.map((m) => m.id),
        [a.welcome.id, b.welcome.id, c.welcome.id],
      );
      await Promise.all([a, b, c].map((m) => m.socket.close()));
    },
  },
  {
    name: "invalid JSON: error frame, socket stays usable",
    async run(s, k) {
      const { socket } = await join(s, freshRoom("badjson"), k);
      socket.send("{not json");
      const error = await socket.until<{ code: string }>("error");
      assert.equal(error.code, "invalid_json");
      socket.sendJson({ type: "publish", data: "still here", id: "k1" });
      const message = await socket.until<{ data: string }>("message");
      assert.equal(message.data, "still here");
      assert.equal((await socket.until<{ id: string }>("ack")).id, "k1");
      await socket.close();
    },
  },
  {
    name: "schema failure: error frame with its code, socket stays usable",
    async run(s, k) {
      const { socket } = await join(s, freshRoom("schema"), k);
      socket.sendJson({ type: "shout", data: 1 });
      assert.equal((await socket.until<{ code: string }>("error")).code, "invalid_message");
      socket.sendJson({ type: "publish", id: "no-data" });
      const missing = await socket.until<{ code: string; id: string }>("error");
      assert.equal(missing.code, "invalid_message");
      assert.equal(missing.id, "no-data");
      socket.sendJson({ type: "ping", id: "p" });
      assert.equal((await socket.until<{ id: string }>("pong")).id, "p");
      await socket.close();
    },
  },
  {
    name: "binary relay: other members get the same bytes, sender does not",
    async run(s, k) {
      const room = freshRoom("binary");
      const [a, b, c] = (await joinAll(s, room, 3, k)) as [Joined, Joined, Joined];
      const bytes = randomBytes(4096);
      a.socket.send(bytes);
      for (const m of [b, c]) {
        let frame = await m.socket.next();
        while (!frame.binary) frame = await m.socket.next();
        assert.ok(Buffer.compare(frame.data as Buffer, bytes) === 0, "relayed bytes differ");
      }
      // The sender's next frame is its own text message, not its bytes.
      a.socket.sendJson({ type: "publish", data: "after" });
      const next = await a.socket.next();
      assert.equal(next.binary, false);
      assert.equal(JSON.parse(next.data as string).data, "after");
      await Promise.all([a, b, c].map((m) => m.socket.close()));
    },
  },
  {
    name: "close code and reason: client 4000 'bye' reaches the server",
    async run(s, k) {
      const room = freshRoom("close");
      const { a, b } = await joinPair(s, room, k);
      const ended = await b.socket.close(4000, "bye");
      assert.deepEqual(ended, { code: 4000, reason: "bye" }, "the server reciprocates the client's code");
      const left = await a.socket.until<{ event: string; code: number; reason: string }>("presence");
      assert.equal(left.event, "leave");
      assert.equal(left.code, 4000);
      assert.equal(left.reason, "bye");
      await a.socket.close();
    },
  },
  {
    name: "server-initiated close: oversized frame closes with 1009, reason message_too_large: limit is N bytes; the room hears 1009",
    note: (r) =>
      r === "bun"
        ? 'over WebSocket the client reads "Received too big message": uWS closes a frame over maxPayloadLength itself, with its own fixed text'
        : undefined,
    async run(s, k) {
      const room = freshRoom("big");
      const other = await join(s, room);
      const { socket } = await join(s, room, k);
      await other.socket.until("presence");
      socket.send("y".repeat(1024 * 1024 + 1));
      const ended = await withTimeout(socket.ended, 10_000, "close after oversized frame");
      assert.equal(ended.code, 1009);
      const uws = s.runtime === "bun" && k !== "sdk-polling";
      assert.equal(ended.reason, uws ? "Received too big message" : "message_too_large: limit is 1048576 bytes");
      const left = await other.socket.until<{ event: string; code: number; reason: string }>("presence");
      assert.deepEqual(
        [left.event, left.code, left.reason],
        ["leave", 1009, "message_too_large: limit is 1048576 bytes"],
      );
      await other.socket.close();
    },
  },
  {
    name: "backend push: members get the message with the seq in the reply",
    async run(s, k) {
      const room = freshRoom("push");
      const a = await join(s, room, k);
      const b = await join(s, room, k);
      const res = await push(s, room, JSON.stringify({ text: "from backend" }), { "content-type": "application/json" });
      assert.equal(res.status, 200);
      const reply = (await res.json()) as { seq: number; room: string };
      assert.equal(reply.room, room);
      assert.equal(reply.seq, 1);
      for (const m of [a, b]) {
        const f = await m.socket.until<{ seq: number; from: string; data: Json }>("message");
        assert.deepEqual([f.seq, f.from, f.data], [reply.seq, "server", { text: "from backend" }]);
      }
      const bad = await push(s, room, "{oops");
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: Json }).error.code, "invalid_body");
      await Promise.all([a, b].map((m) => m.socket.close()));
    },
  },
  {
    name: "dropped connection (no Close frame): the others see leave with 1006",
    clients: ["ws"],
    async run(s) {
      const room = freshRoom("drop");
      const { a, b } = await joinPair(s, room);
      b.socket.ws.terminate();
      const left = await a.socket.until<{ event: string; code: number; member: Json }>("presence");
      assert.deepEqual([left.event, left.code, left.member.id], ["leave", 1006, b.welcome.id]);
      a.socket.sendJson({ type: "publish", data: "still serving" });
      assert.equal((await a.socket.until<{ data: string }>("message")).data, "still serving");
      await a.socket.close();
    },
  },
  {
    name: "flood: 2 000 publishes in one burst are all sequenced, in order, none lost",
    async run(s, k) {
      const room = freshRoom("flood");
      const { a, b } = await joinPair(s, room, k);
      const total = 2000;
      for (let i = 0; i < total; i++) a.socket.sendJson({ type: "publish", data: i });
      for (const m of [a, b]) {
        let expected = 0;
        let last = 0;
        while (expected < total) {
          const f = await m.socket.until<{ seq: number; data: number }>("message", 30_000);
          assert.equal(f.data, expected, "in the order sent");
          assert.ok(f.seq > last);
          last = f.seq;
          expected++;
        }
      }
      await Promise.all([a, b].map((m) => m.socket.close()));
    },
  },
];
