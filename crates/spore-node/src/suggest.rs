//! "Did you mean": for a name that does not exist, the existing names a person most
//! likely meant to type.

use spore_core::Name;
use spore_store::StoreError;

use crate::{Node, NodeError};

/// How many names a suggestion lists at most.
const MAX_SUGGESTIONS: usize = 3;

impl Node {
    /// `error`, and when it is a name this node does not know, with the names of this
    /// home and the mesh names it believes that are closest to it (`closest`).
    ///
    /// Called where a failure is answered to a person (the CLI, the HTTP API), not
    /// where a name is looked up: a route or a handler naming a missing function fails
    /// on every request, and must not list every name each time.
    pub fn suggest(&self, error: NodeError) -> NodeError {
        let name = match error {
            NodeError::Store(StoreError::NameNotFound { name, suggestions })
                if suggestions.is_empty() =>
            {
                name
            }
            other => return other,
        };
        // A suggestion is a courtesy: names that cannot be read leave it out.
        let local = self.names().unwrap_or_default();
        let mesh = self.mesh_names();
        let known = local
            .iter()
            .map(|(name, _)| name)
            .chain(mesh.iter().filter(|b| b.target.is_some()).map(|b| &b.name));
        let suggestions = closest(&name, known);
        NodeError::Store(StoreError::NameNotFound { name, suggestions })
    }
}

/// At most three of `known`, closest to `wanted` first (ties in name order), each within
/// a Damerau-Levenshtein distance (a swap of two neighbours is one edit) of a third of
/// `wanted`'s length, at least 1: near enough to be a typo of it, not just another name.
pub fn closest<'a>(wanted: &Name, known: impl IntoIterator<Item = &'a Name>) -> Vec<Name> {
    let wanted = wanted.as_str();
    let most = (wanted.chars().count() / 3).max(1);
    let mut near: Vec<(usize, &Name)> = known
        .into_iter()
        .map(|name| (strsim::damerau_levenshtein(wanted, name.as_str()), name))
        .filter(|(distance, _)| (1..=most).contains(distance))
        .collect();
    near.sort();
    near.dedup_by(|a, b| a.1 == b.1);
    near.into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, name)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(texts: &[&str]) -> Vec<Name> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    fn suggested(wanted: &str, known: &[&str]) -> Vec<String> {
        let known = names(known);
        closest(&wanted.parse().unwrap(), &known)
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect()
    }

    #[test]
    fn a_name_one_edit_away_is_suggested() {
        let known = ["math.add", "math.mul", "math.sub", "text.upper"];
        assert_eq!(suggested("math.ad", &known), ["math.add"]);
        assert_eq!(suggested("math.adf", &known), ["math.add"]);
        assert_eq!(suggested("math.addd", &known), ["math.add"]);
    }

    #[test]
    fn two_swapped_neighbours_count_as_one_edit() {
        // Plain Levenshtein makes this 2, over the limit of a 4-character name.
        assert_eq!(suggested("mtah", &["math", "path.x"]), ["math"]);
    }

    #[test]
    fn an_unrelated_name_gets_no_suggestion() {
        let known = ["math.add", "math.mul", "text.upper"];
        assert!(suggested("orders.create", &known).is_empty());
        assert!(suggested("x", &known).is_empty());
    }

    #[test]
    fn the_limit_grows_with_the_length_of_the_name() {
        // 2 edits: too many for 5 characters (limit 1), fine for 6 (limit 2).
        assert!(suggested("ab.cd", &["ab.xy"]).is_empty());
        assert_eq!(suggested("abc.de", &["abc.xy"]), ["abc.xy"]);
    }

    #[test]
    fn at_most_three_closest_first_each_once() {
        let known = ["api.v3", "api.v1", "api.v2", "api.v4", "api.v11", "api.v1"];
        assert_eq!(suggested("api.v", &known), ["api.v1", "api.v2", "api.v3"]);
        // `orders.less` is 2 edits away: after both at 1, though its name sorts first.
        let known = ["orders.less", "orders.list", "orders.last"];
        assert_eq!(
            suggested("orders.lst", &known),
            ["orders.last", "orders.list", "orders.less"]
        );
    }
}
