/** Run a `tests/support/*.bun.ts` script under Bun (bun:sqlite stands in for a Durable Object's SQLite) and read its one JSON line of findings. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./servers.ts";

/** The last stdout line of `script` (a path under the repository), parsed; the script must exit 0. */
export function bunFindings(script: string): unknown {
  const run = spawnSync(join(ROOT, "node_modules/.bin/bun"), [join(ROOT, script)], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split("\n").at(-1) as string);
}
