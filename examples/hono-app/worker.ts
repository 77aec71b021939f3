/** The mounted app on Cloudflare Workers. */
import { cloudflare } from "edgewire/cloudflare";
import realtime, { app } from "./app.ts";

const { worker, RoomObject } = cloudflare(realtime, { app });

/** The Worker: your app, with rooms forwarded to their Durable Objects. */
export default worker;
/** The Durable Object class, bound as ROOMS in wrangler.toml. */
export { RoomObject };
