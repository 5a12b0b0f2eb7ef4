import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { queueSuite } from "./suite.js"

queueSuite({ name: "MemoryStorage + TestClock", realServer: false, storage: () => MemoryStorage.layer() })
