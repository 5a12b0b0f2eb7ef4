/**
 * Command lines of the Rust/Python buquet (and of its documentation) that have no counterpart
 * here. They are refused before parsing with one line saying what to type instead, rather than
 * with the parser's "unknown argument", so someone typing what they know learns our form.
 * Everything the reference had that we do support is a real option of its command (see the
 * README's "Coming from the Rust/Python buquet").
 *
 * @module
 */
import { retiredSettings } from "../domain/ConfigModel.js"

const commandFlags = (args: ReadonlyArray<string>, depth: number): ReadonlyArray<string> =>
  args.slice(depth).filter((a) => a.startsWith("--")).map((a) => a.split("=")[0]!.slice(2))

/**
 * What to type instead of `args` (the words after `buquet`), when they are a form of the
 * reference we do not take; undefined otherwise.
 */
export const referenceRefusal = (args: ReadonlyArray<string>): string | undefined => {
  const [command, sub] = args
  if (command === undefined) return undefined
  const flags = commandFlags(args, 1)
  for (const retired of retiredSettings) {
    if (retired.flag !== undefined && retired.flag.command === command && flags.includes(retired.flag.name)) {
      return `--${retired.flag.name} (a flag of the Rust/Python buquet) ${retired.instead}`
    }
  }
  switch (command) {
    case "scheduler":
      return "there is no `scheduler` command: run the cron loop with `buquet schedule run`, or embed it with `buquet worker --scheduler`"
    case "monitor":
      return flags.includes("enable-scheduler")
        ? "monitor has no --enable-scheduler: run the cron loop with `buquet schedule run`, or embed it with `buquet worker --scheduler`"
        : undefined
    case "cancel":
      return flags.includes("dry-run")
        ? "cancel has no --dry-run: see what it would cancel with `buquet list -t TYPE --status pending` (and `--status running`)"
        : undefined
    case "completions":
      return sub === "elvish" || sub === "powershell"
        ? `there is no ${sub} completion script: use \`buquet completions bash\`, \`zsh\` or \`fish\``
        : undefined
    case "schedule":
      return sub === "pause" || sub === "resume"
        ? `there is no \`schedule ${sub}\`: use \`buquet schedule ${sub === "pause" ? "disable" : "enable"} ID\``
        : undefined
    default:
      return undefined
  }
}
