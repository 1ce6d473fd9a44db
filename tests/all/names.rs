//! Names: set, list, history, rollback, removal.

use crate::support::{Spore, exit};

#[test]
fn names_have_history_and_rollback_is_setting_an_earlier_reference() {
    let spore = Spore::new();
    let hash = spore.publish("arith", None);
    spore
        .run(&["names", "set", "calc", &format!("{}:add", &hash[..8])])
        .ok();
    assert_eq!(spore.invoke("calc", &["5", "3"]), 8);
    spore
        .run(&["names", "set", "calc", &format!("{hash}:sub")])
        .ok();
    assert_eq!(spore.invoke("calc", &["5", "3"]), 2);

    let history = spore.run(&["--json", "names", "history", "calc"]).json();
    let first = history[0]["event"]["set"].as_str().unwrap().to_owned();
    assert_eq!(first, format!("{hash}:add"));
    assert_eq!(history.as_array().unwrap().len(), 2);

    spore.run(&["names", "set", "calc", &first]).ok();
    assert_eq!(spore.invoke("calc", &["5", "3"]), 8);
    let history = spore.run(&["--json", "names", "history", "calc"]).json();
    let seqs: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);

    let listed = spore.run(&["--json", "names", "ls"]).json();
    assert_eq!(listed[0]["name"], "calc");
    assert_eq!(listed[0]["target"], first.as_str());
}

#[test]
fn a_name_can_point_at_another_names_function() {
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    spore.run(&["names", "set", "plus", "math.add"]).ok();
    let listed = spore.run(&["--json", "names", "ls"]).json();
    let plus = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "plus")
        .unwrap();
    assert_eq!(plus["target"], format!("{hash}:add").as_str());
}

#[test]
fn removing_a_name_keeps_its_history() {
    let spore = Spore::new();
    spore.publish("markdown", Some("md"));
    spore.run(&["names", "rm", "md"]).ok();
    spore
        .run(&["invoke", "md", r#""x""#])
        .fails_with(exit::NOT_FOUND);
    let history = spore.run(&["--json", "names", "history", "md"]).json();
    assert_eq!(history[1]["event"], "removed");
    spore
        .run(&["names", "rm", "md"])
        .fails_with(exit::NOT_FOUND);
}

#[test]
fn names_must_point_at_functions_that_exist() {
    let spore = Spore::new();
    let hash = spore.publish("arith", None);
    spore
        .run(&["names", "set", "x", "abcdef12"])
        .fails_with(exit::NOT_FOUND);
    spore
        .run(&["names", "set", "x", &format!("{hash}:nope")])
        .fails_with(exit::NOT_FOUND);
    spore
        .run(&["names", "set", "bad..name", &format!("{hash}:add")])
        .fails_with(exit::USAGE);
    assert!(
        spore
            .run(&["--json", "names", "ls"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A full hash always means the module it hashes: a name that looked like one would let
/// `spore invoke HASH` run whatever the name points at.
#[test]
fn a_name_cannot_look_like_a_full_hash() {
    let spore = Spore::new();
    let arith = spore.publish("arith", None);
    let words = spore.publish("words", None);
    let stderr = spore
        .run(&["names", "set", &words, &format!("{arith}:add")])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(stderr.contains("is a full hash"), "{stderr}");
    // The hash still means its own module.
    let stderr = spore
        .run(&["invoke", &words])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(
        stderr.contains(&format!("module {words} has 2 functions")),
        "{stderr}"
    );
}
