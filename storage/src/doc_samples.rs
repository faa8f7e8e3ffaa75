//! The TOML samples in this crate's module docs, for the tests that parse them (a
//! documented sample that does not parse is a bug).

/// The contents of every ` ```toml ` block in the `//!` docs of `source` (a module's
/// text, from `include_str!`), without the comment markers.
pub(crate) fn toml_blocks(source: &str) -> Vec<String> {
    source
        .split("//! ```toml\n")
        .skip(1)
        .map(|rest| {
            rest.split("//! ```\n")
                .next()
                .expect("a closed ```toml block")
                .lines()
                .map(|l| {
                    l.strip_prefix("//! ")
                        .or(l.strip_prefix("//!"))
                        .unwrap_or(l)
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}
