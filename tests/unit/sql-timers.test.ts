/** Durable Object room timers (SqlTimers beside SqlHistory) on a real SQLite: a firing takes effect once across an object's death. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bunFindings } from "../support/bun-findings.ts";

describe("SqlTimers on SQLite (bun:sqlite)", () => {
  it("a run that committed is spent with its commit and not run again; one that died before committing runs again and commits once; a timer scheduled by its own run is a new one; a room's timers share the alarm, a cancelled one never runs", () => {
    const found = bunFindings("tests/support/sql-timers.bun.ts");
    assert.deepEqual(found, {
      nextAfterCommittedRun: null,
      runsAfterCommittedDeath: ["committed-then-died:close"],
      nextAfterUnfinishedRun: true,
      runsAfterUnfinishedDeath: ["died-before-commit:close2", "again:close2"],
      history: [{ closed: 1 }, { closed: 2 }],
      tickRuns: 1,
      pendingAfterTick: [true],
      leftRuns: 0,
      alarmBySoonest: true,
      cancelled: [true, false],
      listed: ["soon", "late"],
      nextAfterEviction: true,
      sharedAlarmRuns: ["soon", "late"],
    });
  });
});
