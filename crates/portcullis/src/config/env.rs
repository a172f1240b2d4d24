//! The `PORTCULLIS_*` environment: every variable with the prefix must be a key or one of the
//! few other variables something reads, so a misspelt one is refused with its name instead of
//! silently leaving its key at the default (as a misspelt TOML key already is).

use super::KEYS;

/// The prefix of every variable Portcullis reads.
pub const PREFIX: &str = "PORTCULLIS_";

/// Variables with the prefix that are not keys, and what reads them. Each is documented in the
/// README's generated table, so an operator can see everything the prefix may hold.
pub const OTHER_VARIABLES: &[(&str, &str)] = &[
    ("PORTCULLIS_CONFIG", "the TOML configuration file, as `--config FILE`"),
    ("PORTCULLIS_DATABASE_URL_FILE", "a file (not readable by others) holding `database_url`; overrides it"),
    ("PORTCULLIS_SMTP_URL_FILE", "a file (not readable by others) holding `smtp_url`; overrides it"),
    ("PORTCULLIS_MASTER_KEY", "the master key itself (base64 of 32 bytes); takes precedence over `master_key_file`"),
    ("PORTCULLIS_LOG", "the log filter, such as `info` (the default) or `portcullis=debug`"),
    ("PORTCULLIS_FAILPOINT", "crash tests only: the point where the process stops (`name` or `name:N`)"),
    ("PORTCULLIS_BIN", "the benchmark scripts' server binary (`bench/`)"),
];

/// Variables starting so belong to the test suite (`scripts/test` exports its tools' paths as
/// `PORTCULLIS_TEST_*`, and servers started by the tests inherit them).
pub const TEST_PREFIX: &str = "PORTCULLIS_TEST_";

/// Refuse every variable in `names` that has the prefix but is neither a key nor another known
/// variable, naming each and the likely intended one. The prefix is matched regardless of case
/// and trimmed, as the environment provider reads it, so nothing it would take is missed.
pub fn check(names: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let mut unknown = Vec::new();
    for name in names {
        let trimmed = name.trim();
        let upper = trimmed.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix(PREFIX) else { continue };
        let key = rest.to_ascii_lowercase();
        if KEYS.contains(&key.as_str())
            || upper.starts_with(TEST_PREFIX)
            || OTHER_VARIABLES.iter().any(|(v, _)| *v == upper)
        {
            continue;
        }
        let hint = match suggestion(&upper) {
            Some(s) => format!(" (did you mean `{s}`?)"),
            None => String::new(),
        };
        unknown.push(format!("\n  `{trimmed}` is not a configuration key or a known variable{hint}"));
    }
    if unknown.is_empty() { Ok(()) } else { anyhow::bail!("invalid environment:{}", unknown.concat()) }
}

/// The known variable nearest `name` (uppercase), if it is near enough to be a typo.
fn suggestion(name: &str) -> Option<String> {
    let keys = KEYS.iter().map(|k| format!("{PREFIX}{}", k.to_ascii_uppercase()));
    let others = OTHER_VARIABLES.iter().map(|(v, _)| (*v).to_string());
    keys.chain(others)
        .map(|known| (distance(name, &known), known))
        .filter(|(d, known)| *d <= 2 || *d * 5 <= known.len().saturating_sub(PREFIX.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

/// Levenshtein distance (insertions, deletions and substitutions), by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut next = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = next.last().copied().unwrap_or(usize::MAX);
            let cost = diagonal + usize::from(ca != *cb);
            next.push(cost.min(above.saturating_add(1)).min(left.saturating_add(1)));
            diagonal = above;
        }
        row = next;
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(names: &[&str]) -> String {
        check(names.iter().map(|n| n.to_string())).unwrap_err().to_string()
    }

    #[test]
    fn a_misspelt_variable_is_refused_with_its_name_and_the_likely_key() {
        let e = refused(&["PORTCULLIS_LISEN"]);
        assert!(e.contains("`PORTCULLIS_LISEN`") && e.contains("did you mean `PORTCULLIS_LISTEN`?"), "{e}");
        let e = refused(&["PORTCULLIS_DATABASE_URL_FIEL"]);
        assert!(e.contains("did you mean `PORTCULLIS_DATABASE_URL_FILE`?"), "{e}");
        let e = refused(&["PORTCULLIS_RATE_LIMIT_IP_PER_MINUTES"]);
        assert!(e.contains("did you mean `PORTCULLIS_RATE_LIMIT_IP_PER_MINUTE`?"), "{e}");
        // The prefix counts whatever its case, as the environment provider reads it.
        assert!(refused(&["portcullis_lisen"]).contains("`portcullis_lisen`"));
        // Nothing near: named, without a guess.
        let e = refused(&["PORTCULLIS_ZZZZZZZZZZZZZZZZ"]);
        assert!(e.contains("`PORTCULLIS_ZZZZZZZZZZZZZZZZ`") && !e.contains("did you mean"), "{e}");
        // Every unknown one is named at once.
        let e = refused(&["PORTCULLIS_LISEN", "PATH", "PORTCULLIS_DAT"]);
        assert!(e.contains("`PORTCULLIS_LISEN`") && e.contains("`PORTCULLIS_DAT`") && !e.contains("PATH"), "{e}");
    }

    #[test]
    fn keys_other_variables_and_the_test_suites_are_accepted() {
        let mut names: Vec<String> = KEYS.iter().map(|k| format!("{PREFIX}{}", k.to_ascii_uppercase())).collect();
        names.extend(OTHER_VARIABLES.iter().map(|(v, _)| v.to_string()));
        names.extend(
            ["PORTCULLIS_TEST_PG_URL", "PORTCULLIS_TEST_ONLY_ENV", "portcullis_listen", "PATH", "HOME"]
                .map(String::from),
        );
        check(names).unwrap();
    }

    #[test]
    fn no_other_variable_is_also_a_key() {
        for (v, _) in OTHER_VARIABLES {
            let key = v.strip_prefix(PREFIX).unwrap().to_ascii_lowercase();
            assert!(!KEYS.contains(&key.as_str()), "{v}");
        }
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("LISTEN", "LISTEN"), 0);
        assert_eq!(distance("LISEN", "LISTEN"), 1);
        assert_eq!(distance("LSITEN", "LISTEN"), 2);
        assert_eq!(distance("", "AB"), 2);
        assert_eq!(distance("AB", ""), 2);
    }
}
