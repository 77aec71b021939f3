/**
 * Runs every conformance case against the real server under each runtime
 * (node, deno, bun, workerd), over real sockets, and prints one capability
 * table at the end. `EDGEWIRE_RUNTIMES=node,bun` narrows the run.
 */
import { after, before, describe, it } from "node:test";
import { RUNTIMES, type RunningServer, type RuntimeName, startServer } from "../support/servers.ts";
import { unsupported } from "./capabilities.ts";
import { cases } from "./cases.ts";
import { POLLING_ENV, pollingCases } from "./polling-cases.ts";
import { runtimeCases } from "./runtime-cases.ts";

const selected = (process.env.EDGEWIRE_RUNTIMES?.split(",") ?? [...RUNTIMES]) as RuntimeName[];
const results = new Map<string, Map<RuntimeName, string>>();
const record = (name: string, runtime: RuntimeName, outcome: string) => {
  if (!results.has(name)) results.set(name, new Map());
  results.get(name)?.set(runtime, outcome);
};

function printTable(): void {
  const lines = [`| case | ${selected.join(" | ")} |`, `| --- | ${selected.map(() => "---").join(" | ")} |`];
  const order = [...cases, ...pollingCases, ...runtimeCases].map((c) => c.name);
  for (const name of order) {
    const row = results.get(name) ?? new Map<RuntimeName, string>();
    lines.push(`| ${name} | ${selected.map((r) => row.get(r) ?? "not run").join(" | ")} |`);
  }
  console.log(`\nedgewire capability table (conformance over real sockets)\n${lines.join("\n")}\n`);
}

describe("conformance", { concurrency: true }, () => {
  after(printTable);
  for (const runtime of selected) {
    describe(runtime, () => {
      let server: RunningServer | undefined;
      before(async () => {
        server = await startServer(runtime, POLLING_ENV);
      });
      after(async () => {
        await server?.stop();
      });
      for (const c of [...cases, ...pollingCases, ...runtimeCases]) {
        const reason = unsupported[runtime][c.name] ?? c.unsupported?.(runtime);
        if (reason) {
          record(c.name, runtime, `n/a: ${reason}`);
          it(c.name, { skip: `n/a on ${runtime}: ${reason}` }, () => {});
          continue;
        }
        it(c.name, { timeout: 60_000 }, async () => {
          if (!server) throw new Error(`${runtime} did not start`);
          try {
            await c.run(server);
            record(c.name, runtime, "pass");
          } catch (error) {
            record(c.name, runtime, "FAIL");
            throw Object.assign(error as Error, { serverOutput: server.output().slice(-4000) });
          }
        });
      }
    });
  }
});
