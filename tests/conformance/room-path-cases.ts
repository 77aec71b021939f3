/**
 * Room paths with more than one parameter: `/org/:org/board/:board` (tests/fixtures/hardened.ts),
 * where the room is the tuple (org, board), named `acme/b1` in frames, history, presence, pushes,
 * claims and (on Cloudflare) its Durable Object. On every runtime.
 */
import assert from "node:assert/strict";
import WebSocket from "ws";
import { joinRoom, type WebSocketConstructor } from "../../src/client/index.ts";
import type { RunningServer } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { freshRoom } from "./cases.ts";
import { HARD_PUSH_TOKEN, token } from "./hardening-cases.ts";

type Json = Record<string, unknown>;
/** A value no other run uses (the hardened server allows 24 characters per value). */
const value = (tag: string) => freshRoom(tag).slice(0, 24);

/** Join board `b` of `org` with a raw socket: the welcome, and what the route's open handler sent. */
async function enter(s: RunningServer, org: string, b: string, headers: Record<string, string> = {}) {
  const socket = new TestSocket(`${s.ws}/org/${org}/board/${b}`, "edgewire.v1", headers);
  await withTimeout(socket.opened, 10_000, "join");
  const welcome = await socket.until<Json>("welcome");
  const params = await socket.until<Json>("params");
  return { socket, welcome, params };
}

/** The multi-parameter room cases (hardened server). */
export const roomPathCases: Case[] = [
  {
    name: "room paths with several parameters: /org/:org/board/:board rooms are the tuple (named org/board) in welcomes, messages, presence, history and pushes; ctx.params and initialState see the values; tuples sharing a value are separate rooms",
    clients: ["ws"],
    server: "hardened",
    async run(s) {
      const org = value("acme");
      const b1 = value("b1");
      const b2 = value("b2");
      const a = await enter(s, org, b1);
      assert.equal(a.welcome.room, `${org}/${b1}`);
      assert.deepEqual(a.params, { type: "params", org, board: b1, room: `${org}/${b1}`, state: { org } });
      const other = await enter(s, org, b2);
      const elsewhere = await enter(s, b1, b2); // another tuple sharing a value
      const b = await enter(s, org, b1);
      await a.socket.until("presence");
      a.socket.sendJson({ type: "publish", id: "1", data: "hi" });
      for (const m of [a, b]) {
        const f = await m.socket.until<Json>("message");
        assert.deepEqual([f.room, f.seq, f.data], [`${org}/${b1}`, 1, "hi"]);
      }
      const pushed = await fetch(`${s.http}/org/${org}/board/${b1}/messages`, {
        method: "POST",
        body: JSON.stringify("from the backend"),
        headers: { authorization: `Bearer ${HARD_PUSH_TOKEN}` },
      });
      assert.deepEqual(await pushed.json(), { room: `${org}/${b1}`, seq: 2 });
      const presence = (await (await fetch(`${s.http}/org/${org}/board/${b1}`)).json()) as Json;
      assert.deepEqual([presence.room, presence.count], [`${org}/${b1}`, 2]);
      const history = (await (await fetch(`${s.http}/org/${org}/board/${b1}/history`)).json()) as {
        room: string;
        messages: Json[];
      };
      assert.equal(history.room, `${org}/${b1}`);
      assert.deepEqual(
        history.messages.map((m) => m.data),
        ["hi", "from the backend"],
      );
      // The other tuples saw none of it.
      for (const m of [other, elsewhere]) {
        const seen = await m.socket.until<Json>("message", 500).catch(() => undefined);
        assert.equal(seen, undefined, "a different tuple is a different room");
      }
      const empty = (await (await fetch(`${s.http}/org/${org}/board/${b2}`)).json()) as Json;
      assert.deepEqual([empty.seq, empty.count], [0, 1]);
      // A bad value is refused, naming the parameter.
      const bad = new TestSocket(`${s.ws}/org/${org}/board/no%20spaces`, "edgewire.v1");
      const refused = (await bad.opened.then(
        () => assert.fail("refused"),
        (e: unknown) => e,
      )) as { status: number; body: string };
      assert.equal(refused.status, 400);
      assert.match(JSON.parse(refused.body).error.message, /^board: /);
      await Promise.all([a, b, other, elsewhere].map((m) => m.socket.close()));
    },
  },
  {
    name: "room paths with several parameters: token claims name the tuple (org/board:<org>/*); the SDK joins by params over WebSocket and long-polling",
    clients: ["sdk-websocket", "sdk-polling"],
    server: "hardened",
    async run(s, kind) {
      const org = value("tenant");
      const b1 = value("b");
      const jwt = await token({ rooms: [`org/board:${org}/*`] }); // the route is named from its path: org/board
      const sdk = (params: { org: string; board: string }) =>
        joinRoom(s.ws, params, {
          path: "/org/:org/board/:board",
          token: jwt,
          WebSocket: WebSocket as unknown as WebSocketConstructor,
          transport: kind === "sdk-polling" ? "polling" : "websocket",
          reconnect: { minDelayMs: 50, maxDelayMs: 200 },
        });
      const client = sdk({ org, board: b1 });
      try {
        const welcome = await withTimeout(client.ready, 15_000, "joins its tenant's board");
        assert.equal(welcome.room, `${org}/${b1}`);
        assert.equal(client.room, `${org}/${b1}`);
        assert.deepEqual(client.params, { org, board: b1 });
        assert.deepEqual(await client.publish({ n: 1 }), { seq: 1 });
      } finally {
        client.close();
      }
      const foreign = sdk({ org: value("other"), board: b1 });
      const error = (await withTimeout(
        foreign.ready.then(
          () => assert.fail("another tenant's board is refused"),
          (e: unknown) => e,
        ),
        15_000,
        "refused",
      )) as { code: string };
      assert.equal(error.code, "forbidden");
      foreign.close();
    },
  },
];
