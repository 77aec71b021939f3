/** edgewire/testing's own behaviour: a port taken between choosing and binding it is tried again; nothing else is. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startModule } from "../support/servers.ts";

const starts = (log: string) => readFileSync(log, "utf8").split("\n").filter(Boolean).length;

describe("edgewire/testing startServer", () => {
  it("starts again on other ports when the one it chose was taken before the server bound it", async () => {
    const log = join(mkdtempSync(join(tmpdir(), "edgewire-harness-")), "starts");
    const env = { START_LOG: log, START_FAILS: "port", START_FAILURES: "2" };
    const server = await startModule("node", { entry: "tests/fixtures/flaky-start.ts", env });
    try {
      assert.equal((await fetch(`${server.http}/healthz`)).status, 200);
      assert.equal(starts(log), 3, "two taken ports, then served");
    } finally {
      await server.stop();
    }
  });

  it("fails at once on any other startup failure, with the server's output", async () => {
    const log = join(mkdtempSync(join(tmpdir(), "edgewire-harness-")), "starts");
    const env = { START_LOG: log, START_FAILS: "other", START_FAILURES: "1" };
    await assert.rejects(
      startModule("node", { entry: "tests/fixtures/flaky-start.ts", env }),
      /something else went wrong/,
    );
    assert.equal(starts(log), 1);
  });

  it("gives up after three taken ports", async () => {
    const log = join(mkdtempSync(join(tmpdir(), "edgewire-harness-")), "starts");
    const env = { START_LOG: log, START_FAILS: "port", START_FAILURES: "5" };
    await assert.rejects(startModule("node", { entry: "tests/fixtures/flaky-start.ts", env }), /EADDRINUSE/);
    assert.equal(starts(log), 3);
  });
});
