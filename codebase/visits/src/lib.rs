//! Visit counters and timestamps in the `kv` ability: a counter that stays right when
//! many calls increment it at once, using compare-and-swap.

use spore_guest::ability::AbilityError;
use spore_guest::{clock, function, kv};

/// How many times `hit` retries a compare-and-swap that lost a race before giving up.
/// Each retry means another call changed the counter in between, so this only runs out
/// under heavy contention, and then an error is better than a long stall.
const MAX_ATTEMPTS: u32 = 32;

/// Counts one visit of `page` and returns the new count.
#[function]
fn hit(page: String) -> Result<u64, String> {
    let key = counter_key(&page);
    for _ in 0..MAX_ATTEMPTS {
        let current: Option<u64> = kv::get(&key).map_err(|error| failed("kv.get", &key, error))?;
        let next = next_count(current).ok_or_else(|| format!("the counter {key} is full"))?;
        let swapped = kv::cas(&key, current.as_ref(), Some(&next))
            .map_err(|error| failed("kv.cas", &key, error))?;
        if swapped {
            return Ok(next);
        }
    }
    Err(format!(
        "{key} changed under every one of {MAX_ATTEMPTS} attempts to increment it"
    ))
}

/// The number of visits of `page` so far.
#[function]
fn count(page: String) -> Result<u64, String> {
    let key = counter_key(&page);
    let current: Option<u64> = kv::get(&key).map_err(|error| failed("kv.get", &key, error))?;
    Ok(current.unwrap_or(0))
}

/// Stores the current time (milliseconds since the Unix epoch) under `key` and
/// returns it.
#[function]
fn stamp(key: String) -> Result<u64, String> {
    let now = clock::now().map_err(|error| format!("clock.now: {error}"))?;
    kv::put(&key, &now).map_err(|error| failed("kv.put", &key, error))?;
    Ok(now)
}

/// The key under which `hit` and `count` keep `page`'s counter. It reaches no ability:
/// it is memoized and runs on any node, although its neighbours need `kv`.
#[function]
fn key(page: String) -> String {
    counter_key(&page)
}

fn counter_key(page: &str) -> String {
    format!("visits/{page}")
}

/// The count after one more visit; `None` if it would overflow.
fn next_count(current: Option<u64>) -> Option<u64> {
    current.unwrap_or(0).checked_add(1)
}

fn failed(operation: &str, key: &str, error: AbilityError) -> String {
    format!("{operation} {key}: {error}")
}

#[cfg(test)]
mod tests {
    use spore_guest::Value;
    use spore_guest::ability::{AbilityError, kind};
    use spore_guest::testing::{MemoryKv, with_abilities};

    use super::*;

    #[test]
    fn keys_and_counts() {
        assert_eq!(counter_key("home"), "visits/home");
        assert_eq!(next_count(None), Some(1));
        assert_eq!(next_count(Some(41)), Some(42));
        assert_eq!(next_count(Some(u64::MAX)), None);
    }

    #[test]
    fn hits_count_up() {
        let mut store = MemoryKv::default();
        with_abilities(
            move |_, operation, request| store.call(operation, request),
            || {
                assert_eq!(count("home".into()), Ok(0));
                assert_eq!(hit("home".into()), Ok(1));
                assert_eq!(hit("home".into()), Ok(2));
                assert_eq!(hit("about".into()), Ok(1));
                assert_eq!(count("home".into()), Ok(2));
            },
        );
    }

    #[test]
    fn a_lost_race_is_retried() {
        // Another caller increments the counter between our get and our cas, twice.
        let mut store = MemoryKv::default();
        let mut races = 2;
        let handler = move |_: &str, operation: &str, request: Value| {
            if operation == "cas" && races > 0 {
                races -= 1;
                let current = store.entries.get("visits/home").cloned();
                let bumped = current.map_or(1, |value| {
                    u64::try_from(value.as_integer().unwrap()).unwrap() + 1
                });
                store
                    .entries
                    .insert("visits/home".into(), Value::from(bumped));
            }
            store.call(operation, request)
        };
        with_abilities(handler, || assert_eq!(hit("home".into()), Ok(3)));
    }

    #[test]
    fn endless_contention_gives_up() {
        let handler = |_: &str, operation: &str, _: Value| match operation {
            "get" => Ok(Value::Null),
            _ => Ok(Value::Bool(false)),
        };
        with_abilities(handler, || {
            let error = hit("home".into()).unwrap_err();
            assert!(error.contains("32 attempts"), "{error}");
        });
    }

    #[test]
    fn stamp_stores_the_time() {
        let mut store = MemoryKv::default();
        let handler = move |ability: &str, operation: &str, request: Value| match ability {
            "clock" => Ok(Value::from(1_700_000_000_000u64)),
            "kv" => store.call(operation, request),
            _ => Err(AbilityError::new(kind::UNAVAILABLE, ability)),
        };
        with_abilities(handler, || {
            assert_eq!(stamp("started".into()), Ok(1_700_000_000_000));
            assert_eq!(kv::get::<u64>("started"), Ok(Some(1_700_000_000_000)));
        });
    }

    #[test]
    fn ability_errors_name_the_operation() {
        let handler = |_: &str, _: &str, _: Value| Err(AbilityError::new(kind::TIMEOUT, "slow"));
        with_abilities(handler, || {
            assert_eq!(
                count("home".into()),
                Err("kv.get visits/home: timeout: slow".to_owned())
            );
        });
    }
}
