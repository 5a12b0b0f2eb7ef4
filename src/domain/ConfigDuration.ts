/**
 * The reference's duration grammar for `--delay` and `--ttl` (and any duration setting): an
 * integer and a unit — `s`/`sec`/`secs`/`second(s)`, `m`/`min`/`mins`/`minute(s)`,
 * `h`/`hr`/`hrs`/`hour(s)`, `d`/`day(s)`, `w`/`week(s)` — case-insensitive, spaces allowed between;
 * no unit means seconds. Several parts add up (`1h30m`).
 *
 * @module
 */
import { Duration, Either } from "effect"

const unitSeconds: ReadonlyArray<readonly [RegExp, number]> = [
  [/^(s|sec|secs|second|seconds)$/, 1],
  [/^(m|min|mins|minute|minutes)$/, 60],
  [/^(h|hr|hrs|hour|hours)$/, 3600],
  [/^(d|day|days)$/, 86_400],
  [/^(w|week|weeks)$/, 604_800]
]

/** What the grammar accepts, for error messages. */
export const durationHint = "use a whole number with an optional unit, e.g. 30, 45s, 5m, 1h, 1h30m, 2d or 1w"

/** Parses a duration; Left is a sentence saying what is wrong and what to use. */
export const parseDuration = (text: string): Either.Either<Duration.Duration, string> => {
  const t = text.trim().toLowerCase()
  if (t === "") return Either.left(`an empty duration is not allowed; ${durationHint}`)
  if (/^\d+$/.test(t)) return Either.right(Duration.seconds(Number(t)))
  const part = /(\d+)\s*([a-z]+)\s*/gy
  let total = 0
  let consumed = 0
  let m: RegExpExecArray | null
  while ((m = part.exec(t)) !== null) {
    const unit = unitSeconds.find(([re]) => re.test(m![2]!))
    if (unit === undefined) return Either.left(`"${text}" has an unknown unit "${m[2]}"; ${durationHint}`)
    total += Number(m[1]) * unit[1]
    consumed = part.lastIndex
  }
  if (consumed !== t.length) return Either.left(`"${text}" is not a duration; ${durationHint}`)
  if (!Number.isSafeInteger(total)) return Either.left(`"${text}" is too long a duration; ${durationHint}`)
  return Either.right(Duration.seconds(total))
}
