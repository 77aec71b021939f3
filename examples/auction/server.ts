/** The auction example as its own edgewire. */
import { createEdgewire } from "edgewire";
import { auction } from "./auction.ts";

/** The auction example's edgewire. */
export default createEdgewire({ routes: [auction] });
