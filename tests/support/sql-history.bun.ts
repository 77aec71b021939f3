/**
 * SqlHistory against a real SQLite (Bun's bun:sqlite, standing in for a Durable Object's
 * ctx.storage.sql): run by tests/unit/sql-history.test.ts, prints one JSON line of findings.
 * A "wake" is a new SqlHistory over the same database, as after hibernation or eviction.
 */
import { Database } from "bun:sqlite";
import { SqlHistory, type SqlLike } from "../../src/pubsub/sql-history.ts";

const db = new Database(":memory:");
const sql: SqlLike = {
  exec: (query, ...bindings) => {
    const rows = db.query(query).all(...(bindings as never[])) as Record<string, unknown>[];
    return { toArray: () => rows };
  },
};
let clock = 1_000_000;
const now = () => clock;
const make = (room: string) => (seq: number) => ({
  type: "message" as const,
  room,
  seq,
  from: "a",
  data: seq,
  ts: now(),
});

const out: Record<string, unknown> = {};
let h = new SqlHistory(sql, 50, 60_000, now);
h.occupied("r");
const epoch = h.head("r").epoch;
for (let i = 0; i < 130; i++) h.append("r", make("r"));
out.seqAfter130 = h.head("r").seq;
h = new SqlHistory(sql, 50, 60_000, now); // wake
out.seqAfterWake = h.head("r").seq;
out.epochKept = h.head("r").epoch === epoch;
out.next = h.append("r", make("r")).frame.seq;
out.since = h.since("r", 125, 10).map((m) => m.seq);
out.countKept = (db.query("SELECT COUNT(*) AS n FROM ew_messages WHERE room = 'r'").get() as { n: number }).n;
// Every message ages out; the trim at the next multiple of 64 empties the table, the seq survives.
clock += 120_000;
for (let seq = 132; seq <= 192; seq++) h.append("r", make("r"));
clock += 120_000;
h = new SqlHistory(sql, 50, 60_000, now);
out.seqAfterAgeTrimAndWake = h.head("r").seq;
out.sinceAfterAgeTrim = h.since("r", 0, 10).length;
out.nextAfterAgeTrim = h.append("r", make("r")).frame.seq;
// A room first written to without occupied() still starts at 1 with an epoch.
const fresh = new SqlHistory(sql, 50, 60_000, now);
out.freshFirst = fresh.append("other", make("other")).frame.seq;
out.freshEpoch = fresh.head("other").epoch.length > 0;
console.log(JSON.stringify(out));
