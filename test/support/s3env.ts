/**
 * The real S3 server's settings as the test harness passes them around (env and vitest
 * `provide`). No vitest imports: the global set-up (main process) and the workers both use it.
 *
 * @module
 */

/** Where the real S3 server is and how to reach it. */
export interface S3Settings {
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /** The unversioned bucket a queue uses. */
  readonly bucket: string
  /** A versioned bucket, for tests of how buquet meets one (absent on servers without it). */
  readonly bucketVersioned: string | undefined
}

/** Whether the real-S3 suites can run, and if not, why. */
export type S3Availability =
  | { readonly available: true; readonly settings: S3Settings }
  | { readonly available: false; readonly reason: string }

/** Reads the settings from `S3_ENDPOINT`, `S3_BUCKET`, `AWS_ACCESS_KEY_ID`, … (undefined when incomplete). */
export const settingsFromEnv = (env: NodeJS.ProcessEnv): S3Settings | undefined => {
  const endpoint = env["S3_ENDPOINT"]
  const accessKeyId = env["AWS_ACCESS_KEY_ID"]
  const secretAccessKey = env["AWS_SECRET_ACCESS_KEY"]
  if (endpoint === undefined || endpoint === "" || accessKeyId === undefined || secretAccessKey === undefined) return undefined
  return {
    endpoint,
    region: env["S3_REGION"] ?? env["AWS_REGION"] ?? "us-east-1",
    accessKeyId,
    secretAccessKey,
    bucket: env["S3_BUCKET"] ?? "buquet-test",
    bucketVersioned: env["S3_BUCKET_VERSIONED"] === "" ? undefined : env["S3_BUCKET_VERSIONED"]
  }
}
