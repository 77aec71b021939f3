/**
 * Refused joins: a route that refuses a connection from its `initialState` (a ClientError, or a
 * state its schema refuses) answers a 4xx before the upgrade with that code and logs nothing, and
 * the SDK takes it as final — `ready` rejects with the code, no retry, no fallback — over WebSocket
 * and long-polling alike. Against tests/fixtures/hardened.ts (`/gated/:room`) on every runtime.
 */
import assert from "node:assert/strict";
import WebSocket from "ws";
import { joinRoom, type RoomError, type WebSocketConstructor } from "../../src/client/index.ts";
import type { RunningServer } from "../support/servers.ts";
import { type ClientKind, TestSocket, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { freshRoom } from "./cases.ts";

/** A short room name (the hardened server allows 24 characters). */
const room = (tag: string) => freshRoom(tag).slice(0, 24);

/** What a handshake to `url` was answered: the status and the body's error code and message. */
async function handshake(url: string) {
  const socket = new TestSocket(url, "edgewire.v1");
  const error = (await socket.opened.then(
    () => assert.fail(`${url} must be refused before the upgrade`),
    (e: unknown) => e,
  )) as { status?: number; body?: string };
  const body = JSON.parse(error.body ?? "{}") as { error?: { code?: string; message?: string } };
  return { status: error.status, code: body.error?.code, message: body.error?.message ?? "" };
}

/** Join `/gated/<r>?name=<name>` with the SDK on `kind`'s transport (reconnect on: a retry would show). */
function sdkJoin(s: RunningServer, kind: ClientKind, r: string, name: string) {
  const client = joinRoom(`${s.ws}?name=${encodeURIComponent(name)}`, r, {
    path: "/gated/:room",
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    // "auto": a WebSocket that kept failing would fall back to long-polling — which must not happen here.
    transport: kind === "sdk-polling" ? "polling" : "auto",
    reconnect: { minDelayMs: 50, maxDelayMs: 200 },
  });
  const events: string[] = [];
  client.on("reconnecting", () => events.push("reconnecting"));
  client.on("transport", (t) => events.push(`transport ${t.transport}`));
  return { client, events };
}

/** The refused-join cases (run against the hardened server). */
export const refusalCases: Case[] = (
  [
    {
      name: "refused join: initialState's ClientError (403, its code) and a state its schema refuses (400 invalid_state, the field named) answer before the upgrade; the probe says the same; nothing is logged as an error",
      clients: ["ws"] as const,
      async run(s) {
        const r = room("gated");
        const before = s.output().length;
        const banned = await handshake(`${s.ws}/gated/${r}?name=mallory`);
        assert.deepEqual([banned.status, banned.code, banned.message], [403, "banned", "mallory may not join"]);
        const long = await handshake(`${s.ws}/gated/${r}?name=${"x".repeat(33)}`);
        assert.deepEqual([long.status, long.code], [400, "invalid_state"]);
        assert.match(long.message, /name/, "the message names the field");
        // The probe the SDK sends after a failed handshake: the same admission, nothing opened.
        const probe = await fetch(`${s.http}/gated/${r}/poll?name=mallory`, {
          headers: { "x-edgewire-probe": "1", "x-edgewire-protocol": "edgewire.v1" },
        });
        assert.equal(probe.status, 403);
        assert.equal(probe.headers.get("x-edgewire-probe"), "refused");
        assert.equal(((await probe.json()) as { error: { code: string } }).error.code, "banned");
        const admitted = await fetch(`${s.http}/gated/${r}/poll?name=ada`, { headers: { "x-edgewire-probe": "1" } });
        assert.equal(admitted.status, 204);
        assert.equal(admitted.headers.get("x-edgewire-probe"), "admitted");
        const presence = (await (await fetch(`${s.http}/gated/${r}`)).json()) as { count: number };
        assert.equal(presence.count, 0, "a probe joins nobody");
        // And a good name still joins.
        const ok = new TestSocket(`${s.ws}/gated/${r}?name=ada`, "edgewire.v1");
        assert.equal((await ok.json<{ type: string }>()).type, "welcome");
        await ok.close();
        await new Promise((done) => setTimeout(done, 200));
        const logged = s.output().slice(before);
        assert.doesNotMatch(
          logged,
          /"level":"error"|initialState failed|request failed/,
          "a client's refusal is no fault",
        );
      },
    },
    {
      name: "refused join through the SDK is final: ready rejects with the route's code (banned, invalid_state), close 4403/4400, no retry and no fallback",
      clients: ["sdk-websocket", "sdk-polling"] as const,
      async run(s, kind) {
        for (const [name, code, close] of [
          ["mallory", "banned", 4403],
          ["x".repeat(33), "invalid_state", 4400],
        ] as const) {
          const { client, events } = sdkJoin(s, kind, room("gated-sdk"), name);
          const closed = new Promise<number>((done) => client.on("close", (c) => done(c.code)));
          const error = (await withTimeout(
            client.ready.then(
              () => assert.fail("the join must be refused"),
              (e: unknown) => e,
            ),
            15_000,
            "ready settles",
          )) as RoomError;
          assert.equal(error.code, code);
          assert.equal(await closed, close);
          // Long enough for a retry (50–200 ms backoff) or a fallback to have shown.
          await new Promise((done) => setTimeout(done, 500));
          assert.deepEqual(events, [], "no reconnect, no switch to long-polling");
          assert.equal(client.transport, kind === "sdk-polling" ? "polling" : "websocket");
          client.close();
        }
        // A name the route takes joins as usual.
        const { client } = sdkJoin(s, kind, room("gated-ok"), "ada");
        await withTimeout(client.ready, 15_000, "ada joins");
        client.close();
      },
    },
  ] satisfies Case[]
).map((c) => ({ ...c, server: "hardened" as const }));

/** The chat example's own refusal: a name over its schema's 32 characters (against the examples app). */
export const chatRefusalCases: Case[] = [
  {
    name: "chat example: a 33-character ?name= is refused before the upgrade (400 invalid_state naming `name`); the SDK's ready rejects with invalid_state, without retrying",
    clients: ["sdk-websocket", "sdk-polling"],
    server: "examples",
    async run(s, kind) {
      const long = "x".repeat(33);
      const raw = await handshake(`${s.ws}/realtime/chat/${room("chat-long")}?key=demo-key&name=${long}`);
      assert.deepEqual([raw.status, raw.code], [400, "invalid_state"]);
      assert.match(raw.message, /^state: name: /);
      const client = joinRoom<typeof import("../../examples/chat/chat.ts").chat>(
        `${s.ws}/realtime?key=demo-key&name=${long}`,
        room("chat-long"),
        {
          path: "/chat/:room",
          WebSocket: WebSocket as unknown as WebSocketConstructor,
          transport: kind === "sdk-polling" ? "polling" : "auto",
          reconnect: { minDelayMs: 50, maxDelayMs: 200 },
        },
      );
      let retries = 0;
      client.on("reconnecting", () => retries++);
      const error = (await withTimeout(
        client.ready.then(
          () => assert.fail("the join must be refused"),
          (e: unknown) => e,
        ),
        15_000,
        "ready settles",
      )) as RoomError;
      assert.equal(error.code, "invalid_state");
      await new Promise((done) => setTimeout(done, 300));
      assert.equal(retries, 0);
      client.close();
    },
  },
];
