/**
 * Commands over components that land separately (worker, demo, schedules).
 *
 * @module
 */
import type { Command } from "@effect/cli"

/** Extra top-level commands. */
export const extraCommands: ReadonlyArray<Command.Command<string, never, never, unknown>> = []
