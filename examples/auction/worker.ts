/** The auction example on Cloudflare Workers: the Worker and the room Durable Object class (its state, history and deadline alarm in SQLite). */
import { cloudflare } from "edgewire/cloudflare";
import edgewire from "./server.ts";

const { worker, RoomObject } = cloudflare(edgewire);

/** The Worker handler. */
export default worker;
/** The Durable Object class, bound as ROOMS in wrangler.toml. */
export { RoomObject };
