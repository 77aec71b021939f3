/**
 * Deno adapter: `Deno.serve` and `Deno.upgradeWebSocket`. Each connection is
 * one DenoPeer that is also its socket's event listener (`handleEvent`), so a
 * connection allocates no closures.
 */
import type { Runtime } from "../src/runtime.ts";
import { createEdgewire, listeningLine } from "../src/server.ts";
import type { ConnRecord, Frame, Peer } from "../src/transports/peer.ts";

/** A Deno WebSocket seen as an engine Peer. */
class DenoPeer implements Peer {
  constructor(
    readonly socket: WebSocket,
    readonly record: ConnRecord,
  ) {}
  send(frame: Frame): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(frame);
  }
  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }
  handleEvent(event: Event): void {
    switch (event.type) {
      case "open":
        engine.open(this);
        break;
      case "message": {
        const data = (event as MessageEvent<string | ArrayBuffer>).data;
        engine.message(this, typeof data === "string" ? data : new Uint8Array(data));
        break;
      }
      case "close": {
        const { code, reason } = event as CloseEvent;
        // Deno reports a connection dropped without a Close frame as code 0; RFC 6455 calls it 1006.
        engine.close(this, code || 1006, reason);
        break;
      }
      // "error" is always followed by "close", which does the cleanup.
    }
  }
}

const runtime: Runtime = {
  name: "deno",
  upgrade(c, record) {
    // Not `{ protocol }`: Deno splits the offer on ", " only and refuses "a,edgewire.v1"
    // (as `ws` sends it), so the chosen protocol is set on the response instead.
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
    if (record.protocol) response.headers.set("Sec-WebSocket-Protocol", record.protocol);
    socket.binaryType = "arraybuffer";
    const peer = new DenoPeer(socket, record);
    for (const type of ["open", "message", "close"]) socket.addEventListener(type, peer);
    return response;
  },
};

const { config, engine, app } = createEdgewire(Deno.env.toObject(), runtime);

const server = Deno.serve(
  {
    port: config.port,
    hostname: config.host,
    onListen: ({ port }) => console.log(listeningLine("deno", config.host, port)),
  },
  app.fetch,
);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    server.shutdown().finally(() => Deno.exit(0));
  });
}
