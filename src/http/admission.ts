/**
 * Admission: everything a connection must pass before it exists, in one
 * place. It runs before every WebSocket upgrade, before every long-polling
 * session opens, before a backend push — and on Cloudflare in the Worker,
 * before a request is forwarded to a Durable Object (which then trusts the
 * admitted record it is handed). Today: the route's room name and the
 * subprotocol; origin, credentials and limits plug in here.
 */
import type { Context } from "hono";
import * as v from "valibot";
import type { Admitted, ConnRecord, Runtime } from "../core/contract.ts";
import type { Engine } from "../core/engine.ts";
import type { Handlers } from "../core/handlers.ts";
import { RouteError } from "../core/route.ts";
import { describeIssues, ErrorCode, type HttpError, RoomNameSchema, SUBPROTOCOL } from "../protocol.ts";

/** Status codes admission and the app answer with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 413 | 426 | 500 | 503;

/** A JSON error body with a stable code. */
export function httpError(c: Context, status: ErrorStatus, code: ErrorCode, message: string): Response {
  return c.json({ error: { code, message } } satisfies HttpError, status);
}

/**
 * The subprotocol to answer with: "" when none was offered, null when the
 * offer names nothing we speak (refused before the upgrade, not after).
 */
export function negotiate(offer: string | undefined): string | null {
  if (offer === undefined || offer.trim() === "") return "";
  return offer.split(",").some((p) => p.trim() === SUBPROTOCOL) ? SUBPROTOCOL : null;
}

/** The checks of one app instance. */
export class Admission {
  readonly #engine: Engine;
  readonly #runtime: Runtime;
  readonly #pushToken: string | undefined;

  /** admission for `engine`'s routes on `runtime` */
  constructor(engine: Engine, runtime: Runtime, options: { pushToken?: string | undefined } = {}) {
    this.#engine = engine;
    this.#runtime = runtime;
    this.#pushToken = options.pushToken;
  }

  /** the room name of a room route's request, or the 400 that refuses it */
  room(c: Context, raw: string | undefined): string | Response {
    const parsed = v.safeParse(RoomNameSchema, raw);
    if (!parsed.success) return httpError(c, 400, ErrorCode.invalidRoom, describeIssues(parsed.issues));
    return parsed.output;
  }

  /**
   * Admit a new connection (WebSocket upgrade or long-polling session) to
   * `handlers`' route: its record, or the response that refuses it.
   */
  connection(c: Context, handlers: Handlers, room: string | null, offer: string | undefined): ConnRecord | Response {
    const protocol = negotiate(offer);
    if (protocol === null) {
      return httpError(c, 400, ErrorCode.unsupportedProtocol, `offer the subprotocol ${SUBPROTOCOL}, or none`);
    }
    const address = this.#runtime.address?.(c);
    const auth: Admitted = address === undefined ? {} : { address };
    try {
      return this.#engine.record(handlers.name, room, protocol, auth, c.req.query());
    } catch (error) {
      // A route whose initial state fails its own schema is the app's bug, not the client's.
      if (!(error instanceof RouteError)) throw error;
      console.error(error.message);
      return httpError(c, 500, ErrorCode.internal, "the route could not make the connection's state");
    }
  }

  /** check a backend push's credential: undefined to go on, or the 401 that refuses it */
  push(c: Context): Response | undefined {
    if (this.#pushToken !== undefined && c.req.header("authorization") !== `Bearer ${this.#pushToken}`) {
      return httpError(c, 401, ErrorCode.unauthorized, "backend push needs Authorization: Bearer <token>");
    }
    return undefined;
  }
}
