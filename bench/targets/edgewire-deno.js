/**
 * edgewire-deno: the bench service (edgewire-service.ts) on the Deno adapter.
 * (JavaScript, not TypeScript: the repo's Node type check covers bench/.)
 */
import { serve } from "../../adapters/deno.ts";
import { benchService } from "./edgewire-service.ts";

await serve(benchService);
