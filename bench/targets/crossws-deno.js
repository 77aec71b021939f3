/**
 * crossws on Deno. Shared hooks in crossws-hooks.ts.
 * (JavaScript: the repo's Node type check covers bench/.)
 */
import crossws from "crossws/adapters/deno";
import { hooks } from "./crossws-hooks.ts";

const ws = crossws({ hooks: hooks(() => ws) });
Deno.serve({ port: Number(Deno.env.get("PORT")), hostname: Deno.env.get("HOST") ?? "127.0.0.1", onListen() {} }, (req, info) => {
  if (new URL(req.url).pathname === "/healthz") return Response.json({ ok: true, runtime: "crossws-deno" });
  if (req.headers.get("upgrade") === "websocket") return ws.handleUpgrade(req, info);
  return new Response("not found", { status: 404 });
});
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
