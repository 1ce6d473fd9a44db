// spore's TypeScript SDK, on AssemblyScript: write spore functions (spec/abi.md) in
// TypeScript. See README.md.

export { Value, Kind, Entry } from "./assembly/value";
export { encode } from "./assembly/encode";
export { decode, decodeAt, Decoded, DecodeError } from "./assembly/decode";
export { Result } from "./assembly/result";
export { fromValue, toValue, Converted } from "./assembly/convert";
export { AbilityError, Operation, kind } from "./assembly/ability";
export { spore_alloc, spore_panic_message } from "./assembly/abi";

import * as ability from "./assembly/ability";
import * as abi from "./assembly/abi";
import * as call from "./assembly/call";
import * as clock from "./assembly/clock";
import * as config from "./assembly/config";
import * as http from "./assembly/http";
import * as kv from "./assembly/kv";
import * as log from "./assembly/log";
import * as random from "./assembly/random";

export { ability, abi, call, clock, config, http, kv, log, random };
