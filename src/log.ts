/**
 * Structured logs: one JSON object per line (`time`, `level`, `msg`, and the
 * fields given), at or above the configured level, on the runtime's console —
 * stdout for debug and info, stderr for warn and error — so a log shipper
 * reads them on every runtime alike.
 */

/** Log levels, lowest first. */
export const LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
/** A log level. */
export type Level = (typeof LEVELS)[number];

/** What edgewire logs through. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

// Errors serialise to nothing with JSON.stringify: keep their name, message and stack.
function plain(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

/** A logger writing JSON lines at `level` and above. */
export function jsonLogger(level: Level = "info", write?: (line: string, error: boolean) => void): Logger {
  const min = LEVELS.indexOf(level);
  const sink = write ?? ((line: string, error: boolean) => (error ? console.error(line) : console.log(line)));
  const at = (l: Exclude<Level, "silent">) => {
    if (LEVELS.indexOf(l) < min) return () => {};
    return (msg: string, fields?: Record<string, unknown>) => {
      const entry: Record<string, unknown> = { time: new Date().toISOString(), level: l, msg };
      if (fields) for (const [k, v] of Object.entries(fields)) entry[k] = plain(v);
      let line: string;
      try {
        line = JSON.stringify(entry);
      } catch {
        line = JSON.stringify({ time: entry.time, level: l, msg, note: "fields were not serialisable" });
      }
      sink(line, l === "warn" || l === "error");
    };
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
