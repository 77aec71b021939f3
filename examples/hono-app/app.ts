/**
 * A user's existing Hono app — its own logger, secure headers, server timing,
 * CORS, API-key middleware and REST routes — that serves edgewire's routes (the chat, cursor and auction examples)
 * under `/realtime`. The middleware runs before every upgrade exactly as
 * before any other request: a socket without the key is refused with 401 and
 * never upgraded. Run it on any runtime: the harness (edgewire/testing) and
 * each adapter take the edgewire (default export) and this app (`app`).
 */
import { createEdgewire } from "edgewire";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { logger } from "hono/logger";
import { secureHeaders } from "hono/secure-headers";
import { timing } from "hono/timing";
import { auction } from "../auction/auction.ts";
import { chat } from "../chat/chat.ts";
import { cursors } from "../cursors/cursors.ts";

/** The realtime part: three routes, mounted below. */
export const realtime = createEdgewire({ routes: [chat, cursors, auction] });

/** The demo API key this app's middleware asks for. */
export const API_KEY = "demo-key";

/** The user's own app. */
export const app = new Hono();
app.use(logger());
// Stock middleware that sets headers after next(): on every route, the realtime ones (and their 101s) too.
app.use(secureHeaders());
app.use(timing());
app.use("/api/*", cors({ origin: "https://app.example" }));
app.get("/api/status", (c) => c.json({ ok: true, service: "my-app" }));
// The app's own auth, in front of the realtime routes (the health check stays open for load balancers).
app.use("/realtime/*", async (c, next) => {
  if (c.req.path === "/realtime/healthz") return next();
  const key = c.req.header("x-api-key") ?? c.req.query("key");
  if (key !== API_KEY) return c.json({ error: { code: "unauthorized", message: "an API key is required" } }, 401);
  await next();
});
app.route("/realtime", realtime.app);

export default realtime;
