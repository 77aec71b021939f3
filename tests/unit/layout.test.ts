/** The house rules that keep the design honest: runtime code only in adapters/, adapters thin, exports documented. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";

const root = resolve(import.meta.dirname, "../..");

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(root, path)).isDirectory() ? filesUnder(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("layout", () => {
  it("src/ touches no runtime API", () => {
    const forbidden = [/\bDeno\./, /\bBun\./, /from "node:/, /\bprocess\./, /cloudflare:/, /require\(/];
    for (const file of filesUnder("src")) {
      const code = readFileSync(join(root, file), "utf8").replace(/^\s*(\/\/|\*|\/\*\*).*$/gm, "");
      for (const pattern of forbidden) assert.doesNotMatch(code, pattern, `${file} uses ${pattern}`);
    }
  });

  it("adapters stay within their line budgets", () => {
    const budget: Record<string, number> = {
      "adapters/node.ts": 150,
      "adapters/deno.ts": 150,
      "adapters/bun.ts": 150,
      "adapters/cloudflare.ts": 300,
    };
    for (const [file, max] of Object.entries(budget)) {
      const lines = readFileSync(join(root, file), "utf8").split("\n").length;
      assert.ok(lines <= max, `${file}: ${lines} lines, budget ${max}`);
    }
  });

  it("every export has a one-line JSDoc", () => {
    for (const dir of ["src", "adapters", "main", "testing", "examples"])
      for (const file of filesUnder(dir)) {
        const lines = readFileSync(join(root, file), "utf8").split("\n");
        lines.forEach((line, i) => {
          if (!/^export (async )?(function|class|const|interface|type|let|default) ?/.test(line)) return;
          if (/^export (default|\{)/.test(line) && !/^export default (function|class)/.test(line)) return;
          let j = i - 1;
          while (j >= 0 && /^\s*(\*|\/\*\*)/.test(lines[j] ?? "") === false && (lines[j] ?? "").trim() === "") j--;
          const above = (lines[j] ?? "").trim();
          assert.ok(above.endsWith("*/"), `${file}:${i + 1} exports without a JSDoc: ${line.slice(0, 80)}`);
        });
      }
  });
});
