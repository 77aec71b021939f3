/** The cursor example as its own edgewire. */
import { createEdgewire } from "edgewire";
import { cursors } from "./cursors.ts";

/** The cursor example's edgewire. */
export default createEdgewire({ routes: [cursors] });
