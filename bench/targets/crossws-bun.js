/**
 * crossws on Bun (native pub/sub underneath). Shared hooks in crossws-hooks.ts.
 * (JavaScript: the repo's Node type check covers bench/.)
 */
import crossws from "crossws/adapters/bun";
import { hooks } from "./crossws-hooks.ts";

const ws = crossws({ hooks: hooks(() => ws) });
Bun.serve({
  port: Number(Bun.env.PORT),
  hostname: Bun.env.HOST ?? "127.0.0.1",
  websocket: { ...ws.websocket, perMessageDeflate: false, maxPayloadLength: 1 << 20 },
  fetch(req, server) {
    if (new URL(req.url).pathname === "/healthz") return Response.json({ ok: true, runtime: "crossws-bun" });
    if (req.headers.get("upgrade") === "websocket") return ws.handleUpgrade(req, server);
    return new Response("not found", { status: 404 });
  },
});
process.once("SIGTERM", () => process.exit(0));
