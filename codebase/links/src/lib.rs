//! A URL shortener (examples/http-api): links kept in `kv`, each new one announced on
//! the topic `links.created`, whose subscriber keeps the most recent ones, and a schedule
//! that expires old links. Every function answers an HTTP route.

use serde::{Deserialize, Serialize};
use spore_guest::http::{HttpRequest, HttpResponse};
use spore_guest::topic::{self, Delivery};
use spore_guest::{clock, function, kv, log, random};

/// How many links `recent` keeps.
const RECENT: usize = 10;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// A short link, as kept under `link/ID` and answered as JSON.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Link {
    pub id: String,
    pub url: String,
    pub created_ms: u64,
    pub visits: u64,
}

/// `POST /links` with `{"url": "https://..."}`: a new short link (400 for anything but
/// an http or https URL).
#[function]
fn shorten(url: String) -> Result<Link, HttpResponse> {
    check_url(&url).map_err(|why| HttpResponse::text(400, why))?;
    let link = Link {
        id: short_id(&random::bytes(6).map_err(unavailable)?),
        url,
        created_ms: clock::now().map_err(unavailable)?,
        visits: 0,
    };
    kv::put(&key(&link.id), &link).map_err(unavailable)?;
    topic::publish("links.created", &link).map_err(unavailable)?;
    Ok(link)
}

/// `GET /l/{id}`: a redirect to the link's URL, the visit counted.
#[function]
fn follow(request: HttpRequest) -> Result<HttpResponse, HttpResponse> {
    let id = request
        .param("id")
        .ok_or_else(|| HttpResponse::text(400, "the route has no {id}"))?;
    // Counted with compare-and-swap: two visits at once both count.
    loop {
        let Some(link) = kv::get::<Link>(&key(id)).map_err(unavailable)? else {
            return Err(HttpResponse::text(404, format!("no link {id}")));
        };
        let counted = Link {
            visits: link.visits + 1,
            ..link.clone()
        };
        if kv::cas(&key(id), Some(&link), Some(&counted)).map_err(unavailable)? {
            return Ok(HttpResponse::new(302).header("location", link.url));
        }
    }
}

/// `GET /links/{id}`: the link and its visits.
#[function]
fn stats(id: String) -> Result<Link, HttpResponse> {
    kv::get::<Link>(&key(&id))
        .map_err(unavailable)?
        .ok_or_else(|| HttpResponse::text(404, format!("no link {id}")))
}

/// Subscribed to `links.created`: keeps the ids of the most recent links. A message
/// seen twice (a redelivery) is kept once.
#[function]
fn on_created(delivery: Delivery<Link>) -> Result<(), String> {
    let link = delivery.message;
    log::info(&format!("new link {} -> {}", link.id, link.url));
    loop {
        let current: Option<Vec<String>> = kv::get("recent").map_err(|e| e.to_string())?;
        let updated = remember(current.clone().unwrap_or_default(), &link.id);
        if kv::cas("recent", current.as_ref(), Some(&updated)).map_err(|e| e.to_string())? {
            return Ok(());
        }
    }
}

/// `GET /recent`: the most recent links, newest first.
#[function]
fn recent() -> Result<Vec<Link>, String> {
    let ids: Vec<String> = kv::get("recent")
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let mut links = Vec::new();
    for id in ids {
        if let Some(link) = kv::get::<Link>(&key(&id)).map_err(|e| e.to_string())? {
            links.push(link);
        }
    }
    Ok(links)
}

/// Scheduled: removes the links created more than `max_age_days` ago; how many.
#[function]
fn expire(max_age_days: u64) -> Result<u64, String> {
    let now = clock::now().map_err(|e| e.to_string())?;
    let mut removed = 0;
    for key in kv::list("link/", None).map_err(|e| e.to_string())? {
        let Some(link) = kv::get::<Link>(&key).map_err(|e| e.to_string())? else {
            continue;
        };
        if now.saturating_sub(link.created_ms) > max_age_days.saturating_mul(DAY_MS) {
            kv::delete(&key).map_err(|e| e.to_string())?;
            removed += 1;
        }
    }
    if removed > 0 {
        log::info(&format!("expired {removed} link(s)"));
    }
    Ok(removed)
}

fn key(id: &str) -> String {
    format!("link/{id}")
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::text(503, e.to_string())
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http or https URL"))?;
    if rest.is_empty()
        || rest.starts_with('/')
        || url.len() > 2048
        || url.contains(char::is_whitespace)
    {
        return Err(format!("`{url}` is not a URL spore will shorten"));
    }
    Ok(())
}

/// Eight characters of `a`-`z` and `2`-`7` (base32) from random bytes.
fn short_id(random: &[u8]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bits: u64 = 0;
    for byte in random.iter().take(5) {
        bits = bits << 8 | u64::from(*byte);
    }
    (0..8)
        .map(|i| ALPHABET[(bits >> (35 - 5 * i) & 31) as usize] as char)
        .collect()
}

/// `recent` with `id` first, once, at most [`RECENT`] long.
fn remember(mut recent: Vec<String>, id: &str) -> Vec<String> {
    recent.retain(|kept| kept != id);
    recent.insert(0, id.to_owned());
    recent.truncate(RECENT);
    recent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_are_shortened() {
        assert!(check_url("https://example.org/a?b=c").is_ok());
        assert!(check_url("http://example.org").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///x",
            "example.org",
            "https://a b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_eight_base32_characters() {
        assert_eq!(short_id(&[0, 0, 0, 0, 0]), "aaaaaaaa");
        assert_eq!(short_id(&[255; 5]), "77777777");
        assert_eq!(short_id(&[1, 2, 3, 4, 5]).len(), 8);
    }

    #[test]
    fn the_recent_list_keeps_each_link_once_newest_first() {
        let list = remember(vec!["b".into(), "a".into()], "a");
        assert_eq!(list, ["a", "b"]);
        let mut list = Vec::new();
        for i in 0..15 {
            list = remember(list, &i.to_string());
        }
        assert_eq!(list.len(), RECENT);
        assert_eq!(list[0], "14");
    }
}
