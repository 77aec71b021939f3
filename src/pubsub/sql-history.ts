/**
 * History kept in SQLite through a minimal structural interface, so a Durable
 * Object's `ctx.storage.sql` fits without this file naming a Cloudflare type.
 * The sequence counter survives hibernation and eviction because it is stored,
 * not held in memory.
 */
import type { MessageFrame } from "../protocol.ts";
import { DEFAULT_HISTORY_LIMIT, type HistoryStore } from "./history.ts";

/** The slice of a SQL storage API this store needs (`SqlStorage` in workerd). */
export interface SqlLike {
  exec(query: string, ...bindings: unknown[]): { toArray(): Record<string, unknown>[] };
}

/** History and sequence numbers in SQLite tables `ew_rooms` and `ew_messages`. */
export class SqlHistory implements HistoryStore {
  /** create the tables if they are missing */
  constructor(
    private readonly sql: SqlLike,
    readonly limit: number = DEFAULT_HISTORY_LIMIT,
  ) {
    sql.exec("CREATE TABLE IF NOT EXISTS ew_rooms (room TEXT PRIMARY KEY, seq INTEGER NOT NULL)");
    sql.exec(
      "CREATE TABLE IF NOT EXISTS ew_messages (room TEXT NOT NULL, seq INTEGER NOT NULL, frame TEXT NOT NULL, PRIMARY KEY (room, seq))",
    );
  }

  lastSeq(room: string): number {
    const row = this.sql.exec("SELECT seq FROM ew_rooms WHERE room = ?", room).toArray()[0];
    return row ? Number(row.seq) : 0;
  }

  append(room: string, make: (seq: number) => MessageFrame): { frame: MessageFrame; text: string } {
    const row = this.sql
      .exec(
        "INSERT INTO ew_rooms (room, seq) VALUES (?, 1) ON CONFLICT(room) DO UPDATE SET seq = seq + 1 RETURNING seq",
        room,
      )
      .toArray()[0];
    const seq = Number(row?.seq);
    const frame = make(seq);
    const text = JSON.stringify(frame);
    this.sql.exec("INSERT INTO ew_messages (room, seq, frame) VALUES (?, ?, ?)", room, seq, text);
    // Trim every 64 messages: one indexed range delete keeps the table bounded.
    if (seq % 64 === 0) this.sql.exec("DELETE FROM ew_messages WHERE room = ? AND seq <= ?", room, seq - this.limit);
    return { frame, text };
  }

  since(room: string, after: number, limit: number): MessageFrame[] {
    return this.sql
      .exec("SELECT frame FROM ew_messages WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?", room, after, limit)
      .toArray()
      .map((r) => JSON.parse(String(r.frame)) as MessageFrame);
  }
}
