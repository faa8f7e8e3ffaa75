//! Golden error messages: every file in `tests/data/bad/` is loaded (names starting with
//! `profile-` as profiles, `site-` as sites against the builtin profiles) and its error
//! must equal the text of the `.expected` file beside it: file path as passed, line,
//! column, key path and cause.
//!
//! To regenerate the expected texts after a deliberate change of wording, run with
//! `TIDEWATCH_BLESS=1` and review the diff.

use std::path::Path;

use tidewatch_devices::{ConfigError, Location, Profile, ProfileSet, Site};

/// The folder, relative to the crate root; also the path shown in the messages.
const BAD: &str = "tests/data/bad";

fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load_bad(name: &str, profiles: &ProfileSet) -> Result<(), ConfigError> {
    let shown = format!("{BAD}/{name}.toml");
    let text = std::fs::read_to_string(crate_root().join(&shown)).unwrap();
    if name.starts_with("profile-") {
        Profile::from_str(&text, &shown).map(drop)
    } else if name.starts_with("site-") {
        Site::from_str(&text, &shown, profiles).map(drop)
    } else {
        panic!("{shown}: bad case names start with profile- or site-");
    }
}

#[test]
fn bad_files_give_the_expected_errors() {
    let profiles = ProfileSet::builtin().unwrap();
    let bless = std::env::var_os("TIDEWATCH_BLESS").is_some();
    let dir = crate_root().join(BAD);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect();
    names.sort();

    // The cases the error reporting is specified by.
    for required in [
        "profile-overlap",
        "profile-unknown-type",
        "profile-unknown-key",
        "profile-bit-range",
        "profile-modicon-table",
        "profile-string-no-length",
        "site-missing-profile",
        "site-wrong-kind",
        "site-fault-target",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing bad case {required}"
        );
    }

    let mut failures = Vec::new();
    for name in &names {
        let actual = match load_bad(name, &profiles) {
            Ok(()) => "(no error)".to_owned(),
            Err(e) => e.to_string(),
        };
        let expected_path = dir.join(format!("{name}.expected"));
        if bless {
            std::fs::write(&expected_path, format!("{actual}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| format!("(no file {})", expected_path.display()));
        if expected.trim_end() != actual {
            failures.push(format!(
                "{name}\n  expected: {}\n  actual:   {actual}",
                expected.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad cases differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

#[test]
fn errors_carry_their_parts() {
    let profiles = ProfileSet::builtin().unwrap();
    let err = load_bad("profile-unknown-type", &profiles).unwrap_err();
    assert_eq!(
        err.path(),
        Path::new("tests/data/bad/profile-unknown-type.toml")
    );
    assert_eq!(err.field(), "field[1].type");
    assert_eq!(
        err.location(),
        Some(Location {
            line: 18,
            column: 8
        })
    );
    assert!(err.to_string().contains(
        "unknown data type \"flaot32\"; expected one of bool, bit, int16, uint16, int32, \
         uint32, int64, uint64, float32, float64, string"
    ));

    // Overlaps name both fields, the error sits at the later one and names the line of
    // the earlier one.
    let err = load_bad("profile-overlap", &profiles).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.field(), "field[2].address");
    assert!(text.contains("\"heat_load_kw\"") && text.contains("\"loop_pressure_bar\""));
    assert!(text.contains("line 14"), "{text}");
}

#[test]
fn load_reports_the_path_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[profile]\nmodel = \"broken\"\nkind = \"pdu\"\naddressing = \"zero-based\"\n",
    )
    .unwrap();
    let err = Profile::load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3:8: profile.kind: unknown device kind \"pdu\"; expected one of \
             energy_meter, rack_pdu, cdu, inrow_unit",
            path.display()
        )
    );

    // A directory load stops at the bad file and names it.
    let err = ProfileSet::load_dir(dir.path()).unwrap_err();
    assert_eq!(err.path(), path);

    // A file that is not there.
    let missing = dir.path().join("absent.toml");
    let err = Profile::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err
        .to_string()
        .starts_with(&format!("{}: cannot read: ", missing.display())));
}
