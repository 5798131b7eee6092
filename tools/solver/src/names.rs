//! How the names of a code window are bound and read, from its tokens. A window may be a
//! slice of a function, so it is not parsed: strings and comments are blanked, then each name
//! occurrence is classed as a binding (assignment or loop target, `as`, parameter, lambda
//! parameter, walrus) or a read. Attribute names, keywords and keyword-argument names are
//! not variables.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::prior::rough_tokens;

/// Python's keywords, and `self`/`cls`: names that are never variables of a window.
pub const RESERVED: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "self", "cls",
];

pub fn is_reserved(token: &str) -> bool {
    RESERVED.contains(&token)
}

/// The tokens of a line of code ([`rough_tokens`]), trimmed, without the blank ones.
pub fn solid_tokens(text: &str) -> impl Iterator<Item = &str> {
    rough_tokens(text)
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

pub fn is_identifier(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && token.chars().all(is_name_char)
}

/// A character a Python name may hold (past its first).
pub fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `lines` with the text of string literals replaced by `""` and comments dropped; a
/// triple-quoted string may span lines. String prefixes (`f`, `rb`, …) go with the string.
pub fn blank_strings(lines: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len());
    // The open triple quote carried from an earlier line.
    let mut open: Option<&str> = None;
    for line in lines {
        let mut code = String::with_capacity(line.len());
        let mut rest = line.trim_end_matches(['\n', '\r']);
        loop {
            if let Some(quote) = open {
                match rest.find(quote) {
                    Some(end) => {
                        rest = &rest[end + quote.len()..];
                        open = None;
                        code.push_str("\"\"");
                    }
                    None => break,
                }
            }
            let Some(at) = rest.find(['"', '\'', '#']) else {
                code.push_str(rest);
                break;
            };
            let (before, from) = rest.split_at(at);
            if from.starts_with('#') {
                code.push_str(before);
                break;
            }
            // A string prefix is the identifier characters right before the quote.
            let kept = before.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let prefix = &before[kept.len()..];
            let prefix_ok = prefix.len() <= 2
                && prefix
                    .chars()
                    .all(|c| matches!(c.to_ascii_lowercase(), 'r' | 'b' | 'f' | 'u'));
            code.push_str(if prefix_ok { kept } else { before });
            let quote = if from.starts_with("\"\"\"") {
                "\"\"\""
            } else if from.starts_with("'''") {
                "'''"
            } else if from.starts_with('"') {
                "\""
            } else {
                "'"
            };
            let body = &from[quote.len()..];
            if quote.len() == 3 {
                open = Some(quote);
                rest = body;
                continue;
            }
            // A one-line string ends at its first unescaped quote (or the line's end).
            let mut escaped = false;
            let end = body.char_indices().find(|&(_, c)| {
                let hit = !escaped && c.to_string() == quote;
                escaped = !escaped && c == '\\';
                hit
            });
            code.push_str("\"\"");
            match end {
                Some((i, _)) => rest = &body[i + 1..],
                None => break,
            }
        }
        out.push(code);
    }
    out
}

/// One occurrence of a name: the window line (0-based), its place among that line's solid
/// tokens, and whether it binds the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub line: usize,
    pub column: usize,
    pub binds: bool,
}

/// The names of a window and their occurrences.
#[derive(Debug, Default)]
pub struct WindowNames {
    /// Each line's solid tokens (strings blanked, comments dropped).
    pub lines: Vec<Vec<String>>,
    pub occurrences: HashMap<String, Vec<Occurrence>>,
    /// Parameters of a `def` in the window.
    pub parameters: BTreeSet<String>,
}

/// `=` (rough tokens glue it to a following sign: `=-`), or an augmented assignment (`+=`).
fn is_assign_op(token: &str) -> bool {
    token.starts_with('=') && !token.starts_with("==")
        || token.len() >= 2 && token.ends_with('=') && !matches!(token, "==" | "<=" | ">=" | "!=")
}

impl WindowNames {
    pub fn new(lines: &[String]) -> WindowNames {
        let code = blank_strings(lines);
        let lines: Vec<Vec<String>> = code
            .iter()
            .map(|l| solid_tokens(l).map(str::to_string).collect())
            .collect();
        let mut names = WindowNames::default();
        let mut depth = 0usize;
        // Inside a `def`'s parameter list (it may span lines), or a `lambda`'s.
        let mut in_params = false;
        for (li, tokens) in lines.iter().enumerate() {
            let line_depth = depth;
            // A statement line that assigns: where its top-level `=` (or `+=`, `:=`) is.
            let mut d = 0usize;
            let mut assign_at = None;
            if line_depth == 0 {
                for (i, t) in tokens.iter().enumerate() {
                    match t.as_str() {
                        "(" | "[" | "{" => d += 1,
                        ")" | "]" | "}" => d = d.saturating_sub(1),
                        t if d == 0
                            && is_assign_op(t)
                            && !tokens[..i].iter().any(|t| t == "lambda") =>
                        {
                            assign_at = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
            }
            let is_def = tokens.first().is_some_and(|t| t == "def")
                || tokens.first().is_some_and(|t| t == "async")
                    && tokens.get(1).is_some_and(|t| t == "def");
            // Tokens between `for` and `in`, after `lambda` until `:`.
            let mut loop_target = false;
            let mut lambda = false;
            for (i, t) in tokens.iter().enumerate() {
                match t.as_str() {
                    "(" | "[" | "{" => {
                        depth += 1;
                        if is_def && depth == 1 {
                            in_params = true;
                        }
                    }
                    ")" | "]" | "}" => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            in_params = false;
                        }
                    }
                    "for" => loop_target = true,
                    "in" => loop_target = false,
                    "lambda" => lambda = true,
                    ":" if lambda => lambda = false,
                    _ => {}
                }
                let prev = if i > 0 { tokens[i - 1].as_str() } else { "" };
                if !is_identifier(t) || is_reserved(t) || prev == "." {
                    continue;
                }
                let next = tokens.get(i + 1).map_or("", String::as_str);
                let walrus = next == ":" && tokens.get(i + 2).is_some_and(|t| t.starts_with('='));
                // `f(key=...)`: a keyword argument's name.
                if next.starts_with('=') && !next.starts_with("==") && depth > 0 && !in_params {
                    continue;
                }
                // In a parameter list, names after `=` or `:` up to the next `,` are defaults
                // and annotations (reads); a parameter follows `(`, `,`, `*` or `**`.
                let parameter = in_params && matches!(prev, "" | "(" | "," | "*" | "**");
                let target = assign_at.is_some_and(|at| {
                    i < at
                        && !matches!(next, "[" | "." | "(")
                        && tokens[..i].iter().all(|t| t != "[" && t != ":")
                });
                let binds = parameter || target || loop_target || lambda || prev == "as" || walrus;
                if parameter {
                    names.parameters.insert(t.clone());
                }
                names
                    .occurrences
                    .entry(t.clone())
                    .or_default()
                    .push(Occurrence {
                        line: li,
                        column: i,
                        binds,
                    });
            }
        }
        names.lines = lines;
        names
    }

    pub fn of(&self, name: &str) -> &[Occurrence] {
        self.occurrences.get(name).map_or(&[], Vec::as_slice)
    }

    /// (reads, bindings) of `name` in the window.
    pub fn uses(&self, name: &str) -> (usize, usize) {
        let all = self.of(name);
        let bound = all.iter().filter(|o| o.binds).count();
        (all.len() - bound, bound)
    }

    /// The last line before `line` where `name` is bound.
    pub fn bound_before(&self, name: &str, line: usize) -> Option<usize> {
        self.of(name)
            .iter()
            .filter(|o| o.binds && o.line < line)
            .map(|o| o.line)
            .max()
    }

    /// 1 + how many other names are bound nearer before `line` than `name` is (None when it
    /// is not bound before `line`): the bug operator of variable misuse swaps in one of the
    /// locals bound nearest before the read.
    pub fn nearness(&self, name: &str, line: usize) -> Option<usize> {
        let own = self.bound_before(name, line)?;
        let nearer = self
            .occurrences
            .keys()
            .filter(|other| other.as_str() != name)
            .filter(|other| self.bound_before(other, line).is_some_and(|l| l > own))
            .count();
        Some(1 + nearer)
    }
}

impl WindowNames {
    /// How a name is used at one occurrence, as a type checker would read it: the token
    /// before it, the token after it (with the attribute when it is `.`), and the call it is
    /// an argument of. Two names used in the same ways are likely of the same kind.
    pub fn contexts(&self, line: usize, column: usize) -> [String; 4] {
        let tokens = &self.lines[line];
        let at = |i: Option<usize>| i.and_then(|i| tokens.get(i)).map_or("", String::as_str);
        let prev = at(column.checked_sub(1));
        let next = at(Some(column + 1));
        let next = if next == "." {
            format!(".{}", at(Some(column + 2)))
        } else {
            next.to_string()
        };
        // The callee of the bracket this name sits in on its line, and its argument number.
        let mut depth = 0usize;
        let mut call = String::new();
        let mut argument = 0usize;
        for i in (0..column).rev() {
            match tokens[i].as_str() {
                ")" | "]" | "}" => depth += 1,
                "(" | "[" | "{" if depth > 0 => depth -= 1,
                "(" => {
                    call = format!("{}({argument}", at(i.checked_sub(1)));
                    break;
                }
                "[" | "{" => break,
                "," if depth == 0 => argument += 1,
                _ => {}
            }
        }
        let prev2 = at(column.checked_sub(2));
        [
            format!("p:{prev}"),
            format!("n:{next}"),
            format!("c:{call}"),
            format!("q:{prev2} {prev}"),
        ]
    }

    /// The lower-case parts (split at `_`) of the names that the value at an occurrence is
    /// given to: the keyword argument it is passed as (`key=value`), the assignment targets
    /// of its statement (`self.total = value`).
    pub fn receivers(&self, line: usize, column: usize) -> BTreeSet<String> {
        let tokens = &self.lines[line];
        let mut names: Vec<&str> = Vec::new();
        if column >= 2 && tokens[column - 1] == "=" && is_identifier(&tokens[column - 2]) {
            names.push(&tokens[column - 2]);
        }
        let assign = tokens[..column].iter().position(|t| is_assign_op(t));
        if let Some(at) = assign {
            names.extend(
                tokens[..at]
                    .iter()
                    .filter(|t| is_identifier(t) && !is_reserved(t))
                    .map(String::as_str),
            );
        }
        names.iter().flat_map(|n| parts(n)).collect()
    }
}

/// The positional parameter names of every function defined in `source`, by function name
/// (`self` and `cls` left out, nothing after a bare `*`); a name defined twice keeps its
/// first definition.
pub fn signatures(source: &str) -> BTreeMap<String, Vec<String>> {
    let lines: Vec<String> = source.split_inclusive('\n').map(str::to_string).collect();
    let code = blank_strings(&lines);
    let mut out = BTreeMap::new();
    // The tokens of the whole file, flat: a signature may span lines.
    let tokens: Vec<&str> = code.iter().flat_map(|l| solid_tokens(l)).collect();
    let mut i = 0;
    while i + 2 < tokens.len() {
        if tokens[i] != "def" || tokens[i + 2] != "(" || !is_identifier(tokens[i + 1]) {
            i += 1;
            continue;
        }
        let name = tokens[i + 1];
        let mut params = Vec::new();
        let mut depth = 0usize;
        let mut positional = true;
        let mut j = i + 2;
        while j < tokens.len() {
            match tokens[j] {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                "*" | "**" if depth == 1 => positional = false,
                t if depth == 1
                    && positional
                    && matches!(tokens[j - 1], "(" | ",")
                    && is_identifier(t)
                    && !matches!(t, "self" | "cls") =>
                {
                    params.push(t.to_string())
                }
                _ => {}
            }
            j += 1;
        }
        out.entry(name.to_string()).or_insert(params);
        i = j;
    }
    out
}

/// The lower-case parts of a name split at `_` (`left_default` → `left`, `default`).
pub fn parts(name: &str) -> BTreeSet<String> {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl WindowNames {
    /// Which of the contexts `site` are also contexts of another occurrence of `name` (an
    /// occurrence at `site` itself does not count).
    pub fn shared_contexts(
        &self,
        name: &str,
        site: (usize, usize),
        contexts: &[String],
    ) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for o in self.of(name) {
            if (o.line, o.column) == site {
                continue;
            }
            for c in self.contexts(o.line, o.column) {
                if contexts.contains(&c) && c.len() > 2 {
                    seen.insert(c);
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.split_inclusive('\n').map(str::to_string).collect()
    }

    #[test]
    fn strings_and_comments_are_not_names() {
        let code = blank_strings(&lines(
            "def f(seq):\n    \"\"\"Return seq\n    sorted by key.\"\"\"\n    x = 'seq'  # seq\n    return rb\"a\" + x\n",
        ));
        assert_eq!(code[1], "    ");
        assert_eq!(code[2], "\"\"");
        assert_eq!(code[3], "    x = \"\"  ");
        assert_eq!(code[4], "    return \"\" + x");
        let names = WindowNames::new(&lines(
            "def f(seq):\n    \"\"\"Return seq.\"\"\"\n    x = 'seq'\n    return x\n",
        ));
        assert_eq!(names.uses("seq"), (0, 1));
        assert_eq!(names.uses("x"), (1, 1));
    }

    #[test]
    fn bindings_are_told_from_reads() {
        let names = WindowNames::new(&lines(
            "def f(a, b=c, *rest, key: int = 0,\n      **kw,\n      last):\n    x, (y, z) = a\n    d[i] = b\n    for k, v in kw.items():\n        with open(k) as h:\n            g(key=v, w=(n := 2))\n    return [m for m in rest if (lambda q: q)(m)]\n",
        ));
        let bound = |n: &str| names.uses(n).1 > 0;
        for n in [
            "a", "b", "rest", "key", "kw", "last", "x", "y", "z", "k", "v", "h", "n", "m", "q",
        ] {
            assert!(bound(n), "{n} is bound");
        }
        for n in ["c", "d", "i", "open", "g"] {
            assert!(!bound(n), "{n} is not bound");
        }
        assert!(!names.occurrences.contains_key("items"));
        assert!(!names.occurrences.contains_key("w"));
        assert_eq!(names.parameters.len(), 6);
        assert_eq!(names.uses("a"), (1, 1));
    }

    #[test]
    fn nearness_counts_names_bound_in_between() {
        let names = WindowNames::new(&lines(
            "def f(a):\n    b = a\n    c = b\n    return a + b + c\n",
        ));
        assert_eq!(names.nearness("c", 3), Some(1));
        assert_eq!(names.nearness("b", 3), Some(2));
        assert_eq!(names.nearness("a", 3), Some(3));
        assert_eq!(names.nearness("c", 2), None);
    }

    #[test]
    fn signatures_list_positional_parameters() {
        let sigs = signatures(
            "def f(a, b=(1, 2), *rest, key=None):\n    pass\nclass C:\n    def g(\n        self,\n        x: int,\n    ) -> 'def h(z)':\n        return f(x)\n",
        );
        assert_eq!(sigs["f"], ["a", "b"]);
        assert_eq!(sigs["g"], ["x"]);
        assert_eq!(sigs.len(), 2);
    }

    #[test]
    fn a_name_is_known_by_how_it_is_used() {
        let names = WindowNames::new(&lines(
            "def f(xs, n):\n    xs.append(n)\n    g(1, xs)\n    return g(2, n) + len(xs)\n",
        ));
        let site = names.of("n")[2];
        assert_eq!((site.line, site.column), (3, 5));
        let contexts = names.contexts(site.line, site.column);
        assert_eq!(
            contexts,
            [
                "p:,".to_string(),
                "n:)".into(),
                "c:g(1".into(),
                "q:2 ,".into()
            ]
        );
        // xs is also the second argument of g, n only follows a comma before a bracket.
        assert_eq!(names.shared_contexts("xs", (3, 5), &contexts).len(), 3);
        assert_eq!(names.shared_contexts("n", (3, 5), &contexts).len(), 2);
        assert_eq!(names.contexts(1, 0)[1], "n:.append");
        let names = WindowNames::new(&lines("def f(a):\n    self.max_total = g(key=a)\n"));
        let a = names.of("a")[1];
        let words = names.receivers(a.line, a.column);
        assert_eq!(
            words.into_iter().collect::<Vec<_>>(),
            ["key", "max", "total"]
        );
    }
}
