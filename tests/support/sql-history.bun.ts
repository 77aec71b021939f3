/**
 * SqlHistory against a real SQLite (Bun's bun:sqlite, standing in for a Durable Object's
 * ctx.storage.sql): run by tests/unit/sql-history.test.ts, prints one JSON line of findings.
 * A "wake" is a new SqlHistory over the same database, as after hibernation or eviction.
 */
import { Database } from "bun:sqlite";
import { SqlHistory, type SqlLike } from "../../src/pubsub/sql-history.ts";

const db = new Database(":memory:");
let failNextInsert = false;
let failNextKeyInsert = false;
let largestBindings = 0;
const sql: SqlLike = {
  exec: (query, ...bindings) => {
    largestBindings = Math.max(largestBindings, bindings.length);
    if (failNextInsert && query.startsWith("INSERT INTO ew_messages")) {
      failNextInsert = false;
      throw new Error("disk full");
    }
    if (failNextKeyInsert && query.startsWith("INSERT OR REPLACE INTO ew_push_keys")) {
      failNextKeyInsert = false;
      throw new Error("disk full");
    }
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
let h = new SqlHistory(sql, { limit: 50, maxAgeMs: 60_000, now });
h.occupied("r");
const epoch = h.head("r").epoch;
for (let i = 0; i < 130; i++) await h.append("r", make("r"));
out.seqAfter130 = h.head("r").seq;
h = new SqlHistory(sql, { limit: 50, maxAgeMs: 60_000, now }); // wake
out.seqAfterWake = h.head("r").seq;
out.epochKept = h.head("r").epoch === epoch;
out.next = (await h.append("r", make("r"))).frame.seq;
out.since = h.since("r", 125, 10).map((m) => m.seq);
out.countKept = (db.query("SELECT COUNT(*) AS n FROM ew_messages WHERE room = 'r'").get() as { n: number }).n;
// Every message ages out; the trim at the next multiple of 64 empties the table, the seq survives.
clock += 120_000;
for (let seq = 132; seq <= 192; seq++) await h.append("r", make("r"));
clock += 120_000;
h = new SqlHistory(sql, { limit: 50, maxAgeMs: 60_000, now });
out.seqAfterAgeTrimAndWake = h.head("r").seq;
out.sinceAfterAgeTrim = h.since("r", 0, 10).length;
out.nextAfterAgeTrim = (await h.append("r", make("r"))).frame.seq;
// A burst written together: in order, contiguous, several statements of at most 100 bindings.
const burst = await Promise.all(Array.from({ length: 60 }, () => h.append("r", make("r"))));
out.burst = [burst[0]?.frame.seq, burst.at(-1)?.frame.seq, burst.every((b, i) => b.frame.seq === 194 + i)];
out.burstStored = h.since("r", 193, 100).length;
out.largestBindings = largestBindings;
// A joiner does not see a seq that is not written yet.
const pending = h.append("r", make("r"));
out.headWhilePending = h.head("r").seq;
await pending;
out.headAfter = h.head("r").seq;
// A failed write: its publishers are refused (try again), nothing is stored, the seq is given again.
failNextInsert = true;
const failed = await Promise.allSettled([h.append("r", make("r")), h.append("r", make("r"))]);
out.failed = failed.map((f) => (f.status === "rejected" ? (f.reason as Error).name : "stored"));
out.afterFailure = (await h.append("r", make("r"))).frame.seq;
// A room first written to without occupied() still starts at 1 with an epoch.
const fresh = new SqlHistory(sql, { limit: 50, maxAgeMs: 60_000, now });
out.freshFirst = (await fresh.append("other", make("other"))).frame.seq;
out.freshEpoch = fresh.head("other").epoch.length > 0;
// Push keys: written with their message in one transaction, a repeat answered (in flight or stored),
// other data told apart, expiry with the window, the oldest dropped past the bound.
const transaction = <T>(fn: () => T): T => db.transaction(fn)();
const keys = { windowMs: 10_000, maxKeys: 70 };
let k = new SqlHistory(sql, { limit: 50, maxAgeMs: 60_000, now, keys, transaction });
const key = (name: string, fingerprint = "f") => ({ key: name, fingerprint });
const seqOf = (r: unknown) => (r as { frame?: { seq: number }; seq?: number }).frame?.seq ?? (r as { seq: number }).seq;
const firstKeyed = k.appendKeyed("p", make("p"), key("a"));
const inFlight = k.appendKeyed("p", make("p"), key("a")); // before the write
out.keyedFirst = seqOf(await firstKeyed);
out.keyedInFlight = await inFlight;
k = new SqlHistory(sql, { limit: 50, maxAgeMs: 60_000, now, keys, transaction }); // wake
out.keyedAfterWake = await k.appendKeyed("p", make("p"), key("a"));
out.keyedOtherData = await k.appendKeyed("p", make("p"), key("a", "g"));
out.messagesOfP = (db.query("SELECT COUNT(*) AS n FROM ew_messages WHERE room = 'p'").get() as { n: number }).n;
// The key's write fails: its message is rolled back with it, the publisher refused, and a retry publishes.
failNextKeyInsert = true;
const refusedKeyed = await Promise.allSettled([k.appendKeyed("p", make("p"), key("b"))]);
out.keyFailure = refusedKeyed.map((f) => (f.status === "rejected" ? (f.reason as Error).name : "stored"));
out.messagesAfterKeyFailure = (
  db.query("SELECT COUNT(*) AS n FROM ew_messages WHERE room = 'p'").get() as { n: number }
).n;
out.retryAfterKeyFailure = seqOf(await k.appendKeyed("p", make("p"), key("b")));
clock += 10_001;
out.afterWindow = seqOf(await k.appendKeyed("p", make("p"), key("a")));
// 70 more keys (a trim every 64 keyed writes): at most maxKeys stay, and the oldest are the ones gone.
await Promise.all(Array.from({ length: 70 }, (_, i) => k.appendKeyed("p", make("p"), key(`n${i}`))));
out.keysKept = (db.query("SELECT COUNT(*) AS n FROM ew_push_keys").get() as { n: number }).n;
out.oldestGone = "frame" in (await k.appendKeyed("p", make("p"), key("a"))); // "a" was the oldest by count
out.newestKept = await k.appendKeyed("p", make("p"), key("n69"));
// Room state: a commit writes its state and frames in one transaction, the next commit runs on the
// state the last one left (written or not), a wake reads it back, and a failed write refuses the
// commits of its batch and rolls back to the written state.
let t = new SqlHistory(sql, { limit: 50, maxAgeMs: 60_000, now, transaction });
const step = (by: number, publish: boolean) => (state: string | undefined, seq: number) => {
  const n = (state === undefined ? 0 : (JSON.parse(state) as { n: number }).n) + by;
  const frames = publish ? [{ type: "message" as const, room: "s", seq: seq + 1, from: "a", data: n, ts: now() }] : [];
  return { state: JSON.stringify({ n }), frames };
};
const commits = await Promise.all([
  t.commit("s", step(1, true)),
  t.commit("s", step(2, false)),
  t.commit("s", step(3, true)),
]);
out.commitSeqs = commits.map((c) => c.frames.map((f) => f.seq));
out.stateAfterCommits = t.head("s").state;
t = new SqlHistory(sql, { limit: 50, maxAgeMs: 60_000, now, transaction }); // wake
out.stateAfterWake = [t.head("s").seq, t.head("s").state];
failNextInsert = true;
const refusedCommits = await Promise.allSettled([t.commit("s", step(10, true)), t.commit("s", step(20, false))]);
out.commitFailure = refusedCommits.map((f) => (f.status === "rejected" ? (f.reason as Error).name : "stored"));
out.stateAfterFailure = [t.head("s").seq, t.head("s").state];
out.afterCommitFailure = (await t.commit("s", step(100, true))).frames.map((f) => [
  f.seq,
  f.type === "message" && f.data,
]);
console.log(JSON.stringify(out));
