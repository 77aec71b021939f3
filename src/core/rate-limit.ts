/**
 * The per-connection rate limit: a token bucket (`burst` frames at once, `perSecond` after) and
 * what a client that ignores its refusals is — a flooder. The state lives on the connection's
 * context (no allocation per frame); the engine acts on the verdict.
 */
import type { RateLimit } from "./ports.ts";

/** A client found flooding is closed (1008) once it has sent nothing for this long; meanwhile its frames are ignored. */
export const FLOOD_CLOSE_DELAY_MS = 250;
/** …or this long after it was found flooding, if it never pauses. */
export const FLOOD_CLOSE_MAX_MS = 5000;

/** What the bucket keeps per connection. */
export interface Bucket {
  tokens: number;
  refilledAt: number;
  /** frames refused in the current second, and when it began */
  refused: number;
  refusedSince: number;
}

/**
 * Take a token for one frame at `now`: "ok"; "refused" (answer `rate_limited`, with when to retry);
 * or "flooding" — more than `burst` refusals within a second: a client that ignores the answers,
 * not answered any more (an answer per violation would itself amplify). Counted per second, not
 * "in a row": a server slower than the flood (workerd handles a frame in tens of µs) refills a
 * token between two refusals, and "in a row" never came — 30 000 frames drew 29 275 answers and
 * no close.
 */
export function take(bucket: Bucket, rate: RateLimit, now: number): "ok" | "refused" | "flooding" {
  const tokens = Math.min(rate.burst, bucket.tokens + ((now - bucket.refilledAt) * rate.perSecond) / 1000);
  bucket.refilledAt = now;
  if (tokens >= 1) {
    bucket.tokens = tokens - 1;
    return "ok";
  }
  bucket.tokens = tokens;
  if (now - bucket.refusedSince >= 1000) {
    bucket.refusedSince = now;
    bucket.refused = 0;
  }
  return ++bucket.refused > rate.burst ? "flooding" : "refused";
}

/** When a refused frame would be accepted: the time one token takes to refill. */
export function retryAfterMs(bucket: Bucket, rate: RateLimit): number {
  return Math.ceil(((1 - bucket.tokens) * 1000) / rate.perSecond);
}

/**
 * Close a flooder once its flood pauses for FLOOD_CLOSE_DELAY_MS, or FLOOD_CLOSE_MAX_MS after it
 * began. A Close sent while the client is still sending is lost on Bun and Deno: they drop the TCP
 * connection with the flood unread, the kernel resets it, and the client loses every frame not yet
 * read — the refusals and the Close itself (it saw 1006). Node's ws and workerd read on until the
 * client's Close.
 */
export function closeWhenQuiet(lastSeen: () => number, now: () => number, close: () => void): void {
  const since = now();
  const check = () => {
    const at = now();
    if (at - lastSeen() >= FLOOD_CLOSE_DELAY_MS || at - since >= FLOOD_CLOSE_MAX_MS) close();
    else setTimeout(check, FLOOD_CLOSE_DELAY_MS);
  };
  setTimeout(check, FLOOD_CLOSE_DELAY_MS);
}
