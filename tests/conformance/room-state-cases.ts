/**
 * Room state on every runtime (examples/auction, mounted in examples/hono-app): a transaction's
 * state and message commit together, a refused one changes nothing, and members hold the route's
 * view — from the welcome, then after every change in seq order — over WebSocket and long-polling,
 * in JSON and MessagePack, across a resume, and (workerd) across a Durable Object's eviction.
 */
import assert from "node:assert/strict";
import WebSocket from "ws";
import type { auction } from "../../examples/auction/auction.ts";
import { joinRoom, type RoomCodec, type RoomError, type WebSocketConstructor } from "../../src/client/index.ts";
import { msgpack } from "../../src/client/msgpack.ts";
import type { visits } from "../fixtures/hardened.ts";
import type { RunningServer } from "../support/servers.ts";
import { type ClientKind, type TestSocket, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { connect, EXAMPLES_HISTORY_LIMIT, freshRoom, PUSH_TOKEN } from "./cases.ts";

const KEY = "demo-key";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Json = Record<string, unknown>;
type View = { best: { amount: number; bidder: string } | null; bids: number; closed: boolean };

async function until(test: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

/** What the lifecycle hooks counted, of the visits fixture's view. */
const hooks = (view: { occupied: number; vacated: number }) => ({ occupied: view.occupied, vacated: view.vacated });

/** A bidder through the SDK, typed from the route: its client and what it saw. */
function bidder(s: RunningServer, item: string, name: string, kind: ClientKind, codec?: RoomCodec, role = "") {
  const client = joinRoom<typeof auction>(`${s.ws}/realtime?key=${KEY}&name=${name}${role}`, item, {
    path: "/auction/:item",
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    transport: kind === "sdk-polling" ? "polling" : "websocket",
    ...(codec ? { codec } : {}),
    reconnect: false,
  });
  // Every view it held, with the seq it was as of, and every message seq: one order.
  const states: [number, View][] = [];
  const seqs: number[] = [];
  client.on("state", (change) => states.push([change.seq, change.view as View]));
  client.on("message", (m) => seqs.push(m.seq));
  return { client, states, seqs };
}

async function auctionRound(s: RunningServer, kind: ClientKind, codec?: RoomCodec): Promise<void> {
  const item = freshRoom("lot");
  const ada = bidder(s, item, "ada", kind, codec);
  const bob = bidder(s, item, "bob", kind, codec);
  const seller = bidder(s, item, "sam", kind, codec, "&role=seller");
  const everyone = [ada, bob, seller];
  try {
    for (const b of everyone) await withTimeout(b.client.ready, 15_000, "join");
    assert.deepEqual(
      ada.client.state,
      { best: null, bids: 0, closed: false },
      "the welcome's view: the initial state's",
    );
    assert.deepEqual(await ada.client.publish({ type: "bid", amount: 10 }), { seq: 1 });
    const low = await bob.client.publish({ type: "bid", amount: 12 }).catch((e: RoomError) => e.code);
    assert.equal(low, "bid_too_low", "checked against the committed best bid (10 + 5)");
    assert.deepEqual(await bob.client.publish({ type: "bid", amount: 15 }), { seq: 2 }, "the refused bid took no seq");
    const notSeller = await ada.client.publish({ type: "close" }).catch((e: RoomError) => e.code);
    assert.equal(notSeller, "not_the_seller");
    assert.deepEqual(await seller.client.publish({ type: "close" }), { seq: 3 });
    const late = await bob.client.publish({ type: "bid", amount: 100 }).catch((e: RoomError) => e.code);
    assert.equal(late, "auction_closed", "a closed auction takes no bid: its state says so");
    for (const b of everyone) await until(() => b.seqs.length >= 3, 10_000, "three messages");
    const expected: [number, View][] = [
      [1, { best: { amount: 10, bidder: "ada" }, bids: 1, closed: false }],
      [2, { best: { amount: 15, bidder: "bob" }, bids: 2, closed: false }],
      [3, { best: { amount: 15, bidder: "bob" }, bids: 2, closed: true }],
    ];
    for (const b of everyone) {
      assert.deepEqual(b.states.slice(1), expected, "each change's view, with its message, in seq order");
      assert.deepEqual(b.client.state, expected[2]?.[1], "the view as of the last seq seen");
      assert.equal("offers" in (b.client.state ?? {}), false, "the view hides what the route does not show");
    }
    const carol = bidder(s, item, "carol", kind, codec);
    everyone.push(carol);
    await withTimeout(carol.client.ready, 15_000, "a late joiner");
    assert.deepEqual(carol.client.state, expected[2]?.[1], "a later welcome carries the view as of its seq");
    assert.equal(carol.client.seq, 3);
    // A client resuming after seq 1 of this epoch: no view in its welcome, the replayed changes carry theirs.
    const epoch = ada.client.epoch;
    const back = bidder(s, item, "dan", kind, codec, `&seq=1&epoch=${epoch}`);
    everyone.push(back);
    await withTimeout(back.client.ready, 15_000, "a resume");
    await until(() => back.seqs.length >= 2, 10_000, "the replay");
    assert.deepEqual(back.states, expected.slice(1), "the replayed changes' views, in seq order");
    assert.deepEqual(back.client.state, expected[2]?.[1]);
    // One of another epoch: resync, the initial view as of seq 0, then every change since.
    const lost = bidder(s, item, "eve", kind, codec, "&seq=1&epoch=gone");
    everyone.push(lost);
    const gaps: string[] = [];
    lost.client.on("gap", (g) => gaps.push(g.reason));
    await withTimeout(lost.client.ready, 15_000, "a resync");
    await until(() => lost.seqs.length >= 3, 10_000, "the new epoch from its start");
    assert.deepEqual(gaps, ["epoch_changed"]);
    assert.deepEqual(
      lost.states,
      [[0, { best: null, bids: 0, closed: false }], ...expected],
      "from the initial view on",
    );
  } finally {
    for (const b of everyone) b.client.close();
  }
}

/**
 * A member resuming from a seq that history no longer keeps: it cannot be brought up to date message
 * by message, so it starts now — the welcome carries the view of now at the room's seq, the resync
 * names what it will never get, and the live stream (with each change's view) follows. The same for
 * one of another epoch when this epoch's start is gone too (a stateful room cannot replay from it).
 */
async function pastHistory(s: RunningServer, kind: ClientKind, codec?: RoomCodec): Promise<void> {
  const item = freshRoom("far");
  const a = await raw(s, item, "ada");
  // Twice what the examples server keeps (memory trims in batches, past 1.25× its limit): seq 3, the
  // first one after the resume's seq, is gone on every broker.
  const bids = 2 * EXAMPLES_HISTORY_LIMIT;
  for (let n = 1; n <= bids; n++) {
    bid(a.socket, 5 * n + 5, `b${n}`);
    await a.socket.until("ack");
  }
  const now: View = { best: { amount: 5 * bids + 5, bidder: "ada" }, bids, closed: false };
  const next: View = { best: { amount: 5 * bids + 10, bidder: "ada" }, bids: bids + 1, closed: false };
  const query = `&seq=2&epoch=${a.welcome.epoch}`;
  try {
    if (kind === "ws") {
      const far = await raw(s, item, "bob", query);
      assert.deepEqual(
        [far.welcome.seq, far.welcome.resumed, far.welcome.view],
        [bids, undefined, now],
        "the welcome: the room's seq, the view of now",
      );
      const resync = await far.socket.json<{ type: string; reason: string; from: number; to: number }>();
      assert.deepEqual([resync.type, resync.reason, resync.from, resync.to], ["resync", "history_truncated", 3, bids]);
      // Another epoch, and this one's start is gone too: no replay from seq 0 can rebuild the view,
      // so it starts now as well — both losses named, the view of now in the welcome.
      const lost = await raw(s, item, "cat", "&seq=2&epoch=gone");
      assert.deepEqual([lost.welcome.seq, lost.welcome.view], [bids, now], "the welcome: now, not the epoch's start");
      const losses = [
        await lost.socket.json<{ type: string; reason: string; from: number; to?: number }>(),
        await lost.socket.json<{ type: string; reason: string; from: number; to?: number }>(),
      ];
      assert.deepEqual(
        losses.map((f) => [f.type, f.reason, f.from, f.to]),
        [
          ["resync", "epoch_changed", 3, undefined],
          ["resync", "history_truncated", 1, bids],
        ],
      );
      bid(a.socket, 5 * bids + 10, "next");
      for (const member of [far, lost]) {
        const live = await member.socket.until<{ seq: number; view: View }>("message");
        assert.deepEqual([live.seq, live.view], [bids + 1, next], "then the live stream, each change with its view");
        await member.socket.close();
      }
      return;
    }
    // One past this epoch's history, one of another epoch whose start is gone as well.
    const far = bidder(s, item, "bob", kind, codec, query);
    const lost = bidder(s, item, "cat", kind, codec, "&seq=2&epoch=gone");
    const gaps = new Map<typeof far, unknown[]>([
      [far, []],
      [lost, []],
    ]);
    for (const [member, seen] of gaps) member.client.on("gap", (g) => seen.push(g));
    const epoch = a.welcome.epoch;
    try {
      for (const [member, seen] of gaps) {
        await withTimeout(member.client.ready, 15_000, "a resume past history");
        assert.deepEqual([member.client.seq, member.client.state], [bids, now], "the view of now, at the room's seq");
        // The resyncs follow the welcome: they may arrive after `ready` has resolved (workerd).
        await until(() => seen.length >= (member === far ? 1 : 2), 10_000, "the gaps");
      }
      assert.deepEqual(gaps.get(far), [{ from: 3, to: bids, reason: "history_truncated", epoch }]);
      assert.deepEqual(gaps.get(lost), [
        { from: 3, to: undefined, reason: "epoch_changed", epoch },
        { from: 1, to: bids, reason: "history_truncated", epoch },
      ]);
      bid(a.socket, 5 * bids + 10, "next");
      for (const member of [far, lost]) {
        await until(() => member.seqs.length >= 1, 10_000, "the live stream");
        assert.deepEqual(member.seqs, [bids + 1], "nothing of the lost stretch arrives");
        assert.deepEqual(
          member.states,
          [
            [bids, now],
            [bids + 1, next],
          ],
          "the view of now, then each change's",
        );
        assert.deepEqual(member.client.state, next);
      }
    } finally {
      far.client.close();
      lost.client.close();
    }
  } finally {
    await a.socket.close();
  }
}

/** Join the auction `item` with the ws package; its socket and welcome. */
async function raw(s: RunningServer, item: string, name: string, query = "") {
  const socket = await connect(`${s.ws}/realtime/auction/${item}?key=${KEY}&name=${name}${query}`, "edgewire.v1");
  const welcome = await socket.json<Json & { seq: number; epoch: string; view?: View; resumed?: boolean }>();
  assert.equal(welcome.type, "welcome");
  return { socket, welcome };
}

const bid = (socket: TestSocket, amount: number, id: string) =>
  socket.sendJson({ type: "publish", id, data: { type: "bid", amount } });

/** A backend push to the auction `item` of the examples app. */
const pushTo = (s: RunningServer, item: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${s.http}/realtime/auction/${item}/messages`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "x-api-key": KEY, authorization: `Bearer ${PUSH_TOKEN}`, ...headers },
  });

/** The room state cases (against the examples app and the hardened fixture). */
export const roomStateCases: Case[] = [
  {
    name: "room state (auction): bids and their messages commit together, refused ones change nothing; every member holds the view from the welcome on, in seq order",
    clients: ["sdk-websocket", "sdk-polling"],
    server: "examples",
    run: (s, k) => auctionRound(s, k),
  },
  {
    name: "room state over MessagePack: the view rides on the positional message, the same views as JSON",
    clients: ["sdk-websocket", "sdk-polling"],
    server: "examples",
    run: (s, k) => auctionRound(s, k, msgpack),
  },
  {
    name: "room state on the wire: welcome.view, the view on the transaction's message; an exact resume replays the changes (no view in its welcome), another epoch gets the initial view and every change since",
    clients: ["ws"],
    server: "examples",
    async run(s) {
      const item = freshRoom("wire");
      const a = await raw(s, item, "ada");
      assert.deepEqual(a.welcome.view, { best: null, bids: 0, closed: false });
      bid(a.socket, 10, "b1");
      const m1 = await a.socket.until<{ seq: number; view: View; data: Json }>("message");
      assert.deepEqual(
        [m1.seq, m1.data, m1.view.best],
        [1, { type: "bid", amount: 10, bidder: "ada" }, { amount: 10, bidder: "ada" }],
      );
      assert.deepEqual(await a.socket.until("ack"), { type: "ack", id: "b1", seq: 1 });
      bid(a.socket, 20, "b2");
      await a.socket.until("ack");
      bid(a.socket, 30, "b3");
      await a.socket.until("ack");
      const back = await raw(s, item, "bob", `&seq=1&epoch=${a.welcome.epoch}`);
      assert.equal(back.welcome.resumed, true);
      assert.equal("view" in back.welcome, false, "an exact resume: the client keeps the view it had at seq 1");
      const replayed = [
        await back.socket.json<{ seq: number; view: View }>(),
        await back.socket.json<{ seq: number; view: View }>(),
      ];
      assert.deepEqual(
        replayed.map((f) => [f.seq, f.view.best?.amount]),
        [
          [2, 20],
          [3, 30],
        ],
        "the replayed messages carry the views after them",
      );
      // Another epoch: it has seen nothing of this one, which follows from its start, the initial view first.
      const lost = await raw(s, item, "cat", "&seq=1&epoch=gone");
      assert.deepEqual([lost.welcome.seq, lost.welcome.view], [0, { best: null, bids: 0, closed: false }]);
      const resync = await lost.socket.json<{ type: string; reason: string }>();
      assert.deepEqual([resync.type, resync.reason], ["resync", "epoch_changed"]);
      const all: { seq: number; view: View }[] = [];
      for (let i = 0; i < 3; i++) all.push(await lost.socket.json<{ seq: number; view: View }>());
      assert.deepEqual(
        all.map((f) => [f.seq, f.view.best?.amount]),
        [
          [1, 10],
          [2, 20],
          [3, 30],
        ],
      );
      for (const m of [a, back, lost]) await m.socket.close();
    },
  },
  {
    name: "room state across the SDK's own reconnect: after a dropped socket it resumes exactly, keeps its view, and the change it missed arrives with its view, once — JSON and MessagePack",
    clients: ["sdk-websocket"],
    server: "examples",
    async run(s) {
      for (const codec of [undefined, msgpack]) {
        const item = freshRoom(codec ? "drop-p" : "drop-j");
        // The sockets the SDK opens, so the test can drop one as a network would.
        const opened: WebSocket[] = [];
        class Tracked extends WebSocket {
          constructor(...args: ConstructorParameters<typeof WebSocket>) {
            super(...args);
            opened.push(this);
          }
        }
        const ada = joinRoom<typeof auction>(`${s.ws}/realtime?key=${KEY}&name=ada`, item, {
          path: "/auction/:item",
          WebSocket: Tracked as unknown as WebSocketConstructor,
          ...(codec ? { codec } : {}),
          reconnect: { minDelayMs: 50 },
        });
        const states: [number, View][] = [];
        const gaps: unknown[] = [];
        ada.on("state", (change) => states.push([change.seq, change.view as View]));
        ada.on("gap", (g) => gaps.push(g));
        const welcomes: (boolean | undefined)[] = [];
        ada.on("welcome", (w) => welcomes.push(w.resumed));
        const bob = await raw(s, item, "bob");
        try {
          await withTimeout(ada.ready, 15_000, "join");
          assert.deepEqual(await ada.publish({ type: "bid", amount: 10 }), { seq: 1 });
          const one: View = { best: { amount: 10, bidder: "ada" }, bids: 1, closed: false };
          await until(() => ada.seq >= 1, 10_000, "its own message");
          let rejoined = false;
          ada.on("reconnecting", () => {
            rejoined = true;
          });
          opened.at(-1)?.terminate();
          // While it is away (or just back): a change it has not seen.
          bid(bob.socket, 15, "b2");
          await bob.socket.until("ack");
          await until(() => ada.seq >= 2 && ada.readyState === 1, 15_000, "resumed, and the missed change");
          assert.equal(rejoined, true, "it reconnected");
          assert.equal(opened.length, 2, "one new socket");
          const two: View = { best: { amount: 15, bidder: "bob" }, bids: 2, closed: false };
          assert.deepEqual(
            states,
            [
              [0, { best: null, bids: 0, closed: false }],
              [1, one],
              [2, two],
            ],
            "no view from the resumed welcome (it keeps its own), the missed change's once",
          );
          assert.deepEqual(ada.state, two);
          assert.deepEqual(gaps, [], "an exact resume: no gap");
          assert.deepEqual(welcomes, [undefined, true], "the second welcome resumed");
        } finally {
          ada.close();
          await bob.socket.close();
        }
      }
    },
  },
  {
    name: "room state past history's reach: a resume whose next seq history no longer keeps (or of another epoch, whose start is gone) gets the view of now in its welcome, resync (history_truncated; epoch_changed first), then the live stream with views",
    clients: ["ws", "sdk-websocket", "sdk-polling"],
    server: "examples",
    run: (s, k) => pastHistory(s, k),
  },
  {
    name: "room state past history's reach over MessagePack: the welcome's view of now and the resync, positional",
    clients: ["sdk-websocket", "sdk-polling"],
    server: "examples",
    run: (s, k) => pastHistory(s, k, msgpack),
  },
  {
    name: "pushes go through the route: the push handler's transaction closes the auction in the room's order, a refused push answers its own code and changes nothing",
    clients: ["ws"],
    server: "examples",
    async run(s) {
      const item = freshRoom("pushed-lot");
      const a = await raw(s, item, "ada");
      bid(a.socket, 10, "b1");
      await a.socket.until("ack");
      const refused = await pushTo(s, item, { type: "bid", amount: 50 });
      assert.equal(refused.status, 400);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "backend_cannot_bid");
      const keyed = await pushTo(s, item, { type: "close" }, { "idempotency-key": "k1" });
      assert.equal(keyed.status, 400, "a push handler decides what a repeat is: no idempotency key");
      const invalid = await pushTo(s, item, { type: "nope" });
      assert.equal(invalid.status, 400, "the body is checked against the route's schema first");
      const closed = await pushTo(s, item, { type: "close" });
      assert.equal(closed.status, 200);
      assert.deepEqual(await closed.json(), { room: item, seq: 2 }, "the push answers its transaction's seq");
      const m = await a.socket.until<{ seq: number; from: string; data: Json; view: View }>("message");
      assert.deepEqual(
        [m.seq, m.from, m.data, m.view.closed],
        [2, "server", { type: "closed", winner: "ada", amount: 10 }, true],
      );
      bid(a.socket, 100, "b2");
      assert.equal(
        (await a.socket.until<{ code: string }>("error")).code,
        "auction_closed",
        "no bid commits after the close",
      );
      const again = await pushTo(s, item, { type: "close" });
      assert.deepEqual(await again.json(), { room: item }, "closing a closed auction publishes nothing: no seq");
      await a.socket.close();
    },
  },
  {
    name: "timers: the seller's deadline (a room timer) closes the auction once, at its time; a seller joining again does not move it",
    clients: ["ws"],
    server: "examples",
    async run(s) {
      const item = freshRoom("timed-lot");
      const seller = await raw(s, item, "sam", "&role=seller&closeIn=1500");
      const scheduled = Date.now();
      // A seller joining again (a reconnect) leaves the pending deadline where it is.
      const again = await raw(s, item, "sue", "&role=seller&closeIn=60000");
      bid(again.socket, 10, "b1");
      await again.socket.until("ack");
      const closed = await seller.socket.until<{ seq: number; from: string; data: Json; view: View }>(
        "message",
        10_000,
      );
      const at = Date.now() - scheduled;
      assert.equal(closed.data.type, "bid");
      const end = await seller.socket.until<{ seq: number; from: string; data: Json; view: View }>("message", 10_000);
      assert.deepEqual([end.seq, end.from, end.data.type, end.view.closed], [2, "server", "closed", true]);
      assert.ok(at < 8000, `fired near its time (${at} ms after a 1.5 s schedule)`);
      await sleep(2500);
      const late = await raw(s, item, "cat");
      assert.equal(late.welcome.seq, 2, "once: nothing after the close");
      for (const m of [seller, again, late]) await m.socket.close();
    },
  },
  {
    name: "view frames (a change that published no message) reach the SDK in seq order over both transports, in JSON and MessagePack: the occupied hook's, a timer's",
    clients: ["sdk-websocket", "sdk-polling"],
    server: "hardened",
    async run(s, kind) {
      for (const codec of [undefined, msgpack]) {
        const room = freshRoom(codec ? "vp" : "vj").slice(0, 20);
        const client = joinRoom<typeof visits>(s.ws, room, {
          path: "/visits/:room",
          WebSocket: WebSocket as unknown as WebSocketConstructor,
          transport: kind === "sdk-polling" ? "polling" : "websocket",
          ...(codec ? { codec } : {}),
          reconnect: false,
        });
        const states: [number, unknown][] = [];
        client.on("state", (change) => states.push([change.seq, change.view]));
        try {
          await withTimeout(client.ready, 15_000, "join");
          // The occupied hook's transaction changes the view and publishes nothing: a view frame, seq 1.
          await until(() => client.seq >= 1, 10_000, "the occupied hook's view frame");
          assert.deepEqual(client.state, { occupied: 1, vacated: 0, fired: {} });
          assert.deepEqual(await client.publish({ ring: "a", inMs: 100 }), {}, "scheduling publishes nothing");
          await until(() => client.seq >= 2, 10_000, "the timer's view frame");
          const fired = { occupied: 1, vacated: 0, fired: { a: 1 } };
          assert.deepEqual(client.state, fired, "the view as of seq 2");
          assert.deepEqual(
            states.filter(([seq]) => seq > 0),
            [
              [1, { occupied: 1, vacated: 0, fired: {} }],
              [2, fired],
            ],
            "each view frame once, in seq order",
          );
        } finally {
          client.close();
        }
      }
    },
  },
  {
    name: "handlers read their room: ctx.room.history(after, limit) pages the room's recent messages by seq, ctx.room.state() the committed state",
    clients: ["ws"],
    server: "hardened",
    async run(s) {
      const room = freshRoom("ledger").slice(0, 20);
      const socket = await connect(`${s.ws}/ledger/${room}`, "edgewire.v1");
      assert.equal((await socket.json<{ type: string }>()).type, "welcome");
      for (let n = 1; n <= 6; n++) {
        socket.sendJson({ type: "publish", id: `a${n}`, data: { add: n } });
        await socket.until("ack");
      }
      const read = async (after: number, limit: number) => {
        socket.sendJson({ type: "publish", data: { after, limit } });
        return socket.until<{ state: { n: number }; seqs: number[] }>("read");
      };
      assert.deepEqual(await read(2, 3), { type: "read", state: { n: 21 }, seqs: [3, 4, 5] }, "after 2, at most 3");
      assert.deepEqual((await read(0, 2)).seqs, [1, 2], "from the start");
      assert.deepEqual((await read(4, 100)).seqs, [5, 6], "to the end");
      assert.deepEqual((await read(6, 10)).seqs, [], "nothing after the last");
      await socket.close();
    },
  },
  {
    name: "lifecycle hooks: occupied runs when a room gets its first member, vacated when it loses its last — once each",
    clients: ["ws"],
    server: "hardened",
    async run(s) {
      const room = freshRoom("visits").slice(0, 20);
      const enter = async () => {
        const socket = await connect(`${s.ws}/visits/${room}`, "edgewire.v1");
        const welcome = await socket.json<{ type: string; view: { occupied: number; vacated: number } }>();
        assert.equal(welcome.type, "welcome");
        return { socket, welcome };
      };
      const a = await enter();
      const first = await a.socket.until<{ view: { occupied: number; vacated: number } }>("view");
      assert.deepEqual(hooks(first.view), { occupied: 1, vacated: 0 });
      const b = await enter();
      assert.deepEqual(hooks(b.welcome.view), { occupied: 1, vacated: 0 }, "a second member does not occupy it again");
      await a.socket.close();
      await b.socket.close();
      // The vacated hook's transaction runs after the last leave: the next first member sees it.
      let seen = { occupied: 0, vacated: 0 };
      const deadline = Date.now() + 10_000;
      while (seen.vacated === 0 && Date.now() < deadline) {
        await sleep(100);
        const c = await enter();
        seen = c.welcome.view;
        await c.socket.close();
      }
      assert.equal(seen.vacated >= 1, true, "vacated ran after the room emptied");
      const d = await enter();
      const occupiedAgain = await d.socket.until<{ view: { occupied: number; vacated: number } }>("view");
      assert.equal(
        occupiedAgain.view.occupied,
        occupiedAgain.view.vacated + 1,
        "each emptying, then each first join, once",
      );
      await d.socket.close();
    },
  },
  {
    name: "timers fire once each: a run is counted in room state (not idempotent), a timer scheduled again replaces it, two names fire twice",
    clients: ["ws"],
    server: "hardened",
    async run(s) {
      const room = freshRoom("rings").slice(0, 20);
      const socket = await connect(`${s.ws}/visits/${room}`, "edgewire.v1");
      assert.equal((await socket.json<{ type: string }>()).type, "welcome");
      const ring = (name: string, inMs: number, id: string) =>
        socket.sendJson({ type: "publish", id, data: { ring: name, inMs } });
      ring("a", 60_000, "1");
      ring("a", 400, "2"); // replaces the 60 s one
      ring("b", 600, "3");
      for (let i = 0; i < 3; i++) await socket.until("ack");
      let fired: Record<string, number> = {};
      const deadline = Date.now() + 15_000;
      while ((fired.a === undefined || fired.b === undefined) && Date.now() < deadline) {
        const changed = await socket.until<{ view: { fired: Record<string, number> } }>("view", 15_000);
        fired = changed.view.fired;
      }
      await sleep(2_000); // a second run would have come by now (a lease, an alarm retry)
      const late = await connect(`${s.ws}/visits/${room}`, "edgewire.v1");
      const welcome = await late.json<{ view: { fired: Record<string, number> } }>();
      assert.deepEqual(welcome.view.fired, { a: 1, b: 1 }, "each ran once, the replaced one never");
      await socket.close();
      await late.close();
    },
  },
  {
    name: "Durable Object evicted between two transactions keeps room state, view and its pending timer (alarm)",
    clients: ["ws"],
    server: "examples",
    unsupported: (r) =>
      r === "workerd" ? undefined : "no eviction: a room's state lives in the process for its whole life",
    async run(s) {
      const item = freshRoom("evict-lot");
      const presence = async () =>
        (await (await fetch(`${s.http}/realtime/auction/${item}`, { headers: { "x-api-key": KEY } })).json()) as {
          instance: string;
        };
      // The seller's deadline falls after the eviction: the object's alarm, kept in storage, wakes it.
      const keeper = await raw(s, item, "ada", "&role=seller&closeIn=18000");
      bid(keeper.socket, 10, "b1");
      await keeper.socket.until("ack");
      const before = await presence();
      await sleep(13_000);
      const late = await raw(s, item, "bob");
      assert.notEqual((await presence()).instance, before.instance, "the object was evicted and rebuilt");
      assert.deepEqual(late.welcome.view, { best: { amount: 10, bidder: "ada" }, bids: 1, closed: false });
      bid(late.socket, 12, "low");
      assert.equal(
        (await late.socket.until<{ code: string }>("error")).code,
        "bid_too_low",
        "the state is the stored one",
      );
      bid(late.socket, 15, "b2");
      const m = await late.socket.until<{ seq: number; view: View }>("message");
      assert.deepEqual([m.seq, m.view.bids], [2, 2]);
      const closed = await late.socket.until<{ seq: number; data: Json; view: View }>("message", 15_000);
      assert.deepEqual(
        [closed.seq, closed.data.type, closed.view.closed],
        [3, "closed", true],
        "the pending alarm survived",
      );
      await late.socket.close();
      await keeper.socket.close();
    },
  },
];
