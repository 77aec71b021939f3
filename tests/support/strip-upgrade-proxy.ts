/**
 * An HTTP proxy that strips `Upgrade` (as some corporate proxies do): plain
 * requests pass through, a WebSocket handshake reaches the server as a plain
 * GET and the client gets the server's answer (426) instead of a 101.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";

const HOP = new Set(["connection", "upgrade", "keep-alive", "transfer-encoding", "host", "content-length"]);

function forwardHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP.has(key) || key.startsWith("sec-websocket")) continue;
    headers.set(key, Array.isArray(value) ? value.join(", ") : value);
  }
  return headers;
}

async function body(req: IncomingMessage): Promise<Uint8Array<ArrayBuffer> | undefined> {
  if (req.method === "GET" || req.method === "HEAD") return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

/** A running proxy in front of `target` (an http origin). */
export async function startStripUpgradeProxy(
  target: string,
): Promise<{ url: string; upgrades: number; close(): Promise<void> }> {
  const state = { upgrades: 0 };
  const server: Server = createServer(async (req, res) => {
    try {
      const upstream = await fetch(`${target}${req.url}`, {
        method: req.method ?? "GET",
        headers: forwardHeaders(req),
        body: await body(req),
      });
      const headers: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (!HOP.has(k) && k !== "content-encoding") headers[k] = v;
      });
      res.writeHead(upstream.status, headers);
      res.end(Buffer.from(await upstream.arrayBuffer()));
    } catch {
      res.writeHead(502).end();
    }
  });
  server.on("upgrade", async (req: IncomingMessage, socket: Duplex) => {
    state.upgrades++;
    socket.on("error", () => {});
    const upstream = await fetch(`${target}${req.url}`, { headers: forwardHeaders(req) }).catch(() => undefined);
    const status = upstream?.status ?? 502;
    const text = upstream ? await upstream.text() : "";
    socket.end(
      `HTTP/1.1 ${status} Stripped\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    get upgrades() {
      return state.upgrades;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
