//! Foreign text made fit for a log line or a terminal (`spec/errors.md`).
//!
//! Text that a guest, a provider process or a peer wrote reaches people through the
//! node's log, the CLI and error messages. Unescaped, a newline in it forges a log
//! line and an escape sequence retitles or repaints a terminal; unbounded, it fills the
//! log. [`printable`] escapes what a viewer would act on and cuts the rest to a limit.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The most bytes of foreign text an error message or a log line carries
/// (`spec/errors.md`).
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// `text` as one printable line of at most `max_bytes` bytes.
///
/// Control characters become visible escapes: `\n`, `\r`, `\t`, and `\u{1b}` (Rust's
/// notation) for the others, so ESC, BEL and the C1 controls a terminal acts on are
/// shown rather than obeyed. So do the Unicode line and paragraph separators, which
/// some viewers break lines at, and the bidirectional overrides, which reorder what a
/// terminal shows. All other Unicode is kept. A backslash is kept as it is: this is
/// for reading, not a reversible encoding.
///
/// A longer result is cut at a character (never inside an escape) and ends with
/// `… (N bytes cut)`, N counting the bytes of `text` left out; the note counts toward
/// `max_bytes` unless `max_bytes` is too small to hold it, in which case the text is
/// cut without one. Text with nothing to escape that fits is returned as it is.
pub fn printable(text: &str, max_bytes: usize) -> Cow<'_, str> {
    // Most text is printable ASCII: a byte scan answers for it without decoding chars
    // (this runs on every step of every call's path).
    let printable_ascii = text.bytes().all(|b| (0x20..0x7f).contains(&b));
    if text.len() <= max_bytes && (printable_ascii || !text.chars().any(needs_escape)) {
        return Cow::Borrowed(text);
    }
    let full_len: usize = text.chars().map(escaped_len).sum();
    if full_len <= max_bytes {
        let mut out = String::with_capacity(full_len);
        for c in text.chars() {
            push_escaped(&mut out, c);
        }
        return Cow::Owned(out);
    }
    // The note is sized for the most that could be cut, so the cut never needs redoing.
    let note_room = cut_note(text.len()).len();
    let keep = if note_room <= max_bytes {
        max_bytes - note_room
    } else {
        max_bytes
    };
    let mut out = String::with_capacity(max_bytes);
    let mut taken = 0;
    for c in text.chars() {
        if out.len() + escaped_len(c) > keep {
            break;
        }
        push_escaped(&mut out, c);
        taken += c.len_utf8();
    }
    if note_room <= max_bytes {
        out.push_str(&cut_note(text.len() - taken));
    }
    Cow::Owned(out)
}

fn cut_note(cut: usize) -> String {
    format!("… ({cut} bytes cut)")
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{200e}' | '\u{200f}' // left-to-right and right-to-left marks
            | '\u{202a}'..='\u{202e}' // bidirectional embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
        )
}

fn escaped_len(c: char) -> usize {
    if needs_escape(c) {
        c.escape_default().len()
    } else {
        c.len_utf8()
    }
}

fn push_escaped(out: &mut String, c: char) {
    if needs_escape(c) {
        // `escape_default` gives `\n`, `\r`, `\t` and `\u{…}` for every character
        // `needs_escape` accepts: none of them is a quote or a backslash.
        let _ = write!(out, "{}", c.escape_default());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_that_fits_is_borrowed_unchanged() {
        for text in [
            "",
            "no such sensor",
            "température: 21 °C ✓",
            r"C:\data\file",
        ] {
            assert!(matches!(printable(text, 64), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(printable("one\ntwo\r\n", 100), r"one\ntwo\r\n");
        assert_eq!(printable("a\tb", 100), r"a\tb");
        // A terminal title change (OSC 0, ended by BEL) and a colour change.
        assert_eq!(
            printable("\x1b]0;pwned\x07\x1b[31mred", 100),
            r"\u{1b}]0;pwned\u{7}\u{1b}[31mred"
        );
        assert_eq!(printable("nul\0del\x7f", 100), r"nul\u{0}del\u{7f}");
        // C1 controls, which some terminals obey like ESC sequences (U+009B is CSI).
        assert_eq!(printable("\u{9b}2J", 100), r"\u{9b}2J");
    }

    #[test]
    fn line_separators_and_bidirectional_overrides_are_escaped() {
        assert_eq!(printable("a\u{2028}b\u{2029}", 100), r"a\u{2028}b\u{2029}");
        assert_eq!(
            printable("user\u{202e}gnp.exe\u{2066}", 100),
            r"user\u{202e}gnp.exe\u{2066}"
        );
    }

    #[test]
    fn other_unicode_is_kept() {
        let text = "日本語 ✓ café 🦀 \u{301}";
        assert_eq!(printable(text, 100), text);
    }

    #[test]
    fn long_text_is_cut_at_a_character_and_says_how_much() {
        let text = "é".repeat(100); // 200 bytes
        let cut = printable(&text, 50);
        assert!(cut.len() <= 50, "{} bytes: {cut}", cut.len());
        let (kept, note) = cut.split_once('…').expect("a note");
        assert!(kept.chars().all(|c| c == 'é'), "{kept}");
        let kept_bytes = kept.len();
        assert_eq!(note, format!(" ({} bytes cut)", 200 - kept_bytes));
        // As much as fits is kept: 50 bytes less room for "… (200 bytes cut)" leaves
        // 31, which holds 15 two-byte characters.
        assert_eq!(kept_bytes, 30);
    }

    #[test]
    fn an_escape_is_never_split() {
        let text = "\x1b".repeat(10); // each escapes to 6 bytes: \u{1b}
        let cut = printable(&text, 30);
        assert!(cut.len() <= 30, "{cut}");
        let kept = cut.split('…').next().unwrap();
        assert_eq!(kept, r"\u{1b}".repeat(kept.len() / 6));
        assert!(cut.ends_with(&format!("({} bytes cut)", 10 - kept.len() / 6)));
    }

    #[test]
    fn escaping_can_push_text_over_the_limit() {
        // 10 bytes of input, 20 escaped: cut although the input itself fits.
        let cut = printable("\n\n\n\n\n\n\n\n\n\n", 10);
        assert!(cut.len() <= 10, "{cut}");
        assert_eq!(printable("\n\n\n\n\n", 10), r"\n\n\n\n\n");
    }

    #[test]
    fn a_limit_too_small_for_the_note_cuts_without_one() {
        assert_eq!(printable("abcdefgh", 3), "abc");
        assert_eq!(printable("abc", 0), "");
    }

    #[test]
    fn the_foreign_text_limit_holds_whatever_the_text() {
        for text in [
            "x".repeat(100_000),
            "\x1b".repeat(10_000),
            "🦀".repeat(5_000),
        ] {
            let cut = printable(&text, MAX_MESSAGE_BYTES);
            assert!(cut.len() <= MAX_MESSAGE_BYTES);
            assert!(cut.ends_with("bytes cut)"));
            assert!(!cut.contains(needs_escape));
        }
    }
}
