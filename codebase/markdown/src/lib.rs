//! Markdown to HTML with CommonMark plus tables, strikethrough, footnotes and task lists.

use pulldown_cmark::{Options, Parser, html};
use spore_guest::function;

#[function]
fn render(md: String) -> String {
    to_html(&md)
}

pub fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS;
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, options));
    out
}
