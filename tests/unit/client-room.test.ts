/**
 * The typed room client against the fake server: welcome, members kept
 * current, publish → ack, schema-typed messages and `invalid`, re-join after
 * a reconnect (new id, gap), pending publishes on a drop, and a long-polling
 * member and a WebSocket member in one room.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import * as v from "valibot";
import WebSocket from "ws";
import {
  type InvalidFrame,
  joinRoom,
  type PresenceFrame,
  type RoomClient,
  RoomError,
  type RoomGap,
  type RoomMessage,
  roomUrl,
} from "../../src/client/index.ts";
import { type FakeServer, startFakeServer, waitFor } from "../support/client-fakes.ts";

let server: FakeServer;
const clients: RoomClient<unknown, unknown>[] = [];
const FAST = { minDelayMs: 10, maxDelayMs: 50, jitter: 0 };

const ChatSchema = v.object({ text: v.string(), at: v.optional(v.number()) });

function chat(room: string, transport: "websocket" | "polling" = "websocket") {
  const client = joinRoom(server.ws, room, { schema: ChatSchema, WebSocket, transport, reconnect: FAST });
  clients.push(client as RoomClient<unknown, unknown>);
  return client;
}

function plain(room: string) {
  const client = joinRoom(server.ws, room, { WebSocket, reconnect: FAST });
  clients.push(client);
  return client;
}

/** everything `type` emits, collected */
function collect<T>(subscribe: (listener: (value: T) => void) => unknown): T[] {
  const seen: T[] = [];
  subscribe((value) => seen.push(value));
  return seen;
}

before(async () => {
  server = await startFakeServer({ holdMs: 300 });
});
beforeEach(() => {
  server.hooks = {};
});
after(async () => {
  for (const c of clients) c.close();
  await server.stop();
});

describe("roomUrl", () => {
  it("puts the room under the base URL's path and refuses bad names before connecting", () => {
    assert.equal(roomUrl("ws://h:1", "lobby"), "ws://h:1/rooms/lobby");
    assert.equal(roomUrl("https://h/rt/", "a.b-c_d"), "https://h/rt/rooms/a.b-c_d");
    assert.throws(
      () => roomUrl("ws://h", "no spaces"),
      (e: unknown) => e instanceof RoomError && e.code === "invalid_room",
    );
    assert.throws(() => joinRoom("ws://h", ""), RoomError);
  });
});

describe("RoomClient", () => {
  it("joins: id, members and seq from the welcome; presence keeps members current", async () => {
    const alice = chat("r1");
    const welcome = await alice.ready;
    assert.equal(alice.id, welcome.id);
    assert.equal(alice.socket.protocol, "edgewire.v1", "offers edgewire.v1 by default");
    assert.deepEqual(
      alice.members.map((m) => m.id),
      [alice.id],
    );
    assert.equal(alice.seq, 0);
    const presence = collect<PresenceFrame>((l) => alice.on("presence", l));
    const bob = plain("r1");
    await bob.ready;
    await waitFor(() => alice.members.length === 2);
    assert.deepEqual(
      presence.map((p) => [p.event, "member" in p ? p.member.id : undefined]),
      [["join", bob.id]],
    );
    assert.equal(alice.count, 2);
    bob.close(4000, "gone");
    await waitFor(() => alice.members.length === 1);
    const left = presence.at(-1);
    assert.ok(left?.event === "leave");
    assert.deepEqual([left.code, left.reason, alice.count], [4000, "gone", 1]);
  });

  it("a presence update replaces the member's info in the list, its own entry included", async () => {
    const alice = chat("r-update");
    const bob = plain("r-update");
    await Promise.all([alice.ready, bob.ready]);
    await waitFor(() => alice.members.length === 2);
    const presence = collect<PresenceFrame>((l) => alice.on("presence", l));
    const joinedAt = alice.members.find((m) => m.id === bob.id)?.joinedAt ?? 0;
    for (const id of [bob.id, alice.id]) {
      const member = { id, joinedAt, info: { name: `${id}-renamed` } };
      const frame = JSON.stringify({ type: "presence", room: "r-update", event: "update", member, count: 2 });
      for (const peer of server.peers) if (peer.id === alice.id) peer.send(frame);
    }
    await waitFor(() => presence.length === 2);
    const ghost = { id: "gone-already", joinedAt: 1, info: { name: "late" } };
    const late = JSON.stringify({ type: "presence", room: "r-update", event: "update", member: ghost, count: 2 });
    for (const peer of server.peers) if (peer.id === alice.id) peer.send(late);
    await waitFor(() => presence.length === 3);
    assert.deepEqual(Object.fromEntries(alice.members.map((m) => [m.id, m.info])), {
      [String(alice.id)]: { name: `${alice.id}-renamed` },
      [String(bob.id)]: { name: `${bob.id}-renamed` },
    });
    assert.deepEqual(
      presence.map((p) => p.event),
      ["update", "update", "update"],
    );
    assert.ok(!alice.members.some((m) => m.id === "gone-already"), "an update never adds a member the list lacks");
    assert.equal(alice.count, 2);
  });

  it("publish resolves with the seq from the ack; everyone, the sender too, gets the typed message", async () => {
    const alice = chat("r2");
    const bob = plain("r2");
    await Promise.all([alice.ready, bob.ready]);
    const aliceGot = collect<RoomMessage<v.InferOutput<typeof ChatSchema>>>((l) => alice.on("message", l));
    const bobGot = collect<RoomMessage<unknown>>((l) => bob.on("message", l));
    const { seq } = await alice.publish({ text: "hi" });
    assert.equal(seq, 1);
    await waitFor(() => aliceGot.length === 1 && bobGot.length === 1);
    // Typed: `text` is a string at compile time (tsc -p tsconfig.node.json checks this line).
    const text: string = aliceGot[0]?.data.text ?? "";
    assert.equal(text, "hi");
    assert.equal(aliceGot[0]?.from, alice.id);
    assert.deepEqual(bobGot[0]?.data, { text: "hi" });
    assert.equal(alice.seq, 1);
    assert.equal((await bob.publish("anything")).seq, 2);
  });

  it("publish resolves once the client holds its own message, also when the ack outran it (a fleet's fan-out)", async () => {
    server.hooks.messageAfterAckMs = 150;
    const a = plain("ryw");
    await a.ready;
    const seen: number[] = [];
    a.on("message", (m) => seen.push(m.seq));
    const result = await a.publish({ text: "mine" });
    assert.deepEqual(result, { seq: 1 });
    assert.deepEqual([a.seq, seen], [1, [1]], "its message arrived before publish resolved");
    // Two in flight: each resolves with its own message, in order.
    const both = await Promise.all([a.publish({ n: 2 }), a.publish({ n: 3 })]);
    assert.deepEqual(both, [{ seq: 2 }, { seq: 3 }]);
    assert.deepEqual(seen, [1, 2, 3]);
    // Closing while one waits for its message: it was committed, so it resolves, not rejects.
    server.hooks.messageAfterAckMs = 10_000;
    const pending = a.publish({ n: 4 });
    await new Promise((r) => setTimeout(r, 300)); // its ack is in, its message far away
    a.close();
    assert.deepEqual(await pending, { seq: 4 });
  });

  it("data failing the schema surfaces as `invalid`, not `message`; publish checks it too", async () => {
    const alice = chat("r3");
    const bob = plain("r3");
    await Promise.all([alice.ready, bob.ready]);
    const invalid = collect<InvalidFrame>((l) => alice.on("invalid", l));
    const valid = collect<unknown>((l) => alice.on("message", l));
    await bob.publish({ text: 42 });
    await bob.publish({ text: "fine" });
    await waitFor(() => invalid.length === 1 && valid.length === 1);
    assert.match(invalid[0]?.message ?? "", /text/);
    assert.ok(invalid[0]?.issues && invalid[0].issues.length > 0);
    assert.equal(alice.seq, 2, "an invalid message still advances seq");
    // @ts-expect-error: the schema's input type refuses a number
    const refused = alice.publish({ text: 5 });
    await assert.rejects(refused, (e: unknown) => e instanceof RoomError && e.code === "invalid_message");
  });

  it("a server error frame for a publish rejects that publish with the server's code", async () => {
    const bob = plain("r4");
    await bob.ready;
    await assert.rejects(
      bob.publish(undefined),
      (e: unknown) => e instanceof RoomError && e.code === "invalid_message",
    );
  });

  it("relays binary to the others as `binary` events", async () => {
    const alice = plain("r5");
    const bob = plain("r5");
    await Promise.all([alice.ready, bob.ready]);
    const got = collect<ArrayBuffer>((l) => bob.on("binary", l));
    alice.relay(new Uint8Array([1, 2, 3]));
    await waitFor(() => got.length === 1);
    assert.deepEqual([...new Uint8Array(got[0] as ArrayBuffer)], [1, 2, 3]);
  });

  it("re-joins after a drop resuming where it was: what was published meanwhile arrives once, in order, no gap", async () => {
    const alice = chat("r6");
    await alice.ready;
    const firstId = alice.id;
    await alice.publish({ text: "before" });
    const welcomes = collect<unknown>((l) => alice.on("welcome", l));
    const gaps = collect<RoomGap>((l) => alice.on("gap", l));
    const reconnecting = new Promise<void>((resolve) => alice.on("reconnecting", () => resolve()));
    server.dropAll();
    await reconnecting;
    server.push("r6", { text: "while away 1" });
    server.push("r6", { text: "while away 2" });
    await waitFor(() => welcomes.length === 1, 5_000, "the re-join's welcome");
    assert.notEqual(alice.id, firstId);
    assert.deepEqual(
      alice.members.map((m) => m.id),
      [alice.id],
    );
    assert.deepEqual(gaps, [], "resumed: nothing lost");
    await waitFor(() => alice.seq === 3, 5_000, "the missed messages replayed");
    assert.equal((await alice.publish({ text: "after" })).seq, 4);
  });

  it("reports a gap only when the server says the resume could not be exact (resync)", async () => {
    const bob = chat("r6b");
    await bob.ready;
    await bob.publish({ text: "before" });
    const gaps = collect<RoomGap>((l) => bob.on("gap", l));
    server.hooks.loseHistory = true;
    try {
      const welcomed = new Promise<void>((resolve) => bob.on("welcome", () => resolve()));
      for (const peer of server.peers) if (peer.room === "r6b") peer.drop();
      await welcomed;
      await waitFor(() => gaps.length === 1, 5_000, "the gap");
    } finally {
      server.hooks.loseHistory = false;
    }
    assert.deepEqual(gaps, [{ from: 2, to: 1, reason: "history_truncated", epoch: "e-r6b" }]);
  });

  it("a publish pending when the connection drops is rejected (connection_lost); one made while reconnecting goes out after the re-join", async () => {
    const alice = plain("r7");
    await alice.ready;
    server.hooks.mutePublish = true;
    const pending = alice.publish("unanswered");
    pending.catch(() => {});
    await waitFor(() => server.received.some((r) => r.id === alice.id));
    const reconnecting = new Promise<void>((resolve) => alice.on("reconnecting", () => resolve()));
    server.dropAll();
    await assert.rejects(pending, (e: unknown) => e instanceof RoomError && e.code === "connection_lost");
    await reconnecting;
    server.hooks.mutePublish = false;
    const queued = alice.publish("queued while reconnecting");
    assert.ok(alice.socket.bufferedAmount > 0);
    const { seq } = await queued;
    assert.equal(seq, 1);
  });

  it("close rejects pending publishes and `ready`, and further publishes", async () => {
    server.hooks.refuseUpgrades = 400;
    const lonely = joinRoom(server.ws, "r8", { WebSocket, transport: "websocket", reconnect: false });
    await assert.rejects(lonely.ready, (e: unknown) => e instanceof RoomError && e.code === "closed");
    await assert.rejects(lonely.publish("late"), RoomError);
  });

  it("a long-polling member and a WebSocket member share one room and one order", async () => {
    const poller = chat("r9", "polling");
    const socket = chat("r9", "websocket");
    await Promise.all([poller.ready, socket.ready]);
    assert.equal(poller.transport, "polling");
    await waitFor(() => poller.members.length === 2 && socket.members.length === 2);
    const a = collect<RoomMessage<{ text: string }>>((l) => poller.on("message", l));
    const b = collect<RoomMessage<{ text: string }>>((l) => socket.on("message", l));
    await Promise.all([poller.publish({ text: "from polling" }), socket.publish({ text: "from websocket" })]);
    await poller.publish({ text: "third" });
    await waitFor(() => a.length === 3 && b.length === 3);
    const order = (list: RoomMessage<{ text: string }>[]) => list.map((m) => `${m.seq}:${m.data.text}`);
    assert.deepEqual(order(a), order(b));
    const bytes = collect<ArrayBuffer>((l) => poller.on("binary", l));
    socket.relay(new Uint8Array([5, 6]));
    await waitFor(() => bytes.length === 1);
    assert.deepEqual([...new Uint8Array(bytes[0] as ArrayBuffer)], [5, 6]);
  });

  it("a listener that throws does not stop the others", async () => {
    const alice = plain("r10");
    await alice.ready;
    const errors: unknown[] = [];
    const original = globalThis.reportError;
    (globalThis as { reportError?: (e: unknown) => void }).reportError = (e) => errors.push(e);
    try {
      const seen: unknown[] = [];
      alice.on("message", () => {
        throw new Error("listener bug");
      });
      alice.on("message", (m) => seen.push(m.data));
      await alice.publish("x");
      await waitFor(() => seen.length === 1);
      assert.equal((errors[0] as Error).message, "listener bug");
    } finally {
      (globalThis as { reportError?: unknown }).reportError = original;
    }
  });
});
