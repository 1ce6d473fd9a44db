// The `http` ability: an outbound HTTP client. Only hosts on the binding's allowlist
// are reachable; any HTTP status is a response, not an error.

import { AbilityError, invoke, kind } from "./ability";
import { Result } from "./result";
import { Kind, Value } from "./value";

// @ts-ignore: decorator
@external("http", "request") declare function http_request(ptr: i32, len: i32): i64;

/** The `{url, method?, headers?, body?}` request of spec/abilities.md. */
export class Request {
  headers: Map<string, string> = new Map();
  body: Uint8Array | null = null;

  constructor(
    public method: string,
    public url: string,
  ) {}

  header(name: string, value: string): Request {
    this.headers.set(name, value);
    return this;
  }

  withBody(body: Uint8Array): Request {
    this.body = body;
    return this;
  }

  withText(body: string): Request {
    this.body = Uint8Array.wrap(String.UTF8.encode(body));
    return this;
  }

  toValue(): Value {
    const map = Value.map().set("url", Value.str(this.url)).set("method", Value.str(this.method));
    const names = this.headers.keys();
    if (names.length > 0) {
      const headers = Value.map();
      for (let i = 0; i < names.length; i++) headers.set(names[i], Value.str(this.headers.get(names[i])));
      map.set("headers", headers);
    }
    const body = this.body;
    if (body !== null) map.set("body", Value.fromBytes(body));
    return map;
  }
}

/** An HTTP response, whatever its status. */
export class Response {
  constructor(
    public status: u16,
    public headers: Map<string, string>,
    public body: Uint8Array,
  ) {}

  get isSuccess(): bool {
    return this.status >= 200 && this.status < 300;
  }

  /** The body as text (invalid UTF-8 becomes U+FFFD). */
  text(): string {
    return String.UTF8.decode(this.body.buffer);
  }

  toValue(): Value {
    const headers = Value.map();
    const names = this.headers.keys();
    for (let i = 0; i < names.length; i++) headers.set(names[i], Value.str(this.headers.get(names[i])));
    return Value.map()
      .set("status", Value.uint(this.status))
      .set("headers", headers)
      .set("body", Value.fromBytes(this.body));
  }
}

/** `GET url`. */
export function get(url: string): Result<Response, AbilityError> {
  return request(new Request("GET", url));
}

/** Sends `req`. */
export function request(req: Request): Result<Response, AbilityError> {
  const response = invoke(http_request, req.toValue());
  if (!response.isOk) return Result.err<Response, AbilityError>(response.error);
  const item = response.value;
  const status = item.get("status");
  const headers = item.get("headers");
  const body = item.get("body");
  if (status === null || !status.isU64() || status.magnitude > 999 || body === null || body.kind != Kind.Bytes) {
    return Result.err<Response, AbilityError>(
      new AbilityError(kind.BAD_RESPONSE, "unexpected result: not an HTTP response {status, headers, body}"),
    );
  }
  const map = new Map<string, string>();
  if (headers !== null && headers.kind == Kind.Map) {
    const entries = headers.entries!;
    for (let i = 0; i < entries.length; i++) {
      const name = entries[i].key.asString();
      const value = entries[i].value.asString();
      if (name !== null && value !== null) map.set(name, value);
    }
  }
  return Result.ok<Response, AbilityError>(new Response(<u16>status.magnitude, map, body.bytes!));
}
