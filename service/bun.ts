/** `bun run start`: the edgewire service on Bun. */
import { serve } from "../adapters/bun.ts";
import { service } from "./service.ts";

await serve(service);
