/** edgewire-node: the bench service (edgewire-service.ts) on the Node adapter. */
import { serve } from "../../adapters/node.ts";
import { benchService } from "./edgewire-service.ts";

await serve(benchService);
