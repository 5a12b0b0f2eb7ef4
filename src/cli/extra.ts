/**
 * Commands over the long-running programs: the worker, the monitor, the dashboard and the demo.
 *
 * @module
 */
import { demo } from "./demo.js"
import { dashboard, monitor, serve, worker } from "./worker.js"

/** Extra top-level commands. */
export const extraCommands = [worker, monitor, dashboard, serve, demo] as const
