/**
 * The import graph of src/ holds to the architecture (docs/architecture.md): no circle — type-only
 * imports included, since a type-only loop is still one unit in several files — and every import
 * goes down the layers, never up. Read from the files' own import lines.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";

const root = resolve(import.meta.dirname, "../..");

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(root, path)).isDirectory() ? filesUnder(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** Each file of src/ with the files of src/ it imports (`import … from "./x.ts"`, `export … from`, `import("…")`). */
function graph(): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const file of filesUnder("src")) {
    if (file.endsWith(".gen.ts")) continue;
    const code = readFileSync(join(root, file), "utf8");
    const targets = [...code.matchAll(/(?:from|import\()\s*"(\.{1,2}\/[^"]+\.ts)"/g)].map((m) =>
      relative(root, resolve(root, dirname(file), m[1] as string)),
    );
    edges.set(file, [...new Set(targets)]);
  }
  return edges;
}

/**
 * The layers, from the bottom: a file may import its own layer's files (no circle) and those below.
 * Wire and leaf helpers; configuration and encoding; brokers; the core; what is built on the core
 * (the client SDK, ready-made routes, AsyncAPI, the inspector); HTTP; the assembly; the entry points.
 */
const LAYERS: [number, RegExp][] = [
  [0, /^src\/(protocol|bytes|log|metrics|message-data)\.ts$|^src\/demo\//],
  [1, /^src\/(msgpack|config)\.ts$/],
  [2, /^src\/pubsub\//],
  [3, /^src\/core\//],
  [4, /^src\/(client|routes|inspector)\/|^src\/asyncapi\.ts$/],
  [5, /^src\/http\//],
  [6, /^src\/assemble\.ts$/],
  [7, /^src\/(serving|index)\.ts$/],
];

const layerOf = (file: string): number => {
  const found = LAYERS.find(([, pattern]) => pattern.test(file));
  if (!found) throw new Error(`${file} is in no layer: add it to LAYERS (and to docs/architecture.md)`);
  return found[0];
};

/** The first import circle of `edges`, as the files around it, or undefined. */
function circle(edges: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (file: string): string[] | undefined => {
    if (state.get(file) === "done") return undefined;
    if (state.get(file) === "visiting") return [...path.slice(path.indexOf(file)), file];
    state.set(file, "visiting");
    path.push(file);
    for (const next of edges.get(file) ?? []) {
      const found = visit(next);
      if (found) return found;
    }
    path.pop();
    state.set(file, "done");
    return undefined;
  };
  for (const file of edges.keys()) {
    const found = visit(file);
    if (found) return found;
  }
  return undefined;
}

describe("import graph of src/", () => {
  it("has no circle, type-only imports included", () => {
    assert.equal(circle(graph())?.join(" -> "), undefined);
  });

  it("imports only downward: no file imports a layer above its own", () => {
    const up: string[] = [];
    for (const [file, targets] of graph())
      for (const target of targets) if (layerOf(target) > layerOf(file)) up.push(`${file} -> ${target}`);
    assert.deepEqual(up, []);
  });

  it("the check itself sees a circle, and the graph reader sees type-only imports", () => {
    const loop = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a"]],
    ]);
    assert.deepEqual(circle(loop), ["a", "b", "c", "a"]);
    assert.ok(graph().get("src/core/context.ts")?.includes("src/core/ports.ts"), "an `import type` is an edge");
  });
});
