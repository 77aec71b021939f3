/**
 * The SDK against a real server on every runtime, where what it does depends on what the server
 * says: a publish over the server's frame limit, and credentials (`token`) on both transports.
 */
import assert from "node:assert/strict";
import WebSocket from "ws";
import { joinRoom, type RoomClient, type RoomError, type WebSocketConstructor } from "../../src/client/index.ts";
import type { RunningServer } from "../support/servers.ts";
import { type ClientKind, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { freshRoom, join } from "./cases.ts";
import { token } from "./hardening-cases.ts";

/** The service's frame limit in these cases (SERVICE_ENV leaves the 1 MiB default). */
const LIMIT = 1024 * 1024;

const sdk = (kind: ClientKind) => ({
  WebSocket: WebSocket as unknown as WebSocketConstructor,
  transport: kind === "sdk-polling" ? ("polling" as const) : ("websocket" as const),
  reconnect: { minDelayMs: 50, maxDelayMs: 500 },
});

const refusal = (p: Promise<unknown>) =>
  withTimeout(
    p.then(
      () => assert.fail("the publish must be refused"),
      (e: unknown) => (e as RoomError).code,
    ),
    20_000,
    "publish settles",
  );

/** The SDK cases (service or hardened server). */
export const clientCases: Case[] = [
  {
    name: "SDK: a publish over the frame limit rejects with message_too_large — refused before sending once the welcome said the limit, or learnt from the server's 1009 — nothing is published and the client resumes",
    clients: ["sdk-websocket", "sdk-polling"],
    async run(s, kind) {
      const room = freshRoom("too-big");
      const other = await join(s, room);
      const big = { text: "x".repeat(LIMIT + 10) };
      let client: RoomClient | undefined;
      try {
        // Before the welcome the client does not know the limit: the frame goes out and the server refuses it.
        client = joinRoom(s.ws, room, sdk(kind));
        const early = client.publish(big);
        assert.equal(await refusal(early), "message_too_large", "learnt from the server's refusal");
        const welcome = await withTimeout(client.ready, 20_000, "the client (re)joins");
        assert.equal(welcome.maxMessageBytes, LIMIT, "the welcome says the limit");
        // Now it knows: refused without a word on the wire.
        assert.equal(await refusal(client.publish(big)), "message_too_large");
        assert.deepEqual(
          await client.publish({ text: "small" }),
          { seq: 1 },
          "the connection works; nothing else was published",
        );
        const seen = await other.socket.until<{ seq: number; data: unknown }>("message");
        assert.deepEqual([seen.seq, seen.data], [1, { text: "small" }]);
      } finally {
        client?.close();
        await other.socket.close();
      }
    },
  },
  {
    name: "SDK token option: a string or a function called before every connect and reconnect, sent as the bearer subprotocol (WebSocket) or Authorization (long-polling); a route that requires a token admits it",
    clients: ["sdk-websocket", "sdk-polling"],
    server: "hardened",
    async run(s: RunningServer, kind) {
      const r = freshRoom("tok").slice(0, 24);
      const allowed = await token({ rooms: [`vault:${r}`] });
      // A string.
      const fixed = joinRoom(s.ws, r, { ...sdk(kind), path: "/vault/:room", token: allowed });
      await withTimeout(fixed.ready, 15_000, "joins with a string token");
      assert.equal(fixed.socket.protocol, "edgewire.v1", "the token is never the protocol");
      fixed.close();
      // A function: called for every attempt, so a reconnect gets a fresh token.
      let calls = 0;
      const client = joinRoom(s.ws, r, {
        ...sdk(kind),
        path: "/vault/:room",
        token: async () => {
          calls++;
          return token({ rooms: [`vault:${r}`] });
        },
      });
      try {
        await withTimeout(client.ready, 15_000, "joins with a token function");
        assert.equal(calls, 1);
        // Make the server drop the connection (a frame over its limit): the client reconnects, asking anew.
        const rejoined = new Promise<void>((done) => client.on("welcome", () => done()));
        client.socket.send("x".repeat(2 * 1024 * 1024));
        await withTimeout(rejoined, 20_000, "rejoins after the drop");
        assert.equal(calls, 2, "the function was asked again for the reconnect");
        assert.ok((await client.publish("hi")).seq, "publishes after the reconnect");
      } finally {
        client.close();
      }
      // Without a token the route refuses, finally.
      const none = joinRoom(s.ws, r, { ...sdk(kind), path: "/vault/:room" });
      const error = (await withTimeout(
        none.ready.then(
          () => assert.fail("refused"),
          (e: unknown) => e,
        ),
        15_000,
        "refused",
      )) as RoomError;
      assert.equal(error.code, "unauthorized");
      none.close();
    },
  },
];
