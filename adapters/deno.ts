/**
 * Deno adapter: `serve(edgewire)` on `Deno.serve` and `Deno.upgradeWebSocket`.
 * Each connection is one DenoPeer that is also its socket's event listener
 * (`handleEvent`), so a connection allocates no closures. Nothing happens on import.
 */
import type { Edgewire } from "../src/assemble.ts";
import type { ConnectionEvents, ConnRecord, Frame, Peer, Runtime } from "../src/core/ports.ts";
import { type EdgewireServer, type ServeOptions, serveWith } from "../src/serving.ts";

/** Close a Deno WebSocket's resource (its TCP connection); a no-op where Deno's internals differ. */
function dropConnection(socket: WebSocket): void {
  try {
    const rid = Object.getOwnPropertySymbols(socket).find((s) => s.description === "[[rid]]");
    const core = (Deno as unknown as Record<symbol, { core?: { tryClose(rid: unknown): void } }>)[
      (Deno as unknown as { internal: symbol }).internal
    ]?.core;
    if (rid !== undefined) core?.tryClose((socket as unknown as Record<symbol, unknown>)[rid]);
  } catch {}
}

/** A Deno WebSocket seen as an engine Peer. */
class DenoPeer implements Peer {
  context: unknown;
  constructor(
    readonly socket: WebSocket,
    readonly record: ConnRecord,
    readonly events: ConnectionEvents,
  ) {}
  send(frame: Frame): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(frame);
    // A member that stopped reading must not grow this process without bound.
    if (this.socket.bufferedAmount > this.events.limits.maxBufferedBytes) this.events.slow(this);
  }
  close(code: number, reason: string): void {
    this.socket.close(code, reason);
    // Deno waits for the peer's Close forever (measured 40 s+ with its buffered megabytes): after the close
    // timeout the connection is dropped as on every runtime — through Deno's internals, since no public API
    // drops a server WebSocket's TCP connection (it cannot while writes are stuck behind a full window).
    setTimeout(
      () => this.socket.readyState === WebSocket.CLOSED || dropConnection(this.socket),
      this.events.limits.closeTimeoutMs,
    );
  }
  handleEvent(event: Event): void {
    switch (event.type) {
      case "open":
        this.events.opened(this);
        break;
      case "message": {
        const data = (event as MessageEvent<string | ArrayBuffer>).data;
        this.events.message(this, typeof data === "string" ? data : new Uint8Array(data));
        break;
      }
      case "close": {
        const { code, reason } = event as CloseEvent;
        // A peer that answered no ping: Deno closes it with 1001; for the room it timed out, as anywhere.
        if (reason === "No response from ping frame.") this.events.timedOut(this);
        else this.events.closed(this, code || 1006, reason); // Deno says 0 for a drop; RFC 6455 calls it 1006
        break;
      }
      // "error" is always followed by "close", which does the cleanup.
    }
  }
}

/** Serve `edgewire` on Deno; resolves once listening. */
export function serve(edgewire: Edgewire, options: ServeOptions = {}): Promise<EdgewireServer> {
  const runtime: Runtime = {
    name: "deno",
    upgrade(c, record, events) {
      // Deno pings at half its idleTimeout and closes after a whole one: a ping per heartbeat, closed after two.
      const idleTimeout = Math.max(2, Math.round((2 * events.limits.heartbeatMs) / 1000));
      // Not `{ protocol }`: Deno splits the offer on ", " only and refuses "a,edgewire.v1"
      // (as `ws` sends it), so the chosen protocol is set on the response instead.
      // Deno has no server-side ping(): its idleTimeout pings an idle client and closes one that does not answer.
      const { socket, response } = Deno.upgradeWebSocket(c.req.raw, { idleTimeout });
      if (record.protocol) response.headers.set("Sec-WebSocket-Protocol", record.protocol);
      socket.binaryType = "arraybuffer";
      const peer = new DenoPeer(socket, record, events);
      for (const type of ["open", "message", "close"]) socket.addEventListener(type, peer);
      return response;
    },
    memory: () => Deno.memoryUsage(),
    address: (c) => {
      const addr = (c.env as Deno.ServeHandlerInfo | undefined)?.remoteAddr;
      return addr && "hostname" in addr ? addr.hostname : undefined;
    },
  };
  return serveWith(edgewire, options, Deno.env.toObject(), {
    runtime,
    onSignal: (handler) => {
      for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, handler);
    },
    exit: (code) => Deno.exit(code),
    readText: (path) => Deno.readTextFile(path),
    listen(instance, app, port, hostname, tls) {
      return new Promise((listening) => {
        const server = Deno.serve(
          {
            port,
            hostname,
            ...tls,
            onListen: (addr) => listening({ port: addr.port, close: () => server.shutdown() }),
          },
          (request, info) => instance.fetch(request, info, undefined, app),
        );
      });
    },
  });
}
