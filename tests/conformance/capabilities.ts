/**
 * The capability table: which conformance cases a runtime cannot do, and why.
 * Anything listed here is reported as "n/a" with its reason in the printed
 * table; everything else must pass. Keep this list honest and short.
 */
import type { RuntimeName } from "../support/servers.ts";

/** Case name → reason, per runtime. */
export const unsupported: Record<RuntimeName, Record<string, string>> = {
  node: {},
  deno: {},
  bun: {},
  workerd: {},
};
