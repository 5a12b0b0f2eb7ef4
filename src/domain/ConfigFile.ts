/**
 * Config files (TOML, the reference's sections): parsing and validation, pure. An unknown section
 * or key, or a value of the wrong type or range, is an {@link InvalidConfig} naming the file, the
 * key and the allowed values; nothing is silently ignored.
 *
 * @module
 */
import { Either, Schema } from "effect"
import { parse as parseToml } from "smol-toml"
import { fileSections, normalizeValue, profileKeys, retiredSettings, settingsByPath } from "./ConfigModel.js"
import type { RawValue } from "./ConfigModel.js"

/**
 * A configuration source (file, environment variable, flag) holds a value that is not allowed.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  /** The file path, `environment` or `command line`. */
  source: Schema.String,
  /** The key (`[queue] shard_prefix_len`), the variable or the flag. */
  key: Schema.String,
  message: Schema.String
}) {}

/**
 * Settings as `path → value` in their string form (see `normalizeValue`).
 *
 * @since 0.1.0
 * @category models
 */
export type SettingMap = ReadonlyMap<string, string>

/**
 * One parsed config file.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigFileContents {
  readonly path: string
  /** `[default]` plus the non-profile sections (`[queue]`, …). */
  readonly base: SettingMap
  /** `[profiles.NAME]` sections. */
  readonly profiles: ReadonlyMap<string, SettingMap>
}

const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date)

const fail = (path: string, key: string, message: string) =>
  Either.left(new InvalidConfig({ source: path, key, message: `${path}: ${key}: ${message}` }))

/**
 * Parses and validates the text of a config file at `path`.
 *
 * @since 0.1.0
 * @category codecs
 */
export const parseConfigFile = (path: string, text: string): Either.Either<ConfigFileContents, InvalidConfig> => {
  let doc: Record<string, unknown>
  try {
    doc = parseToml(text) as Record<string, unknown>
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] ?? "" : String(e)
    return fail(path, "(syntax)", `not valid TOML (${msg}); fix the syntax`)
  }
  const sections = fileSections()
  const base = new Map<string, string>()
  const profiles = new Map<string, SettingMap>()
  const allowedSections = [...new Set(["default", "profiles.NAME", ...sections.keys()])].map((s) => `[${s}]`).join(", ")

  const invalid = (key: string, message: string) => new InvalidConfig({ source: path, key, message: `${path}: ${key}${message}` })

  const readValue = (display: string, settingPath: string, value: unknown, into: Map<string, string>) => {
    const v = normalizeValue(settingsByPath.get(settingPath)!, value as RawValue, false)
    if (Either.isLeft(v)) return invalid(display, `: ${v.left}`)
    into.set(settingPath, v.right)
    return undefined
  }

  // [default] or the top level of [profiles.NAME]: connection keys (and, in a profile, sections)
  const readConnection = (section: string, table: unknown, into: Map<string, string>, withSections: boolean): InvalidConfig | undefined => {
    if (!isTable(table)) return invalid(`[${section}]`, " must be a table")
    for (const [key, value] of Object.entries(table)) {
      if (withSections && sections.has(key)) {
        const err = readSection(key, value, into, `${section}.`)
        if (err !== undefined) return err
        continue
      }
      if (!profileKeys.includes(key)) {
        const allowed = [...profileKeys, ...(withSections ? [...sections.keys()].filter((k) => !k.includes(".")).map((k) => `[${section}.${k}]`) : [])]
        return invalid(`[${section}] ${key}`, ` is not a known key; allowed keys: ${allowed.join(", ")}`)
      }
      const err = readValue(`[${section}] ${key}`, key, value, into)
      if (err !== undefined) return err
    }
    return undefined
  }

  // a non-profile section (possibly nested, like [worker.polling]); `shown` prefixes its name in messages
  const readSection = (section: string, table: unknown, into: Map<string, string>, shown = ""): InvalidConfig | undefined => {
    const name = `[${shown}${section}]`
    if (!isTable(table)) return invalid(name, " must be a table")
    const keys = sections.get(section) ?? []
    const subsections = [...sections.keys()].filter((s) => s.startsWith(`${section}.`) && !s.slice(section.length + 1).includes("."))
    for (const [key, value] of Object.entries(table)) {
      const child = `${section}.${key}`
      if (subsections.includes(child)) {
        const err = readSection(child, value, into, shown)
        if (err !== undefined) return err
        continue
      }
      const retired = retiredSettings.find((r) => r.path === child)
      if (retired !== undefined) return invalid(`${name} ${key}`, ` (a setting of the Rust/Python buquet) ${retired.instead}`)
      if (!keys.includes(key)) {
        const allowed = [...keys, ...subsections.map((s) => `[${shown}${s}]`)].join(", ")
        return invalid(`${name} ${key}`, ` is not a known key; allowed keys: ${allowed}`)
      }
      const err = readValue(`${name} ${key}`, child, value, into)
      if (err !== undefined) return err
    }
    return undefined
  }

  for (const [name, value] of Object.entries(doc)) {
    if (name === "default") {
      const err = readConnection("default", value, base, false)
      if (err !== undefined) return Either.left(err)
    } else if (name === "profiles") {
      if (!isTable(value)) return fail(path, "[profiles]", "must hold [profiles.NAME] tables")
      for (const [profile, table] of Object.entries(value)) {
        const into = new Map<string, string>()
        const err = readConnection(`profiles.${profile}`, table, into, true)
        if (err !== undefined) return Either.left(err)
        profiles.set(profile, into)
      }
    } else if (sections.has(name)) {
      const err = readSection(name, value, base)
      if (err !== undefined) return Either.left(err)
    } else {
      return Either.left(
        new InvalidConfig({
          source: path,
          key: isTable(value) ? `[${name}]` : name,
          message: `${path}: ${isTable(value) ? `[${name}]` : name} is not a known ${isTable(value) ? "section" : "key"}; allowed sections: ${allowedSections}`
        })
      )
    }
  }
  return Either.right({ path, base, profiles })
}

/**
 * Reads the settings named in `env` (first variable set wins), validating each.
 *
 * @since 0.1.0
 * @category utils
 */
export const settingsFromEnv = (
  env: Readonly<Record<string, string | undefined>>
): Either.Either<SettingMap, InvalidConfig> => {
  const out = new Map<string, string>()
  const isSet = (n: string) => env[n] !== undefined && env[n] !== ""
  for (const retired of retiredSettings) {
    const name = retired.env.find(isSet)
    if (name !== undefined) {
      return Either.left(
        new InvalidConfig({ source: "environment", key: name, message: `environment variable ${name} (a setting of the Rust/Python buquet) ${retired.instead}` })
      )
    }
  }
  for (const spec of settingsByPath.values()) {
    const name = spec.env.find(isSet)
    const negated = name === undefined ? spec.negatedEnv?.find(isSet) : undefined
    if (name === undefined && negated === undefined) continue
    const variable = (name ?? negated)!
    const v = normalizeValue(spec, env[variable]!, true)
    if (Either.isLeft(v)) {
      return Either.left(new InvalidConfig({ source: "environment", key: variable, message: `environment variable ${variable}: ${v.left}` }))
    }
    out.set(spec.path, negated === undefined ? v.right : String(v.right !== "true"))
  }
  return Either.right(out)
}

/**
 * How the settings given "as flags" are named in messages: where they came from, and each one's
 * name. The command line's `--flag` by default; the Promise API's `connect()` names its options.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlagNaming {
  readonly source: string
  readonly name: (path: string) => string
}

/**
 * The command line's naming: `--bucket`, `--storage`, ….
 *
 * @since 0.1.0
 * @category constants
 */
export const commandLineNaming: FlagNaming = {
  source: "command line",
  name: (path) => `--${settingsByPath.get(path)?.flag ?? path}`
}

/**
 * Validates values given as command-line flags (`path → text`).
 *
 * @since 0.1.0
 * @category utils
 */
export const settingsFromFlags = (
  flags: ReadonlyMap<string, string>,
  naming: FlagNaming = commandLineNaming
): Either.Either<SettingMap, InvalidConfig> => {
  const out = new Map<string, string>()
  for (const [path, text] of flags) {
    const spec = settingsByPath.get(path)
    if (spec === undefined) continue
    const v = normalizeValue(spec, text, true)
    const flag = naming.name(path)
    if (Either.isLeft(v)) return Either.left(new InvalidConfig({ source: naming.source, key: flag, message: `${flag}: ${v.left}` }))
    out.set(path, v.right)
  }
  return Either.right(out)
}
