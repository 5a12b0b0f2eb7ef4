/**
 * `--help` (issue 16 item 15), through the spawned CLI. Every command is reached by walking the
 * COMMANDS lists from `buquet --help` down (no hand-kept list): each help, piped, is at most 80
 * columns, has no ANSI escapes and no `--wizard`, and gives every option and argument its usage
 * line names exactly one description of its own (none of @effect/cli's generated sentences). On a
 * terminal (a pty from util-linux `script`), the text wraps to the terminal's width and is coloured
 * unless `NO_COLOR` is set.
 */
import { execFile } from "node:child_process"
import { describe, expect, it } from "vitest"
import { bin, runCli, tempDir } from "./support.js"

// what @effect/cli writes on its own under an option: never a description of ours
const generated =
  /^(A true or false value|An integer|A floating point number|A user-defined piece of text|One of the following|A date without a time-zone|An existing|A (file|directory)|This setting is|This (option|argument) (may|must|can)|Will prompt)/

interface Entry {
  readonly term: string
  readonly description: string
}

/** The lines of a section (heading in capitals at column 0) up to the next heading. */
const section = (lines: ReadonlyArray<string>, heading: string): ReadonlyArray<string> | undefined => {
  const start = lines.indexOf(heading)
  if (start < 0) return undefined
  const end = lines.findIndex((l, i) => i > start && /^[A-Z][A-Z ]+$/.test(l))
  return lines.slice(start + 1, end < 0 ? undefined : end)
}

/**
 * The entries of a two-column list: a term at column 2, its description after two or more
 * spaces or on the lines below, indented further; wrapped lines join with a space.
 */
const entries = (lines: ReadonlyArray<string>): ReadonlyArray<Entry> => {
  const out: Array<{ term: string; description: Array<string> }> = []
  for (const line of lines) {
    if (/^ {2}\S/.test(line)) {
      const [term, ...rest] = line.trim().split(/ {2,}/)
      out.push({ term: term!, description: rest.length > 0 ? [rest.join(" ")] : [] })
    } else if (line.trim() !== "" && out.length > 0) out[out.length - 1]!.description.push(line.trim())
  }
  return out.map((e) => ({ term: e.term, description: e.description.join(" ") }))
}

const checkHelp = (path: ReadonlyArray<string>, stdout: string): ReadonlyArray<string> => {
  const what = `buquet ${[...path, "--help"].join(" ")}`
  const lines = stdout.replace(/\n+$/, "").split("\n")
  expect(stdout, what).not.toContain("\u001b")
  expect(stdout, what).not.toContain("--wizard")
  for (const line of lines) expect(line.length, `${what}: a line wider than 80 columns: ${line}`).toBeLessThanOrEqual(80)
  const usage = (section(lines, "USAGE") ?? []).join(" ")
  expect(usage, `${what}: the usage names the command`).toContain(`buquet ${path.join(" ")}`.trim())
  const description = (section(lines, "DESCRIPTION") ?? []).join(" ").trim()
  expect(description, `${what}: a description`).not.toBe("")

  const commands = section(lines, "COMMANDS")
  if (commands !== undefined) {
    const listed = entries(commands)
    expect(listed.length, what).toBeGreaterThan(0)
    for (const c of listed) expect(c.description, `${what}: command ${c.term} has a description`).not.toBe("")
    return listed.map((c) => c.term)
  }

  const options = entries(section(lines, "OPTIONS") ?? [])
  const args = entries(section(lines, "ARGUMENTS") ?? [])
  for (const e of [...options, ...args]) {
    expect(e.description, `${what}: ${e.term} has a description`).not.toBe("")
    expect(e.description, `${what}: ${e.term} has its own description`).not.toMatch(generated)
  }
  // every option and argument of the usage line is described
  for (const flag of new Set(usage.match(/--[a-z][a-z0-9-]*/g) ?? [])) {
    expect(options.some((o) => o.term.split(/[ ,]+/).includes(flag)), `${what}: ${flag} is in OPTIONS`).toBe(true)
  }
  for (const arg of new Set(usage.match(/<[a-z][a-z0-9-]*>/g) ?? [])) {
    expect(args.some((a) => a.term.startsWith(arg)), `${what}: ${arg} is in ARGUMENTS`).toBe(true)
  }
  return []
}

/** Runs `buquet ...args --help` in a pty `columns` wide (util-linux `script`). */
const onTerminal = (args: ReadonlyArray<string>, columns: number, env: Record<string, string> = {}): Promise<string> =>
  new Promise((resolve, reject) => {
    const command = `stty cols ${columns} rows 50; exec '${process.execPath}' '${bin}' ${args.join(" ")} --help`
    execFile("script", ["-qec", command, "/dev/null"], {
      cwd: tempDir(),
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: tempDir("buquet-home-"), TERM: "xterm", ...env },
      timeout: 120_000
    }, (error, stdout) => (error === null ? resolve(stdout.replace(/\r/g, "")) : reject(error)))
  })

/** `f` over `items`, at most 4 at a time (each is a Node process on a shared machine), in order. */
const inTurn = async <A, B>(items: ReadonlyArray<A>, f: (a: A) => Promise<B>): Promise<ReadonlyArray<B>> => {
  const out: Array<B> = []
  let next = 0
  const lane = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await f(items[i]!)
  }
  await Promise.all([lane(), lane(), lane(), lane()])
  return out
}

// eslint-disable-next-line no-control-regex
const visible = (line: string): string => line.replace(/\u001b\[[0-9;]*m/g, "")

describe("--help", () => {
  it("every command: 80 columns piped, no escapes, one description for every option and argument", async () => {
    const seen: Array<string> = []
    let level: ReadonlyArray<ReadonlyArray<string>> = [[]]
    while (level.length > 0) {
      const results = await inTurn(level, (path) => runCli([...path, "--help"]))
      const next: Array<ReadonlyArray<string>> = []
      for (const [i, r] of results.entries()) {
        const path = level[i]!
        expect(r.code, `buquet ${path.join(" ")} --help: ${r.stderr}`).toBe(0)
        seen.push(path.join(" "))
        for (const child of checkHelp(path, r.stdout)) next.push([...path, child])
      }
      level = next
    }
    // the walk reached the nested commands too
    expect(seen).toContain("schedule create")
    expect(seen).toContain("config show")
  }, 600_000)

  it("wraps to the terminal's width, coloured unless NO_COLOR", async () => {
    const [coloured, plain] = await Promise.all([onTerminal(["submit"], 60), onTerminal(["submit"], 60, { NO_COLOR: "1" })])
    expect(coloured).toContain("\u001b[")
    expect(plain).not.toContain("\u001b")
    for (const text of [coloured, plain]) {
      expect(text).toContain("--idempotency-key")
      for (const line of text.split("\n")) expect(visible(line).length, line).toBeLessThanOrEqual(60)
    }
    // the same descriptions, laid out for 60 columns: words flow, none is lost
    const words = (s: string) => visible(s).split(/\s+/).filter((w) => w !== "").sort()
    expect(words(coloured)).toEqual(words(plain))
  }, 150_000)
})
