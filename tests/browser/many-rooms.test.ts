/**
 * Many rooms on one page in Chromium, on every runtime: a page calls joinRoom 25
 * times at once. Chromium delays a new handshake more the more are pending in the
 * page (src/client/pacing.ts), so without pacing the last welcome came after
 * 4–5 s; the SDK keeps at most 4 handshakes per host in flight. The test checks
 * that (with a counting WebSocket) and asserts the goal — all 25 live
 * within 1 s of the first call — the one timing assertion here, because the
 * goal is a time; the measured figures are printed at the end.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { selectedRuntimes, withBrowserAndServers } from "../support/browser.ts";

const ROOMS = 25;
const GOAL_MS = 1_000;
const ROUNDS_AT_MOST = 3;

interface PageResult {
  /** ms from the first joinRoom call to each room's welcome, ascending */
  welcomes: number[];
  ids: (string | undefined)[];
  transports: string[];
  /** the most handshakes the page had pending at once */
  maxPending: number;
}

// Runs in the page before its scripts: counts WebSocket handshakes pending (made, neither open nor
// closed). A string, not a function: tsx's compiled functions call helpers the page does not have.
const COUNT_PENDING_HANDSHAKES = `{
  const Native = window.WebSocket;
  window.pending = 0;
  window.maxPending = 0;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      window.pending += 1;
      window.maxPending = Math.max(window.maxPending, window.pending);
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        window.pending -= 1;
      };
      this.addEventListener("open", settle);
      this.addEventListener("close", settle);
    }
  };
}`;

// The page joins `rooms` rooms at once (after one untimed warm-up join: a server just started
// compiles and warms its route on its first) and reports when each was welcomed.
async function joinAtOnce(page: Page, rooms: number, prefix: string): Promise<PageResult> {
  return page.evaluate(
    async ({ rooms, prefix }) => {
      // The SDK as a page loads it from the server (/client.js).
      const sdk = "/client.js";
      const { joinRoom } = (await import(sdk)) as typeof import("../../src/client/index.ts");
      const base = location.origin.replace(/^http/, "ws");
      const counter = window as unknown as { pending: number; maxPending: number };
      const warm = joinRoom(base, `${prefix}-warm-up`);
      await warm.ready;
      warm.close();
      counter.maxPending = counter.pending;
      const t0 = performance.now();
      const joined = Array.from({ length: rooms }, (_, i) => joinRoom(base, `${prefix}-${i}`));
      const welcomes = await Promise.race([
        Promise.all(joined.map((room) => room.ready.then(() => Math.round(performance.now() - t0)))),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("not all welcomed in 20 s")), 20_000)),
      ]);
      const result = {
        welcomes: welcomes.sort((a, b) => a - b),
        ids: joined.map((room) => room.id),
        transports: joined.map((room) => room.transport),
        maxPending: counter.maxPending,
      };
      for (const room of joined) room.close();
      return result;
    },
    { rooms, prefix },
  );
}

describe("many rooms on one page in Chromium", () => {
  const fixture = withBrowserAndServers();
  const figures: string[] = [];
  after(() => {
    if (figures.length > 0) console.log(`\n${ROOMS} joinRoom calls at once in Chromium\n${figures.join("\n")}\n`);
  });

  for (const runtime of selectedRuntimes) {
    it(`${runtime}: ${ROOMS} rooms joined at once are all live within ${GOAL_MS} ms, at most 4 handshakes pending`, {
      timeout: 120_000,
    }, async (t) => {
      const server = fixture.server(runtime);
      const page = await fixture.browser().newPage();
      try {
        await page.addInitScript(COUNT_PENDING_HANDSHAKES);
        await page.goto(`${server.http}/healthz`);
        // Up to ROUNDS rounds, fresh rooms each, and the goal asserted on the fastest: the machine
        // is shared (2 cores, other test runs), and noise only ever adds time. Without pacing every
        // round takes 4–5 s.
        const lasts: number[] = [];
        for (let round = 1; round <= ROUNDS_AT_MOST; round++) {
          const result = await joinAtOnce(page, ROOMS, `many-${runtime}-${Date.now().toString(36)}-${round}`);
          const last = result.welcomes.at(-1) ?? Number.NaN;
          lasts.push(last);
          t.diagnostic(
            `round ${round}: all ${ROOMS} live in ${last} ms (first ${result.welcomes[0]} ms, median ${result.welcomes[ROOMS >> 1]} ms; ${result.maxPending} handshakes pending at most)`,
          );
          assert.ok(!result.ids.includes(undefined), "every room has its member id");
          assert.equal(new Set(result.ids).size, ROOMS, "25 members, one per room");
          assert.deepEqual(new Set(result.transports), new Set(["websocket"]));
          assert.ok(result.maxPending <= 4, `the SDK paces handshakes: ${result.maxPending} were pending at once`);
          if (last < GOAL_MS) break;
        }
        figures.push(`${runtime}: all ${ROOMS} live in ${lasts.join(" ms, then ")} ms`);
        assert.ok(
          Math.min(...lasts) < GOAL_MS,
          `the issue's goal: ${ROOMS} rooms live within ${GOAL_MS} ms of the first joinRoom; the last welcome came after ${lasts.join(", ")} ms in ${lasts.length} rounds`,
        );
      } finally {
        await page.close();
      }
    });
  }
});
