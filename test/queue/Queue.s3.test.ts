import { describeS3, s3Layer } from "../support/s3.js"
import { queueSuite } from "./suite.js"

describeS3("Queue on the real S3 server", () => {
  queueSuite({ name: "S3Storage on RGW", realServer: true, storage: () => s3Layer() })
})
