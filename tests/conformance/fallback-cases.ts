/**
 * The SDK's automatic fallback on every runtime: with no WebSocket at all, and
 * behind a proxy that strips `Upgrade`, it switches to long-polling by itself,
 * says so, and chats with a WebSocket member of the same room.
 */
import assert from "node:assert/strict";
import WebSocket from "ws";
import { EdgewireSocket, type WebSocketConstructor } from "../../src/client/index.ts";
import type { RunningServer } from "../support/servers.ts";
import { startStripUpgradeProxy } from "../support/strip-upgrade-proxy.ts";
import { withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { freshRoom, join } from "./cases.ts";

/** Open an auto-transport SDK socket on `url` and chat with a ws member of `room` on `server`. */
async function chatThroughFallback(
  server: RunningServer,
  url: string,
  room: string,
  ctor: WebSocketConstructor | null,
) {
  const member = await join(server, room);
  const sdk = new EdgewireSocket(url, "edgewire.v1", {
    WebSocket: ctor,
    reconnect: { minDelayMs: 50, maxDelayMs: 200 },
  });
  const transports: string[] = [];
  sdk.addEventListener("transport", () => transports.push(sdk.transport));
  const frames: Record<string, unknown>[] = [];
  let wake = () => {};
  sdk.addEventListener("message", (e) => {
    frames.push(JSON.parse((e as MessageEvent).data as string));
    wake();
  });
  const next = async (type: string) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const i = frames.findIndex((f) => f.type === type);
      if (i >= 0) return frames.splice(i, 1)[0] as Record<string, unknown>;
      assert.ok(Date.now() < deadline, `no ${type} frame`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
  };
  await withTimeout(new Promise((r) => sdk.addEventListener("open", r, { once: true })), 20_000, "fallback open");
  assert.equal(sdk.transport, "polling");
  assert.equal(sdk.protocol, "edgewire.v1");
  await next("welcome");
  sdk.send(JSON.stringify({ type: "publish", data: "over polling" }));
  assert.equal((await member.socket.until<{ data: string }>("message")).data, "over polling");
  member.socket.sendJson({ type: "publish", data: "over websocket" });
  let message = await next("message");
  while (message.data !== "over websocket") message = await next("message");
  sdk.close(1000, "done");
  await member.socket.close();
  return transports;
}

/** Fallback cases: the SDK on its own, so one client kind. */
export const fallbackCases: Case[] = [
  {
    name: "fallback: no WebSocket in the client → long-polling",
    clients: ["ws"],
    async run(s) {
      const room = freshRoom("nows");
      await chatThroughFallback(s, `${s.ws}/rooms/${room}`, room, null);
    },
  },
  {
    name: "fallback: a proxy strips Upgrade → long-polling after failed handshakes",
    clients: ["ws"],
    async run(s) {
      const proxy = await startStripUpgradeProxy(s.http);
      try {
        const room = freshRoom("stripped");
        const url = `${proxy.url.replace("http", "ws")}/rooms/${room}`;
        const transports = await chatThroughFallback(s, url, room, WebSocket as unknown as WebSocketConstructor);
        assert.ok(proxy.upgrades >= 2, `the SDK tried WebSocket first (${proxy.upgrades} handshakes)`);
        assert.deepEqual(transports, ["polling"], "the switch was announced once");
      } finally {
        await proxy.close();
      }
    },
  },
];
