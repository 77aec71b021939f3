/**
 * Room timers in SQLite (a Durable Object's storage), fired by the object's one alarm: a room's
 * pending timers share it (the alarm is set no later than the soonest, and the adapter's alarm
 * handler runs what is due and sets it again). Kept in storage, they survive hibernation and
 * eviction: a woken object finds them and its alarm. A timer is deleted once its handler ran, so
 * an object that dies mid-run runs it again on the next alarm — a handler is idempotent by state.
 */
import type { RoomRef, RoomTimer, TimerRunner, TimerStore } from "./broker.ts";
import type { SqlLike } from "./sql-history.ts";

/** What the timers need of their host: an alarm that fires no later than a time. */
export interface AlarmClock {
  /** make the alarm fire at `at` at the latest (ms since the epoch) */
  wakeBy(at: number): void | Promise<void>;
}

/** Timers in the table `ew_timers`, fired through the host's alarm. */
export class SqlTimers implements TimerStore {
  readonly #sql: SqlLike;
  readonly #clock: AlarmClock;
  readonly #now: () => number;
  #run: TimerRunner | undefined;

  /** timers in `sql`, woken by `clock` */
  constructor(sql: SqlLike, clock: AlarmClock, now: () => number = Date.now) {
    this.#sql = sql;
    this.#clock = clock;
    this.#now = now;
    sql.exec(
      "CREATE TABLE IF NOT EXISTS ew_timers (room TEXT NOT NULL, name TEXT NOT NULL, at INTEGER NOT NULL, data TEXT, PRIMARY KEY (room, name))",
    );
  }

  async schedule(ref: RoomRef, timer: RoomTimer): Promise<void> {
    const data = timer.data === undefined ? null : JSON.stringify(timer.data);
    this.#sql.exec(
      "INSERT OR REPLACE INTO ew_timers (room, name, at, data) VALUES (?, ?, ?, ?)",
      ref.key,
      timer.name,
      timer.at,
      data,
    );
    await this.#clock.wakeBy(timer.at);
  }

  cancel(ref: RoomRef, name: string): boolean {
    const had =
      this.#sql.exec("SELECT 1 FROM ew_timers WHERE room = ? AND name = ?", ref.key, name).toArray().length > 0;
    this.#sql.exec("DELETE FROM ew_timers WHERE room = ? AND name = ?", ref.key, name);
    return had;
  }

  list(ref: RoomRef): RoomTimer[] {
    return this.#sql
      .exec("SELECT name, at, data FROM ew_timers WHERE room = ? ORDER BY at", ref.key)
      .toArray()
      .map((row) => timerOf(row));
  }

  /** when the soonest pending timer is due, if any */
  next(): number | undefined {
    const row = this.#sql.exec("SELECT MIN(at) AS at FROM ew_timers").toArray()[0];
    return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
  }

  start(run: TimerRunner): void {
    this.#run = run;
    const next = this.next();
    if (next !== undefined) void this.#clock.wakeBy(next);
  }

  stop(): void {
    this.#run = undefined;
  }

  /** run every due timer (the alarm's), each deleted after its handler ran unless it was replaced meanwhile */
  async fire(): Promise<void> {
    const run = this.#run;
    if (!run) return;
    const due = this.#sql
      .exec("SELECT room, name, at, data FROM ew_timers WHERE at <= ? ORDER BY at", this.#now())
      .toArray();
    for (const row of due) {
      const key = String(row.room);
      const ref: RoomRef = { key, name: key.slice(key.indexOf(":") + 1) };
      const timer = timerOf(row);
      await run(ref, timer);
      this.#sql.exec("DELETE FROM ew_timers WHERE room = ? AND name = ? AND at = ?", key, timer.name, timer.at);
    }
  }
}

function timerOf(row: Record<string, unknown>): RoomTimer {
  const data = row.data === null || row.data === undefined ? undefined : (JSON.parse(String(row.data)) as unknown);
  return { name: String(row.name), at: Number(row.at), ...(data === undefined ? {} : { data }) };
}
