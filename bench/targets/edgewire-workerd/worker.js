/**
 * edgewire-workerd: the bench service (../edgewire-service.ts) as a Worker with one Durable
 * Object per room, exactly as service/cloudflare.ts makes the service's.
 * (JavaScript, not TypeScript: the repo's Node type check covers bench/.)
 */
import { cloudflare } from "../../../adapters/cloudflare.ts";
import { benchService } from "../edgewire-service.ts";

const { worker, RoomObject } = cloudflare(benchService);

export default worker;
export { RoomObject };
