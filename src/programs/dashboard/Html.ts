/**
 * The dashboard's HTML template helper: every interpolated value is escaped unless it is itself
 * the result of {@link html} (or {@link raw}, used only for our own constant markup). Task inputs,
 * ids, types and errors are user-supplied: they can only ever reach a page as text.
 *
 * @module
 */

const HtmlTypeId: unique symbol = Symbol.for("buquet/dashboard/Html")

/** A fragment of markup that is safe to insert as it is. */
export interface Html {
  readonly [HtmlTypeId]: typeof HtmlTypeId
  readonly value: string
}

const make = (value: string): Html => ({ [HtmlTypeId]: HtmlTypeId, value })

/** Whether a value is a safe fragment. */
export const isHtml = (u: unknown): u is Html => typeof u === "object" && u !== null && HtmlTypeId in u

/** What a template accepts: text (escaped), numbers, safe fragments, lists of them; nothing for null/undefined/false. */
export type Interpolation = Html | string | number | bigint | boolean | null | undefined | ReadonlyArray<Interpolation>

/** Escapes text for element content and quoted attribute values. */
export const escape = (text: string): string =>
  text.replace(/[&<>"'`]/g, (c) =>
    c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : c === "'" ? "&#39;" : "&#96;")

const render = (value: Interpolation): string => {
  if (value === null || value === undefined || value === false) return ""
  if (isHtml(value)) return value.value
  if (Array.isArray(value)) return (value as ReadonlyArray<Interpolation>).map(render).join("")
  return escape(String(value))
}

/** The escaping template tag: `html\`<td>${task.taskType}</td>\``. */
export const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<Interpolation>): Html => {
  let out = strings[0] ?? ""
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? "")
  return make(out)
}

/**
 * A same-site URL for a link or form action, every interpolated value URL-encoded as ONE path
 * segment or query value: href`/tasks/${id}/cancel` cannot be turned into another route by an id
 * holding `/`, `..`, `?` or `#`. (The result is text: {@link html} still escapes it.)
 */
export const href = (strings: TemplateStringsArray, ...values: ReadonlyArray<string | number>): string => {
  let out = strings[0] ?? ""
  for (let i = 0; i < values.length; i++) out += encodeURIComponent(String(values[i])) + (strings[i + 1] ?? "")
  return out
}

/** Our own constant markup (inline CSS, scripts, SVG built from numbers): never pass user data. */
export const raw = (markup: string): Html => make(markup)

/** Joins fragments. */
export const join = (parts: ReadonlyArray<Html>, separator: Html = raw("")): Html =>
  make(parts.map((p) => p.value).join(separator.value))

/**
 * JSON for an inline `<script type="application/json">` block: escaped so that no `</script>`,
 * `<!--` or line separator in the data can end the block.
 */
export const jsonScript = (data: unknown): Html =>
  make(
    JSON.stringify(data).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026")
      .replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029")
  )

/** Pretty-printed JSON as escaped text (for `<pre>`). */
export const prettyJson = (value: unknown): Html => {
  let text: string
  try {
    text = JSON.stringify(value, null, 2) ?? "null"
  } catch {
    text = String(value)
  }
  return make(escape(text))
}
