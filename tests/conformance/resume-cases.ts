/**
 * Resume, on every runtime: a member whose connection is cut (a TCP relay
 * dropped, no Close frame) while messages are published gets exactly those
 * messages, in order, once, after it reconnects — with the SDK over WebSocket
 * and over long-polling, and by hand with `?seq=&epoch=`. When that cannot be
 * exact the client is told (`resync`); history is readable over HTTP.
 */
import assert from "node:assert/strict";
import WebSocket from "ws";
import { joinRoom, type RoomCodec, type RoomGap, type WebSocketConstructor } from "../../src/client/index.ts";
import { msgpack } from "../../src/client/msgpack.ts";
import { startRelay } from "../support/relay.ts";
import type { RunningServer } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { connect, freshRoom, push, pushAcrossEviction } from "./cases.ts";

type Json = Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `test` holds, polling. */
async function until(test: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

async function sdkResume(s: RunningServer, transport: "websocket" | "polling", codec?: RoomCodec): Promise<void> {
  const room = freshRoom(`resume-${transport}`);
  const relay = await startRelay(s.port);
  const client = joinRoom<{ n: number }>(`ws://127.0.0.1:${relay.port}`, room, {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    transport,
    ...(codec ? { codec } : {}),
    reconnect: { minDelayMs: 50, maxDelayMs: 200, jitter: 0 },
  });
  const seen: number[] = [];
  const gaps: RoomGap[] = [];
  let welcomes = 0;
  client.on("message", (m) => seen.push(m.data.n));
  client.on("gap", (g) => gaps.push(g));
  client.on("welcome", () => welcomes++);
  try {
    await withTimeout(client.ready, 15_000, "join");
    for (let n = 1; n <= 5; n++) await push(s, room, JSON.stringify({ n }));
    await until(() => seen.length === 5, 10_000, "the first five");
    // The network goes away: no Close frame, and no way back for a while.
    relay.down = true;
    relay.cut();
    // Long-polling: wait out the session — the GET held when the network went (POLLING_ENV: 3 s), then 3 s
    // idle and the sweep — so the reconnect is a new session that resumes, not the old one carrying on.
    if (transport === "polling") await sleep(8500);
    for (let n = 6; n <= 30; n++) await push(s, room, JSON.stringify({ n }));
    relay.down = false;
    await until(() => welcomes >= 2, 20_000, "the re-join");
    await until(() => seen.length >= 30, 10_000, "the 25 missed messages");
    await push(s, room, JSON.stringify({ n: 31 }));
    await until(() => seen.length >= 31, 10_000, "the live stream after the seam");
    await sleep(200);
    assert.deepEqual(
      seen,
      Array.from({ length: 31 }, (_, i) => i + 1),
      "every message once, in order, no gap at either seam",
    );
    assert.deepEqual(gaps, [], "no gap: the resume was exact");
  } finally {
    client.close();
    await relay.close();
  }
}

/** The resume cases (against the service). */
export const resumeCases: Case[] = [
  {
    name: "resume (SDK over WebSocket): cut off while 25 messages are published, it gets exactly those 25, in order, once, then the live stream",
    clients: ["ws"],
    run: (s) => sdkResume(s, "websocket"),
  },
  {
    name: "resume (SDK over long-polling): its session expired while 25 messages were published; the new session resumes with exactly those 25",
    clients: ["ws"],
    run: (s) => sdkResume(s, "polling"),
  },
  {
    name: "resume (SDK over WebSocket, MessagePack codec): the same cut, the same 25, in order, once",
    clients: ["ws"],
    run: (s) => sdkResume(s, "websocket", msgpack),
  },
  {
    name: "resume by hand: ?seq=&epoch= replays after seq (resumed welcome); a lost epoch or a truncated history answers resync — never a silent gap",
    clients: ["ws"],
    async run(s) {
      const room = freshRoom("resync");
      const a = await connect(`${s.ws}/rooms/${room}`, "edgewire.v1");
      const welcome = await a.json<{ epoch: string; seq: number }>();
      assert.match(welcome.epoch, /^[\w-]{8,}$/, "the welcome names the room's epoch");
      for (let n = 1; n <= 3; n++) await push(s, room, JSON.stringify(n));
      for (let n = 1; n <= 3; n++) assert.equal((await a.until<{ seq: number }>("message")).seq, n);
      const resumed = await connect(`${s.ws}/rooms/${room}?seq=1&epoch=${welcome.epoch}`, "edgewire.v1");
      const w = await resumed.json<{ type: string; seq: number; resumed?: boolean }>();
      assert.deepEqual([w.type, w.seq, w.resumed], ["welcome", 1, true]);
      for (const n of [2, 3]) assert.equal((await resumed.json<{ seq: number }>()).seq, n, "replayed in order");
      await push(s, room, JSON.stringify(4));
      assert.equal((await resumed.json<{ seq: number }>()).seq, 4, "then the live stream, no duplicate");
      await resumed.close();
      // An epoch the room does not have: its history was lost since (a flushed Redis, a reset object).
      // The client saw nothing of this epoch: it gets it from its start, after the resync.
      const stale = await connect(`${s.ws}/rooms/${room}?seq=2&epoch=old-epoch`, "edgewire.v1");
      const sw = await stale.json<{ seq: number; resumed?: boolean }>();
      assert.deepEqual([sw.seq, sw.resumed], [0, undefined], "a welcome before the new epoch's first message");
      const epochResync = await stale.json<{
        type: string;
        reason: string;
        from: number;
        to?: number;
        epoch: string;
      }>();
      assert.deepEqual(
        [epochResync.type, epochResync.reason, epochResync.epoch, epochResync.from, epochResync.to],
        ["resync", "epoch_changed", welcome.epoch, 3, undefined],
        "the old epoch's loss: from its next seq, to an end nobody knows",
      );
      for (const n of [1, 2, 3, 4])
        assert.equal((await stale.json<{ seq: number }>()).seq, n, "the new epoch, from its start");
      await stale.close();
      // History bounded at 100 (SERVICE_ENV): 300 more and seq 4 is gone.
      for (let i = 0; i < 300; i++) await push(s, room, JSON.stringify(i));
      const far = await connect(`${s.ws}/rooms/${room}?seq=4&epoch=${welcome.epoch}`, "edgewire.v1");
      await far.json();
      const truncated = await far.json<{ type: string; reason: string; from: number; to: number }>();
      assert.deepEqual(
        [truncated.type, truncated.reason, truncated.from, truncated.to],
        ["resync", "history_truncated", 5, 304],
      );
      await far.close();
      await a.close();
    },
  },
  {
    name: "history over HTTP: GET {room}/history?after=&limit= pages by seq with the epoch; checked like a join",
    clients: ["ws"],
    async run(s) {
      const room = freshRoom("history");
      const member = await connect(`${s.ws}/rooms/${room}`, "edgewire.v1");
      const { epoch } = await member.json<{ epoch: string }>();
      for (let n = 1; n <= 25; n++) await push(s, room, JSON.stringify({ n }));
      const page = async (after: number, limit: number) =>
        (await (await fetch(`${s.http}/rooms/${room}/history?after=${after}&limit=${limit}`)).json()) as {
          epoch: string;
          seq: number;
          messages: { seq: number; data: Json }[];
          next?: number;
        };
      const first = await page(0, 10);
      assert.deepEqual([first.epoch, first.seq, first.messages.length, first.next], [epoch, 25, 10, 10]);
      assert.deepEqual(
        first.messages.map((m) => m.data.n),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      const last = await page(20, 10);
      assert.deepEqual([last.messages.map((m) => m.seq), last.next], [[21, 22, 23, 24, 25], undefined]);
      const refused = await fetch(`${s.http}/rooms/${room}/history`, { headers: { origin: "https://evil.example" } });
      assert.equal(refused.status, 403, "the Origin policy applies to reads too");
      await member.close();
    },
  },
];

/** Only a Durable Object can be evicted between two messages. */
export const resumeRuntimeCases: Case[] = [
  {
    name: "Durable Object evicted between two messages keeps seq, epoch and history; a client resumes across it",
    clients: ["ws"],
    unsupported: (r) =>
      r === "workerd" ? undefined : "no hibernation: a room's history lives in the process for its whole life",
    async run(s) {
      const room = freshRoom("evict-resume");
      const keeper = new TestSocket(`${s.ws}/rooms/${room}`, "edgewire.v1");
      const w = await keeper.json<{ epoch: string }>();
      await push(s, room, JSON.stringify("one"));
      assert.equal((await keeper.until<{ seq: number }>("message")).seq, 1);
      assert.equal((await pushAcrossEviction(s, room, JSON.stringify("two"))).seq, 2);
      const back = await connect(`${s.ws}/rooms/${room}?seq=1&epoch=${w.epoch}`, "edgewire.v1");
      const welcome = await back.json<{ resumed?: boolean; epoch: string }>();
      assert.deepEqual([welcome.resumed, welcome.epoch], [true, w.epoch], "same epoch across the eviction");
      const replayed = await back.json<{ seq: number; data: string }>();
      assert.deepEqual([replayed.seq, replayed.data], [2, "two"], "history survived in SQLite");
      await back.close();
      await keeper.close();
    },
  },
];
