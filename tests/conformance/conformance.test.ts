/**
 * Runs every conformance case against the real server under each runtime
 * (node, deno, bun, workerd), over real sockets, and prints one capability
 * table at the end. The echo and room cases run three times: with the `ws`
 * package, and with the edgewire SDK over WebSocket and over long-polling.
 * `EDGEWIRE_RUNTIMES=node,bun` narrows the run.
 */
import { after, before, describe, it } from "node:test";
import { RUNTIMES, type RunningServer, type RuntimeName, startModule, startServer } from "../support/servers.ts";
import { CLIENT_KINDS, type ClientKind } from "../support/test-socket.ts";
import { badInputCases } from "./bad-input-cases.ts";
import { unsupported } from "./capabilities.ts";
import { cases, EXAMPLES_HISTORY_LIMIT, PUSH_TOKEN, SERVICE_ENV } from "./cases.ts";
import { clientCases } from "./client-cases.ts";
import { closeTimeoutCases } from "./close-timeout-cases.ts";
import { exampleCases } from "./example-cases.ts";
import { fallbackCases } from "./fallback-cases.ts";
import { HARDENED_ENV, hardeningCases } from "./hardening-cases.ts";
import { msgpackCases, msgpackExampleCases } from "./msgpack-cases.ts";
import { POLLING_ENV, pollingCases } from "./polling-cases.ts";
import { pushCases } from "./push-cases.ts";
import { chatRefusalCases, refusalCases } from "./refusal-cases.ts";
import { resumeCases, resumeRuntimeCases } from "./resume-cases.ts";
import { roomPathCases } from "./room-path-cases.ts";
import { roomStateCases } from "./room-state-cases.ts";
import { runtimeCases } from "./runtime-cases.ts";

const selected = (process.env.EDGEWIRE_RUNTIMES?.split(",") ?? [...RUNTIMES]) as RuntimeName[];
// EDGEWIRE_CASES=text narrows the run to cases whose name contains it (while working on one).
const only = process.env.EDGEWIRE_CASES;
const allCases = [
  ...cases,
  ...pollingCases,
  ...fallbackCases,
  ...runtimeCases,
  ...resumeCases,
  ...resumeRuntimeCases,
  ...exampleCases,
  ...msgpackCases,
  ...msgpackExampleCases,
  ...hardeningCases,
  ...refusalCases,
  ...chatRefusalCases,
  ...clientCases,
  ...roomPathCases,
  ...roomStateCases,
  ...pushCases,
  ...closeTimeoutCases,
  ...badInputCases,
].filter((c) => !only || c.name.includes(only));
const results = new Map<string, Map<RuntimeName, string>>();
// A cell reads "pass" only when every client kind passed; otherwise it names the kinds that failed.
const record = (name: string, runtime: RuntimeName, outcome: string, kind?: ClientKind) => {
  if (!results.has(name)) results.set(name, new Map());
  const row = results.get(name) as Map<RuntimeName, string>;
  const before = row.get(runtime);
  if (outcome === "FAIL") row.set(runtime, before?.startsWith("FAIL") ? `${before}, ${kind}` : `FAIL: ${kind}`);
  else if (!before?.startsWith("FAIL")) row.set(runtime, outcome);
};

function printTable(): void {
  const lines = [`| case | ${selected.join(" | ")} |`, `| --- | ${selected.map(() => "---").join(" | ")} |`];
  const order = allCases.map((c) => `${c.name}${(c.clients ?? CLIENT_KINDS).length > 1 ? " †" : ""}`);
  for (const name of order) {
    const row = results.get(name.replace(/ †$/, "")) ?? new Map<RuntimeName, string>();
    lines.push(`| ${name} | ${selected.map((r) => row.get(r) ?? "not run").join(" | ")} |`);
  }
  const legend = "† run with the ws package, the SDK over WebSocket and the SDK over long-polling";
  console.log(`\nedgewire capability table (conformance over real sockets)\n${lines.join("\n")}\n${legend}\n`);
}

describe("conformance", { concurrency: true }, () => {
  after(printTable);
  for (const runtime of selected) {
    // Runtimes run side by side; within one, cases run one at a time so timings (poll expiry) stay honest on 2 cores.
    describe(runtime, { concurrency: 1 }, () => {
      const servers: { service?: RunningServer; examples?: RunningServer; hardened?: RunningServer } = {};
      before(async () => {
        // The service; a user's app (examples/hono-app mounting the chat, cursor and auction examples);
        // and the hardened fixture with every defence set tight.
        // Settled, not all: when one fails to start, the others are stopped — left running, their
        // processes kept this test process alive after the failure until CI's timeout.
        const started = await Promise.allSettled([
          startServer(runtime, { ...POLLING_ENV, ...SERVICE_ENV }),
          startModule(runtime, {
            entry: "examples/hono-app/app.ts",
            health: "/realtime/healthz",
            // The auction's backend (its push handler closes an auction early); history kept short,
            // so a room state case can outrun it with a few dozen bids.
            env: { EDGEWIRE_PUSH_TOKEN: PUSH_TOKEN, EDGEWIRE_HISTORY_LIMIT: String(EXAMPLES_HISTORY_LIMIT) },
          }),
          startModule(runtime, { entry: "tests/fixtures/hardened.ts", env: HARDENED_ENV }),
        ]);
        const up = started.map((r) => (r.status === "fulfilled" ? r.value : undefined));
        const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed) {
          await Promise.all(up.map((server) => server?.stop()));
          throw failed.reason;
        }
        [servers.service, servers.examples, servers.hardened] = up;
      });
      after(async () => {
        await Promise.all(Object.values(servers).map((server) => server?.stop()));
      });
      for (const c of allCases) {
        const reason = unsupported[runtime][c.name] ?? c.unsupported?.(runtime);
        if (reason) {
          record(c.name, runtime, `n/a: ${reason}`);
          it(c.name, { skip: `n/a on ${runtime}: ${reason}` }, () => {});
          continue;
        }
        for (const kind of c.clients ?? CLIENT_KINDS) {
          it(kind === "ws" ? c.name : `${c.name} [${kind}]`, { timeout: 60_000 }, async () => {
            const server = servers[c.server ?? "service"];
            if (!server) throw new Error(`${runtime} did not start`);
            try {
              await c.run(server, kind);
              const note = c.note?.(runtime);
              record(c.name, runtime, note ? `pass (${note})` : "pass", kind);
            } catch (error) {
              record(c.name, runtime, "FAIL", kind);
              throw Object.assign(error as Error, { serverOutput: server.output().slice(-4000) });
            }
          });
        }
      }
    });
  }
});
