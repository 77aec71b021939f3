/** `deno task start`: the edgewire service on Deno. */
import { serve } from "../adapters/deno.ts";
import { service } from "./service.ts";

await serve(service);
