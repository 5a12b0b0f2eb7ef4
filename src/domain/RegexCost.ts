/**
 * Which regular expressions may take exponential time on a backtracking engine (JavaScript's):
 * the patterns of a published JSON Schema run on every submit of its type, so `^(a|a)*$` would
 * hang submits (seconds per extra character). Node has no linear-time engine by default, and a
 * match cannot be interrupted, so such patterns are refused when a schema is compiled (at
 * publish, and when a stored schema is read). Pure; a conservative static check:
 *
 * - a group repeated without bound (`*`, `+`, `{n,}`, or more than {@link maxBoundedRepeat}) that
 *   itself contains an unbounded repetition which can end in more than one place: `(a+)+`,
 *   `(\w+\s?)*` (nested quantifiers; `(\w+\.)*` is fine: each round ends at its dot);
 * - a group repeated without bound whose alternatives can start with the same character:
 *   `(a|a)*`, `(a|ab)+`, `(\d|[0-9])*` (every split of the input is tried).
 *
 * It may refuse a harmless pattern (it is conservative where unsure), and accepts anything it
 * cannot parse (the regular expression compiler then reports it). Adjacent repetitions
 * (`\d*\d*\d*x`) are not refused: their cost grows polynomially, not exponentially, and a
 * `maxLength` beside the `pattern` bounds it.
 *
 * @module
 */

/** A repetition with an upper bound above this counts as unbounded. */
export const maxBoundedRepeat = 16

type Node =
  | { readonly _tag: "Atom"; readonly source: string; readonly width: "char" | "zero" | "other" }
  | { readonly _tag: "Group"; readonly branches: ReadonlyArray<ReadonlyArray<Node>> }
  | { readonly _tag: "Repeat"; readonly child: Node; readonly min: number; readonly max: number }

class ParseError extends Error {}

const parse = (pattern: string): ReadonlyArray<ReadonlyArray<Node>> => {
  let i = 0
  const alternation = (): Array<Array<Node>> => {
    const branches: Array<Array<Node>> = [[]]
    while (i < pattern.length && pattern[i] !== ")") {
      if (pattern[i] === "|") {
        i++
        branches.push([])
        continue
      }
      const atom = item()
      branches[branches.length - 1]!.push(quantified(atom))
    }
    return branches
  }
  const item = (): Node => {
    const c = pattern[i]!
    if (c === "(") {
      i++
      let lookaround = false
      if (pattern[i] === "?") {
        const m = /^\?(?::|=|!|<=|<!|<[A-Za-z_$][\w$]*>)/.exec(pattern.slice(i))
        if (m === null) throw new ParseError()
        lookaround = /^\?(?:=|!|<=|<!)/.test(m[0])
        i += m[0].length
      }
      const branches = alternation()
      if (pattern[i] !== ")") throw new ParseError()
      i++
      return lookaround ? { _tag: "Atom", source: "", width: "zero" } : { _tag: "Group", branches }
    }
    if (c === "[") {
      const start = i
      i++
      if (pattern[i] === "^") i++
      if (pattern[i] === "]") i++
      while (i < pattern.length && pattern[i] !== "]") i += pattern[i] === "\\" ? 2 : 1
      if (i >= pattern.length) throw new ParseError()
      i++
      return { _tag: "Atom", source: pattern.slice(start, i), width: "char" }
    }
    if (c === "\\") {
      const rest = pattern.slice(i)
      const m = /^\\(?:[bB]|[1-9]\d*|k<[^>]*>|[pP]\{[^}]*\}|u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|c[A-Za-z]|0|.)/su.exec(rest)
      if (m === null) throw new ParseError()
      i += m[0].length
      const width = /^\\[bB]$/.test(m[0]) ? "zero" : /^\\(?:[1-9]|k<)/.test(m[0]) ? "other" : "char"
      return { _tag: "Atom", source: m[0], width }
    }
    if (c === "^" || c === "$") {
      i++
      return { _tag: "Atom", source: c, width: "zero" }
    }
    if ("*+?{".includes(c) && !(c === "{" && !/^\{\d+(?:,\d*)?\}/.test(pattern.slice(i)))) throw new ParseError()
    // one literal character (a whole code point)
    const cp = pattern.codePointAt(i)!
    const ch = String.fromCodePoint(cp)
    i += ch.length
    return { _tag: "Atom", source: ch === "." ? "." : ch.replace(/[$()*+.?[\\\]^{|}]/g, "\\$&"), width: "char" }
  }
  const quantified = (atom: Node): Node => {
    let node = atom
    for (;;) {
      const rest = pattern.slice(i)
      const m = /^(?:\*|\+|\?|\{(\d+)(?:(,)(\d*))?\})\??/.exec(rest)
      if (m === null) return node
      i += m[0].length
      const q = m[0][0]
      const [min, max] = q === "*"
        ? [0, Infinity]
        : q === "+"
        ? [1, Infinity]
        : q === "?"
        ? [0, 1]
        : [Number(m[1]), m[2] === undefined ? Number(m[1]) : m[3] === "" ? Infinity : Number(m[3])]
      node = { _tag: "Repeat", child: node, min, max }
    }
  }
  const branches = alternation()
  if (i !== pattern.length) throw new ParseError()
  return branches
}

const unbounded = (max: number) => max > maxBoundedRepeat

const samples: ReadonlyArray<string> = [
  ...Array.from({ length: 256 }, (_, c) => String.fromCharCode(c)),
  "\u0100", "\u03b1", "\u0436", "\u4e2d", "\u{1f600}", "\u2028", "\uffff"
]

/** The characters (of a sample: Latin-1 and a few others) a one-character atom matches. */
const charsOf = (source: string, flags: string): ReadonlySet<string> | "any" => {
  try {
    const re = new RegExp(`^(?:${source})$`, flags.includes("u") ? "su" : "s")
    return new Set(samples.filter((s) => re.test(s)))
  } catch {
    return "any"
  }
}

/** What a sequence can start with: a set of sample characters, or "any" when unsure. */
const firstOf = (seq: ReadonlyArray<Node>, flags: string): ReadonlySet<string> | "any" => {
  for (const node of seq) {
    if (node._tag === "Atom") {
      if (node.width === "zero") continue
      if (node.width === "other") return "any"
      return charsOf(node.source, flags)
    }
    if (node._tag === "Group") {
      const sets = node.branches.map((b) => firstOf(b, flags))
      if (sets.some((s) => s === "any")) return "any"
      return new Set(sets.flatMap((s) => [...(s as ReadonlySet<string>)]))
    }
    // a repetition that may be skipped does not decide the first character alone
    if (node.min === 0) return "any"
    return firstOf([node.child], flags)
  }
  return "any" // may match the empty string
}

const overlaps = (a: ReadonlySet<string> | "any", b: ReadonlySet<string> | "any"): boolean =>
  a === "any" || b === "any" || [...a].some((c) => b.has(c))

const containsUnbounded = (node: Node): boolean =>
  node._tag === "Repeat"
    ? unbounded(node.max) || containsUnbounded(node.child)
    : node._tag === "Group" && node.branches.some((b) => b.some(containsUnbounded))

/**
 * Whether a repeated body holds an unbounded repetition that can end in more than one place: one
 * not followed, within its branch, by a required character it cannot match (`(\w+\.)*` is fine:
 * every round ends at a dot; `(a+)+` and `(\w+\s?)*` are not). A repetition deeper inside the
 * body counts as ambiguous.
 */
const ambiguousNesting = (body: Node, flags: string): boolean => {
  const branches = body._tag === "Group" ? body.branches : [[body]]
  return branches.some((branch) =>
    branch.some((node, at) => {
      if (node._tag === "Group") return node.branches.some((b) => b.some(containsUnbounded))
      if (node._tag !== "Repeat") return false
      if (!unbounded(node.max)) return containsUnbounded(node.child)
      if (containsUnbounded(node.child)) return true
      const rest = branch.slice(at + 1).filter((n) => !(n._tag === "Atom" && n.width === "zero"))
      const next = rest[0]
      // at the end of the round, the next round follows
      if (next === undefined) return overlaps(firstOf([node.child], flags), firstOf([body], flags))
      const required = next._tag !== "Repeat" || next.min >= 1
      return !required || overlaps(firstOf([node.child], flags), firstOf(rest, flags))
    })
  )
}

/** The text a branch of plain literal characters matches, or undefined if it is more than that. */
const literalOf = (branch: ReadonlyArray<Node>): string | undefined => {
  let text = ""
  for (const node of branch) {
    if (node._tag !== "Atom" || node.width !== "char") return undefined
    const m = /^(?:\\([$()*+.?[\\\]^{|}/-])|([^\\.[]))$/u.exec(node.source)
    if (m === null) return undefined
    text += m[1] ?? m[2]!
  }
  return text
}

/**
 * Whether two alternatives of a repeated group can match the same text in different splits:
 * literal ones when one is a prefix of the other (`a|ab`; `foo|bar|baz` is fine), others when
 * they may start with the same character.
 */
const ambiguousPair = (a: ReadonlyArray<Node>, b: ReadonlyArray<Node>, flags: string): boolean => {
  const [x, y] = [literalOf(a), literalOf(b)]
  if (x !== undefined && y !== undefined && x !== "" && y !== "") return x.startsWith(y) || y.startsWith(x)
  return overlaps(firstOf(a, flags), firstOf(b, flags))
}

/** Alternations inside a repeated body whose branches may match alike. */
const overlappingAlternation = (node: Node, flags: string): boolean => {
  if (node._tag === "Repeat") return overlappingAlternation(node.child, flags)
  if (node._tag !== "Group") return false
  const branches = node.branches
  for (let x = 0; x < branches.length; x++) {
    for (let y = x + 1; y < branches.length; y++) if (ambiguousPair(branches[x]!, branches[y]!, flags)) return true
  }
  return node.branches.some((b) => b.some((n) => overlappingAlternation(n, flags)))
}

const findProblem = (seq: ReadonlyArray<Node>, flags: string): string | undefined => {
  for (const node of seq) {
    if (node._tag === "Repeat") {
      if (unbounded(node.max)) {
        if (ambiguousNesting(node.child, flags)) {
          return "repeats a part that itself repeats without bound (like (a+)+)"
        }
        if (overlappingAlternation(node.child, flags)) {
          return "repeats alternatives that can match the same text (like (a|a)* or (a|ab)+)"
        }
      }
      const inner = findProblem([node.child], flags)
      if (inner !== undefined) return inner
    } else if (node._tag === "Group") {
      for (const branch of node.branches) {
        const inner = findProblem(branch, flags)
        if (inner !== undefined) return inner
      }
    }
  }
  return undefined
}

/**
 * Why `pattern` may take exponential time to match, or undefined if it is not one of the shapes
 * above (or cannot be parsed).
 *
 * @since 0.1.0
 * @category rules
 */
export const catastrophicPattern = (pattern: string, flags = "u"): string | undefined => {
  let branches: ReadonlyArray<ReadonlyArray<Node>>
  try {
    branches = parse(pattern)
  } catch (e) {
    if (e instanceof ParseError) return undefined
    throw e
  }
  return findProblem([{ _tag: "Group", branches }], flags)
}
