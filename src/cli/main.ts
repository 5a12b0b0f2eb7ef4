/**
 * The `buquet` command line (design.md §7): the command tree, and {@link main}, which runs it and
 * turns every outcome into an exit code — 0 ok, 1 operational failure, 2 bad input — with failures
 * as one line on stderr that says what to do.
 *
 * @module
 */
import { Args, CliConfig, Command, CommandDescriptor, ValidationError } from "@effect/cli"
import { cleanHelp, commandDescription, helpColor, helpWidth, renderHelp, subcommandNames } from "./help.js"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, Console, Effect, Exit, HashMap, HashSet, Logger, Option } from "effect"
import { archive, cancel, get, history, list, replay, status, submit } from "./tasks.js"
import { pause, repair, resume, schema, workers } from "./admin.js"
import { config } from "./config.js"
import { CliError, stderrLine, usageError } from "./common.js"
import { doctor } from "./doctor.js"
import { tail } from "./tail.js"
import { migrateShards } from "./migrate.js"
import { extraCommands } from "./extra.js"
import { schedule } from "./schedule.js"
import { workflow } from "./workflow.js"
import { stats } from "./stats.js"
import { closest } from "./suggest.js"
import { safeLogger } from "./logging.js"
import { referenceRefusal } from "./reference.js"
import { buquetVersion } from "../domain/Version.js"
import { maskCredentialsInText } from "../domain/ConfigModel.js"

/** The version printed by `--version`. */
export const version = buquetVersion

// The completions command needs the root's descriptor, which exists only once the root is built.
const completionTarget: { descriptor?: CommandDescriptor.Command<unknown> } = {}

const completions = Command.make(
  "completions",
  {
    shell: Args.choice([["bash", "bash"], ["zsh", "zsh"], ["fish", "fish"]] as const, { name: "shell" }).pipe(
      Args.withDescription("the shell to complete in: bash, zsh or fish")
    )
  },
  ({ shell }) =>
    Effect.suspend(() => {
      const d = completionTarget.descriptor!
      const lines = shell === "bash"
        ? CommandDescriptor.getBashCompletions(d, "buquet")
        : shell === "zsh"
        ? CommandDescriptor.getZshCompletions(d, "buquet")
        : CommandDescriptor.getFishCompletions(d, "buquet")
      return Effect.flatMap(lines, (ls) => Console.log(ls.join("\n")))
    })
).pipe(Command.withDescription("print a shell completion script (bash, zsh or fish)"))

const topLevel = [
  submit,
  get,
  status,
  history,
  list,
  cancel,
  replay,
  archive,
  pause,
  resume,
  schema,
  workers,
  stats,
  tail,
  doctor,
  repair,
  migrateShards,
  schedule,
  workflow,
  config,
  completions,
  ...extraCommands
] as const

/** The root command. */
export const root = Command.make("buquet").pipe(
  Command.withDescription("a distributed task queue on an S3 bucket"),
  Command.withSubcommands(topLevel)
)
completionTarget.descriptor = root.descriptor


const cli = (argv: ReadonlyArray<string>) =>
  // no built-in options (--wizard, --completions, --log-level) in every command's help
  Command.run(root, { name: "buquet", version })(argv).pipe(Effect.provide(CliConfig.layer({ showBuiltIns: false })))

// eslint-disable-next-line no-control-regex
const stripAnsi = (text: string): string => text.replace(/\u001b\[[0-9;]*m/g, "")

const oneLine = (text: string): string => stripAnsi(text).replace(/\s+/g, " ").trim()

/**
 * The first word of `args` that is not a command where one is expected (walking the command tree),
 * with the commands above it and the closest known name.
 */
const unknownCommand = (args: ReadonlyArray<string>): { path: string; word: string; guess: string | undefined } | undefined => {
  // getSubcommands of a top-level command lists its own children; of a nested one, only its name
  let children: ReadonlyArray<CommandDescriptor.Command<unknown>> = topLevel.map((c) => c.descriptor)
  const path: Array<string> = []
  for (const arg of args) {
    if (arg.startsWith("-")) continue
    const byName = new Map(children.map((d) => [[...CommandDescriptor.getNames(d)][0] ?? "", d] as const))
    const child = byName.get(arg)
    if (child === undefined) return { path: path.map((p) => `${p} `).join(""), word: arg, guess: closest(arg, [...byName.keys()]) }
    path.push(arg)
    children = [...HashMap.values(CommandDescriptor.getSubcommands(child))].filter((d) => !HashSet.has(CommandDescriptor.getNames(d), arg))
    if (children.length === 0) return undefined
  }
  return undefined
}

const topDescriptors: ReadonlyArray<CommandDescriptor.Command<unknown>> = topLevel.map((c) => c.descriptor)

/** A command's children (name → descriptor); of the root, the top-level commands. */
const childrenOf = (descriptor: CommandDescriptor.Command<unknown>, name: string | undefined): ReadonlyMap<string, CommandDescriptor.Command<unknown>> =>
  name === undefined
    ? new Map(topDescriptors.map((d) => [[...CommandDescriptor.getNames(d)][0] ?? "", d] as const))
    // getSubcommands of a top-level command lists its own children; of a nested one, only its name
    : new Map([...HashMap.entries(CommandDescriptor.getSubcommands(descriptor))].filter(([n]) => n !== name))

/**
 * The help of the command the words of `args` name (options skipped), laid out by ./help.ts; undefined
 * when a word names no command (the parser then answers as for any other mistake).
 */
const helpFor = (args: ReadonlyArray<string>): string | undefined => {
  let descriptor: CommandDescriptor.Command<unknown> = root.descriptor
  let children = childrenOf(descriptor, undefined)
  const path: Array<string> = []
  for (const arg of args) {
    if (arg.startsWith("-")) continue
    if (children.size === 0) break
    const child = children.get(arg)
    if (child === undefined) return undefined
    path.push(arg)
    descriptor = child
    children = childrenOf(child, arg)
  }
  const order = path.length === 0 ? [...children.keys()] : subcommandNames(descriptor)
  const subcommands = order.flatMap((n) => {
    const child = children.get(n)
    return child === undefined ? [] : [[n, commandDescription(child)] as const]
  })
  return renderHelp(path, descriptor, subcommands, { width: helpWidth(), color: helpColor() })
}

/**
 * The arguments with `--log-level X` (or `--log-level=X`) moved to the front: @effect/cli takes its
 * built-in options only before a command's own, and users type it anywhere (`list --limit 1
 * --log-level debug` was "unknown argument"). Nothing after a `--` is touched.
 */
export const hoistLogLevel = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const hoisted: Array<string> = []
  const rest: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === "--") {
      rest.push(...args.slice(i))
      break
    }
    if (a.startsWith("--log-level=")) hoisted.push("--log-level", a.slice("--log-level=".length))
    else if (a === "--log-level" && i + 1 < args.length) hoisted.push(a, args[++i]!)
    else rest.push(a)
  }
  return [...hoisted, ...rest]
}

/**
 * Runs the command line on `argv` (`[node, script, ...args]`) and returns the exit code. The
 * parser's own error text is captured and reprinted as one line with a hint.
 */
export const main = (rawArgv: ReadonlyArray<string>): Effect.Effect<number> =>
  Effect.gen(function*() {
    const argv = [...rawArgv.slice(0, 2), ...hoistLogLevel(rawArgv.slice(2))]
    const captured: Array<string> = []
    // whether the command already printed on stdout: with --json, its document is then the only one
    let printed = false
    const console = yield* Effect.console
    const help = argv.slice(2).some((a) => a === "--help" || a === "-h")
    const color = helpColor()
    const helpText = (a: unknown) => (typeof a === "string" ? cleanHelp(a, color) : a)
    const capturing: typeof console = {
      ...console,
      log: (...args: ReadonlyArray<unknown>) =>
        Effect.zipRight(Effect.sync(() => void (printed = true)), console.log(...(help ? args.map(helpText) : args))),
      error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void captured.push(args.map(String).join(" "))),
      unsafe: {
        ...console.unsafe,
        log: (...args: ReadonlyArray<unknown>) => {
          printed = true
          console.unsafe.log(...(help ? args.map(helpText) : args))
        },
        error: (...args: ReadonlyArray<unknown>) => void captured.push(args.map(String).join(" "))
      }
    }
    const args = argv.slice(2)
    const laidOut = help ? helpFor(args) : undefined
    if (laidOut !== undefined) {
      yield* console.log(laidOut)
      return 0
    }
    // a form of the Rust/Python buquet we do not take: one line with ours, before the parser
    const refusal = referenceRefusal(args)
    const exit = refusal !== undefined
      ? Exit.fail(usageError(refusal))
      : yield* cli(argv).pipe(
        Effect.withConsole(capturing),
        Effect.provide(Logger.replace(Logger.defaultLogger, safeLogger)),
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
    const json = args.includes("--json")
    const command = args.filter((a) => !a.startsWith("-")).slice(0, 2)
    if (Exit.isSuccess(exit)) {
      // the parser's own text (from the command line, not from the store): as it was
      if (captured.length > 0) yield* Effect.sync(() => void process.stderr.write(`${captured.join("\n")}\n`))
      return 0
    }
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) {
      const e = failure.value
      if (e instanceof CliError) {
        // one JSON document on stdout: the command's own (which says what failed), else the error
        if (json && !printed) yield* Console.log(JSON.stringify({ error: { message: maskCredentialsInText(e.message), exit_code: e.exitCode } }))
        yield* stderrLine(`buquet: ${e.message}`)
        return e.exitCode
      }
      if (ValidationError.isCommandMismatch(e)) {
        const unknown = unknownCommand(args)
        if (unknown !== undefined) {
          yield* stderrLine(
            `buquet: unknown command "${unknown.path}${unknown.word}"` +
              (unknown.guess === undefined ? "; see" : `; did you mean "${unknown.path}${unknown.guess}"? See`) +
              ` \`buquet ${unknown.path}--help\` for the commands`
          )
          return 2
        }
      }
      if (ValidationError.isValidationError(e)) {
        const text = oneLine(captured.join(" ")) || "the command line is not valid"
        const where = command.length === 0 ? "buquet --help" : `buquet ${command[0]} --help`
        yield* stderrLine(`buquet: ${text.replace(/\.$/, "")}; see \`${where}\` for the usage`)
        return 2
      }
    }
    if (Cause.isInterruptedOnly(exit.cause)) return 130
    yield* stderrLine(`buquet: unexpected failure: ${oneLine(Cause.pretty(exit.cause)).slice(0, 500)}; please report it`)
    return 1
  })
