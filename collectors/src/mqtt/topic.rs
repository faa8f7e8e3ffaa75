//! Topic templates: `dc/{centre}/{zone}/r{rack}/inlet` matches the topic
//! `dc/dc2/mm03/r07/inlet` with centre = `dc2`, zone = `mm03`, rack = `07`, and
//! subscribes at the broker with the filter `dc/+/+/+/inlet`.
//!
//! A level is a literal, `+` (any one level, not captured), `#` (any number of levels,
//! last only), or one `{name}` capture with an optional literal prefix and suffix
//! (`r{rack}`, `{sensor}.json`). A capture matches a non-empty part of one level.
//! Names are ASCII letters, digits and `_`; a name starting with `_` captures without
//! becoming a tag.

/// One level of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(String),
    Plus,
    Hash,
    Capture {
        prefix: String,
        name: String,
        suffix: String,
    },
}

/// A compiled topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    levels: Vec<Level>,
    filter: String,
    names: Vec<String>,
}

impl TopicTemplate {
    /// Compile a template; the error says what is wrong.
    pub fn parse(template: &str) -> Result<TopicTemplate, String> {
        if template.is_empty() {
            return Err("the topic template is empty".into());
        }
        if template.contains('\0') {
            return Err("the topic template contains a NUL character".into());
        }
        let parts: Vec<&str> = template.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        let mut names: Vec<String> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let level = match *part {
                "+" => Level::Plus,
                "#" if i + 1 == parts.len() => Level::Hash,
                "#" => return Err("`#` may only be the last level".into()),
                p if p.contains('{') || p.contains('}') => {
                    let open = p
                        .find('{')
                        .ok_or(format!("level \"{p}\": `}}` without `{{`"))?;
                    let close = p[open..]
                        .find('}')
                        .map(|c| open + c)
                        .ok_or(format!("level \"{p}\": `{{` without `}}`"))?;
                    let (prefix, name, suffix) = (&p[..open], &p[open + 1..close], &p[close + 1..]);
                    if suffix.contains('{') || suffix.contains('}') || prefix.contains('}') {
                        return Err(format!("level \"{p}\": one `{{name}}` per level at most"));
                    }
                    check_name(name).map_err(|e| format!("level \"{p}\": {e}"))?;
                    if names.iter().any(|n| n == name) {
                        return Err(format!("`{{{name}}}` appears twice"));
                    }
                    names.push(name.to_owned());
                    Level::Capture {
                        prefix: prefix.to_owned(),
                        name: name.to_owned(),
                        suffix: suffix.to_owned(),
                    }
                }
                p if p.contains('+') || p.contains('#') => {
                    return Err(format!(
                        "level \"{p}\": `+` and `#` must stand alone in their level"
                    ))
                }
                p => Level::Literal(p.to_owned()),
            };
            levels.push(level);
        }
        let filter = levels
            .iter()
            .map(|l| match l {
                Level::Literal(s) => s.as_str(),
                Level::Plus | Level::Capture { .. } => "+",
                Level::Hash => "#",
            })
            .collect::<Vec<_>>()
            .join("/");
        Ok(TopicTemplate {
            levels,
            filter,
            names,
        })
    }

    /// The MQTT topic filter to subscribe with.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The names the template captures, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the template captures `name`.
    pub fn captures(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The captures of `topic` (name, value) in template order, or `None` if the
    /// topic does not match.
    pub fn matches<'t>(&self, topic: &'t str) -> Option<Vec<(&str, &'t str)>> {
        let mut out = Vec::with_capacity(self.names.len());
        let mut parts = topic.split('/');
        for level in &self.levels {
            if *level == Level::Hash {
                // `#` also matches the parent level itself (`a/#` matches `a`).
                return Some(out);
            }
            let part = parts.next()?;
            match level {
                Level::Literal(s) => {
                    if part != s {
                        return None;
                    }
                }
                Level::Plus => {}
                Level::Hash => {}
                Level::Capture {
                    prefix,
                    name,
                    suffix,
                } => {
                    let value = part
                        .strip_prefix(prefix.as_str())?
                        .strip_suffix(suffix.as_str())?;
                    if value.is_empty() {
                        return None;
                    }
                    out.push((name.as_str(), value));
                }
            }
        }
        parts.next().is_none().then_some(out)
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty `{}`".into());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "`{{{name}}}`: names are ASCII letters, digits and `_`"
        ));
    }
    Ok(())
}

/// A string with `{name}` references to a template's captures (a tag value, a
/// measurement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// Literal text and capture names, alternating: (literal, Some(name)) pairs.
    parts: Vec<(String, Option<String>)>,
}

impl Interpolated {
    /// Compile `text`, checking that every `{name}` is captured by `template`.
    pub fn parse(text: &str, template: &TopicTemplate) -> Result<Interpolated, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        loop {
            match rest.find('{') {
                None => {
                    if rest.contains('}') {
                        return Err(format!("\"{text}\": `}}` without `{{`"));
                    }
                    parts.push((rest.to_owned(), None));
                    break;
                }
                Some(open) => {
                    let literal = &rest[..open];
                    if literal.contains('}') {
                        return Err(format!("\"{text}\": `}}` without `{{`"));
                    }
                    let close = rest[open..]
                        .find('}')
                        .map(|c| open + c)
                        .ok_or_else(|| format!("\"{text}\": `{{` without `}}`"))?;
                    let name = &rest[open + 1..close];
                    check_name(name).map_err(|e| format!("\"{text}\": {e}"))?;
                    if !template.captures(name) {
                        return Err(format!("\"{text}\": the topic template has no {{{name}}}"));
                    }
                    parts.push((literal.to_owned(), Some(name.to_owned())));
                    rest = &rest[close + 1..];
                }
            }
        }
        Ok(Interpolated { parts })
    }

    /// Whether the text is a constant.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|(_, n)| n.is_none())
    }

    /// The text with the captures of one topic filled in.
    pub fn render(&self, captures: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for (literal, name) in &self.parts {
            out.push_str(literal);
            if let Some(name) = name {
                if let Some((_, v)) = captures.iter().find(|(n, _)| n == name) {
                    out.push_str(v);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_captures() {
        let t = TopicTemplate::parse("tidewatch/qingdao/{centre}/{zone}/r{rack}/inlet").unwrap();
        assert_eq!(t.filter(), "tidewatch/qingdao/+/+/+/inlet");
        assert_eq!(
            t.matches("tidewatch/qingdao/dc2/mm03/r07/inlet"),
            Some(vec![("centre", "dc2"), ("zone", "mm03"), ("rack", "07")])
        );
        // Level count, literals, prefix, empty capture.
        assert_eq!(t.matches("tidewatch/qingdao/dc2/mm03/r07/inlet/x"), None);
        assert_eq!(t.matches("tidewatch/qingdao/dc2/mm03/r07"), None);
        assert_eq!(t.matches("tidewatch/qingdao/dc2/mm03/07/inlet"), None);
        assert_eq!(t.matches("tidewatch/qingdao/dc2/mm03/r/inlet"), None);
        assert_eq!(t.matches("tidewatch/qingdao//mm03/r01/inlet"), None);

        let t = TopicTemplate::parse("a/+/{_x}.json/#").unwrap();
        assert_eq!(t.filter(), "a/+/+/#");
        assert_eq!(t.matches("a/b/c.json"), Some(vec![("_x", "c")]));
        assert_eq!(t.matches("a/b/c.json/d/e"), Some(vec![("_x", "c")]));
        assert_eq!(t.matches("a/b/c.txt"), None);
        assert_eq!(
            TopicTemplate::parse("plain/topic").unwrap().filter(),
            "plain/topic"
        );
    }

    #[test]
    fn template_errors() {
        let err = |t: &str| TopicTemplate::parse(t).unwrap_err();
        assert!(err("a/#/b").contains("last"));
        assert!(err("a/b+").contains("alone"));
        assert!(err("a/{x}/{x}").contains("twice"));
        assert!(err("a/{x").contains("without"));
        assert!(err("a/x}").contains("without"));
        assert!(err("a/{x}{y}").contains("one"));
        assert!(err("a/{x-y}").contains("names"));
        assert!(err("a/{}").contains("empty"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn interpolation() {
        let t = TopicTemplate::parse("x/{centre}/{zone}/leak/{_place}").unwrap();
        let s = Interpolated::parse("{centre}-{zone}-leak-{_place}", &t).unwrap();
        let caps = t.matches("x/dc2/mm01/leak/cdu").unwrap();
        assert_eq!(s.render(&caps), "dc2-mm01-leak-cdu");
        assert!(!s.is_literal());
        assert!(Interpolated::parse("plain", &t).unwrap().is_literal());
        assert!(Interpolated::parse("{rack}", &t)
            .unwrap_err()
            .contains("no {rack}"));
        assert!(Interpolated::parse("a}b", &t).is_err());
        assert!(Interpolated::parse("{centre", &t).is_err());
    }
}
