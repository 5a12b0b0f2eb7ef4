/**
 * `--help`, laid out here rather than by @effect/cli, whose text gives every option a paragraph per
 * fact ("An integer.", "This setting is optional.", "A user-defined piece of text."), lists every
 * nested command with its whole usage on one line, and colours even into a pipe. We read the same
 * help document (descriptions, usage) and print: USAGE wrapped at its elements, DESCRIPTION, then
 * ARGUMENTS / OPTIONS as two columns (each with our one-line description), or COMMANDS (name and
 * description) for a command with subcommands; wrapped to the terminal's width (80 when piped),
 * coloured only on a terminal without `NO_COLOR`.
 *
 * @module
 */
import { CliConfig, CommandDescriptor, HelpDoc, Usage } from "@effect/cli"
import type { Span } from "@effect/cli/HelpDoc/Span"

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g
const placeholder = /^A user-defined piece of text( that is confidential)?\.$/
// what @effect/cli appends under an option or argument besides its description
const generated = /^(This setting is optional|This (option|argument) (may|must|can) |Will prompt )/

/** Whether help may be coloured: stdout is a terminal and `NO_COLOR` is unset or empty. */
export const helpColor = (): boolean => process.stdout.isTTY === true && (process.env["NO_COLOR"] ?? "") === ""

/** The width to wrap help to: the terminal's, or 80 when stdout is not a terminal. */
export const helpWidth = (): number =>
  process.stdout.isTTY === true && (process.stdout.columns ?? 0) > 0 ? process.stdout.columns : 80

/**
 * @effect/cli's own help text (printed when {@link renderHelp} cannot place the request) without
 * placeholder paragraphs (and the blank line after each), and without colour unless `color`.
 */
export const cleanHelp = (text: string, color: boolean): string => {
  const lines = text.split("\n")
  const out: Array<string> = []
  for (let i = 0; i < lines.length; i++) {
    if (placeholder.test(lines[i]!.replace(ansi, "").trim())) {
      if (lines[i + 1]?.replace(ansi, "").trim() === "") i++
      continue
    }
    out.push(lines[i]!)
  }
  const joined = out.join("\n")
  return color ? joined : joined.replace(ansi, "")
}

const helpConfig = CliConfig.make({ showBuiltIns: false })

const spanText = (span: Span): string =>
  span._tag === "Sequence"
    ? spanText(span.left) + spanText(span.right)
    : typeof span.value === "string"
    ? span.value
    : spanText(span.value)

/** The blocks of a help document in order (sequences flattened). */
const blocks = (doc: HelpDoc.HelpDoc): ReadonlyArray<HelpDoc.HelpDoc> =>
  doc._tag === "Sequence" ? [...blocks(doc.left), ...blocks(doc.right)] : doc._tag === "Empty" ? [] : [doc]

const paragraphs = (doc: HelpDoc.HelpDoc): ReadonlyArray<string> =>
  blocks(doc).flatMap((b) => (b._tag === "Paragraph" ? [spanText(b.value).trim()] : [])).filter((p) => p !== "")

interface Sections {
  readonly description: string
  readonly arguments: ReadonlyArray<readonly [string, string]>
  readonly options: ReadonlyArray<readonly [string, string]>
  /** Of a command with subcommands: each entry's usage line (its first word is the name). */
  readonly commands: ReadonlyArray<string>
}

/**
 * An option's or argument's own description: @effect/cli puts the value type's sentence first and
 * facts (optional, repeatable, …) after the description; both are dropped.
 */
const ownDescription = (doc: HelpDoc.HelpDoc): string =>
  paragraphs(doc).slice(1).filter((p) => !generated.test(p) && !placeholder.test(p)).join(" ")

const sections = (descriptor: CommandDescriptor.Command<unknown>): Sections => {
  const found = { description: [] as Array<string>, arguments: [] as Array<readonly [string, string]>, options: [] as Array<readonly [string, string]>, commands: [] as Array<string> }
  let heading = ""
  for (const block of blocks(CommandDescriptor.getHelp(descriptor, helpConfig))) {
    if (block._tag === "Header") heading = spanText(block.value).trim()
    else if (block._tag === "Paragraph" && heading === "DESCRIPTION") found.description.push(spanText(block.value).trim())
    else if (block._tag === "Enumeration" && heading === "COMMANDS") {
      for (const element of block.elements) found.commands.push(...paragraphs(element))
    } else if (block._tag === "DescriptionList") {
      for (const [term, doc] of block.definitions) {
        const name = spanText(term).trim()
        if (heading === "ARGUMENTS") found.arguments.push([name, ownDescription(doc)])
        else if (heading === "OPTIONS") found.options.push([name.replace(/^\((.*)\)$/, "$1"), ownDescription(doc)])
      }
    }
  }
  return { ...found, description: found.description.join(" ") }
}

/** The names of a command's subcommands in the order they were declared (help lists them so). */
export const subcommandNames = (descriptor: CommandDescriptor.Command<unknown>): ReadonlyArray<string> => [
  ...new Set(sections(descriptor).commands.map((usage) => usage.split(" ")[0]!).filter((n) => n !== ""))
]

/** The description a command was given (empty when none). */
export const commandDescription = (descriptor: CommandDescriptor.Command<unknown>): string => sections(descriptor).description

/** Splits `text` into lines of at most `width` characters at spaces (a longer word is cut). */
const wrap = (text: string, width: number): ReadonlyArray<string> => {
  const lines: Array<string> = []
  let line = ""
  for (let word of text.split(/\s+/).filter((w) => w !== "")) {
    while (word.length > width) {
      if (line !== "") lines.push(line)
      lines.push(word.slice(0, width))
      word = word.slice(width)
      line = ""
    }
    if (line === "") line = word
    else if (line.length + 1 + word.length <= width) line += ` ${word}`
    else {
      lines.push(line)
      line = word
    }
  }
  if (line !== "") lines.push(line)
  return lines
}

/** The usage's elements: split at the spaces outside brackets, so `[--limit integer]` stays whole. */
const usageElements = (usage: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  let depth = 0
  let current = ""
  for (const ch of usage) {
    if (ch === "[" || ch === "(" || ch === "<") depth++
    if (ch === "]" || ch === ")" || ch === ">") depth = Math.max(0, depth - 1)
    if (ch === " " && depth === 0) {
      if (current !== "") out.push(current)
      current = ""
    } else current += ch
  }
  if (current !== "") out.push(current)
  return out
}

/** Lines of at most `width`: the elements joined by spaces, continuation lines indented by `indent`. */
const wrapElements = (elements: ReadonlyArray<string>, width: number, indent: number): ReadonlyArray<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const element of elements) {
    const room = width - (lines.length === 0 ? 0 : indent)
    if (line === "") line = element
    else if (line.length + 1 + element.length <= room) line += ` ${element}`
    else {
      lines.push(line)
      line = element
    }
  }
  if (line !== "") lines.push(line)
  return lines.flatMap((l, i) => wrap(l, width - (i === 0 ? 0 : indent)).map((w, j) => (i === 0 && j === 0 ? w : " ".repeat(indent) + w)))
}

const bold = (s: string, color: boolean) => (color ? `\u001b[1m${s}\u001b[0m` : s)
const cyan = (s: string, color: boolean) => (color ? `\u001b[36m${s}\u001b[0m` : s)

/** Two columns: terms at column 2, descriptions wrapped beside them (or below a term too long). */
const twoColumns = (rows: ReadonlyArray<readonly [string, string]>, width: number, color: boolean): ReadonlyArray<string> => {
  const column = Math.min(Math.max(...rows.map(([t]) => t.length)) + 4, Math.floor(width / 2.5))
  const room = Math.max(width - column, 20)
  return rows.flatMap(([term, text]) => {
    const lines = wrap(text, room)
    const head = `  ${cyan(term, color)}`
    if (term.length + 4 > column) return [head, ...lines.map((l) => " ".repeat(column) + l)]
    return [(head + " ".repeat(column - 2 - term.length) + (lines[0] ?? "")).trimEnd(), ...lines.slice(1).map((l) => " ".repeat(column) + l)]
  })
}

/**
 * The help of the command at `path` (words after `buquet`), as printed: `subcommands` are its
 * children's names and descriptions, in order (empty for a command without subcommands).
 */
export const renderHelp = (
  path: ReadonlyArray<string>,
  descriptor: CommandDescriptor.Command<unknown>,
  subcommands: ReadonlyArray<readonly [string, string]>,
  options: { readonly width: number; readonly color: boolean }
): string => {
  const { color } = options
  const width = Math.max(options.width, 40)
  const s = sections(descriptor)
  const name = ["buquet", ...path].join(" ")
  const out: Array<string> = []
  const heading = (title: string) => out.push("", bold(title, color))

  out.push(bold("USAGE", color))
  if (subcommands.length > 0) out.push(`  ${name} <command> [options]`)
  else {
    // the usage begins with the command's own name: replace it by the whole path
    const elements = usageElements(spanText(HelpDoc.getSpan(Usage.getHelp(CommandDescriptor.getUsage(descriptor)))).trim())
    out.push(...wrapElements([name, ...elements.slice(1)], width - 2, 4).map((l) => `  ${l}`))
  }
  if (s.description !== "") {
    heading("DESCRIPTION")
    out.push(...wrap(s.description, width - 2).map((l) => `  ${l}`))
  }
  if (subcommands.length > 0) {
    heading("COMMANDS")
    out.push(...twoColumns(subcommands, width, color))
    out.push("", ...wrap(`See \`${name} <command> --help\` for a command's options and arguments.`, width))
    if (path.length === 0) out.push(...wrap("`buquet --version` prints the version.", width))
  } else {
    if (s.arguments.length > 0) {
      heading("ARGUMENTS")
      out.push(...twoColumns(s.arguments, width, color))
    }
    if (s.options.length > 0) {
      heading("OPTIONS")
      out.push(...twoColumns(s.options, width, color))
    }
  }
  return out.join("\n")
}
