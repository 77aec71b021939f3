/**
 * The long-polling transport: a session is a Peer whose frames wait in a
 * numbered queue until a held GET collects them. The engine cannot tell it from
 * a WebSocket, so one room mixes both kinds of member in one order. A
 * session's operations are data too (PollOp), so a fleet can run one on the
 * instance holding the session. Protocol: docs/protocol.md, "Long-polling transport".
 */
import * as v from "valibot";
import { fromBase64, toBase64 } from "../bytes.ts";
import { DEFAULT_POLL_OPTIONS } from "../config.ts";
import type { Engine } from "../core/engine.ts";
import type { ConnRecord, Frame, Peer } from "../core/ports.ts";
import { CloseCode, CloseReason, ErrorCode, type PollFrame, type PollReply } from "../protocol.ts";

/** Body of `POST {route}/poll/:sid`. */
export const PollSendSchema = v.object({
  n: v.pipe(v.number(), v.integer(), v.minValue(1)),
  frames: v.array(v.union([v.object({ t: v.string() }), v.object({ b: v.string() })])),
});

/** Limits and timings of the transport. */
export interface PollOptions {
  /** how long a GET is held without frames (ms) */
  timeoutMs: number;
  /** a session with no GET for this long is closed as dropped (ms) */
  idleMs: number;
  /** most bytes one GET returns (it always returns at least one frame) */
  batchBytes: number;
  /** unacknowledged bytes beyond which a session is closed with 1013 */
  maxQueuedBytes: number;
  /** most sessions held at once */
  maxSessions: number;
}

const frameSize = (frame: Frame): number => (typeof frame === "string" ? frame.length : frame.byteLength);

/** One long-polling connection, seen by the engine as a Peer. */
export class PollSession implements Peer {
  /** frames not yet acknowledged; the first one has number `base` */
  frames: Frame[] = [];
  base = 0;
  queued = 0;
  /** last client POST handled (retries with an old `n` are ignored) */
  lastSend = 0;
  lastSeen: number;
  ended: { code: number; reason: string } | undefined;
  /** the engine's per-connection context */
  context: unknown = undefined;
  /** sessions are the long-polling transport */
  readonly transport = "polling" as const;
  #wake: (() => void) | undefined;

  constructor(
    readonly sid: string,
    readonly record: ConnRecord,
    private readonly owner: PollTransport,
  ) {
    this.lastSeen = owner.now();
  }

  send(frame: Frame): void {
    if (this.ended) return;
    this.frames.push(frame);
    this.queued += frameSize(frame);
    if (this.queued > this.owner.options.maxQueuedBytes) {
      // A consumer too slow to keep up: end it rather than grow without bound.
      this.owner.engine.metrics.slowConsumerCloses++;
      this.close(CloseCode.tryAgainLater, CloseReason.slowConsumer);
      return;
    }
    this.wake();
  }

  /** end the session (either side, or expiry): the engine hears it now, the client with its next GET */
  close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = { code, reason };
    this.owner.engine.closed(this, code, reason);
    this.wake();
  }

  /** resolve a held GET, if any */
  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** hold until frames exist, the session ends, or `ms` pass */
  wait(ms: number): Promise<void> {
    this.wake(); // a second GET answers the first one with nothing
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#wake = done;
    });
  }

  get holding(): boolean {
    return this.#wake !== undefined;
  }
}

/** Why a poll request failed. */
export type PollError = "session_not_found" | "try_again_later" | "invalid_body";

/** All long-polling sessions of one app instance. */
export class PollTransport {
  readonly options: PollOptions;
  readonly #sessions = new Map<string, PollSession>();
  /** the final reply of sessions that ended, kept for one idle period so a lost reply can be fetched again */
  readonly #ended = new Map<string, { reply: PollReply; until: number }>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /** sessions driven through `engine` */
  constructor(
    readonly engine: Engine,
    options: Partial<PollOptions> = {},
    readonly now: () => number = Date.now,
  ) {
    this.options = { ...DEFAULT_POLL_OPTIONS, ...options };
  }

  /** number of live sessions */
  get size(): number {
    return this.#sessions.size;
  }

  /** open a session for an accepted record; null when the instance is full */
  open(record: ConnRecord, sid: string): PollSession | null {
    if (this.#sessions.size >= this.options.maxSessions) return null;
    const session = new PollSession(sid, record, this);
    this.#sessions.set(sid, session);
    this.#startSweeper();
    this.engine.opened(session);
    return session;
  }

  /** collect frames from `cursor` on, holding the request while there are none */
  async poll(sid: string, cursor: number): Promise<PollReply | PollError> {
    const session = this.#sessions.get(sid);
    if (!session) {
      const ended = this.#ended.get(sid);
      if (!ended) return "session_not_found";
      // The reply carrying `close` was lost: repeat it (without frames already acknowledged).
      return cursor >= ended.reply.cursor ? { cursor, frames: [], close: ended.reply.close } : ended.reply;
    }
    session.lastSeen = this.now();
    this.#ack(session, cursor);
    if (session.frames.length === 0 && !session.ended) {
      await session.wait(this.options.timeoutMs);
      session.lastSeen = this.now();
    }
    return this.#collect(session);
  }

  /** frames from the client, handled in order as if they came on a socket */
  send(sid: string, body: unknown): "ok" | PollError {
    const session = this.#sessions.get(sid);
    if (!session || session.ended) return "session_not_found";
    const parsed = v.safeParse(PollSendSchema, body);
    if (!parsed.success) return "invalid_body";
    if (parsed.output.n <= session.lastSend) return "ok";
    session.lastSend = parsed.output.n;
    for (const frame of parsed.output.frames) {
      if (session.ended) break;
      let data: Frame;
      try {
        data = "t" in frame ? frame.t : fromBase64(frame.b);
      } catch {
        return "invalid_body";
      }
      this.engine.message(session, data);
    }
    return "ok";
  }

  /** the client closes its session with a code and reason */
  close(sid: string, code: number, reason: string): "ok" | PollError {
    const session = this.#sessions.get(sid);
    if (!session) return "session_not_found";
    this.#sessions.delete(sid);
    session.close(code, reason);
    this.#stopSweeperIfIdle();
    return "ok";
  }

  /** close abandoned sessions; runs on a timer while sessions exist */
  sweep(): void {
    const now = this.now();
    for (const [sid, session] of this.#sessions) {
      const idle = !session.holding && now - session.lastSeen > this.options.idleMs;
      if (idle) {
        this.#sessions.delete(sid);
        session.close(1006, "session expired");
      }
    }
    for (const [sid, ended] of this.#ended) if (ended.until < now) this.#ended.delete(sid);
    this.#stopSweeperIfIdle();
  }

  /** end every session (the server is stopping) and the sweeper */
  closeAll(code: number = CloseCode.goingAway, reason: string = CloseReason.goingAway): void {
    for (const session of this.#sessions.values()) session.close(code, reason);
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  #ack(session: PollSession, cursor: number): void {
    const upTo = Math.min(Math.max(cursor, session.base), session.base + session.frames.length);
    const drop = upTo - session.base;
    if (drop <= 0) return;
    for (let i = 0; i < drop; i++) session.queued -= frameSize(session.frames[i] as Frame);
    session.frames.splice(0, drop);
    session.base = upTo;
  }

  #collect(session: PollSession): PollReply {
    const frames: PollFrame[] = [];
    let bytes = 0;
    for (const frame of session.frames) {
      const size = frameSize(frame);
      if (frames.length > 0 && bytes + size > this.options.batchBytes) break;
      bytes += size;
      frames.push(typeof frame === "string" ? { t: frame } : { b: toBase64(frame) });
    }
    const result: PollReply = { cursor: session.base + frames.length, frames };
    if (session.ended && frames.length === session.frames.length) {
      // Everything delivered: the session is over and its id forgotten.
      result.close = session.ended;
      this.#sessions.delete(session.sid);
      if (this.#ended.size < this.options.maxSessions) {
        this.#ended.set(session.sid, { reply: result, until: this.now() + this.options.idleMs });
      }
      this.#stopSweeperIfIdle();
    }
    return result;
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const every = Math.max(50, Math.min(10_000, Math.floor(this.options.idleMs / 2)));
    this.#sweeper = setInterval(() => this.sweep(), every);
  }

  #stopSweeperIfIdle(): void {
    if (this.#sessions.size > 0 || this.#ended.size > 0 || this.#sweeper === undefined) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

/** One long-polling operation on a session, as data: run here, or on the fleet instance holding it. */
export type PollOp =
  | { op: "get"; key: string; cursor: number }
  | { op: "send"; key: string; body: unknown }
  | { op: "close"; key: string; code: number; reason: string };

/** An operation's answer: the HTTP status and JSON body. */
export interface PollDone {
  status: number;
  body: unknown;
}

const NOT_FOUND = {
  error: { code: ErrorCode.sessionNotFound, message: "no such polling session (closed or expired)" },
};

/** Run `op` on this instance's sessions. */
export async function runPollOp(polling: PollTransport, op: PollOp): Promise<PollDone> {
  switch (op.op) {
    case "get": {
      const result = await polling.poll(op.key, op.cursor);
      return typeof result === "string" ? { status: 404, body: NOT_FOUND } : { status: 200, body: result };
    }
    case "send": {
      const result = polling.send(op.key, op.body);
      if (result === "session_not_found") return { status: 404, body: NOT_FOUND };
      if (result === "invalid_body") {
        return {
          status: 400,
          body: {
            error: { code: ErrorCode.invalidBody, message: 'expected {"n":1,"frames":[{"t":"…"}|{"b":"<base64>"}]}' },
          },
        };
      }
      return { status: 200, body: { ok: true } };
    }
    case "close":
      return polling.close(op.key, op.code, op.reason) === "ok"
        ? { status: 200, body: { ok: true } }
        : { status: 404, body: NOT_FOUND };
  }
}
