/**
 * The Workers-runtime tests' main module (`exports.default`, vitest.config.ts `main`): the sync
 * Worker's handlers with every route of both Workers in one application, so a test reaches the
 * console's routes without the service-binding hop (src/http/console-forward.ts has its own test).
 */
import { createApp } from "../../src/http/app.ts";
import { syncWorker } from "../../src/worker.ts";

export { AccountGate } from "../../src/gate/gate.ts";

export default syncWorker(createApp());
