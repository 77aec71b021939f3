/**
 * edgewire-bun: the bench service (edgewire-service.ts) on the Bun adapter.
 * (JavaScript, not TypeScript: the repo's Node type check covers bench/.)
 */
import { serve } from "../../adapters/bun.ts";
import { benchService } from "./edgewire-service.ts";

await serve(benchService);
