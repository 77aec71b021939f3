/** The Durable Object history (SqlHistory) on a real SQLite: sequence and epoch across wakes, trims by count and age. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bunFindings } from "../support/bun-findings.ts";

describe("SqlHistory on SQLite (bun:sqlite)", () => {
  it("keeps seq and epoch exact across wakes and trims; a burst shares one write; a failed write refuses its publishers; push keys commit with their message, answer repeats, expire and stay bounded; room state commits with its frames and survives a wake", () => {
    const found = bunFindings("tests/support/sql-history.bun.ts");
    assert.deepEqual(found, {
      seqAfter130: 130,
      seqAfterWake: 130,
      epochKept: true,
      next: 131,
      since: [126, 127, 128, 129, 130, 131],
      // 128 trimmed the table to seq > 78; 129–131 came after it.
      countKept: 53,
      seqAfterAgeTrimAndWake: 192,
      sinceAfterAgeTrim: 0,
      nextAfterAgeTrim: 193,
      burst: [194, 253, true],
      burstStored: 60,
      largestBindings: 100,
      headWhilePending: 253,
      headAfter: 254,
      failed: ["BrokerUnavailableError", "BrokerUnavailableError"],
      afterFailure: 255,
      freshFirst: 1,
      freshEpoch: true,
      keyedFirst: 1,
      keyedInFlight: { seq: 1, sameBody: true },
      keyedAfterWake: { seq: 1, sameBody: true },
      keyedOtherData: { seq: 1, sameBody: false },
      messagesOfP: 1,
      keyFailure: ["BrokerUnavailableError"],
      // rolled back with its key: the transaction
      messagesAfterKeyFailure: 1,
      retryAfterKeyFailure: 2,
      afterWindow: 3,
      // "b" left with the window, "a" (the oldest) with the bound of 70
      keysKept: 70,
      oldestGone: true,
      newestKept: { seq: 73, sameBody: true },
      // the second commit published nothing: no seq; the third ran on its state (1 + 2 + 3)
      commitSeqs: [[1], [], [2]],
      stateAfterCommits: '{"n":6}',
      stateAfterWake: [2, '{"n":6}'],
      // a failed write refuses both commits of its batch, the state-only one too; nothing is stored
      commitFailure: ["BrokerUnavailableError", "BrokerUnavailableError"],
      stateAfterFailure: [2, '{"n":6}'],
      afterCommitFailure: [[3, 106]],
    });
  });
});
