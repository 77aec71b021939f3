/**
 * SqlTimers with SqlHistory against a real SQLite (bun:sqlite, standing in for a Durable Object's
 * ctx.storage.sql): run by tests/unit/sql-timers.test.ts, prints one JSON line of findings. An
 * "eviction" is a new broker over the same database while the old one's run never finishes, as
 * when the object dies mid-run and its next alarm comes to a fresh isolate.
 */
import { Database } from "bun:sqlite";
import { type ChangeFn, type FiredTimer, roomRef } from "../../src/pubsub/broker.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { SqlHistory, type SqlLike } from "../../src/pubsub/sql-history.ts";
import { SqlTimers } from "../../src/pubsub/sql-timers.ts";

const db = new Database(":memory:");
const sql: SqlLike = {
  exec: (query, ...bindings) => {
    const rows = db.query(query).all(...(bindings as never[])) as Record<string, unknown>[];
    return { toArray: () => rows };
  },
};
const transaction = <T>(fn: () => T): T => db.transaction(fn)();
let clock = 1_000_000;
const now = () => clock;
const alarms: number[] = [];
const never = new Promise<void>(() => {});

// One object's isolate: its history and timers over the shared database.
function isolate() {
  const timers = new SqlTimers(sql, { wakeBy: (at) => void alarms.push(at) }, now, transaction);
  const broker = new MemoryBroker({ history: new SqlHistory(sql, { now, transaction }), timers, now });
  return { timers, broker };
}

const add: ChangeFn = (stored) => {
  const n = stored === undefined ? 0 : (JSON.parse(stored) as { n: number }).n;
  return { state: JSON.stringify({ n: n + 1 }), messages: [{ closed: n + 1 }] };
};
const ref = roomRef("lot", "a");
const out: Record<string, unknown> = {};
const ran: string[] = [];

// 1. A run that commits and then dies (never returns): the next isolate's alarm runs nothing.
let first = isolate();
await first.timers.schedule(ref, { name: "close", at: clock + 10 });
clock += 20;
first.timers.start(async (r, fired: FiredTimer) => {
  ran.push(`committed-then-died:${fired.timer.name}`);
  await first.broker.commit(r, "server", add, fired);
  await never;
});
void first.timers.fire();
await new Promise((r) => setTimeout(r, 20));
let second = isolate();
second.timers.start(async (_r, fired) => void ran.push(`again:${fired.timer.name}`));
out.nextAfterCommittedRun = second.timers.next() ?? null;
await second.timers.fire();
out.runsAfterCommittedDeath = [...ran];

// 2. A run that dies before it commits: the next isolate's alarm runs it again, and it commits once.
ran.length = 0;
first = isolate();
await first.timers.schedule(ref, { name: "close2", at: clock + 10 });
clock += 20;
first.timers.start(async (_r, fired) => {
  ran.push(`died-before-commit:${fired.timer.name}`);
  await never;
});
void first.timers.fire();
await new Promise((r) => setTimeout(r, 20));
second = isolate();
out.nextAfterUnfinishedRun = second.timers.next() === clock - 10;
second.timers.start(async (r, fired) => {
  ran.push(`again:${fired.timer.name}`);
  await second.broker.commit(r, "server", add, fired);
});
await second.timers.fire();
await second.timers.fire();
out.runsAfterUnfinishedDeath = [...ran];
out.history = (await second.broker.history(ref, 0, 10)).map((f) => (f.type === "message" ? f.data : null));

// 3. A timer of the same name scheduled during its own run is a new one: the run goes on, the new one waits.
ran.length = 0;
const third = isolate();
await third.timers.schedule(ref, { name: "tick", at: clock + 10 });
clock += 20;
third.timers.start(async (r, fired) => {
  ran.push(`tick@${fired.timer.at}`);
  await third.timers.schedule(r, { name: "tick", at: clock + 1000 });
  await third.broker.commit(r, "server", add, fired);
});
await third.timers.fire();
out.tickRuns = ran.length;
out.pendingAfterTick = third.timers.list(ref).map((t) => t.at === clock + 1000);
out.leftRuns = sql.exec("SELECT COUNT(*) AS n FROM ew_timer_runs").toArray()[0]?.n;

// 4. A room's timers share the one alarm: it is set no later than the soonest; a cancelled one is
// gone from the list and never runs, cancelling it again finds nothing, and a new isolate (the
// object evicted) runs the others, each once, at the alarm.
ran.length = 0;
alarms.length = 0;
const other = roomRef("lot", "b");
const fourth = isolate();
await fourth.timers.schedule(other, { name: "late", at: clock + 300 });
await fourth.timers.schedule(other, { name: "soon", at: clock + 100 });
await fourth.timers.schedule(other, { name: "dropped", at: clock + 200 });
out.alarmBySoonest = Math.min(...alarms) === clock + 100;
out.cancelled = [fourth.timers.cancel(other, "dropped"), fourth.timers.cancel(other, "dropped")];
out.listed = fourth.timers.list(other).map((t) => t.name);
const evicted = isolate();
out.nextAfterEviction = evicted.timers.next() === clock + 100;
evicted.timers.start(async (r, fired) => {
  ran.push(fired.timer.name);
  await evicted.broker.commit(r, "server", add, fired);
});
clock += 150;
await evicted.timers.fire();
clock += 200;
await evicted.timers.fire();
await evicted.timers.fire();
out.sharedAlarmRuns = [...ran];

console.log(JSON.stringify(out));
