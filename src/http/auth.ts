/**
 * Credentials on upgrade: a JWT verified with Hono's own JWT helpers (HS256
 * with a shared secret; RS256/ES256/EdDSA with a public key; or any of them
 * from a JWKS URL), `exp` and `nbf` checked. Where the token may come from,
 * and why each exists:
 *
 * - `Authorization: Bearer <jwt>` — servers, native apps, the SDK on Node:
 *   anything that can set a header on the handshake.
 * - a `Sec-WebSocket-Protocol` entry `edgewire.bearer.<jwt>` — browsers: the
 *   WebSocket API cannot set headers, but it can offer subprotocols, and this
 *   entry is never echoed back (nor logged with the URL by proxies).
 * - the query parameter `access_token` (RFC 6750) — long-polling in
 *   browsers and clients that can do neither; URLs end up in access logs, so
 *   prefer the other two.
 *
 * Claims can restrict rooms: `rooms` (patterns a client may join) and
 * `publish` (patterns it may publish to), where a pattern is `room`, `route:room`,
 * with `*` matching any run of characters. A `push` claim (true, or room
 * patterns) lets a token call the backend push API.
 */
import type { Context } from "hono";
import { verify, verifyWithJwks } from "hono/utils/jwt/jwt";
import type { JWTPayload } from "hono/utils/jwt/types";

export { claimAllows, roomPatternMatches } from "../core/claims.ts";

/** The subprotocol prefix carrying a token, for browsers. */
export const BEARER_PROTOCOL = "edgewire.bearer.";
/** The query parameter carrying a token (RFC 6750). */
export const TOKEN_QUERY = "access_token";

/** Algorithms a public key or JWKS may use. */
export const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"] as const;
/** An asymmetric algorithm. */
export type Asymmetric = (typeof ASYMMETRIC)[number];

/** How tokens are verified. */
export interface AuthOptions {
  /** HS256 shared secret */
  secret?: string | undefined;
  /** a public key: PEM (SPKI) or a JWK as JSON */
  publicKey?: string | undefined;
  /** the public key's algorithm (default RS256) */
  algorithm?: Asymmetric | undefined;
  /** a JWKS URL (keys cached for `jwksTtlMs`) */
  jwksUrl?: string | undefined;
  /** how long fetched JWKS keys are used before fetching again (default 5 minutes) */
  jwksTtlMs?: number | undefined;
  /** the expected `iss` */
  issuer?: string | undefined;
  /** the expected `aud` */
  audience?: string | undefined;
  /** what may be fetched (JWKS), injectable for tests */
  fetch?: typeof fetch;
}

/** The outcome of looking for and verifying a token. */
export type Verified =
  | { ok: true; claims: Record<string, unknown> }
  | { ok: false; reason: string }
  | { ok: true; claims: undefined };

/** Verifies tokens as configured. */
export class Authenticator {
  readonly #options: AuthOptions;
  #jwks: { keys: JsonWebKey[]; until: number } | undefined;
  #publicKey: string | JsonWebKey | undefined;

  /** an authenticator with the given keys */
  constructor(options: AuthOptions) {
    this.#options = options;
    const key = options.publicKey?.trim();
    this.#publicKey = key?.startsWith("{") ? (JSON.parse(key) as JsonWebKey) : key;
  }

  /** whether any key is configured (auth is off otherwise) */
  get configured(): boolean {
    return Boolean(this.#options.secret || this.#options.publicKey || this.#options.jwksUrl);
  }

  /** the token a request carries, from the header, a subprotocol entry or the query */
  static token(c: Context): string | undefined {
    const header = c.req.header("authorization");
    if (header?.toLowerCase().startsWith("bearer ")) return header.slice(7).trim();
    const offer = c.req.header("sec-websocket-protocol");
    if (offer) {
      for (const entry of offer.split(",")) {
        const p = entry.trim();
        if (p.startsWith(BEARER_PROTOCOL)) return p.slice(BEARER_PROTOCOL.length);
      }
    }
    return c.req.query(TOKEN_QUERY) || undefined;
  }

  /** verify `token`: its claims, or why it is refused */
  async verify(token: string): Promise<{ ok: true; claims: Record<string, unknown> } | { ok: false; reason: string }> {
    const o = this.#options;
    const checks = { ...(o.issuer ? { iss: o.issuer } : {}), ...(o.audience ? { aud: o.audience } : {}) };
    try {
      let claims: JWTPayload | undefined;
      const errors: string[] = [];
      // Each configured key is tried in turn; the algorithm is fixed per key, so a token cannot pick a weaker one.
      const attempts: (() => Promise<JWTPayload>)[] = [];
      if (o.secret) attempts.push(() => verify(token, o.secret as string, { alg: "HS256", ...checks }));
      if (this.#publicKey) {
        const key = this.#publicKey;
        attempts.push(() => verify(token, key as string, { alg: o.algorithm ?? "RS256", ...checks }));
      }
      if (o.jwksUrl) {
        attempts.push(async () =>
          verifyWithJwks(token, {
            keys: (await this.#keys()) as never,
            verification: checks,
            allowedAlgorithms: ASYMMETRIC,
          }),
        );
      }
      for (const attempt of attempts) {
        try {
          claims = await attempt();
          break;
        } catch (error) {
          errors.push(describe(error));
        }
      }
      if (!claims) return { ok: false, reason: errors[0] ?? "no key is configured" };
      return { ok: true, claims: claims as Record<string, unknown> };
    } catch (error) {
      return { ok: false, reason: describe(error) };
    }
  }

  async #keys(): Promise<JsonWebKey[]> {
    const now = Date.now();
    if (this.#jwks && this.#jwks.until > now) return this.#jwks.keys;
    const response = await (this.#options.fetch ?? fetch)(this.#options.jwksUrl as string);
    if (!response.ok) throw new Error(`the JWKS URL answered ${response.status}`);
    const body = (await response.json()) as { keys?: unknown };
    if (!Array.isArray(body.keys)) throw new Error("the JWKS has no keys");
    this.#jwks = { keys: body.keys as JsonWebKey[], until: now + (this.#options.jwksTtlMs ?? 300_000) };
    return this.#jwks.keys;
  }
}

// Hono's errors name what failed ("token expired", "signature mismatched"); keep that, without the token.
function describe(error: unknown): string {
  const name = (error as Error)?.name ?? "";
  const message = (error as Error)?.message ?? String(error);
  if (/expired/i.test(name + message)) return "the token has expired (exp)";
  if (/not.?before|nbf/i.test(name + message)) return "the token is not valid yet (nbf)";
  if (/signature/i.test(name + message)) return "the token's signature does not verify";
  if (/issuer|iss/i.test(name)) return "the token's issuer is not accepted";
  if (/audience|aud/i.test(name)) return "the token's audience is not accepted";
  if (/algorithm/i.test(name + message)) return "the token's algorithm is not accepted";
  return "the token is not a valid JWT";
}
