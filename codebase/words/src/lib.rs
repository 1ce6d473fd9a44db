//! Word statistics. A word is a maximal run of alphanumeric characters (Unicode
//! `char::is_alphanumeric`), compared after lowercasing.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use spore_guest::function;

/// How often each word occurs.
#[function]
fn frequencies(text: String) -> BTreeMap<String, u64> {
    count_words(&text)
}

/// The `n` most frequent words with their counts, most frequent first; equal counts in
/// alphabetical order.
#[function]
fn top(text: String, n: u32) -> Vec<(String, u64)> {
    most_frequent(count_words(&text), n as usize)
}

pub fn count_words(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    // Split before lowercasing: lowercasing can produce non-alphanumeric characters
    // (such as a combining dot) that would split a word.
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if !word.is_empty() {
            *counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
    }
    counts
}

pub fn most_frequent(counts: BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut ranked: Vec<_> = counts.into_iter().collect();
    // The map iterates alphabetically and the sort is stable, so ties stay alphabetical.
    ranked.sort_by_key(|(_, count)| Reverse(*count));
    ranked.truncate(n);
    ranked
}
