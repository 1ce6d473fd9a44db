//! Text that came from outside (a guest, a provider process, a peer), made safe to print.

use std::borrow::Cow;

/// The most bytes of foreign text kept in one message (`spec/errors.md`).
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// `text` with every control character escaped (`\n`, `\u{1b}`), so that it prints as
/// one line and cannot move a terminal's cursor or forge log lines, cut at a character
/// boundary to at most about `max_bytes`, saying how much was cut.
pub fn printable(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max_bytes) + 32);
    let mut taken = 0;
    for c in text.chars() {
        if out.len() >= max_bytes {
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        taken += c.len_utf8();
    }
    if taken < text.len() {
        out.push_str(&format!("… ({} more bytes)", text.len() - taken));
    }
    Cow::Owned(out)
}
