/**
 * Admission: everything a connection must pass before it exists, in one
 * place. It runs before every WebSocket upgrade, before every long-polling
 * session opens, before a backend push — and on Cloudflare in the Worker,
 * before a request is forwarded to a Durable Object (which then trusts the
 * admitted record it is handed). In order: draining, the route's room name,
 * the Origin policy, the subprotocol, credentials (JWT) and the rooms they
 * allow, connections per client address; then the instance that will hold the
 * connection checks its capacity (members per room, rooms per instance).
 * Every refusal is an HTTP error with a stable code, counted in /metrics.
 */
import type { Context } from "hono";
import * as v from "valibot";
import type { Config } from "../config.ts";
import type { Engine } from "../core/engine.ts";
import type { Admitted, CompiledRoute, ConnRecord, Runtime } from "../core/ports.ts";
import { roomName, roomParams } from "../core/room-path.ts";
import { ClientError } from "../core/route.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { describeIssues, ErrorCode, type HttpError, PROBE_HEADER, roomNameSchema, SUBPROTOCOLS } from "../protocol.ts";
import { AddressCounter, TrustedProxies } from "./address.ts";
import { Authenticator, BEARER_PROTOCOL, claimAllows } from "./auth.ts";
import { OriginPolicy } from "./origin.ts";

/** Status codes admission and the app answer with (a route's ClientError may choose another 4xx). */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 422 | 426 | 429 | 500 | 503;

/** A JSON error body with a stable code (one of ErrorCode, or a route's own). */
export function httpError(
  c: Context,
  status: ErrorStatus,
  code: HttpError["error"]["code"],
  message: string,
): Response {
  return c.json({ error: { code, message } } satisfies HttpError, status);
}

/**
 * The subprotocol to answer with: "" when none was offered, null when the
 * offer names nothing we speak (refused before the upgrade, not after). A
 * token entry (`edgewire.bearer.…`) is a credential, never a protocol.
 */
export function negotiate(offer: string | undefined): string | null {
  if (offer === undefined) return "";
  const entries = offer
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "" && !p.startsWith(BEARER_PROTOCOL));
  if (entries.length === 0) return "";
  // The client's first choice among those we speak (RFC 6455 leaves the pick to the server).
  return entries.find((p) => SUBPROTOCOLS.includes(p)) ?? null;
}

/** Largest claims a connection record carries (the record must fit 16 KiB with the route's state). */
const MAX_CLAIMS_BYTES = 4096;

/** The token of an `Authorization: Bearer <token>` header (scheme in any case), if the request has one. */
export function bearerOf(c: Context): string | undefined {
  const header = c.req.header("authorization") ?? "";
  return header.toLowerCase().startsWith("bearer ") ? header.slice(7).trim() : undefined;
}

/** Compare a presented secret with the configured one in constant time (for equal lengths): tokens must not leak through timing. */
export function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The checks of one app instance. */
export class Admission {
  readonly #engine: Engine;
  readonly #runtime: Runtime;
  readonly #config: Config;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #origins: OriginPolicy;
  readonly #auth: Authenticator;
  readonly #proxies: TrustedProxies;
  readonly #roomName: v.GenericSchema<unknown, string>;
  /** open connections per address on this instance (not in a Worker: each isolate sees only its own) */
  readonly addresses: AddressCounter;
  #draining = false;

  readonly #countAddresses: boolean;

  /**
   * Admission for `engine`'s routes on `runtime`, configured by `config`.
   * `countAddresses` is off in a Cloudflare Worker: its connections end in
   * objects (and each isolate would see only its own share anyway).
   */
  constructor(engine: Engine, runtime: Runtime, config: Config, metrics: Metrics, log: Logger, countAddresses = true) {
    this.#countAddresses = countAddresses;
    this.#engine = engine;
    this.#runtime = runtime;
    this.#config = config;
    this.#metrics = metrics;
    this.#log = log;
    this.#origins = new OriginPolicy(config.allowedOrigins);
    this.#auth = new Authenticator({
      secret: config.jwtSecret,
      publicKey: config.jwtPublicKey,
      algorithm: config.jwtAlgorithm,
      jwksUrl: config.jwksUrl,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
    });
    this.#proxies = new TrustedProxies(config.trustedProxies);
    this.#roomName = roomNameSchema(config.maxRoomNameLength);
    this.addresses = new AddressCounter(config.maxConnectionsPerAddress);
  }

  #retryAfterMs: () => number | undefined = () => undefined;

  /** refuse new connections from now on (the instance is shutting down), telling clients when to come back */
  drain(retryAfterMs: () => number | undefined = () => undefined): void {
    this.#draining = true;
    this.#retryAfterMs = retryAfterMs;
  }

  /** set `Retry-After` (whole seconds, rounded up) on a draining instance's refusal */
  retryAfter(c: Context): void {
    const ms = this.#retryAfterMs();
    if (ms !== undefined) c.header("Retry-After", String(Math.ceil(ms / 1000)));
  }

  /** whether the instance refuses new connections */
  get draining(): boolean {
    return this.#draining;
  }

  /** whether JWT verification is configured */
  get authConfigured(): boolean {
    return this.#auth.configured;
  }

  #refuse(c: Context, status: ErrorStatus, code: HttpError["error"]["code"], message: string): Response {
    // The SDK's probe repeats a refused handshake's checks: one refusal, counted once.
    if (c.req.header(PROBE_HEADER) === undefined) this.#metrics.refused.inc(code);
    this.#log.debug("refused", { code, status, path: c.req.path, address: this.address(c) });
    return httpError(c, status, code, message);
  }

  /** the client's address: the runtime's peer address, or what a trusted proxy forwarded */
  address(c: Context): string | undefined {
    return this.#proxies.client(this.#runtime.address?.(c), c.req.header("x-forwarded-for"));
  }

  /** whether `name` names a room of a route with these path parameters here: each value valid */
  validRoomName(name: string, params: readonly string[] = ["room"]): boolean {
    const values = roomParams(params, name);
    return values !== undefined && Object.values(values).every((value) => v.safeParse(this.#roomName, value).success);
  }

  /** the room a room route's request names (its path parameters' values, joined by "/"), or the 400 that refuses it */
  room(c: Context, handlers: CompiledRoute): string | Response {
    const named = this.nameRoom(handlers, c.req.param());
    return "issue" in named ? this.#refuse(c, 400, ErrorCode.invalidRoom, named.issue) : named.room;
  }

  /** the room these parameter values name on `handlers`' route, or why one is not a room name (naming it on a path of several) */
  nameRoom(
    handlers: CompiledRoute,
    values: Readonly<Record<string, string | undefined>>,
  ): { room: string } | { issue: string } {
    for (const param of handlers.params) {
      const parsed = v.safeParse(this.#roomName, values[param]);
      if (!parsed.success) {
        const which = handlers.params.length > 1 ? `${param}: ` : "";
        return { issue: which + describeIssues(parsed.issues) };
      }
    }
    return { room: roomName(handlers.params, values) };
  }

  /** whether the request's Origin may connect (and, for polling, read responses) */
  originAllowed(c: Context): boolean {
    return this.#origins.allows(c.req.header("origin"), c.req.header("host"));
  }

  /**
   * Admit a new connection (WebSocket upgrade or long-polling session) to
   * `handlers`' route: its record, or the response that refuses it. A record
   * admitted here holds a count against its address until `release`.
   */
  async connection(
    c: Context,
    handlers: CompiledRoute,
    room: string | null,
    offer: string | undefined,
  ): Promise<ConnRecord | Response> {
    if (this.#draining) {
      this.retryAfter(c);
      return this.#refuse(c, 503, ErrorCode.draining, "this instance is shutting down: connect again");
    }
    if (!this.originAllowed(c)) {
      return this.#refuse(
        c,
        403,
        ErrorCode.originNotAllowed,
        `origin ${c.req.header("origin")} may not connect (EDGEWIRE_ALLOWED_ORIGINS)`,
      );
    }
    const protocol = negotiate(offer);
    if (protocol === null) {
      return this.#refuse(
        c,
        400,
        ErrorCode.unsupportedProtocol,
        `offer the subprotocol ${SUBPROTOCOLS.join(" or ")}, or none`,
      );
    }
    const claims = await this.#credentials(c, handlers);
    if (claims instanceof Response) return claims;
    if (room !== null && !claimAllows(claims, "rooms", handlers.name, room)) {
      return this.#refuse(c, 403, ErrorCode.forbidden, `the token does not allow joining ${handlers.name}:${room}`);
    }
    const address = this.address(c);
    if (this.#countAddresses && !this.addresses.acquire(address)) {
      return this.#refuse(
        c,
        429,
        ErrorCode.tooManyConnections,
        `at most ${this.addresses.limit} connections per address`,
      );
    }
    const auth: Admitted = { ...(claims ? { claims } : {}), ...(address === undefined ? {} : { address }) };
    try {
      const record = this.#engine.record(handlers.name, room, protocol, auth, c.req.query());
      // A room client coming back asks to resume after the last seq it saw, in the epoch it saw it in.
      const seq = c.req.query("seq");
      const epoch = c.req.query("epoch");
      if (room !== null && seq !== undefined && /^\d{1,15}$/.test(seq) && epoch && epoch.length <= 64) {
        record.resume = { seq: Number(seq), epoch };
      }
      return record;
    } catch (error) {
      if (this.#countAddresses) this.addresses.release(address);
      // Refused by the route (its initialState's ClientError, or a state its schema refuses): the
      // client's doing, answered before the upgrade with that code and never logged as a fault.
      if (error instanceof ClientError) return this.#refuse(c, error.status as ErrorStatus, error.code, error.message);
      // Anything else initialState threw is the app's bug.
      this.#metrics.faults++;
      this.#log.error(`route "${handlers.name}": initialState failed`, { error });
      return httpError(c, 500, ErrorCode.internal, "the route could not make the connection's state");
    }
  }

  /**
   * Check a read of a room's history: the same Origin policy and credentials
   * (and `rooms` claim) as joining it. Undefined to go on, or the refusal.
   */
  async read(c: Context, handlers: CompiledRoute, room: string): Promise<Response | undefined> {
    if (!this.originAllowed(c)) {
      return this.#refuse(
        c,
        403,
        ErrorCode.originNotAllowed,
        `origin ${c.req.header("origin")} may not read this room`,
      );
    }
    const claims = await this.#credentials(c, handlers);
    if (claims instanceof Response) return claims;
    if (!claimAllows(claims, "rooms", handlers.name, room)) {
      return this.#refuse(c, 403, ErrorCode.forbidden, `the token does not allow reading ${handlers.name}:${room}`);
    }
    return undefined;
  }

  /** a connection admitted here ended: its address may connect again */
  release(record: ConnRecord): void {
    if (this.#countAddresses) this.addresses.release(record.auth?.address);
  }

  /**
   * The instance that will hold a room connection checks its capacity: members
   * per room and rooms per instance (on Cloudflare, the room's own object).
   */
  async capacity(c: Context, route: string, room: string): Promise<Response | undefined> {
    const ref = this.#engine.ref(route, room);
    const count = await this.#engine.broker.count(ref);
    if (count >= this.#config.maxRoomMembers) {
      return this.#refuse(
        c,
        503,
        ErrorCode.roomFull,
        `the room has ${count} members, the most it takes (EDGEWIRE_MAX_ROOM_MEMBERS)`,
      );
    }
    if (count === 0 && this.#engine.hub.roomCount >= this.#config.maxRooms) {
      return this.#refuse(
        c,
        503,
        ErrorCode.tooManyRooms,
        `this instance holds ${this.#engine.hub.roomCount} rooms, the most it takes`,
      );
    }
    return undefined;
  }

  // The token's claims; undefined for an anonymous connection that may proceed; or the 401 that refuses it.
  async #credentials(c: Context, handlers: CompiledRoute): Promise<Record<string, unknown> | undefined | Response> {
    const required =
      handlers.definition.options.auth === "required" || (this.#auth.configured && this.#config.auth !== "optional");
    const token = Authenticator.token(c);
    if (token === undefined) {
      if (!required) return undefined;
      const how = this.#auth.configured
        ? ""
        : " (and no JWT key is configured: EDGEWIRE_JWT_SECRET, _PUBLIC_KEY or EDGEWIRE_JWKS_URL)";
      return this.#refuse(
        c,
        401,
        ErrorCode.unauthorized,
        `a token is required: Authorization: Bearer, subprotocol ${BEARER_PROTOCOL}<jwt> or ?access_token=${how}`,
      );
    }
    if (!this.#auth.configured) {
      return required
        ? this.#refuse(c, 401, ErrorCode.unauthorized, "no JWT key is configured to verify the token")
        : undefined;
    }
    const verified = await this.#auth.verify(token);
    if (!verified.ok) return this.#refuse(c, 401, ErrorCode.unauthorized, verified.reason);
    if (JSON.stringify(verified.claims).length > MAX_CLAIMS_BYTES) {
      return this.#refuse(c, 401, ErrorCode.unauthorized, `the token's claims exceed ${MAX_CLAIMS_BYTES} bytes`);
    }
    return verified.claims;
  }

  /**
   * Check a backend push's credential for `route:room`: undefined to go on, or
   * the 401/403 that refuses it. Closed unless a push token is configured (or
   * a JWT with a `push` claim, or the API was opened on purpose).
   */
  async push(c: Context, route: string, room: string): Promise<Response | undefined> {
    const credential = await this.pushCredential(c);
    if (credential instanceof Response) return credential;
    const denied = this.#denies(credential, route, room);
    return denied ? this.#refuse(c, 403, ErrorCode.forbidden, denied) : undefined;
  }

  /**
   * A backend push's credential, verified once per request (a batch checks it against each of
   * its rooms with `pushDenied`): every room (the push token, or the API opened), the claims of a
   * JWT, or the 401 that refuses the request.
   */
  async pushCredential(c: Context): Promise<PushCredential | Response> {
    if (this.#config.pushOpen) return { all: true };
    const bearer = bearerOf(c);
    const token = this.#config.pushToken;
    if (bearer !== undefined && token !== undefined && sameSecret(bearer, token)) return { all: true };
    if (bearer !== undefined && this.#auth.configured && bearer.split(".").length === 3) {
      const verified = await this.#auth.verify(bearer);
      if (!verified.ok) return this.#refuse(c, 401, ErrorCode.unauthorized, verified.reason);
      return { all: false, claims: verified.claims };
    }
    const why =
      token === undefined ? " (no EDGEWIRE_PUSH_TOKEN is configured: set one, or a JWT key and a push claim)" : "";
    return this.#refuse(c, 401, ErrorCode.unauthorized, `backend push needs Authorization: Bearer <token>${why}`);
  }

  /** why `credential` may not push to `route:room` (a batch's message is refused with it, counted as a refusal), or undefined */
  pushDenied(credential: PushCredential, route: string, room: string): string | undefined {
    const denied = this.#denies(credential, route, room);
    if (denied) this.#metrics.refused.inc(ErrorCode.forbidden);
    return denied;
  }

  #denies(credential: PushCredential, route: string, room: string): string | undefined {
    if (credential.all) return undefined;
    // A JWT without a push claim pushes nowhere (a connection's token is not a backend's).
    const { claims } = credential;
    if (claims.push !== undefined && claimAllows(claims, "push", route, room)) return undefined;
    return `the token has no push claim for ${route}:${room}`;
  }
}

/** Who a backend push comes from: the push token (every room), or a JWT's claims (its `push` claim's rooms). */
export type PushCredential = { all: true } | { all: false; claims: Record<string, unknown> };
