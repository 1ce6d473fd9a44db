//! The `<title>` of a web page, fetched through the `http` ability.
//!
//! The HTML scanning is deliberately small: the first `<title>` element, found
//! case-insensitively, its text with whitespace collapsed and the common character
//! references decoded. It is not an HTML parser (a `<title>` inside a comment or a
//! script would be found too), which is fine for the pages this is meant for.

use spore_guest::{function, http};

/// The title of the page at `url`: an error when the status is not 2xx or the page
/// has no `<title>` element.
#[function]
fn fetch_title(url: String) -> Result<String, String> {
    let response = http::get(&url).map_err(|error| format!("GET {url}: {error}"))?;
    if !response.is_success() {
        return Err(format!("GET {url}: HTTP status {}", response.status));
    }
    extract_title(&response.text()).ok_or_else(|| format!("{url} has no <title>"))
}

/// The text of the first `<title>` element of `html`, trimmed, with runs of whitespace
/// collapsed to one space (as browsers show it) and character references decoded.
fn extract_title(html: &str) -> Option<String> {
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` index
    // `html` too.
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    let content_start = loop {
        let open = from + lower[from..].find("<title")?;
        let after_name = open + "<title".len();
        // `<titles>` or `<title-bar>` are other elements.
        match lower.as_bytes().get(after_name) {
            Some(b'>' | b'/') => break after_name + lower[after_name..].find('>')? + 1,
            Some(byte) if byte.is_ascii_whitespace() => {
                break after_name + lower[after_name..].find('>')? + 1;
            }
            _ => from = after_name,
        }
    };
    // A title with no end tag runs to the end of the document.
    let content_end = lower[content_start..]
        .find("</title")
        .map_or(html.len(), |end| content_start + end);
    let text = decode_entities(&html[content_start..content_end]);
    Some(text.split_ascii_whitespace().collect::<Vec<_>>().join(" "))
}

/// The longest reference name `decode_reference` knows: `#x10FFFF`, or decimal with
/// a few leading zeros.
const MAX_REFERENCE_LEN: usize = 10;

/// Decodes the character references that show up in titles: the five XML ones,
/// `&nbsp;` and numeric references. Anything else is left as written.
fn decode_entities(text: &str) -> String {
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        decoded.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Names are short, so a `;` further away does not end this reference. Bytes,
        // not chars: `;` is ASCII, so its position is a char boundary.
        let reference = rest
            .bytes()
            .skip(1)
            .take(MAX_REFERENCE_LEN + 1)
            .position(|byte| byte == b';')
            .and_then(|len| Some((decode_reference(&rest[1..1 + len])?, len)));
        match reference {
            Some((character, len)) => {
                decoded.push(character);
                rest = &rest[len + 2..];
            }
            None => {
                decoded.push('&');
                rest = &rest[1..];
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

/// The character `name` (the text between `&` and `;`) stands for.
fn decode_reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use spore_guest::Value;
    use spore_guest::testing::with_abilities;

    use super::*;

    #[test]
    fn finds_the_first_title() {
        let html = "<html><head><TITLE>\n  Spore &amp; friends\n</TITLE></head>\
                    <body><title>second</title></body></html>";
        assert_eq!(extract_title(html).as_deref(), Some("Spore & friends"));
    }

    #[test]
    fn title_tags_with_attributes_and_lookalikes() {
        let html = r#"<titles>no</titles><title lang="en">Yes</title>"#;
        assert_eq!(extract_title(html).as_deref(), Some("Yes"));
        assert_eq!(
            extract_title("<title>open ended").as_deref(),
            Some("open ended")
        );
        assert_eq!(extract_title("<title></title>").as_deref(), Some(""));
        assert_eq!(extract_title("<p>no title here</p>"), None);
        assert_eq!(extract_title("<title"), None);
    }

    #[test]
    fn references_are_decoded_minimally() {
        assert_eq!(
            decode_entities("a &lt;b&gt; &quot;c&quot; &#39;d&#x27; &unknown; & e&amp"),
            "a <b> \"c\" 'd' &unknown; & e&amp"
        );
        assert_eq!(decode_entities("caf&#233; &#xFFFFFFF;"), "café &#xFFFFFFF;");
        assert_eq!(decode_entities("&&amp;;"), "&&;");
    }

    fn response(status: u16, body: &str) -> Value {
        Value::Map(vec![
            (Value::from("status"), Value::from(status)),
            (Value::from("headers"), Value::Map(vec![])),
            (Value::from("body"), Value::Bytes(body.as_bytes().to_vec())),
        ])
    }

    #[test]
    fn fetches_through_http() {
        let handler = |_: &str, _: &str, request: Value| {
            let url = request.as_map().unwrap()[0].1.as_text().unwrap().to_owned();
            Ok(match url.as_str() {
                "https://ok.example/" => response(200, "<title>Hello</title>"),
                "https://untitled.example/" => response(200, "<p>hi</p>"),
                _ => response(404, "<title>Not Found</title>"),
            })
        };
        with_abilities(handler, || {
            assert_eq!(
                fetch_title("https://ok.example/".into()),
                Ok("Hello".into())
            );
            assert_eq!(
                fetch_title("https://untitled.example/".into()),
                Err("https://untitled.example/ has no <title>".into())
            );
            assert_eq!(
                fetch_title("https://gone.example/".into()),
                Err("GET https://gone.example/: HTTP status 404".into())
            );
        });
    }
}
