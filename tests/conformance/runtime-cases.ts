/** Cases about one runtime's own machinery (Durable Object hibernation). */
import type { Case } from "./cases.ts";

/** Cases that only some runtimes can do; the others say why in the table. */
export const runtimeCases: Case[] = [];
