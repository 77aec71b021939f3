/**
 * Conformance cases of the long-polling transport, run on every runtime. The
 * servers run with short timings (EDGEWIRE_POLL_TIMEOUT_MS / _IDLE_MS, see
 * conformance.test.ts) so expiry is observable in seconds.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { json, PollClient, type WireFrame } from "../support/poll-client.ts";
import type { Case } from "./cases.ts";
import { freshRoom, join, push } from "./cases.ts";

type Json = Record<string, unknown>;

/** Poll frames until one whose JSON `type` is `type`. */
async function pollUntil<T = Json>(client: PollClient, type: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no ${type} within ${ms} ms`);
    const answer = await client.poll();
    // Keep frames after the match for the next call: rewind the cursor.
    for (const [i, frame] of answer.frames.entries()) {
      if ("t" in frame && (JSON.parse(frame.t) as { type?: string }).type === type) {
        client.cursor = answer.cursor - answer.frames.length + i + 1;
        return JSON.parse(frame.t) as T;
      }
    }
    if (answer.close) throw new Error(`session closed while waiting for ${type}`);
  }
}

/** The long-polling cases as written. */
const rawPollingCases: Case[] = [
  {
    name: "polling: echo text and binary",
    async run(s) {
      const client = await PollClient.open(`${s.http}/echo`);
      const bytes = randomBytes(3000);
      assert.equal(await client.send([{ t: "héllo 🌍" }, { b: bytes.toString("base64") }, { b: "" }]), 200);
      const { frames } = await client.collect(3);
      assert.deepEqual(frames, [{ t: "héllo 🌍" }, { b: bytes.toString("base64") }, { b: "" }]);
      assert.equal(await client.close(), 200);
    },
  },
  {
    name: "polling: subprotocol negotiated, unknown one refused",
    async run(s) {
      const res = await fetch(`${s.http}/echo/poll`, {
        method: "POST",
        headers: { "x-edgewire-protocol": "edgewire.v1" },
      });
      assert.equal(((await res.json()) as Json).protocol, "edgewire.v1");
      const bad = await fetch(`${s.http}/echo/poll`, { method: "POST", headers: { "x-edgewire-protocol": "chat.v9" } });
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: Json }).error.code, "unsupported_protocol");
      const badRoom = await fetch(`${s.http}/rooms/bad%20room/poll`, { method: "POST" });
      assert.equal(badRoom.status, 400);
      const missing = await fetch(`${s.http}/echo/poll/abcdefgh0123456789?cursor=0`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { error: Json }).error.code, "session_not_found");
    },
  },
  {
    name: "polling: a polling member and a WebSocket member share one order",
    async run(s) {
      const room = freshRoom("mixed");
      const ws = await join(s, room);
      const poller = await PollClient.open(`${s.http}/rooms/${room}`, "edgewire.v1");
      const welcome = await pollUntil<{ id: string; members: Json[] }>(poller, "welcome");
      assert.equal(welcome.members.length, 2);
      const joined = await ws.socket.until<{ member: Json }>("presence");
      assert.equal(joined.member.id, welcome.id);
      for (let i = 0; i < 5; i++) {
        ws.socket.sendJson({ type: "publish", data: `ws${i}` });
        await poller.send([{ t: JSON.stringify({ type: "publish", data: `poll${i}` }) }]);
      }
      const wsOrder: string[] = [];
      while (wsOrder.length < 10) {
        const m = await ws.socket.until<{ seq: number; data: string }>("message");
        wsOrder.push(`${m.seq}:${m.data}`);
      }
      const pollOrder: string[] = [];
      while (pollOrder.length < 10) {
        const m = await pollUntil<{ seq: number; data: string }>(poller, "message");
        pollOrder.push(`${m.seq}:${m.data}`);
      }
      assert.deepEqual(pollOrder, wsOrder);
      // Binary crosses transports both ways, as binary.
      const bytes = randomBytes(100);
      ws.socket.ws.send(bytes);
      let got: WireFrame | undefined;
      while (!got) got = (await poller.poll()).frames.find((f) => "b" in f);
      assert.deepEqual(got, { b: bytes.toString("base64") });
      await poller.send([{ b: Buffer.from("from poller").toString("base64") }]);
      let frame = await ws.socket.next();
      while (!frame.binary) frame = await ws.socket.next();
      assert.equal((frame.data as Buffer).toString(), "from poller");
      await poller.close(4000, "bye");
      const left = await ws.socket.until<{ event: string; code: number; reason: string }>("presence");
      assert.deepEqual([left.event, left.code, left.reason], ["leave", 4000, "bye"]);
      await ws.socket.close();
    },
  },
  {
    name: "polling: a held GET answers as soon as a message exists",
    async run(s) {
      const room = freshRoom("held");
      const poller = await PollClient.open(`${s.http}/rooms/${room}`);
      await pollUntil(poller, "welcome");
      const pending = poller.poll();
      await new Promise((r) => setTimeout(r, 200));
      await push(s, room, '"wake up"');
      // A GET ended by its timeout would hold no frames: this one carries the message.
      const answer = await pending;
      assert.equal(json<{ data: string }>(answer.frames[0]).data, "wake up");
      await poller.close();
    },
  },
  {
    name: "polling: a lost GET is repeated with its cursor, no loss, no duplicate",
    async run(s) {
      const room = freshRoom("cursor");
      const poller = await PollClient.open(`${s.http}/rooms/${room}`);
      await pollUntil(poller, "welcome");
      for (let i = 1; i <= 3; i++) await push(s, room, String(i));
      const first = await poller.get();
      const again = await poller.get();
      assert.deepEqual(again.answer, first.answer, "the same cursor returns the same frames");
      poller.cursor = first.answer.cursor;
      const seqs = first.answer.frames.map((f) => json<{ seq: number }>(f).seq);
      while (seqs.length < 3) seqs.push(...(await poller.poll()).frames.map((f) => json<{ seq: number }>(f).seq));
      assert.deepEqual(seqs, [1, 2, 3]);
      // A retried POST (same n) is handled once.
      const frame = { t: JSON.stringify({ type: "publish", data: "once" }) };
      await poller.send([frame], 7);
      await poller.send([frame], 7);
      await push(s, room, '"marker"');
      const data: string[] = [];
      while (!data.includes("marker"))
        data.push(...(await poller.poll()).frames.map((f) => json<{ data: string }>(f).data));
      assert.deepEqual(data, ["once", "marker"]);
      await poller.close();
    },
  },
  {
    name: "polling: messages larger than one poll's batch",
    async run(s) {
      const room = freshRoom("batch");
      const poller = await PollClient.open(`${s.http}/rooms/${room}`);
      await pollUntil(poller, "welcome");
      const big = (c: string) => c.repeat(200 * 1024);
      for (const c of ["a", "b", "c"]) await push(s, room, JSON.stringify(big(c)));
      // One message bigger than a whole batch still arrives, alone.
      await push(s, room, JSON.stringify("d".repeat(600 * 1024)));
      const first = await poller.poll();
      assert.ok(first.frames.length < 4, `a batch is bounded, got ${first.frames.length} frames`);
      const all = [...first.frames];
      while (all.length < 4) all.push(...(await poller.poll()).frames);
      assert.deepEqual(
        all.map((f) => json<{ data: string }>(f).data.slice(0, 1) + json<{ data: string }>(f).data.length),
        [`a${200 * 1024}`, `b${200 * 1024}`, `c${200 * 1024}`, `d${600 * 1024}`],
      );
      await poller.close();
    },
  },
  {
    name: "polling: server-initiated close (oversized frame) reaches the client; a lost final reply can be fetched again",
    async run(s) {
      const poller = await PollClient.open(`${s.http}/rooms/${freshRoom("pollbig")}`);
      await pollUntil(poller, "welcome");
      assert.equal(await poller.send([{ t: "z".repeat(1024 * 1024 + 1) }]), 200);
      const { close } = await poller.collect(Number.POSITIVE_INFINITY);
      assert.equal(close?.code, 1009);
      const again = await poller.get();
      assert.deepEqual([again.status, again.answer.close?.code, again.answer.frames.length], [200, 1009, 0]);
      // After one idle period (3 s here) the sid is forgotten.
      const deadline = Date.now() + 15_000;
      while ((await poller.get()).status !== 404) {
        assert.ok(Date.now() < deadline, "the ended session is forgotten after its idle period");
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  },
  {
    name: "polling: an abandoned session is reclaimed",
    async run(s) {
      const room = freshRoom("abandon");
      const ws = await join(s, room);
      const poller = await PollClient.open(`${s.http}/rooms/${room}`);
      const joined = await ws.socket.until<{ event: string; member: Json }>("presence");
      assert.equal(joined.event, "join");
      // No GET from now on: the server must drop the session by itself.
      const left = await ws.socket.until<{ event: string; code: number; member: Json }>("presence", 20_000);
      assert.deepEqual([left.event, left.code, left.member.id], ["leave", 1006, joined.member.id]);
      assert.equal((await poller.get()).status, 404);
      const listed = (await (await fetch(`${s.http}/rooms/${room}`)).json()) as { count: number };
      assert.equal(listed.count, 1);
      await ws.socket.close();
    },
  },
];

/** Every long-polling case (raw HTTP: the protocol itself, so one client kind). */
export const pollingCases: Case[] = rawPollingCases.map((c) => ({ ...c, clients: ["ws"] }));

/** Server settings the polling cases rely on (short, so expiry shows in seconds). */
export const POLLING_ENV = { EDGEWIRE_POLL_TIMEOUT_MS: "3000", EDGEWIRE_POLL_IDLE_MS: "3000" };
