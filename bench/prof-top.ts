/**
 * The top of a V8/JavaScriptCore `.cpuprofile` (what `npm run bench -- --profile` writes to
 * bench/.work/prof/): self time by function and by file, as shares of the busy (not idle) samples.
 *
 *   node --import tsx bench/prof-top.ts bench/.work/prof/CPU.….cpuprofile [--top=25]
 */
import { readFileSync, realpathSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "./lib/targets.ts";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas?: number[];
}

const argv = process.argv.slice(2);
const top = Number(argv.find((a) => a.startsWith("--top="))?.slice(6) ?? 25);
// node_modules may be a symlink (a worktree's): its packages are named by their path inside it.
const MODULES = realpathSync(join(ROOT, "node_modules"));
const where = (url: string) => {
  if (!url) return "(native)";
  const path = url.replace(/^file:\/\//, "");
  if (path.startsWith(`${MODULES}/`)) return path.slice(MODULES.length + 1);
  const rel = relative(ROOT, path);
  return rel.startsWith("..") ? path : rel.replace(/^node_modules\//, "");
};

for (const file of argv.filter((a) => !a.startsWith("--"))) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Time per sample: its delta (µs) when present, else one unit each.
  const self = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas?.[i] ?? 1));
  // Shares of the busy time: the profile spans the whole process, start-up and waiting included.
  const idle = [...self].filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)");
  const idleTime = idle.reduce((a, [, t]) => a + t, 0);
  for (const [id] of idle) self.delete(id);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = `${functionName || "(anonymous)"}  ${where(url)}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + t);
    byFile.set(where(url), (byFile.get(where(url)) ?? 0) + t);
  }
  const show = (title: string, m: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`${((v / total) * 100).toFixed(1).padStart(6)} %  ${k}`);
  };
  console.log(
    `# ${file}: ${profile.samples.length} samples, ${((idleTime / (idleTime + total)) * 100).toFixed(0)} % idle (left out below)`,
  );
  show("self time by function", byFunction);
  show("self time by file", byFile);
}
