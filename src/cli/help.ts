/**
 * Post-processing of @effect/cli's `--help` text: it gives every text option and argument a
 * placeholder paragraph ("A user-defined piece of text.") before its own description, and colours
 * unconditionally. We drop the placeholder and the colour when stdout is not a terminal or
 * `NO_COLOR` is set.
 *
 * @module
 */

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g
const placeholder = /^A user-defined piece of text( that is confidential)?\.$/

/** Whether help may be coloured: stdout is a terminal and `NO_COLOR` is unset or empty. */
export const helpColor = (): boolean => process.stdout.isTTY === true && (process.env["NO_COLOR"] ?? "") === ""

/** `text` without placeholder paragraphs (and the blank line after each), and without colour unless `color`. */
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
