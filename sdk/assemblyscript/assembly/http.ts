// HTTP: the `http` ability, an outbound client (only hosts on the binding's allowlist
// are reachable; any HTTP status is a response, not an error), and the request and
// response of an HTTP route (spec/http.md) for functions that serve one.

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

/**
 * An HTTP response, whatever its status: what the client gets, and what a route's
 * function may return (spec/http.md, "The response").
 */
export class Response {
  constructor(
    public status: u16,
    public headers: Map<string, string>,
    public body: Uint8Array,
  ) {}

  /** A response with `text` as its body, `text/plain; charset=utf-8`. */
  static text(status: u16, text: string): Response {
    const headers = new Map<string, string>();
    headers.set("content-type", "text/plain; charset=utf-8");
    return new Response(status, headers, Uint8Array.wrap(String.UTF8.encode(text)));
  }

  /** Sets the header `name` (lower case, as HTTP/2 sends it) and returns the response. */
  withHeader(name: string, value: string): Response {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }

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

/**
 * The request value of an HTTP route (spec/http.md, "The request value"). A function
 * whose only parameter is a `RouteRequest` gets the whole request; its signature says
 * so (kind `request`), and the route then passes it instead of filling arguments by
 * name.
 */
export class RouteRequest {
  constructor(
    /** `GET`, `POST`, ... */
    public method: string,
    /** The path as sent (percent-encoded). */
    public path: string,
    /** The route's path parameters, percent-decoded. */
    public params: Map<string, string>,
    /** The query's pairs (a key given twice keeps its last value). */
    public query: Map<string, string>,
    /** The headers, names in lower case; repeated ones joined with `, `. */
    public headers: Map<string, string>,
    public body: Uint8Array,
  ) {}

  /** The path parameter `name`, or null. */
  param(name: string): string | null {
    return this.params.has(name) ? this.params.get(name) : null;
  }

  /** The query parameter `name`, or null. */
  queryParam(name: string): string | null {
    return this.query.has(name) ? this.query.get(name) : null;
  }

  /** The header `name` (any case), or null. */
  header(name: string): string | null {
    const key = name.toLowerCase();
    return this.headers.has(key) ? this.headers.get(key) : null;
  }

  /** The body as text (invalid UTF-8 becomes U+FFFD). */
  text(): string {
    return String.UTF8.decode(this.body.buffer);
  }

  /** Reads a request value; null when `value` is not one. */
  static fromValue(value: Value): RouteRequest | null {
    const method = value.get("method");
    const path = value.get("path");
    const body = value.get("body");
    const params = textMap(value.get("params"));
    const query = textMap(value.get("query"));
    const headers = textMap(value.get("headers"));
    if (method === null || path === null || body === null || body.kind != Kind.Bytes) return null;
    const methodText = method.asString();
    const pathText = path.asString();
    if (methodText === null || pathText === null || params === null || query === null || headers === null) return null;
    return new RouteRequest(methodText, pathText, params, query, headers, body.bytes!);
  }
}

/** A map of text to text as a `Map`; null when `value` is missing or not one. */
function textMap(value: Value | null): Map<string, string> | null {
  if (value === null || value.kind != Kind.Map) return null;
  const map = new Map<string, string>();
  const entries = value.entries!;
  for (let i = 0; i < entries.length; i++) {
    const key = entries[i].key.asString();
    const text = entries[i].value.asString();
    if (key === null || text === null) return null;
    map.set(key, text);
  }
  return map;
}
