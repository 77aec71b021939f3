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
    for (const dir of ["src", "adapters", "service", "testing", "examples"])
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

describe("the README's map of the tree", () => {
  // The fenced block under "## How it is built": `name  what it holds`, continuation lines indented.
  const map = (): { name: string; depth: number; text: string }[] => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const block = readme.split("## How it is built\n\n```\n")[1]?.split("```")[0] ?? "";
    const entries: { name: string; depth: number; text: string }[] = [];
    for (const line of block.split("\n")) {
      const m = /^( *)(\S+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const [, indent = "", name = "", text = ""] = m;
      if (indent.length > 2) (entries.at(-1) as { text: string }).text += ` ${name} ${text}`;
      else entries.push({ name, depth: indent.length / 2, text });
    }
    return entries;
  };

  it("names every file of src/ (its folders' files in their line) and the top-level folders, and nothing that is not there", () => {
    const entries = map();
    const top = entries.filter((e) => e.depth === 0).map((e) => e.name);
    for (const dir of ["src/", "adapters/", "service/", "testing/", "examples/", "tests/", "bench/", "docs/"])
      assert.ok(top.includes(dir), `the map names ${dir}`);
    for (const e of entries.filter((x) => x.depth === 1)) {
      assert.ok(
        statSync(join(root, "src", e.name), { throwIfNoEntry: false }),
        `src/${e.name} is in the map but not in the tree`,
      );
    }
    const named = new Set(entries.filter((e) => e.depth === 1).map((e) => e.name));
    for (const name of readdirSync(join(root, "src"))) {
      const dir = statSync(join(root, "src", name)).isDirectory();
      assert.ok(named.has(dir ? `${name}/` : name), `src/${name}${dir ? "/" : ""} is missing from the README's map`);
      if (!dir) continue;
      const line = entries.find((e) => e.name === `${name}/`)?.text ?? "";
      for (const file of readdirSync(join(root, "src", name)).filter(
        (f) => f.endsWith(".ts") && !f.endsWith(".gen.ts"),
      ))
        assert.match(
          line,
          new RegExp(`\\b${file.replace(".", "\\.")}`),
          `src/${name}/${file} is missing from its line of the map`,
        );
    }
  });
});
