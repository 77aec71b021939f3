/**
 * Render the configuration reference (every variable, its default, what it
 * means) from src/config.ts's SETTINGS into the README, between the markers
 * `<!-- config:start -->` and `<!-- config:end -->`. `npm run docs:config`
 * rewrites it; a unit test fails when the README is behind the code.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { SETTINGS } from "../src/config.ts";

const root = resolve(import.meta.dirname, "..");
const START = "<!-- config:start -->";
const END = "<!-- config:end -->";

/** The table's Markdown. */
export function configTable(): string {
  const rows = Object.values(SETTINGS).map((s) => {
    const def = "default" in s && s.default !== undefined ? `\`${s.default}\`` : "unset";
    return `| \`${s.env}\` | ${def} | ${s.doc.replaceAll("|", "\\|")} |`;
  });
  return ["| variable | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}

/** The README with the table replaced. */
export function withTable(readme: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} … ${END} section`);
  return `${readme.slice(0, a + START.length)}\n${configTable()}\n${readme.slice(b)}`;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const path = resolve(root, "README.md");
  writeFileSync(path, withTable(readFileSync(path, "utf8")));
  console.log("README.md: configuration table rewritten");
}
