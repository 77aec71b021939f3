/**
 * The reconnect policy: exponential backoff with jitter, bounded, and the
 * close codes after which reconnecting cannot help.
 */

/** How an EdgewireSocket reconnects after an unexpected drop or a failed attempt. */
export interface ReconnectOptions {
  /** reconnect at all (default true) */
  enabled?: boolean;
  /** delay before the first retry (default 500 ms) */
  minDelayMs?: number;
  /** ceiling of the delay (default 30 s) */
  maxDelayMs?: number;
  /** growth of the delay per failed attempt (default 2) */
  factor?: number;
  /** 0..1: each delay is drawn from [delay × (1 − jitter), delay] so a fleet of clients does not reconnect in step (default 0.5) */
  jitter?: number;
  /** failed attempts in a row before giving up with a `close` event (default Infinity; an open resets the count) */
  maxAttempts?: number;
  /** decide per close whether to reconnect (default: `!isTerminalCloseCode(code)`) */
  shouldReconnect?: (code: number, reason: string) => boolean;
}

/** ReconnectOptions with every default filled in. */
export type ReconnectPolicy = Required<ReconnectOptions>;

/** First close code of the range that mirrors a refused HTTP request: 4000 + the HTTP status (4401 unauthorized, 4403 forbidden, 4404 not found). */
export const HTTP_REFUSAL_CLOSE_BASE = 4000;

/** Close codes the SDK gives meaning to, beyond RFC 6455's. */
export const ClientCloseCode = {
  /** a server (or the polling handshake's HTTP 401) says the client is not authenticated: do not retry with the same credentials */
  unauthorized: 4401,
  /** a server (or HTTP 403) says the client may not connect */
  forbidden: 4403,
} as const;

/**
 * True for close codes after which reconnecting would only repeat the refusal:
 * 1000 (the server ended the session on purpose), 1002 (protocol error), 1003
 * (unsupported data), 1007 (invalid data), 1008 (policy: origin, auth, rate),
 * and 4400–4499 (an HTTP 4xx refusal, including 4401/4403 auth). Everything
 * else (1001 going away, 1005, 1006 dropped, 1009, 1011, 1013, other 4xxx) is
 * worth another attempt.
 */
export function isTerminalCloseCode(code: number): boolean {
  if (code === 1000 || code === 1002 || code === 1003 || code === 1007 || code === 1008) return true;
  return code >= HTTP_REFUSAL_CLOSE_BASE + 400 && code <= HTTP_REFUSAL_CLOSE_BASE + 499;
}

/** The reconnect policy with defaults filled in and nonsense values clamped. */
export function reconnectPolicy(options: ReconnectOptions | boolean | undefined): ReconnectPolicy {
  const o = typeof options === "boolean" ? { enabled: options } : (options ?? {});
  const minDelayMs = Math.max(0, o.minDelayMs ?? 500);
  return {
    enabled: o.enabled ?? true,
    minDelayMs,
    maxDelayMs: Math.max(minDelayMs, o.maxDelayMs ?? 30_000),
    factor: Math.max(1, o.factor ?? 2),
    jitter: Math.min(1, Math.max(0, o.jitter ?? 0.5)),
    maxAttempts: Math.max(0, o.maxAttempts ?? Number.POSITIVE_INFINITY),
    shouldReconnect: o.shouldReconnect ?? ((code) => !isTerminalCloseCode(code)),
  };
}

/** Delay before retry number `attempt` (1-based): min × factor^(attempt−1), capped at max, minus up to `jitter` of it. */
export function backoffDelay(policy: ReconnectPolicy, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.minDelayMs * policy.factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - policy.jitter * random()));
}
