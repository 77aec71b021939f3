/** `npm run dev:cf` and `wrangler deploy`: the edgewire service as a Worker with one Durable Object per room. */
import { cloudflare } from "../adapters/cloudflare.ts";
import { service } from "./service.ts";

const { worker, RoomObject } = cloudflare(service);

/** The Worker: admits connections and forwards rooms to their objects. */
export default worker;
/** The Durable Object class bound as ROOMS in wrangler.toml. */
export { RoomObject };
