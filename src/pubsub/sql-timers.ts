/**
 * Room timers in SQLite (a Durable Object's storage), fired by the object's one alarm: a room's
 * pending timers share it (the alarm is set no later than the soonest, and the adapter's alarm
 * handler runs what is due and sets it again). Kept in storage, they survive hibernation and
 * eviction: a woken object finds them and its alarm. A due timer moves from `ew_timers` (pending)
 * to `ew_timer_runs` (running) before its handler runs, so a timer of the same name scheduled
 * meanwhile is a new one; the run's row goes in the same transaction as the first commit it makes
 * (spend), or after its handler returns. An object that dies mid-run finds the row on its next
 * alarm and runs it again — unless its commit was written, which took the row with it: the timer
 * takes effect once.
 */
import type { FiredTimer, RoomRef, RoomTimer, TimerRunner, TimerStore } from "./broker.ts";
import type { SqlLike } from "./sql-history.ts";

/** What the timers need of their host: an alarm that fires no later than a time. */
export interface AlarmClock {
  /** make the alarm fire at `at` at the latest (ms since the epoch) */
  wakeBy(at: number): void | Promise<void>;
}

const COLUMNS =
  "(room TEXT NOT NULL, name TEXT NOT NULL, at INTEGER NOT NULL, data TEXT, PRIMARY KEY (room, name, at))";

/** Timers in the tables `ew_timers` (pending) and `ew_timer_runs` (running), fired through the host's alarm. */
export class SqlTimers implements TimerStore {
  readonly #sql: SqlLike;
  readonly #clock: AlarmClock;
  readonly #now: () => number;
  readonly #transaction: <T>(fn: () => T) => T;
  // Runs under way in this isolate: an alarm that comes while one still runs does not start it twice.
  readonly #running = new Set<string>();
  #run: TimerRunner | undefined;

  /** timers in `sql`, woken by `clock`; `transaction` makes a move from pending to running one write */
  constructor(
    sql: SqlLike,
    clock: AlarmClock,
    now: () => number = Date.now,
    transaction: <T>(fn: () => T) => T = (fn) => fn(),
  ) {
    this.#sql = sql;
    this.#clock = clock;
    this.#now = now;
    this.#transaction = transaction;
    sql.exec(
      "CREATE TABLE IF NOT EXISTS ew_timers (room TEXT NOT NULL, name TEXT NOT NULL, at INTEGER NOT NULL, data TEXT, PRIMARY KEY (room, name))",
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS ew_timer_runs ${COLUMNS}`);
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

  /** when the alarm must come next: the soonest pending timer, or now for a run that an earlier isolate left unfinished */
  next(): number | undefined {
    const row = this.#sql
      .exec("SELECT MIN(at) AS at FROM (SELECT at FROM ew_timers UNION ALL SELECT at FROM ew_timer_runs)")
      .toArray()[0];
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

  spend(ref: RoomRef, fired: FiredTimer): void {
    this.#sql.exec(
      "DELETE FROM ew_timer_runs WHERE room = ? AND name = ? AND at = ?",
      ref.key,
      fired.timer.name,
      fired.timer.at,
    );
  }

  /** run every due timer (the alarm's) and every run a dead isolate left; each run's row goes with its first commit, or after it */
  async fire(): Promise<void> {
    const run = this.#run;
    if (!run) return;
    const now = this.#now();
    this.#transaction(() => {
      this.#sql.exec(
        "INSERT OR REPLACE INTO ew_timer_runs SELECT room, name, at, data FROM ew_timers WHERE at <= ?",
        now,
      );
      this.#sql.exec("DELETE FROM ew_timers WHERE at <= ?", now);
    });
    const runs = this.#sql.exec("SELECT room, name, at, data FROM ew_timer_runs ORDER BY at").toArray();
    for (const row of runs) {
      const key = String(row.room);
      const ref: RoomRef = { key, name: key.slice(key.indexOf(":") + 1) };
      const timer = timerOf(row);
      const id = `${key}\n${timer.name}\n${timer.at}`;
      if (this.#running.has(id)) continue;
      this.#running.add(id);
      try {
        await run(ref, { timer });
        this.spend(ref, { timer });
      } finally {
        this.#running.delete(id);
      }
    }
  }
}

function timerOf(row: Record<string, unknown>): RoomTimer {
  const data = row.data === null || row.data === undefined ? undefined : (JSON.parse(String(row.data)) as unknown);
  return { name: String(row.name), at: Number(row.at), ...(data === undefined ? {} : { data }) };
}
