//! "Did you mean …?": the known words closest to a mistyped one, by edit
//! distance. A leaf: it knows nothing of recipes, reports or the sidecars, so
//! every part of bottle (the evaluator, the checker, the egress policy) can
//! use the same rule for what counts as a typo.

/// The known words close enough to `wanted` to be a typo of it (at most a
/// third of the letters wrong), closest first and alphabetically among
/// equals, each once, never `wanted` itself.
pub fn closest<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter(|k| *k != wanted)
        .map(|k| (strsim::damerau_levenshtein(wanted, k), k))
        .filter(|(d, k)| *d <= (wanted.len().max(k.len()) / 3).max(1))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().map(|(_, k)| k).collect()
}

/// The closest known word, phrased as a help line: "did you mean `x`?", or
/// "did you mean one of `x`, `y`?" when several are equally plausible.
pub fn did_you_mean<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let names: Vec<String> = closest(wanted, known)
        .into_iter()
        .take(3)
        .map(|k| format!("`{k}`"))
        .collect();
    match names.len() {
        0 => None,
        1 => Some(format!("did you mean {}?", names[0])),
        _ => Some(format!("did you mean one of {}?", names.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_word_and_strangers_find_nothing() {
        assert_eq!(
            did_you_mean("memroy", ["cpus", "memory", "env"]).as_deref(),
            Some("did you mean `memory`?")
        );
        assert_eq!(closest("xyzzy", ["cpus", "memory"]), Vec::<&str>::new());
        assert_eq!(closest("ab", ["ab", "ac", "ac"]), vec!["ac"]);
    }
}
