/**
 * edgewire: realtime WebSocket routes written once, run on Node, Deno, Bun and
 * Cloudflare Workers. Define routes (`defineRoute`, `defineRoom`), make an
 * edgewire (`createEdgewire`), and run it with an adapter: `edgewire/node`,
 * `edgewire/deno`, `edgewire/bun`, `edgewire/cloudflare` — or mount
 * `edgewire.app` into your own Hono app. Guide: docs/server.md.
 */

/** The assembly: make an edgewire, and what adapters assemble it into. */
export {
  type AssembleOptions,
  createEdgewire,
  Edgewire,
  type EdgewireOptions,
  Instance,
  listeningLine,
} from "./assemble.ts";
/** The AsyncAPI 3.0 document of an edgewire's routes, as served at /asyncapi.json. */
export {
  type AsyncApiDocument,
  type AsyncApiOptions,
  type AsyncApiServer,
  asyncApiDocument,
} from "./asyncapi.ts";
/** Configuration: the validated settings and how they are read. */
export { type Config, ConfigSchema, loadConfig } from "./config.ts";
/** What an adapter implements and hands the engine. */
export type { Admitted, ConnRecord, Frame, Peer, Runtime } from "./core/ports.ts";
/** A room route's path parameters: their names as a type, and a room's values. */
export { type ParamNames, pathParams, type RoomParams, roomName, roomParams } from "./core/room-path.ts";
/** Route definitions and what their handlers receive. */
export {
  type AnyRoute,
  ClientError,
  type Committed,
  type Connection,
  defineRoom,
  defineRoute,
  MAX_RECORD_BYTES,
  type Room,
  type RoomContext,
  type RoomOptions,
  type RouteContext,
  type RouteDefinition,
  RouteError,
  type RouteInput,
  type RouteOptions,
  type RouteOutput,
  type StateInit,
  type StateOf,
  type Transaction,
  type TransactionResult,
} from "./core/route.ts";
/** The app's options. */
export type { AppOptions } from "./http/app.ts";
/** Where an instance serves, and the Worker's forwarding seam. */
export type { Forward, ForwardTarget, Mode } from "./http/placement.ts";
/** Wire protocol: frames, close codes and error codes. */
export {
  type AckFrame,
  type BroadcastFrame,
  CLOSE_CODES,
  CloseCode,
  ERROR_CODES,
  ErrorCode,
  type ErrorCodeInfo,
  type ErrorFrame,
  type ListedCloseCode,
  type Member,
  type MessageFrame,
  type PresenceFrame,
  type SequencedFrame,
  SUBPROTOCOL,
  type ViewFrame,
  type WelcomeFrame,
} from "./protocol.ts";
/** Brokers and history stores, for adapters and custom assemblies. */
export type { Broker, RoomRef } from "./pubsub/broker.ts";
/** History stores: memory (default) and SQLite (Durable Objects). */
export { type HistoryStore, MemoryHistory } from "./pubsub/history.ts";
/** History in SQLite through a structural interface (a Durable Object's `ctx.storage.sql`). */
export { SqlHistory, type SqlLike } from "./pubsub/sql-history.ts";
/** Ready-made routes: `/echo` (every frame back) and `/rooms/:room` (the general-purpose room), as the service runs them. */
export { echo } from "./routes/echo.ts";
export { rooms } from "./routes/room.ts";
