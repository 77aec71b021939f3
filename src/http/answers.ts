/**
 * Small answers the endpoints share: /metrics and its refusal, the WebSocket handshake's checks
 * and refusals, refusing a request without using its body, and CORS for cross-origin long-polling.
 */
import type { Context } from "hono";
import { ErrorCode, POLL_PROTOCOL_HEADER, PROBE_HEADER } from "../protocol.ts";
import { bearerOf, httpError, sameSecret } from "./admission.ts";
import type { Serving } from "./instance.ts";

/** The 401 for a metrics request without the configured token, if one is configured. */
export function metricsRefused(c: Context, s: Serving): Response | undefined {
  const token = s.metricsToken;
  // The same header parsing as the push API and the inspector (the scheme is case-insensitive, RFC 9110).
  if (token === undefined || sameSecret(bearerOf(c) ?? "", token)) return undefined;
  return httpError(
    c,
    401,
    ErrorCode.unauthorized,
    `${c.req.path} needs Authorization: Bearer <EDGEWIRE_METRICS_TOKEN>`,
  );
}

/** The Prometheus exposition of the instance serving `c`. */
export function metricsBody(c: Context, s: Serving): Response {
  c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  c.header("Cache-Control", "no-store");
  return c.body(s.metricsText());
}

/** Whether the request asks for a WebSocket upgrade. */
export const isUpgrade = (c: Context): boolean => c.req.header("upgrade")?.toLowerCase() === "websocket";

// RFC 6455 §4.2.1: a 16-byte key in base64 and version 13. Checked here so every runtime refuses
// the same handshakes (measured: Deno upgraded an empty key, Bun a short one, ws accepted version 8).
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/** The refusal of a handshake that is not RFC 6455's (version 13, a 16-byte key), or undefined. */
export function badHandshake(c: Context): Response | undefined {
  if (c.req.header("sec-websocket-version") !== "13") {
    c.header("Sec-WebSocket-Version", "13");
    return httpError(c, 426, ErrorCode.badHandshake, "this server speaks WebSocket version 13 (RFC 6455)");
  }
  if (!KEY.test(c.req.header("sec-websocket-key") ?? "")) {
    return httpError(c, 400, ErrorCode.badHandshake, "Sec-WebSocket-Key must be 16 bytes in base64");
  }
  return undefined;
}

/** The 426 for a plain request to a route that speaks only WebSocket. */
export const upgradeRequired = (c: Context): Response => {
  c.header("Upgrade", "websocket");
  return httpError(
    c,
    426,
    ErrorCode.upgradeRequired,
    "this route speaks WebSocket: send an Upgrade: websocket request",
  );
};

// Refused bodies up to this size are read to keep their connection: 64 KiB costs less than a new connection.
const DRAIN_BYTES = 64 * 1024;

/**
 * Answer a refused request without using its body. A small body (up to
 * DRAIN_BYTES, by its Content-Length) is read and dropped, so the connection
 * stays reusable: cancelling it makes workerd drop the connection, and the
 * client's next request on it fails ("worker restarted mid-request" under
 * wrangler dev). A larger or unsized body is cancelled (workerd logs "Can't read
 * from request stream after response has been sent" for one left unread) and the
 * answer says `Connection: close`, so nobody reuses that connection.
 */
export async function discard(c: Context, response: Response): Promise<Response> {
  const length = Number(c.req.header("content-length"));
  try {
    if (Number.isFinite(length) && length <= DRAIN_BYTES) {
      await c.req.raw.arrayBuffer();
      return response;
    }
    await c.req.raw.body?.cancel();
  } catch {}
  return closing(response);
}

/** The response with `Connection: close` (copied first when its headers are immutable). */
export function closing(response: Response): Response {
  try {
    response.headers.set("Connection", "close");
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set("Connection", "close");
    return copy;
  }
}

/** CORS for cross-origin long-polling, following the Origin policy: only allowed origins may read replies. */
export function cors(c: Context, s: Serving): void {
  const origin = c.req.header("origin");
  if (origin === undefined || !s.admission.originAllowed(c)) return;
  // A response fetched from a Durable Object has immutable headers: copy it first.
  try {
    c.res.headers.set("Access-Control-Allow-Origin", origin);
  } catch {
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set("Access-Control-Allow-Origin", origin);
  }
  c.res.headers.append("Vary", "Origin");
  // What the SDK reads of a probe's answer (a page's script sees only safelisted headers otherwise).
  c.res.headers.set("Access-Control-Expose-Headers", `${PROBE_HEADER}, retry-after`);
}

/** The answer to a polling preflight: for allowed origins only; the browser then refuses to send the request. */
export function preflight(c: Context, s: Serving): Response {
  if (!s.admission.originAllowed(c)) {
    return httpError(c, 403, ErrorCode.originNotAllowed, `origin ${c.req.header("origin")} may not connect`);
  }
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    c.header("Access-Control-Allow-Origin", origin);
    c.header("Vary", "Origin");
  }
  c.header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
  c.header("Access-Control-Allow-Headers", `content-type, authorization, ${POLL_PROTOCOL_HEADER}, ${PROBE_HEADER}`);
  c.header("Access-Control-Max-Age", "600");
  return c.body(null, 204);
}
