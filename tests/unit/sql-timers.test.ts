/** Durable Object room timers (SqlTimers beside SqlHistory) on a real SQLite: a firing takes effect once across an object's death. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../support/servers.ts";

describe("SqlTimers on SQLite (bun:sqlite)", () => {
  it("a run that committed is spent with its commit and not run again; one that died before committing runs again and commits once; a timer scheduled by its own run is a new one", () => {
    const run = spawnSync(join(ROOT, "node_modules/.bin/bun"), [join(ROOT, "tests/support/sql-timers.bun.ts")], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const found = JSON.parse(run.stdout.trim().split("\n").at(-1) as string);
    assert.deepEqual(found, {
      nextAfterCommittedRun: null,
      runsAfterCommittedDeath: ["committed-then-died:close"],
      nextAfterUnfinishedRun: true,
      runsAfterUnfinishedDeath: ["died-before-commit:close2", "again:close2"],
      history: [{ closed: 1 }, { closed: 2 }],
      tickRuns: 1,
      pendingAfterTick: [true],
      leftRuns: 0,
    });
  });
});
