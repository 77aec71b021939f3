/**
 * The contract between the runtime-agnostic app and an adapter. The app never
 * touches a runtime API: it hands the adapter a connection record and gets
 * back the response that completes the upgrade.
 */
import type { Context } from "hono";
import type { ConnRecord, Frame } from "./transports/peer.ts";

/** What the app asks of an adapter. */
export interface Runtime {
  /** short runtime name, shown by `/healthz` ("node", "deno", "bun", "workerd") */
  readonly name: string;
  /** id of this server instance (a Durable Object's incarnation), shown with a room's presence */
  readonly instance?: string;
  /**
   * Complete a WebSocket upgrade already validated by the app. `protocol` is the
   * subprotocol to answer with ("" for none). The adapter later reports the
   * connection's events to the engine with a Peer built around `record`.
   */
  upgrade(c: Context, record: ConnRecord): Response | Promise<Response>;
  /**
   * Native topic publish (Bun's `server.publish`): one call reaches every
   * subscribed socket at the runtime's speed. Absent where the runtime has none;
   * the engine then sends one pre-encoded frame to each member.
   */
  publish?(topic: string, frame: Frame): void;
}
