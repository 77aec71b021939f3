/**
 * The Origin policy. The WebSocket protocol has no same-origin rule: any page
 * a user visits can open a socket to any server with the user's cookies
 * (cross-site WebSocket hijacking), so the server must check `Origin` itself.
 * By default a browser's Origin must name the request's own host; an
 * allow-list (exact origins, `https://*.example.com`, or `*` on purpose)
 * replaces that default. Requests without Origin (non-browser clients) pass:
 * browsers always send it on WebSocket handshakes and cross-origin fetches.
 */

/** A parsed allow-list entry. */
type Entry =
  | { kind: "any" }
  | { kind: "exact"; origin: string }
  | { kind: "suffix"; scheme: string; suffix: string; port: string };

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443" };

/** `scheme://host:port` with the default port spelled out, lower-cased; null when it is not an origin. */
function normalise(origin: string): { scheme: string; host: string; port: string } | null {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return null;
  }
  if (url.host === "") return null;
  return {
    scheme: url.protocol,
    host: url.hostname.toLowerCase(),
    port: url.port || (DEFAULT_PORTS[url.protocol] ?? ""),
  };
}

const key = (o: { scheme: string; host: string; port: string }) => `${o.scheme}//${o.host}:${o.port}`;

/** Parse one allow-list entry; throws on a malformed one (configuration is validated at start). */
export function parseOriginEntry(raw: string): Entry {
  const entry = raw.trim();
  if (entry === "*") return { kind: "any" };
  const wildcard = /^(https?):\/\/\*\.([a-z0-9.-]+)(?::(\d+))?$/i.exec(entry);
  if (wildcard) {
    const scheme = `${(wildcard[1] as string).toLowerCase()}:`;
    return {
      kind: "suffix",
      scheme,
      suffix: `.${(wildcard[2] as string).toLowerCase()}`,
      port: wildcard[3] ?? (DEFAULT_PORTS[scheme] as string),
    };
  }
  const parsed = normalise(entry);
  if (!parsed || !/^https?:$/.test(parsed.scheme) || entry.replace(/\/$/, "").split("/").length !== 3) {
    throw new Error(`not an origin (scheme://host[:port]), a https://*.domain wildcard or *: ${raw}`);
  }
  return { kind: "exact", origin: key(parsed) };
}

/** Which browser origins may open connections. */
export class OriginPolicy {
  readonly #entries: Entry[] | undefined;

  /** the same-host default (`allowed` undefined), or an allow-list that replaces it */
  constructor(allowed?: readonly string[]) {
    this.#entries = allowed?.map(parseOriginEntry);
  }

  /** the policy admits every origin (an explicit `*`) */
  get open(): boolean {
    return this.#entries?.some((e) => e.kind === "any") ?? false;
  }

  /**
   * Whether a request with this `Origin` header, addressed to `host` (its
   * Host header), may connect. No Origin: not a browser, allowed.
   */
  allows(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    const parsed = origin === "null" ? null : normalise(origin);
    if (!this.#entries) {
      // Same host: the Origin's host and port against the Host header (scheme unknown behind a TLS proxy).
      if (!parsed || host === undefined) return false;
      const [hostname, port] = splitHost(host);
      return (
        parsed.host === hostname &&
        (port === undefined ? parsed.port === DEFAULT_PORTS[parsed.scheme] : parsed.port === port)
      );
    }
    for (const entry of this.#entries) {
      if (entry.kind === "any") return true;
      if (!parsed) continue;
      if (entry.kind === "exact" && entry.origin === key(parsed)) return true;
      if (
        entry.kind === "suffix" &&
        parsed.scheme === entry.scheme &&
        parsed.port === entry.port &&
        parsed.host.endsWith(entry.suffix)
      ) {
        return true;
      }
    }
    return false;
  }
}

// "example.com:8080" → ["example.com", "8080"]; "[::1]:8787" → ["[::1]"… as URL hostnames spell it].
function splitHost(host: string): [string, string | undefined] {
  const h = host.trim().toLowerCase();
  const bracket = /^(\[[^\]]+\])(?::(\d+))?$/.exec(h);
  if (bracket) return [bracket[1] as string, bracket[2]];
  const colon = h.lastIndexOf(":");
  return colon < 0 ? [h, undefined] : [h.slice(0, colon), h.slice(colon + 1)];
}
