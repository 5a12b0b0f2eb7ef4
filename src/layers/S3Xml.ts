/**
 * The XML documents of the lean S3 path (S3Http.ts): a small, strict parser for the answers it
 * reads (ListObjectsV2, DeleteObjects, the bucket's versioning, error bodies) and the body of a
 * DeleteObjects request.
 *
 * Why not the SDK's: its XML parser and deserializers cost ~2–5 % of a worker's CPU and keep
 * `@aws-sdk/client-s3` (~10 MB of RSS) loaded in every worker. These answers are small and
 * regular: elements, text and the five entities. Anything else (a tag left open, a stray `<`, an
 * unknown entity, a missing or doubled field, a field that does not parse) is refused with an
 * {@link S3XmlError} saying what and where, never guessed around.
 *
 * @module
 */

/**
 * A malformed answer. Thrown inside the lean path's promise chain; S3Storage maps it to
 * `InvalidResponse` naming the request's operation and key.
 *
 * @since 0.1.0
 * @category errors
 */
export class S3XmlError extends Error {
  override readonly name = "MalformedResponse"
}

/**
 * One element: its name (namespace prefix kept), child elements in order, and its own text
 * (entities decoded, whitespace kept).
 *
 * @since 0.1.0
 * @category models
 */
export interface XmlElement {
  readonly name: string
  readonly children: ReadonlyArray<XmlElement>
  readonly text: string
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" }

const decodeText = (raw: string, what: string): string =>
  raw.indexOf("&") === -1 ? raw : raw.replace(/&([^;&<]*);?/g, (all, name: string) => {
    if (!all.endsWith(";")) throw new S3XmlError(`${what}: an '&' without an entity`)
    const named = ENTITIES[name]
    if (named !== undefined) return named
    const code = /^#x([0-9a-fA-F]{1,6})$/.exec(name)?.[1] !== undefined
      ? Number.parseInt(name.slice(2), 16)
      : /^#([0-9]{1,7})$/.test(name)
      ? Number.parseInt(name.slice(1), 10)
      : Number.NaN
    if (!Number.isFinite(code) || code > 0x10ffff) throw new S3XmlError(`${what}: unknown entity &${name};`)
    return String.fromCodePoint(code)
  })

// a tag, a declaration or processing instruction, a comment, or CDATA
const TOKEN = /<(?:(\/?)([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|\?[\s\S]*?\?>|!--[\s\S]*?-->|!\[CDATA\[([\s\S]*?)\]\]>)/y

const isNameStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 // A-Z a-z _
const isNameChar = (c: number): boolean =>
  isNameStart(c) || (c >= 48 && c <= 57) || c === 46 || c === 58 || c === 45 // 0-9 . : -

/**
 * The offset of the `>` closing the tag at `lt` when it is exactly `<Name>` or `</Name>` (what
 * S3 sends nearly everywhere), else -1: attributes, spaces, `/>`, declarations, comments and CDATA
 * are left to {@link TOKEN}. The same names TOKEN accepts.
 */
const simpleTagEnd = (xml: string, lt: number): number => {
  let i = xml.charCodeAt(lt + 1) === 47 ? lt + 2 : lt + 1 // '/'
  if (!isNameStart(xml.charCodeAt(i))) return -1
  i++
  while (isNameChar(xml.charCodeAt(i))) i++
  return xml.charCodeAt(i) === 62 ? i : -1 // '>'
}

export const parse = (xml: string, what: string): XmlElement => {
  // an open element becomes the parsed element when it closes (no copy: a LIST page of 1,000
  // objects has ~9,000 elements, all parsed in one go)
  interface Open {
    readonly name: string
    readonly children: Array<XmlElement>
    text: string
  }
  const stack: Array<Open> = []
  let root: XmlElement | undefined
  let at = 0
  while (at < xml.length) {
    const lt = xml.indexOf("<", at)
    const end = lt === -1 ? xml.length : lt
    if (end > at) {
      const raw = xml.slice(at, end)
      const top = stack[stack.length - 1]
      if (top === undefined) {
        if (raw.trim() !== "") throw new S3XmlError(`${what}: text outside the root element`)
      } else {
        top.text += decodeText(raw, what)
      }
    }
    if (lt === -1) break
    // the common case, a plain `<Name>` or `</Name>`, without the regular expression's match
    const gt = simpleTagEnd(xml, lt)
    if (gt !== -1) {
      at = gt + 1
      if (xml.charCodeAt(lt + 1) === 47) {
        const top = stack.pop()
        if (top === undefined || top.name.length !== gt - lt - 2 || !xml.startsWith(top.name, lt + 2)) {
          throw new S3XmlError(`${what}: </${xml.slice(lt + 2, gt)}> closes ${top === undefined ? "nothing" : `<${top.name}>`}`)
        }
        const parent = stack[stack.length - 1]
        if (parent === undefined) root = top
        else parent.children.push(top)
      } else {
        if (stack.length === 0 && root !== undefined) throw new S3XmlError(`${what}: more than one root element`)
        stack.push({ name: xml.slice(lt + 1, gt), children: [], text: "" })
      }
      continue
    }
    TOKEN.lastIndex = lt
    const m = TOKEN.exec(xml)
    if (m === null) throw new S3XmlError(`${what}: malformed markup at offset ${lt}`)
    at = TOKEN.lastIndex
    const [, closing, name, , selfClosing, cdata] = m
    if (name === undefined) {
      // a declaration or comment is skipped; CDATA is text
      if (cdata !== undefined) {
        const top = stack[stack.length - 1]
        if (top === undefined) throw new S3XmlError(`${what}: CDATA outside the root element`)
        top.text += cdata
      }
      continue
    }
    if (closing === "/") {
      const top = stack.pop()
      if (top === undefined || top.name !== name) {
        throw new S3XmlError(`${what}: </${name}> closes ${top === undefined ? "nothing" : `<${top.name}>`}`)
      }
      const parent = stack[stack.length - 1]
      if (parent === undefined) root = top
      else parent.children.push(top)
      continue
    }
    if (stack.length === 0 && root !== undefined) throw new S3XmlError(`${what}: more than one root element`)
    if (selfClosing === "/") {
      const done: XmlElement = { name, children: [], text: "" }
      const parent = stack[stack.length - 1]
      if (parent === undefined) root = done
      else parent.children.push(done)
    } else {
      stack.push({ name, children: [], text: "" })
    }
  }
  if (stack.length > 0) throw new S3XmlError(`${what}: <${stack[stack.length - 1]!.name}> is never closed`)
  if (root === undefined) throw new S3XmlError(`${what}: no root element`)
  return root
}

/** The element name without a namespace prefix. */
const local = (name: string): string => name.slice(name.indexOf(":") + 1)

const childrenNamed = (element: XmlElement, name: string): ReadonlyArray<XmlElement> =>
  element.children.filter((c) => local(c.name) === name)

/** The text of the one child `name`; undefined when absent; a doubled or nested field is an error. */
const optionalField = (element: XmlElement, name: string, what: string): string | undefined => {
  const found = childrenNamed(element, name)
  if (found.length > 1) throw new S3XmlError(`${what}: <${local(element.name)}> has ${found.length} <${name}> elements`)
  const one = found[0]
  if (one === undefined) return undefined
  if (one.children.length > 0) throw new S3XmlError(`${what}: <${name}> holds elements, not text`)
  return one.text
}

const requiredField = (element: XmlElement, name: string, what: string): string => {
  const value = optionalField(element, name, what)
  if (value === undefined) throw new S3XmlError(`${what}: <${local(element.name)}> lacks <${name}>`)
  return value
}

const expectRoot = (root: XmlElement, name: string, what: string): void => {
  if (local(root.name) !== name) throw new S3XmlError(`${what}: the answer is <${root.name}>, not <${name}>`)
}

const bool = (value: string, name: string, what: string): boolean => {
  const v = value.trim()
  if (v === "true") return true
  if (v === "false") return false
  throw new S3XmlError(`${what}: <${name}> is ${JSON.stringify(value)}, not true or false`)
}

/**
 * One listed object, as the answer gave it (the key still carries the storage's key prefix).
 *
 * @since 0.1.0
 * @category models
 */
export interface ListedObject {
  readonly key: string
  readonly etag: string
  readonly size: number
  readonly lastModified: Date
}

/**
 * A ListObjectsV2 page, validated: every object has a key under the requested prefix, an ETag, a
 * size and a time; a truncated page has its continuation token.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListPageXml {
  readonly objects: ReadonlyArray<ListedObject>
  readonly commonPrefixes: ReadonlyArray<string>
  readonly isTruncated: boolean
  readonly nextContinuationToken: string | undefined
}

// S3 and RGW write times as ISO 8601 in UTC (`2025-02-01T10:00:00.000Z`)
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/

/**
 * Reads a ListObjectsV2 answer for a listing of `prefix` (the full prefix sent).
 *
 * @since 0.1.0
 * @category parsing
 */
export const listObjectsV2 = (xml: string, prefix: string, what: string): ListPageXml => {
  const root = parse(xml, what)
  expectRoot(root, "ListBucketResult", what)
  const isTruncated = bool(requiredField(root, "IsTruncated", what), "IsTruncated", what)
  const token = optionalField(root, "NextContinuationToken", what)
  if (isTruncated && (token === undefined || token === "")) throw new S3XmlError(`${what}: a truncated page has no continuation token`)
  const objects = childrenNamed(root, "Contents").map((c, i): ListedObject => {
    const key = requiredField(c, "Key", `${what}, object ${i + 1}`)
    const where = `${what}, object ${JSON.stringify(key)}`
    if (key === "" || !key.startsWith(prefix)) throw new S3XmlError(`${where}: the key is not under the prefix ${JSON.stringify(prefix)}`)
    const etag = requiredField(c, "ETag", where)
    if (etag === "") throw new S3XmlError(`${where}: empty <ETag>`)
    const sizeText = requiredField(c, "Size", where).trim()
    if (!/^\d{1,16}$/.test(sizeText)) throw new S3XmlError(`${where}: <Size> is ${JSON.stringify(sizeText)}`)
    const timeText = requiredField(c, "LastModified", where).trim()
    const lastModified = new Date(timeText)
    if (!ISO_TIME.test(timeText) || Number.isNaN(lastModified.getTime())) {
      throw new S3XmlError(`${where}: <LastModified> is ${JSON.stringify(timeText)}`)
    }
    return { key, etag, size: Number(sizeText), lastModified }
  })
  const commonPrefixes = childrenNamed(root, "CommonPrefixes").map((p) => {
    const value = requiredField(p, "Prefix", `${what}, common prefix`)
    if (!value.startsWith(prefix) || value === prefix) {
      throw new S3XmlError(`${what}: the common prefix ${JSON.stringify(value)} is not below ${JSON.stringify(prefix)}`)
    }
    return value
  })
  return { objects, commonPrefixes, isTruncated, nextContinuationToken: isTruncated ? token : undefined }
}

/**
 * One key DeleteObjects did not delete.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeleteError {
  readonly key: string
  readonly versionId: string | undefined
  readonly code: string
  readonly message: string
}

/**
 * Reads a DeleteObjects answer: the keys it did not delete (every one named in the request).
 *
 * @since 0.1.0
 * @category parsing
 */
export const deleteResult = (xml: string, requested: ReadonlySet<string>, what: string): ReadonlyArray<DeleteError> => {
  const root = parse(xml, what)
  expectRoot(root, "DeleteResult", what)
  return childrenNamed(root, "Error").map((e): DeleteError => {
    const key = requiredField(e, "Key", `${what}, error`)
    if (!requested.has(key)) throw new S3XmlError(`${what}: an error names ${JSON.stringify(key)}, which was not in the request`)
    const code = requiredField(e, "Code", `${what}, error of ${JSON.stringify(key)}`)
    if (code.trim() === "") throw new S3XmlError(`${what}: the error of ${JSON.stringify(key)} has an empty <Code>`)
    const versionId = optionalField(e, "VersionId", what)
    return { key, versionId: versionId === "" ? undefined : versionId, code: code.trim(), message: optionalField(e, "Message", what) ?? "" }
  })
}

/**
 * Reads a GetBucketVersioning answer: `Enabled`, `Suspended`, or no status (never enabled).
 *
 * @since 0.1.0
 * @category parsing
 */
export const versioningStatus = (xml: string, what: string): "Enabled" | "Suspended" | undefined => {
  const root = parse(xml, what)
  expectRoot(root, "VersioningConfiguration", what)
  const status = optionalField(root, "Status", what)?.trim()
  if (status === undefined || status === "") return undefined
  if (status === "Enabled" || status === "Suspended") return status
  throw new S3XmlError(`${what}: <Status> is ${JSON.stringify(status)}`)
}

/**
 * The `Code` and `Message` of an error body, when it is one (anything else: both undefined).
 *
 * @since 0.1.0
 * @category parsing
 */
export const errorBody = (xml: string): { readonly code: string | undefined; readonly message: string | undefined } => {
  try {
    const root = parse(xml, "error body")
    if (local(root.name) !== "Error") return { code: undefined, message: undefined }
    return { code: optionalField(root, "Code", "error body")?.trim(), message: optionalField(root, "Message", "error body") }
  } catch {
    return { code: undefined, message: undefined }
  }
}

const escapeText = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&apos;"))

/**
 * The body of a quiet DeleteObjects request (the answer names only the keys not deleted).
 *
 * @since 0.1.0
 * @category encoding
 */
export const deleteRequest = (objects: ReadonlyArray<{ readonly Key: string; readonly VersionId?: string | undefined }>): string =>
  `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>` +
  objects.map((o) =>
    `<Object><Key>${escapeText(o.Key)}</Key>${o.VersionId === undefined ? "" : `<VersionId>${escapeText(o.VersionId)}</VersionId>`}</Object>`
  ).join("") +
  `</Delete>`
