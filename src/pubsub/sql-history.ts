/**
 * History kept in SQLite through a minimal structural interface, so a Durable
 * Object's `ctx.storage.sql` fits without this file naming a Cloudflare type.
 * The sequence counter and the epoch survive hibernation and eviction because
 * they are stored, not held in memory; a storage reset loses them, and the
 * new epoch tells resuming clients so.
 */
import { randomId } from "../bytes.ts";
import type { MessageFrame } from "../protocol.ts";
import { DEFAULT_HISTORY_LIMIT, DEFAULT_HISTORY_MAX_AGE_MS, type Head, type HistoryStore } from "./history.ts";

/** The slice of a SQL storage API this store needs (`SqlStorage` in workerd). */
export interface SqlLike {
  exec(query: string, ...bindings: unknown[]): { toArray(): Record<string, unknown>[] };
}

/** History, sequence numbers and epochs in SQLite tables `ew_rooms` and `ew_messages`. */
export class SqlHistory implements HistoryStore {
  // Each room's last seq, once read: this object is the only writer of its storage.
  readonly #seq = new Map<string, number>();
  /** create the tables if they are missing */
  constructor(
    private readonly sql: SqlLike,
    readonly limit: number = DEFAULT_HISTORY_LIMIT,
    readonly maxAgeMs: number = DEFAULT_HISTORY_MAX_AGE_MS,
    private readonly now: () => number = Date.now,
  ) {
    sql.exec(
      "CREATE TABLE IF NOT EXISTS ew_rooms (room TEXT PRIMARY KEY, seq INTEGER NOT NULL, epoch TEXT NOT NULL DEFAULT '')",
    );
    sql.exec(
      "CREATE TABLE IF NOT EXISTS ew_messages (room TEXT NOT NULL, seq INTEGER NOT NULL, frame TEXT NOT NULL, ts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (room, seq))",
    );
    // Objects made before epochs existed: add the columns (SQLite has no ADD COLUMN IF NOT EXISTS).
    for (const [table, column] of [
      ["ew_rooms", "epoch TEXT NOT NULL DEFAULT ''"],
      ["ew_messages", "ts INTEGER NOT NULL DEFAULT 0"],
    ]) {
      try {
        sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column}`);
      } catch {
        // the column exists
      }
    }
  }

  head(room: string): Head {
    const row = this.sql.exec("SELECT seq, epoch FROM ew_rooms WHERE room = ?", room).toArray()[0];
    if (!row) return { seq: 0, epoch: "" };
    const seq = this.#lastSeq(room, Number(row.seq));
    if (row.epoch === "") return { seq, epoch: this.#giveEpoch(room) };
    return { seq, epoch: String(row.epoch) };
  }

  // The room row's seq is written only when history is trimmed (every 64 messages), so an append is
  // one INSERT, not two statements; the newest messages are never trimmed, so the last seq is the
  // larger of the row's and the newest message's — exact after hibernation or eviction too.
  #lastSeq(room: string, stored: number): number {
    let seq = this.#seq.get(room);
    if (seq === undefined) {
      const top = this.sql.exec("SELECT MAX(seq) AS seq FROM ew_messages WHERE room = ?", room).toArray()[0];
      seq = Math.max(stored, Number(top?.seq ?? 0));
      this.#seq.set(room, seq);
    }
    return seq;
  }

  #giveEpoch(room: string): string {
    const epoch = randomId();
    this.sql.exec("UPDATE ew_rooms SET epoch = ? WHERE room = ? AND epoch = ''", epoch, room);
    return String(this.sql.exec("SELECT epoch FROM ew_rooms WHERE room = ?", room).toArray()[0]?.epoch ?? epoch);
  }

  /** the room has members: it gets its row (and epoch) now, so a joiner sees the epoch that continues */
  occupied(room: string): void {
    this.sql.exec(
      "INSERT INTO ew_rooms (room, seq, epoch) VALUES (?, 0, ?) ON CONFLICT(room) DO NOTHING",
      room,
      randomId(),
    );
  }

  append(room: string, make: (seq: number) => MessageFrame): { frame: MessageFrame; text: string } {
    let last = this.#seq.get(room);
    if (last === undefined) {
      this.occupied(room);
      last = this.head(room).seq;
    }
    const seq = last + 1;
    const frame = make(seq);
    const text = JSON.stringify(frame);
    this.sql.exec("INSERT INTO ew_messages (room, seq, frame, ts) VALUES (?, ?, ?, ?)", room, seq, text, frame.ts);
    this.#seq.set(room, seq);
    // Every 64 messages: record the seq in the room row, then trim by count and age (one indexed
    // range delete) — in that order, so the seq survives even a trim that empties the table.
    if (seq % 64 === 0) {
      this.sql.exec("UPDATE ew_rooms SET seq = ? WHERE room = ?", seq, room);
      this.sql.exec(
        "DELETE FROM ew_messages WHERE room = ? AND (seq <= ? OR ts < ?)",
        room,
        seq - this.limit,
        this.now() - this.maxAgeMs,
      );
    }
    return { frame, text };
  }

  since(room: string, after: number, limit: number): MessageFrame[] {
    return this.sql
      .exec(
        "SELECT frame FROM ew_messages WHERE room = ? AND seq > ? AND ts >= ? ORDER BY seq LIMIT ?",
        room,
        after,
        this.now() - this.maxAgeMs,
        limit,
      )
      .toArray()
      .map((r) => JSON.parse(String(r.frame)) as MessageFrame);
  }
}
