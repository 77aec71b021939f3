/**
 * Graceful shutdown on Node, Deno and Bun: SIGTERM makes readiness fail and
 * refuses new connections at once, closes every socket with 1012 and a
 * reconnect hint at moments spread over the drain window (so clients do not
 * stampede the next instance), ends long-polling sessions the same way, and
 * exits within a bound. (workerd: a deploy terminates every socket — the
 * platform's, not ours; the capability table says so.)
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PollClient } from "../support/poll-client.ts";
import { type RuntimeName, startServer } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";

const DRAIN_MS = 1500;
const selected = (process.env.EDGEWIRE_RUNTIMES?.split(",") ?? ["node", "deno", "bun"]).filter(
  (r) => r !== "workerd",
) as RuntimeName[];

// One server at a time: the repeated-signal case tells a relayed copy from a second Ctrl-C by the
// time between them, and six servers starting and draining at once on two cores starve each other
// (seen in CI: a copy sent 50 ms after the first was taken for a second signal).
describe("graceful shutdown", { concurrency: 1 }, () => {
  for (const runtime of selected) {
    it(`${runtime}: SIGTERM drains with jittered 1012 closes and a reconnect hint, then exits`, {
      timeout: 60_000,
    }, async () => {
      const server = await startServer(runtime, { EDGEWIRE_DRAIN_MS: String(DRAIN_MS) });
      try {
        const members: { socket: TestSocket; closedAt?: number; code?: number; reason?: string }[] = [];
        for (let i = 0; i < 12; i++) {
          const socket = new TestSocket(`${server.ws}/rooms/drain`, "edgewire.v1");
          await withTimeout(socket.opened, 10_000, "join");
          members.push({ socket });
        }
        const poller = await PollClient.open(`${server.http}/rooms/drain-poll`, "edgewire.v1");
        const signalled = Date.now();
        for (const m of members) {
          void m.socket.ended.then(({ code, reason }) =>
            Object.assign(m, { closedAt: Date.now() - signalled, code, reason }),
          );
        }
        server.signal("SIGTERM");
        // Readiness fails and new connections are refused while the drain runs.
        await new Promise((r) => setTimeout(r, 150));
        const ready = await fetch(`${server.http}/readyz`);
        assert.equal(ready.status, 503, "readiness turns 503 while draining");
        const late = new TestSocket(`${server.ws}/rooms/drain`, "edgewire.v1");
        const refused = (await late.opened.then(
          () => assert.fail("no new connection while draining"),
          (e: unknown) => e,
        )) as { status?: number };
        assert.equal(refused.status, 503);
        const pollEnd = await withTimeout(poller.collect(Number.POSITIVE_INFINITY), 10_000, "polling close");
        assert.equal(pollEnd.close?.code, 1012, "a polling session ends with 1012 too");
        await withTimeout(Promise.all(members.map((m) => m.socket.ended)), DRAIN_MS + 5000, "every socket closed");
        for (const m of members) {
          assert.equal(m.code, 1012, "service restart");
          assert.match(m.reason ?? "", /reconnect in \d+ ms/, "with a reconnect hint");
        }
        const times = members.map((m) => m.closedAt as number).sort((a, b) => a - b);
        const spread = (times.at(-1) as number) - (times[0] as number);
        assert.ok(
          spread >= DRAIN_MS * 0.3,
          `closes spread over ${spread} ms of the ${DRAIN_MS} ms window (${times.join(", ")})`,
        );
        const code = await withTimeout(server.exited, DRAIN_MS + 6000, "exit");
        assert.ok(code === 0 || code === null, `exited (${code})`);
      } catch (error) {
        throw Object.assign(error as Error, { serverOutput: server.output().slice(-3000) });
      } finally {
        await server.stop();
      }
    });

    it(`${runtime}: a signal repeated with the first does not cut the drain short; a second one later does`, {
      timeout: 60_000,
    }, async () => {
      const server = await startServer(runtime, { EDGEWIRE_DRAIN_MS: "20000" });
      try {
        // Five members: the drain closes each at a random moment of its 20 s window and ends when all
        // are closed, so with one member it ended (and the server exited 0) before this case's last
        // signal in ~6 % of runs; with five, all closing within those 1.6 s is a 1 in 300 000 chance.
        const members = Array.from(
          { length: 5 },
          () => new TestSocket(`${server.ws}/rooms/drain-twice`, "edgewire.v1"),
        );
        await withTimeout(Promise.all(members.map((m) => m.opened)), 10_000, "join");
        // What Ctrl-C does under npm or tsx: the group gets the signal, and a wrapper relays it again
        // a moment later (two sent at once would merge into one pending signal).
        server.signal("SIGINT");
        await new Promise((r) => setTimeout(r, 50));
        server.signal("SIGINT");
        await new Promise((r) => setTimeout(r, 800));
        const ready = await fetch(`${server.http}/readyz`);
        assert.equal(ready.status, 503, "still draining after the doubled signal");
        // A signal more than a second after the first is a second one.
        await new Promise((r) => setTimeout(r, 700));
        const before = Date.now();
        server.signal("SIGINT");
        const code = await withTimeout(server.exited, 5000, "exit on the second signal");
        assert.ok(Date.now() - before < 5000);
        assert.ok(code !== 0, `a cut-short drain exits non-zero (${code})`);
        await Promise.all(members.map((m) => m.ended));
      } catch (error) {
        throw Object.assign(error as Error, { serverOutput: server.output().slice(-3000) });
      } finally {
        await server.stop();
      }
    });
  }
});
