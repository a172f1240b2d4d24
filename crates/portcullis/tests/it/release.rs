//! Releases carry a changelog entry: CHANGELOG.md keeps work under one `Unreleased` section at
//! the top and each release under `X.Y.Z - YYYY-MM-DD`, newest first, none empty, and the
//! workspace's version is either released with its own entry or still being built under
//! `Unreleased` (see docs/incidents.md, "Releases").

const CHANGELOG: &str = include_str!("../../../../CHANGELOG.md");

/// A release heading's version and date; `None` for anything else.
fn release(heading: &str) -> Option<((u64, u64, u64), time::Date)> {
    let (version, date) = heading.split_once(" - ")?;
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() {
        return None;
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Some((v, time::Date::parse(date, &format).ok()?))
}

/// The `## ` sections: heading and whether any line below it (before the next) is an entry.
fn sections(text: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            out.push((h.trim().to_string(), false));
        } else if line.starts_with("- ")
            && let Some(last) = out.last_mut()
        {
            last.1 = true;
        }
    }
    out
}

/// What is wrong with a changelog for `version`, if anything.
fn check(text: &str, version: &str) -> Result<(), String> {
    if !text.starts_with("# Changelog\n") {
        return Err("the file starts with `# Changelog`".into());
    }
    let sections = sections(text);
    let mut previous: Option<((u64, u64, u64), time::Date)> = None;
    let mut ours = false;
    for (i, (heading, entries)) in sections.iter().enumerate() {
        if !entries {
            return Err(format!("`## {heading}` has no entry"));
        }
        if heading == "Unreleased" {
            if i != 0 {
                return Err("`## Unreleased` is the first section, and the only one".into());
            }
            continue;
        }
        let r =
            release(heading).ok_or_else(|| format!("`## {heading}` is neither Unreleased nor `X.Y.Z - YYYY-MM-DD`"))?;
        if previous.is_some_and(|p| p.0 <= r.0 || p.1 < r.1) {
            return Err(format!("`## {heading}` is not older than the release above it"));
        }
        ours |= heading.starts_with(&format!("{version} - "));
        previous = Some(r);
    }
    let unreleased = sections.first().is_some_and(|s| s.0 == "Unreleased");
    if !ours && !unreleased {
        return Err(format!("version {version} has no entry and nothing is under Unreleased"));
    }
    Ok(())
}

#[test]
fn the_changelog_has_an_entry_for_this_release() {
    check(CHANGELOG, env!("CARGO_PKG_VERSION")).unwrap();
}

#[test]
fn a_changelog_of_the_wrong_shape_is_refused() {
    let ok = "# Changelog\n\n## Unreleased\n- a\n\n## 0.2.0 - 2026-11-01\n- b\n\n## 0.1.0 - 2026-10-01\n- c\n";
    check(ok, "0.3.0").unwrap();
    check(&ok.replace("## Unreleased\n- a\n\n", ""), "0.2.0").unwrap();
    for (bad, version, why) in [
        (ok.replace("- a\n", ""), "0.3.0", "no entry"),
        (ok.replace("## Unreleased\n- a\n\n", ""), "0.3.0", "has no entry and nothing"),
        (ok.replace("0.1.0 - 2026-10-01", "0.1.0"), "0.3.0", "neither"),
        (ok.replace("0.1.0 - 2026-10-01", "0.1.0 - 2026-13-01"), "0.3.0", "neither"),
        (ok.replace("0.1.0 - 2026-10-01", "0.4.0 - 2026-10-01"), "0.3.0", "not older"),
        (ok.replace("- c\n", "- c\n\n## Unreleased\n- d\n"), "0.3.0", "first section"),
        (ok.replace("# Changelog", "# Changes"), "0.3.0", "starts with"),
    ] {
        let e = check(&bad, version).unwrap_err();
        assert!(e.contains(why), "{why}: {e}");
    }
}

/// Every Rust source file of the project (crates and bench), with its line count.
fn sources() -> Vec<(std::path::PathBuf, usize)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut todo = vec![root.join("crates"), root.join("bench")];
    let mut out = Vec::new();
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap().lines().count()));
            }
        }
    }
    out
}

/// Files stay small and named after what they own (see ARCHITECTURE.md): a file that grows
/// past 1,000 lines is split along what it holds.
#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let files = sources();
    assert!(files.len() > 100, "the walk found the sources");
    let big: Vec<_> = files.iter().filter(|(_, n)| *n > 1000).collect();
    assert!(big.is_empty(), "split these along what they own: {big:?}");
}
