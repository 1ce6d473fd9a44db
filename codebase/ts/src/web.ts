// Functions that serve HTTP routes with the whole request (spec/http.md), as
// codebase/webfront does in Rust: each takes an `http.RouteRequest` and answers with an
// `http.Response` of its choosing.

import { http } from "spore-sdk";

/** `hello, NAME!` for the path's `name`, with the query's `greeting` if given. */
@spore
export function hello(request: http.RouteRequest): http.Response {
  const name = request.param("name");
  if (name === null) return http.Response.text(400, "the route gives no {name}");
  const asked = request.queryParam("greeting");
  const greeting = asked === null ? "hello" : asked;
  const agent = request.header("User-Agent");
  return http.Response.text(200, `${greeting}, ${name}!`)
    .withHeader("X-Method", request.method)
    .withHeader("X-Agent", agent === null ? "" : agent);
}

/** Takes a POSTed text body and answers 201 with it upper-cased; 415 for other types. */
@spore
export function shout(request: http.RouteRequest): http.Response {
  const type = request.header("content-type");
  if (type === null || !type.startsWith("text/plain")) {
    return http.Response.text(415, "send text/plain");
  }
  return http.Response.text(201, request.text().toUpperCase()).withHeader("location", request.path);
}
