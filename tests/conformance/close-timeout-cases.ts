/**
 * The close timeout: after the server's Close, a peer that never answers it must not keep its TCP
 * connection (and the server's descriptor and buffers). Raw sockets that never send a Close, on
 * every runtime, against the hardened server (EDGEWIRE_CLOSE_TIMEOUT_MS=2000).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { frame, RawSocket } from "../support/raw-socket.ts";
import type { RunningServer } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";
import type { Case } from "./cases.ts";
import { freshRoom } from "./cases.ts";
import { HARD_PUSH_TOKEN, HARDENED_ENV } from "./hardening-cases.ts";

const CLOSE_TIMEOUT_MS = Number(HARDENED_ENV.EDGEWIRE_CLOSE_TIMEOUT_MS);
/** How long past the timeout the connection may take to go: timers, scheduling on 2 busy cores. */
const SLACK_MS = 3000;

/** Whether the server still holds an established TCP connection to the client's local `port`. */
function established(server: RunningServer, port: number): boolean {
  const out = execFileSync("ss", ["-Htn", "state", "established", `( sport = :${server.port} and dport = :${port} )`], {
    encoding: "utf8",
  });
  return out.trim() !== "";
}

async function gone(server: RunningServer, port: number, ms: number): Promise<number> {
  const start = Date.now();
  while (established(server, port)) {
    if (Date.now() - start > ms) return Number.POSITIVE_INFINITY;
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - start;
}

/** The close-timeout cases (hardened server). */
export const closeTimeoutCases: Case[] = [
  {
    name: "close timeout: a peer that never answers the server's Close (a handler fault, 1011) loses its TCP connection within EDGEWIRE_CLOSE_TIMEOUT_MS",
    clients: ["ws"],
    server: "hardened",
    unsupported: (r) =>
      r === "workerd"
        ? "the Workers runtime cannot drop a WebSocket (no terminate or abort): one whose peer never answers the Close stays open (70 s+ under wrangler dev); on Cloudflare the edge owns the TCP connection"
        : undefined,
    async run(s) {
      const raw = await RawSocket.upgrade(s.port, "/faulty", { "X-Forwarded-For": "198.51.100.201" });
      raw.write(frame(1, "boom"));
      assert.equal(await raw.closeCode(10_000), 1011, "the server's Close");
      const closedAt = Date.now();
      // Never answer it: the server must drop the connection by itself.
      await raw.until(() => raw.ended, CLOSE_TIMEOUT_MS + SLACK_MS);
      assert.ok(raw.ended, `still connected ${Date.now() - closedAt} ms after the server's Close`);
      raw.destroy();
    },
  },
  {
    name: "close timeout: a slow consumer that reads nothing and never answers loses its TCP connection within EDGEWIRE_CLOSE_TIMEOUT_MS of leaving its room",
    clients: ["ws"],
    server: "hardened",
    unsupported: (r) =>
      r === "workerd"
        ? "a Durable Object's WebSocket reports no bufferedAmount (no slow consumer to close); TCP is the platform's"
        : r === "deno"
          ? "Deno keeps a connection whose writes are stuck behind a full window: nothing reachable from JS (close, idleTimeout, closing its resource) cancels them (measured 25 s+)"
          : undefined,
    async run(s) {
      const room = freshRoom("slow-tcp").slice(0, 24);
      const raw = await RawSocket.upgrade(s.port, `/rooms/${room}`, {
        "Sec-WebSocket-Protocol": "edgewire.v1",
        "X-Forwarded-For": "198.51.100.202",
      });
      const port = raw.socket.localPort as number;
      const watcher = new TestSocket(`${s.ws}/rooms/${room}`, "edgewire.v1", { "x-forwarded-for": "198.51.100.203" });
      await watcher.until("welcome");
      raw.socket.pause(); // read nothing from now on
      const chunk = JSON.stringify("x".repeat(64 * 1024));
      let left = false;
      const leave = (async () => {
        for (;;) {
          const p = await watcher.until<{ event: string; code?: number }>("presence", 60_000);
          if (p.event === "leave") {
            left = true;
            return;
          }
        }
      })();
      for (let i = 0; i < 400 && !left; i++)
        await fetch(`${s.http}/rooms/${room}/messages`, {
          method: "POST",
          body: chunk,
          headers: { authorization: `Bearer ${HARD_PUSH_TOKEN}` },
        });
      await withTimeout(leave, 20_000, "the slow consumer left its room");
      const took = await gone(s, port, CLOSE_TIMEOUT_MS + SLACK_MS);
      assert.ok(Number.isFinite(took), "the server still holds the slow consumer's TCP connection");
      raw.destroy();
      await watcher.close();
    },
  },
];
