/**
 * crossws on Node (its `ws`-based adapter). Shared hooks in crossws-hooks.ts.
 */
import { createServer } from "node:http";
import crossws from "crossws/adapters/node";
import { hooks } from "./crossws-hooks.ts";

const ws = crossws({ hooks: hooks(() => ws), serverOptions: { perMessageDeflate: false, maxPayload: 1 << 20 } });
const server = createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
  res.end(req.url === "/healthz" ? '{"ok":true,"runtime":"crossws-node"}' : "{}");
});
server.on("upgrade", (req, socket, head) => ws.handleUpgrade(req, socket, head));
server.listen(Number(process.env.PORT), process.env.HOST ?? "127.0.0.1");
process.once("SIGTERM", () => process.exit(0));
