/**
 * The inspector's routes (`EDGEWIRE_INSPECTOR=true`, Node, Deno and Bun): the
 * page and its script, open (they hold no data), and a JSON API behind the
 * metrics token — the same credential as `/metrics`, since it shows the same
 * counters and more (room names, members, message contents). Enabling the
 * inspector without a token is a configuration error, so it is never open to
 * strangers by accident.
 */
import type { Context, Hono } from "hono";
import { INSPECTOR_HTML, INSPECTOR_JS } from "../inspector/page.ts";
import type { Sampler } from "../inspector/sampler.ts";
import { ErrorCode } from "../protocol.ts";
import { bearerOf, httpError, sameSecret } from "./admission.ts";

/** Where the inspector lives. */
export const INSPECTOR_PATH = "/inspector";

/** What the inspector's API reads of the instance serving a request. */
export interface InspectorSource {
  /** the sampler, when the inspector is enabled on this instance */
  readonly sampler: Sampler | undefined;
  /** the token the API requires (EDGEWIRE_METRICS_TOKEN) */
  readonly metricsToken: string | undefined;
  readonly runtimeName: string;
  readonly instanceId: string | undefined;
  /** long-polling sessions open */
  pollSessions(): number;
  /** whether `route` is a room route and `room` a valid room name of it (the only rooms worth looking up) */
  isRoom(route: string, room: string): boolean;
}

// A strict policy: the page runs only its own script, talks only to its own origin, and cannot be framed.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function secured(c: Context): void {
  c.header("Content-Security-Policy", CSP);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Referrer-Policy", "no-referrer");
  c.header("Cache-Control", "no-store");
}

/** Mount the inspector on `app`; requests find their instance with `sourceOf`. */
export function mountInspector(app: Hono, sourceOf: (c: Context) => InspectorSource): void {
  const enabled = (c: Context): InspectorSource | undefined => {
    const s = sourceOf(c);
    return s.sampler ? s : undefined;
  };
  const notFound = (c: Context) => httpError(c, 404, ErrorCode.notFound, `no route for ${c.req.path}`);
  // The API's gate: enabled here, and the bearer token matches.
  const gate = (c: Context): { source: InspectorSource; sampler: Sampler } | Response => {
    const source = enabled(c);
    if (!source?.sampler) return notFound(c);
    secured(c);
    const bearer = bearerOf(c) ?? "";
    const token = source.metricsToken;
    if (token === undefined || !sameSecret(bearer, token))
      return httpError(
        c,
        401,
        ErrorCode.unauthorized,
        "the inspector needs Authorization: Bearer <EDGEWIRE_METRICS_TOKEN>",
      );
    return { source, sampler: source.sampler };
  };

  // The page's relative script and API addresses need the trailing slash (and work under a mount prefix).
  app.get(INSPECTOR_PATH, (c) => (enabled(c) ? c.redirect(`${c.req.path}/`, 308) : notFound(c)));
  app.get(`${INSPECTOR_PATH}/`, (c) => {
    if (!enabled(c)) return notFound(c);
    secured(c);
    return c.html(INSPECTOR_HTML);
  });
  app.get(`${INSPECTOR_PATH}/inspector.js`, (c) => {
    if (!enabled(c)) return notFound(c);
    secured(c);
    c.header("Content-Type", "text/javascript; charset=utf-8");
    return c.body(INSPECTOR_JS);
  });
  app.get(`${INSPECTOR_PATH}/api/overview`, (c) => {
    const g = gate(c);
    if (g instanceof Response) return g;
    return c.json(g.sampler.overview(g.source.runtimeName, g.source.instanceId, g.source.pollSessions()));
  });
  app.get(`${INSPECTOR_PATH}/api/rooms/:route/:room`, async (c) => {
    const g = gate(c);
    if (g instanceof Response) return g;
    const route = c.req.param("route");
    const room = c.req.param("room");
    if (!g.source.isRoom(route, room)) return httpError(c, 404, ErrorCode.notFound, `no room ${route}/${room}`);
    return c.json(await g.sampler.room(route, room));
  });
}
