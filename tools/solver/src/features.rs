//! Sparse features of a candidate edit in its context, for the scorer's learned feature term
//! (see [`crate::model::EditHead`]): what the edit changes (its kind, abstracted and literal),
//! the code around it, how the variables it touches are used in the window, and what the
//! problem statement says (error types, names it mentions).
//!
//! The approach is Prophet's (Long & Rinard, POPL 2016): a log-linear model over features of
//! the patch and its context, learned from correct repairs. Each feature is a string hashed
//! into [`BUCKETS`] weights, so any repository or bug kind gets features without a fixed
//! vocabulary, and more data trains more of them (conjunctions of the edit with its context).
//!
//! Everything is read from the example the model sees (problem statement, code window,
//! candidate), never from the gold patch or the task's provenance.

use std::collections::BTreeSet;

use crate::example::{Candidate, RepairExample, common_ends};
use crate::names::{WindowNames, is_identifier, is_name_char, is_reserved, parts};
use crate::prior::rough_tokens;

/// Number of hashed feature weights.
pub const BUCKETS: usize = 1 << 18;

/// One active feature: a bucket and its value.
pub type Feature = (u32, f32);

/// 64-bit FNV-1a: stable across Rust versions and platforms, so a checkpoint's weights keep
/// meaning the same features.
fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn bucket(name: &str) -> u32 {
    // Bucket 0 is padding (its weight stays zero): real features land in 1..BUCKETS.
    1 + (fnv1a(name) % (BUCKETS as u64 - 1)) as u32
}

/// Leads the name of a feature that reads the problem statement and fires only on a task
/// that has one (its errors, complaints, failing tests, the names and places it mentions).
/// With a problem table ([`crate::config::ModelConfig::problem_buckets`]) such features hash
/// into rows of their own after the shared [`BUCKETS`]; without one, into the shared table
/// under their plain name, as before the table existed.
const PROBLEM_MARK: char = '\u{b6}';

fn from_problem(name: String) -> String {
    format!("{PROBLEM_MARK}{name}")
}

/// `name` marked as the problem statement's when `reads_it`: a feature whose zero value
/// (nothing failing, nothing mentioned) also fires on the free pairs, where pretraining
/// learns it, and stays in the shared table.
fn from_problem_when(reads_it: bool, name: String) -> String {
    if reads_it { from_problem(name) } else { name }
}

/// The row of a named feature: in the shared table, or in the problem table of
/// `problem_buckets` rows (after the shared ones) for a problem-statement feature.
pub fn feature_row(name: &str, problem_buckets: Option<usize>) -> u32 {
    match (name.strip_prefix(PROBLEM_MARK), problem_buckets) {
        (Some(plain), Some(rows)) => BUCKETS as u32 + (fnv1a(plain) % rows as u64) as u32,
        (Some(plain), None) => bucket(plain),
        (None, _) => bucket(name),
    }
}

/// Builtins and common methods that the features keep by name, beside the reserved words.
const BUILTINS: &[&str] = &[
    "len",
    "range",
    "isinstance",
    "str",
    "int",
    "list",
    "dict",
    "set",
    "tuple",
    "enumerate",
    "zip",
    "min",
    "max",
    "sum",
    "any",
    "all",
    "getattr",
    "hasattr",
    "iter",
    "next",
    "type",
    "super",
    "sorted",
    "reversed",
    "map",
    "filter",
    "bool",
    "float",
    "repr",
    "print",
    "abs",
    "round",
    "format",
    "append",
    "get",
    "items",
    "keys",
    "values",
    "join",
    "split",
    "strip",
    "startswith",
    "endswith",
    "update",
    "pop",
    "extend",
];

/// Whether a name is kept as it is in an abstracted token (not `ID`).
fn is_kept(name: &str) -> bool {
    is_reserved(name) || BUILTINS.contains(&name)
}

fn is_number(token: &str) -> bool {
    token.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// A token as the features see it: keywords, common builtins, small numbers and operators
/// as they are; other names `ID`, other numbers `NUM`, strings `STR`.
fn abstract_token(token: &str) -> String {
    let t = token.trim();
    if t.is_empty() {
        return "_".into();
    }
    if is_identifier(t) {
        return if is_kept(t) { t.into() } else { "ID".into() };
    }
    if is_number(t) {
        return if matches!(t, "0" | "1" | "2" | "-1") {
            t.into()
        } else {
            "NUM".into()
        };
    }
    if t.starts_with(['"', '\'']) {
        return "STR".into();
    }
    t.into()
}

fn abstract_span(tokens: &[&str]) -> String {
    let parts: Vec<String> = tokens
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| abstract_token(t))
        .collect();
    if parts.is_empty() {
        "ø".into()
    } else {
        parts.join(" ")
    }
}

/// A usage context of [`WindowNames::contexts`] with its names abstracted.
fn abstract_context(context: &str) -> String {
    let (tag, rest) = context.split_at(2);
    if let Some(attr) = rest.strip_prefix('.') {
        return format!("{tag}.{}", abstract_token(attr));
    }
    match tag {
        // `callee(argument-number`
        "c:" => match rest.split_once('(') {
            Some((callee, slot)) => format!("{tag}{}({slot}", abstract_token(callee)),
            None => format!("{tag}{rest}"),
        },
        // two tokens
        "q:" => {
            let parts: Vec<String> = rest.split(' ').map(abstract_token).collect();
            format!("{tag}{}", parts.join(" "))
        }
        _ => format!("{tag}{}", abstract_token(rest)),
    }
}

fn bucketed(n: usize, cap: usize) -> usize {
    n.min(cap)
}

/// What a failure message says, by phrase: a test runner's wording of what went wrong.
const COMPLAINTS: &[(&str, &str)] = &[
    ("not iterable", "iterate"),
    ("not subscriptable", "subscript"),
    ("does not support item", "subscript"),
    ("not callable", "call"),
    ("has no attribute", "attribute"),
    ("unsupported operand", "operand"),
    ("can only concatenate", "operand"),
    ("not supported between", "compare"),
    ("must be str", "type"),
    ("must be an integer", "type"),
    ("object of type", "len"),
    ("out of range", "index"),
    ("before assignment", "unbound"),
    ("is not defined", "undefined"),
    ("positional argument", "arity"),
    ("keyword argument", "keyword"),
    ("nonetype", "none"),
    ("assert ", "assert"),
    ("division by zero", "zero"),
    ("recursion", "recursion"),
    ("timed out", "timeout"),
];

/// Error type names and identifiers mentioned in a problem statement.
struct Problem {
    errors: Vec<String>,
    /// The [`COMPLAINTS`] it makes.
    says: Vec<&'static str>,
    words: BTreeSet<String>,
    failing: usize,
    /// The operators, attributes and callees that its messages name as where the error
    /// arose (`for %:`, `'<=' not supported`, `has no attribute 'get'`, `f() takes`).
    named: Named,
    /// The words of the failing tests' names (`test_custom_format[x]`: custom, format).
    test_words: BTreeSet<String>,
}

/// What the failure messages name as the place of an error, by kind.
#[derive(Default)]
struct Named {
    operators: BTreeSet<String>,
    attributes: BTreeSet<String>,
    callees: BTreeSet<String>,
}

impl Named {
    fn is_empty(&self) -> bool {
        self.operators.is_empty() && self.attributes.is_empty() && self.callees.is_empty()
    }

    /// Reads the wording of CPython's TypeError and AttributeError messages.
    fn read(text: &str) -> Named {
        let mut named = Named::default();
        let quoted = |rest: &str| -> Option<String> {
            let rest = rest.strip_prefix('\'')?;
            Some(rest[..rest.find('\'')?].to_string())
        };
        for line in text.lines() {
            // `unsupported operand type(s) for %: 'Unit' and 'float'`, `bad operand type for
            // unary -: 'str'`
            for marker in ["operand type(s) for ", "bad operand type for unary "] {
                if let Some((_, rest)) = line.split_once(marker)
                    && let Some((op, _)) = rest.split_once(':')
                    && !op.is_empty()
                    && op.chars().all(|c| "<>=!+-*/%&|^~@".contains(c))
                {
                    named.operators.insert(op.trim_end_matches('=').to_string());
                }
            }
            // `'<=' not supported between instances of`
            if let Some((head, _)) = line.split_once("' not supported between")
                && let Some((_, op)) = head.rsplit_once('\'')
            {
                named.operators.insert(op.to_string());
            }
            if line.contains("can only concatenate") {
                named.operators.insert("+".into());
            }
            if line.contains("can't multiply sequence") {
                named.operators.insert("*".into());
            }
            // `'X' object has no attribute 'get'`
            if let Some((_, rest)) = line.split_once("has no attribute ")
                && let Some(attr) = quoted(rest)
            {
                named.attributes.insert(attr);
            }
            // `f() takes 2 positional arguments`, `f() got an unexpected keyword argument`,
            // `f() missing 1 required`
            for marker in ["() takes ", "() got ", "() missing "] {
                if let Some((head, _)) = line.split_once(marker)
                    && let Some(callee) = head.rsplit(|c: char| !is_name_char(c)).next()
                    && is_identifier(callee)
                {
                    named.callees.insert(callee.to_string());
                }
            }
        }
        named
    }

    /// Where, on the edited line's tokens, what the messages name stands against the change
    /// (tokens `change` of `tokens`): next to it, elsewhere on the line, or not on it.
    fn place(&self, tokens: &[&str], change: std::ops::Range<usize>) -> &'static str {
        let solid: Vec<(usize, &str)> = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.trim().is_empty())
            .map(|(i, t)| (i, t.trim()))
            .collect();
        let names = |k: usize| -> bool {
            let (_, t) = solid[k];
            let after_dot = k > 0 && solid[k - 1].1 == ".";
            let before_call = solid.get(k + 1).is_some_and(|(_, n)| *n == "(");
            self.operators.contains(t)
                || (after_dot && self.attributes.contains(t))
                || (before_call && self.callees.contains(t))
        };
        let hits: Vec<usize> = (0..solid.len()).filter(|&k| names(k)).collect();
        if hits.is_empty() {
            return "none";
        }
        // Within two solid tokens of the change, or inside it.
        let first = solid.iter().position(|(i, _)| *i >= change.start);
        let last = solid
            .iter()
            .rposition(|(i, _)| *i < change.end.max(change.start + 1));
        let (lo, hi) = match (first, last) {
            (Some(f), Some(l)) if l >= f => (f, l),
            (Some(f), _) => (f, f),
            _ => (solid.len(), solid.len()),
        };
        if hits.iter().any(|&k| k + 2 >= lo && k <= hi + 2) {
            "next"
        } else {
            "line"
        }
    }
}

/// The words of the test names in `path::test_name[params]` lines, without `test`.
fn test_words(text: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for line in text.lines() {
        let Some((_, test)) = line.trim().rsplit_once("::") else {
            continue;
        };
        let test = test.split('[').next().unwrap_or(test);
        if is_identifier(test) {
            words.extend(
                parts(test)
                    .into_iter()
                    .filter(|w| w != "test" && w.len() > 1),
            );
        }
    }
    words
}

impl Problem {
    fn new(text: &str) -> Problem {
        let mut errors = Vec::new();
        let mut words = BTreeSet::new();
        for token in rough_tokens(text) {
            if !is_identifier(token) {
                continue;
            }
            if (token.ends_with("Error")
                || token.ends_with("Exception")
                || token == "StopIteration")
                && !errors.iter().any(|e| e == token)
                && errors.len() < 4
            {
                errors.push(token.to_string());
            }
            words.insert(token.to_string());
        }
        let failing = text
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::from(!text.trim().is_empty()));
        let lower = text.to_lowercase();
        let mut says: Vec<&'static str> = COMPLAINTS
            .iter()
            .filter(|(phrase, _)| lower.contains(phrase))
            .map(|(_, what)| *what)
            .collect();
        says.dedup();
        Problem {
            errors,
            says,
            words,
            failing,
            named: Named::read(text),
            test_words: test_words(text),
        }
    }
}

/// The features of every candidate of `example`, in candidate order, scaled down past
/// `norm` features as [`crate::config::ModelConfig::feature_norm`] says.
pub fn example_features(
    example: &RepairExample,
    norm: Option<usize>,
    problem_buckets: Option<usize>,
) -> Vec<Vec<Feature>> {
    example_feature_names(example)
        .iter()
        .map(|names| hashed(names, norm, problem_buckets))
        .collect()
}

/// The named features of every candidate of `example` (what [`example_features`] hashes),
/// to explain a ranking.
pub fn example_feature_names(example: &RepairExample) -> Vec<Vec<String>> {
    // A test-made example may lack its scope: the window stands in.
    let (first_line, lines) = if example.scope.lines.is_empty() {
        (example.prompt.first_line, &example.prompt.lines)
    } else {
        (example.scope.first_line, &example.scope.lines)
    };
    let window = WindowNames::new(lines);
    let problem = Problem::new(&example.prompt.problem);
    example
        .candidates
        .iter()
        .map(|c| candidate_feature_names(c, first_line, &window, &problem, &example.signatures))
        .collect()
}

/// How many of a candidate's first named features say what its edit is (its literal change,
/// template, abstracted kind and shape) without its context or the problem statement.
const CONTEXT_FREE: usize = 5;

/// The buckets of the context-free features of every candidate of `examples` (see
/// [`CONTEXT_FREE`]): the edit-kind prior inside the scorer, which fine-tuning can hold.
pub fn context_free_buckets<'a>(examples: impl IntoIterator<Item = &'a RepairExample>) -> Vec<u32> {
    let mut buckets: Vec<u32> = examples
        .into_iter()
        .flat_map(example_feature_names)
        .flat_map(|names| {
            names
                .iter()
                .take(CONTEXT_FREE)
                .map(|name| bucket(name))
                .collect::<Vec<_>>()
        })
        .collect();
    buckets.sort_unstable();
    buckets.dedup();
    buckets
}

fn hashed(names: &[String], norm: Option<usize>, problem_buckets: Option<usize>) -> Vec<Feature> {
    let mut features: Vec<Feature> = names
        .iter()
        .map(|n| (feature_row(n, problem_buckets), 1.0))
        .collect();
    features.sort_unstable_by_key(|f| f.0);
    features.dedup_by_key(|f| f.0);
    if let Some(norm) = norm.filter(|&norm| features.len() > norm) {
        let value = (norm as f32 / features.len() as f32).sqrt();
        features.iter_mut().for_each(|f| f.1 = value);
    }
    features
}

fn candidate_feature_names(
    candidate: &Candidate,
    first_line: usize,
    window: &WindowNames,
    problem: &Problem,
    signatures: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let edit = &candidate.edit;
    let old = edit.old.concat();
    let new = edit.new.concat();
    let (a, b) = (rough_tokens(&old), rough_tokens(&new));
    let (prefix, suffix) = common_ends(&a, &b);
    let old_mid = &a[prefix..a.len() - suffix];
    let new_mid = &b[prefix..b.len() - suffix];
    let solid = |ts: &[&str]| -> Vec<String> {
        ts.iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().to_string())
            .collect()
    };
    let before = solid(&a[..prefix]);
    let after = solid(&a[a.len() - suffix..]);
    let prev = before.last().map_or("^".to_string(), |t| abstract_token(t));
    let prev2 = before
        .len()
        .checked_sub(2)
        .map_or("^".to_string(), |i| abstract_token(&before[i]));
    let next = after.first().map_or("$".to_string(), |t| abstract_token(t));
    let head = solid(&a)
        .first()
        .map_or("ø".to_string(), |t| abstract_token(t));
    let literal = format!(
        "{}\u{2192}{}",
        old_mid.concat().trim(),
        new_mid.concat().trim()
    );
    let kind = format!(
        "{}\u{2192}{}",
        abstract_span(old_mid),
        abstract_span(new_mid)
    );
    let template = candidate.template.as_str();
    let shape = format!("{}:{}", edit.old.len().min(3), edit.new.len().min(3));

    // The literal change only where it names no variable: `a→b` of one repository's names
    // would be memorised and never seen again in another.
    let names_a_variable = old_mid
        .iter()
        .chain(new_mid)
        .any(|t| is_identifier(t) && !is_kept(t.trim()));
    let literal = if names_a_variable {
        kind.clone()
    } else {
        literal
    };
    // The first CONTEXT_FREE names say what the edit is, without where.
    let mut names: Vec<String> = vec![
        format!("lit:{literal}"),
        format!("tpl:{template}"),
        format!("kind:{kind}"),
        format!("kind:{kind}|tpl:{template}"),
        format!("kind:{kind}|shape:{shape}"),
        format!("kind:{kind}|prev:{prev}"),
        format!("kind:{kind}|next:{next}"),
        format!("kind:{kind}|prev:{prev}|next:{next}"),
        format!("kind:{kind}|prev2:{prev2}|prev:{prev}"),
        format!("kind:{kind}|head:{head}"),
        format!("tpl:{template}|head:{head}"),
        format!("tpl:{template}|prev:{prev}|next:{next}"),
        format!("lit:{literal}|prev:{prev}"),
        format!("lit:{literal}|next:{next}"),
    ];
    for error in &problem.errors {
        names.push(from_problem(format!("err:{error}|tpl:{template}")));
        names.push(from_problem(format!("err:{error}|kind:{kind}")));
    }
    for say in &problem.says {
        names.push(from_problem(format!("say:{say}|tpl:{template}")));
        names.push(from_problem(format!("say:{say}|kind:{kind}")));
        names.push(from_problem(format!("say:{say}|prev:{prev}|next:{next}")));
    }
    // With no failing test (no problem statement) this is the template's bias of the free
    // pairs.
    names.push(from_problem_when(
        problem.failing > 0,
        format!("failing:{}|tpl:{template}", bucketed(problem.failing, 4)),
    ));

    // Where the operator, attribute or call that the messages name stands against the change.
    if !problem.named.is_empty() {
        let place = problem.named.place(&a, prefix..a.len() - suffix);
        names.push(from_problem(format!("named:{place}")));
        names.push(from_problem(format!("named:{place}|tpl:{template}")));
        names.push(from_problem(format!("named:{place}|kind:{kind}")));
        names.push(from_problem(format!(
            "named:{place}|prev:{prev}|next:{next}"
        )));
    }

    // Names on the edited lines that the problem statement mentions.
    let line_names: BTreeSet<&str> = a
        .iter()
        .copied()
        .filter(|t| is_identifier(t) && !is_kept(t))
        .collect();
    let mentioned = line_names
        .iter()
        .filter(|n| problem.words.contains(**n))
        .count();
    names.push(from_problem_when(
        mentioned > 0,
        format!("line-mentioned:{}|tpl:{template}", bucketed(mentioned, 2)),
    ));
    // Names on the edited lines, and in the change, that share a word with a failing test's
    // name (`test_join` and `join`).
    if !problem.test_words.is_empty() {
        let shares = |t: &str| !parts(t).is_disjoint(&problem.test_words);
        let on_line = line_names.iter().filter(|t| shares(t)).count();
        let in_change = old_mid
            .iter()
            .chain(new_mid)
            .filter(|t| is_identifier(t) && !is_kept(t.trim()))
            .any(|t| shares(t.trim()));
        names.push(from_problem(format!("test-words:{}", bucketed(on_line, 2))));
        names.push(from_problem(format!(
            "test-words:{}|tpl:{template}",
            bucketed(on_line, 2)
        )));
        names.push(from_problem(format!(
            "test-words-change:{in_change}|tpl:{template}"
        )));
    }

    // A variable replaced by another: how each is used elsewhere in the window.
    let (old_name, new_name) = (solid(old_mid), solid(new_mid));
    if old_name.len() == 1
        && new_name.len() == 1
        && [&old_name[0], &new_name[0]]
            .iter()
            .all(|n| is_identifier(n) && !is_reserved(n))
    {
        let (x, y) = (old_name[0].as_str(), new_name[0].as_str());
        let line = edit.start.saturating_sub(first_line);
        // Which occurrence of x on its line the edit replaces.
        let ordinal = a[..prefix].iter().filter(|t| **t == x).count();
        let site = Site {
            line,
            ordinal,
            template,
            prev: &prev,
            next: &next,
        };
        names.extend(variable_features(x, y, &site, window, problem, signatures));
    }
    names
}

/// Where a variable change `x → y` is: the line (of the scope), which occurrence of x on it,
/// and the change's template and neighbouring tokens (abstracted).
struct Site<'a> {
    line: usize,
    ordinal: usize,
    template: &'a str,
    prev: &'a str,
    next: &'a str,
}

/// The features of a read of `x` replaced by `y`: how each is bound, read and used in the
/// scope, against what the site needs and what the problem statement says.
fn variable_features(
    x: &str,
    y: &str,
    at: &Site,
    window: &WindowNames,
    problem: &Problem,
    signatures: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let Site {
        line,
        ordinal,
        template,
        prev,
        next,
    } = *at;
    let (x_mentioned, y_mentioned) = (problem.words.contains(x), problem.words.contains(y));
    let mentioned = from_problem_when(
        x_mentioned || y_mentioned,
        format!(
            "mentioned:{}{}",
            u8::from(x_mentioned),
            u8::from(y_mentioned)
        ),
    );
    let mut names = Vec::new();
    let site = window
        .of(x)
        .iter()
        .filter(|o| o.line == line)
        .nth(ordinal)
        .map(|o| (o.line, o.column));
    let (x_reads, x_binds) = window.uses(x);
    let (y_reads, y_binds) = window.uses(y);
    // The site itself is one read of x.
    let x_rest = x_reads.saturating_sub(1);
    let reads_around = |name: &str| -> (usize, usize) {
        let Some(site) = site else { return (0, 0) };
        let reads = window.of(name).iter().filter(|o| !o.binds);
        let before = reads.clone().filter(|o| (o.line, o.column) < site).count();
        let after = reads.filter(|o| (o.line, o.column) > site).count();
        (before, after)
    };
    let (x_before, x_after) = reads_around(x);
    let (y_before, y_after) = reads_around(y);
    let near = |n: Option<usize>| n.map_or("none".to_string(), |n| bucketed(n, 4).to_string());
    let x_near = near(window.nearness(x, line));
    let y_near = near(window.nearness(y, line));
    let y_first = window.of(y).first().map(|o| o.line);
    let y_where = match y_first {
        None => "absent",
        Some(l) if l < line => "before",
        Some(l) if l == line => "same",
        _ => "after",
    };
    let line_tokens = window.lines.get(line);
    let y_on_line = line_tokens.is_some_and(|ts| ts.iter().any(|t| t == y));
    let x_twice_on_line = line_tokens.is_some_and(|ts| ts.iter().filter(|t| *t == x).count() > 1);
    let y_param = window.parameters.contains(y);
    let y_unread = y_reads == 0 && (y_binds > 0 || y_param);
    let shared_prefix = x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count();
    let shares_part = !parts(x).is_disjoint(&parts(y));
    let (xb, xa, yb, ya) = (
        bucketed(x_before, 2),
        bucketed(x_after, 2),
        bucketed(y_before, 2),
        bucketed(y_after, 2),
    );
    // Whether x and y are used elsewhere as the site uses x (before/after tokens, the
    // call it is an argument of): a rough type check.
    let site_contexts = site.map(|site| window.contexts(site.0, site.1));
    let mut shared = Vec::new();
    let mut var_extra: Vec<String> = Vec::new();
    let (x_ctx, y_ctx) = match site {
        Some(site) => {
            let contexts = window.contexts(site.0, site.1);
            let xs = window.shared_contexts(x, site, &contexts);
            let ys = window.shared_contexts(y, site, &contexts);
            // Which usage each shares, by its kind: `.append` shared says more than `(`.
            for c in &contexts {
                shared.push(format!(
                    "share:{}|x{}y{}",
                    abstract_context(c),
                    u8::from(xs.contains(c)),
                    u8::from(ys.contains(c))
                ));
            }
            (xs.len(), ys.len())
        }
        None => (0, 0),
    };
    // The parameter the site's call slot is meant for, when the file defines the callee:
    // is it x or y, or is x another parameter of the callee (`_get(default, seq,
    // default)`)?
    let slot = site_contexts.as_ref().and_then(|c| {
        let (callee, argument) = c[2].strip_prefix("c:")?.split_once('(')?;
        let params = signatures.get(callee)?;
        Some((params, params.get(argument.parse::<usize>().ok()?)))
    });
    if let Some((params, meant)) = slot {
        let is = |n: &str| meant.is_some_and(|p| p == n);
        let near = |n: &str| meant.is_some_and(|p| !parts(p).is_disjoint(&parts(n)));
        let other = |n: &str| params.iter().any(|p| p == n) && !is(n);
        var_extra.push(format!(
            "slot:x{}{}{}y{}{}{}",
            u8::from(is(x)),
            u8::from(near(x)),
            u8::from(other(x)),
            u8::from(is(y)),
            u8::from(near(y)),
            u8::from(other(y))
        ));
    }
    // Whether another name on the site's line shares a part with x or y (`leftkey,
    // leftseq`).
    let (x_kin, y_kin) = {
        let others: BTreeSet<String> = window
            .lines
            .get(line)
            .into_iter()
            .flatten()
            .filter(|t| is_identifier(t) && *t != x && *t != y)
            .flat_map(|t| parts(t))
            .collect();
        (
            !others.is_disjoint(&parts(x)),
            !others.is_disjoint(&parts(y)),
        )
    };
    // Whether the name the value goes to (a keyword argument, an assignment target)
    // echoes x or y.
    let (x_echo, y_echo) = site.map_or((false, false), |site| {
        let words = window.receivers(site.0, site.1);
        (!words.is_disjoint(&parts(x)), !words.is_disjoint(&parts(y)))
    });
    let var = [
        format!("ctx:x{x_ctx}y{y_ctx}"),
        format!("ctx:x{x_ctx}y{y_ctx}|x-near:{x_near}"),
        format!("ctx:x{x_ctx}y{y_ctx}|y-unread:{y_unread}"),
        format!("echo:x{x_echo}y{y_echo}"),
        format!("kin:x{x_kin}y{y_kin}"),
        format!("kin:x{x_kin}y{y_kin}|ctx:x{x_ctx}y{y_ctx}"),
        format!("echo:x{x_echo}y{y_echo}|ctx:x{x_ctx}y{y_ctx}"),
        format!("y-reads:{}", bucketed(y_reads, 3)),
        format!("y-binds:{}", bucketed(y_binds, 2)),
        format!("x-rest:{}", bucketed(x_rest, 3)),
        format!("x-binds:{}", bucketed(x_binds, 2)),
        format!(
            "y-reads:{}|x-rest:{}",
            bucketed(y_reads, 3),
            bucketed(x_rest, 3)
        ),
        format!("y-unread-bound:{y_unread}"),
        format!("x-last-read:{}", x_rest == 0),
        format!("y-where:{y_where}"),
        format!("y-where:{y_where}|y-reads:{}", bucketed(y_reads, 2)),
        format!("y-on-line:{y_on_line}"),
        format!("x-twice-on-line:{x_twice_on_line}"),
        format!("y-param:{y_param}"),
        format!("prefix:{}", bucketed(shared_prefix, 4)),
        format!("shares-part:{shares_part}"),
        mentioned,
        format!("x-near:{x_near}"),
        format!("y-near:{y_near}"),
        format!("x-near:{x_near}|y-near:{y_near}"),
        format!("x-near:{x_near}|y-unread:{y_unread}"),
        format!("x-near:{x_near}|y-near:{y_near}|y-unread:{y_unread}"),
        format!("x-reads:{xb},{xa}|y-reads:{yb},{ya}"),
        format!("x-reads:{xb},{xa}|y-unread:{y_unread}|x-near:{x_near}"),
        format!("y-reads:{yb},{ya}|y-near:{y_near}"),
        format!("x-twice:{x_twice_on_line}|y-unread:{y_unread}|x-near:{x_near}"),
        format!("y-on-line:{y_on_line}|x-near:{x_near}|y-near:{y_near}"),
    ];
    // The attribute read off the site, when the problem statement names it.
    let attribute_named = site_contexts.as_ref().is_some_and(|c| {
        c[1].strip_prefix("n:.")
            .is_some_and(|attr| problem.words.contains(attr))
    });
    names.push(from_problem_when(
        attribute_named,
        format!("var|attribute-named:{attribute_named}"),
    ));
    for say in &problem.says {
        names.push(from_problem(format!(
            "var|say:{say}|x-near:{x_near}|y-near:{y_near}"
        )));
        names.push(from_problem(format!("var|say:{say}|ctx:x{x_ctx}y{y_ctx}")));
        if let Some(contexts) = &site_contexts {
            for c in &contexts[..2] {
                names.push(from_problem(format!(
                    "var|say:{say}|site:{}",
                    abstract_context(c)
                )));
            }
        }
    }
    for error in &problem.errors {
        names.push(from_problem(format!(
            "var|err:{error}|x-near:{x_near}|y-near:{y_near}"
        )));
        names.push(from_problem(format!(
            "var|err:{error}|ctx:x{x_ctx}y{y_ctx}"
        )));
        names.push(from_problem(format!(
            "var|err:{error}|prev:{prev}|next:{next}"
        )));
    }
    for v in shared {
        names.push(variable(&v, ""));
    }
    for v in var_extra {
        names.push(variable(&v, ""));
        names.push(variable(&v, &format!("|tpl:{template}")));
    }
    for v in var {
        names.push(variable(&v, ""));
        names.push(variable(&v, &format!("|tpl:{template}")));
        names.push(variable(&v, &format!("|prev:{prev}|next:{next}")));
    }
    names
}

/// `var|{feature}{cross}`, marked as the problem statement's when `feature` is.
fn variable(feature: &str, cross: &str) -> String {
    match feature.strip_prefix(PROBLEM_MARK) {
        Some(plain) => from_problem(format!("var|{plain}{cross}")),
        None => format!("var|{feature}{cross}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::{LineEdit, Prompt};

    fn example(lines: &[&str], candidates: Vec<(usize, &str, &str, &str)>) -> RepairExample {
        RepairExample {
            instance_id: "t".into(),
            prompt: Prompt {
                problem: "1 tests fail:\n\nt.py::test_f\n    TypeError: bad\n".into(),
                path: "m.py".into(),
                first_line: 1,
                lines: lines.iter().map(|l| format!("{l}\n")).collect(),
            },
            candidates: candidates
                .into_iter()
                .map(|(line, old, new, template)| Candidate {
                    edit: LineEdit {
                        start: line,
                        old: vec![format!("{old}\n")],
                        new: vec![format!("{new}\n")],
                    },
                    template: template.into(),
                })
                .collect(),
            gold: None,
            gold_enumerated: false,
            family: String::new(),
            scope: Default::default(),
            signatures: Default::default(),
        }
    }

    /// `key` read nowhere, `total` twice on one line; candidates: a variable, an arithmetic
    /// and a boolean operator change.
    fn unread_variable() -> RepairExample {
        example(
            &[
                "def f(items, key):",
                "    total = len(items)",
                "    return total + total",
            ],
            vec![
                (
                    3,
                    "    return total + total",
                    "    return key + total",
                    "var-misuse",
                ),
                (
                    3,
                    "    return total + total",
                    "    return total - total",
                    "arith-swap",
                ),
                (
                    3,
                    "    return total and key",
                    "    return total or key",
                    "bool-swap",
                ),
            ],
        )
    }

    fn has(features: &[Feature], name: &str) -> bool {
        features.iter().any(|f| f.0 == bucket(name))
    }

    #[test]
    fn problem_features_have_rows_of_their_own_only_with_a_problem_table() {
        let mut ex = unread_variable();
        ex.prompt.problem = "1 tests fail:\n\nt.py::test_f\n    TypeError: bad key\n".into();
        let names: Vec<String> = example_feature_names(&ex).concat();
        let (marked, plain): (Vec<&String>, Vec<&String>) =
            names.iter().partition(|n| n.starts_with(PROBLEM_MARK));
        assert!(
            marked.iter().any(|n| n.contains("err:TypeError|tpl:")),
            "{marked:?}"
        );
        assert!(
            names
                .iter()
                .all(|n| !n.chars().skip(1).any(|c| c == PROBLEM_MARK)),
            "the mark leads a name: {names:?}"
        );
        assert!(
            marked.iter().any(|n| n.contains("var|mentioned:")),
            "{marked:?}"
        );
        let rows = 1024;
        for name in &marked {
            let unmarked = &name[PROBLEM_MARK.len_utf8()..];
            assert_eq!(
                feature_row(name, None),
                bucket(unmarked),
                "as before a table"
            );
            let row = feature_row(name, Some(rows)) as usize;
            assert!((BUCKETS..BUCKETS + rows).contains(&row), "{name}: {row}");
        }
        for name in &plain {
            assert_eq!(feature_row(name, Some(rows)), bucket(name));
        }
        // Without a problem statement (a free pair) every feature is the shared table's.
        let mut free = ex.clone();
        free.prompt.problem.clear();
        let names = example_feature_names(&free).concat();
        assert!(
            names.iter().all(|n| !n.starts_with(PROBLEM_MARK)),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.starts_with("failing:0|")));
    }

    #[test]
    fn context_free_buckets_name_what_an_edit_is_not_where() {
        let ex = unread_variable();
        let held = context_free_buckets([&ex]);
        for name in [
            "tpl:arith-swap",
            "lit:+\u{2192}-",
            "kind:+\u{2192}-",
            "tpl:bool-swap",
        ] {
            assert!(held.contains(&bucket(name)), "{name} is held");
        }
        // Every candidate has context and problem features beyond the held ones.
        for names in example_feature_names(&ex) {
            let free = names
                .iter()
                .filter(|name| !held.contains(&bucket(name)))
                .count();
            assert!(free > 0, "{names:?}");
            assert!(
                names
                    .iter()
                    .any(|n| n.contains("|prev:") && !held.contains(&bucket(n))),
                "the edit's neighbours stay free: {names:?}"
            );
        }
    }

    #[test]
    fn a_candidate_with_many_features_is_scaled_to_the_norm() {
        let ex = unread_variable();
        let plain = example_features(&ex, None, None);
        assert!(plain.iter().flatten().all(|f| f.1 == 1.0));
        let (wide, narrow) = if plain[0].len() > plain[1].len() {
            (0, 1)
        } else {
            (1, 0)
        };
        let norm = plain[narrow].len();
        assert!(plain[wide].len() > norm, "the fixture needs two widths");
        let scaled = example_features(&ex, Some(norm), None);
        // Past the norm every feature shares one value and the vector's squared length is
        // the norm; at or below it nothing changes.
        let squared: f32 = scaled[wide].iter().map(|f| f.1 * f.1).sum();
        assert!(
            (squared - norm as f32).abs() < 1e-3,
            "{squared} against {norm}"
        );
        assert!(
            scaled[wide]
                .iter()
                .all(|f| f.1 == scaled[wide][0].1 && f.1 < 1.0)
        );
        assert_eq!(scaled[narrow], plain[narrow]);
        let buckets = |fs: &[Feature]| fs.iter().map(|f| f.0).collect::<Vec<_>>();
        assert_eq!(buckets(&scaled[wide]), buckets(&plain[wide]));
    }

    #[test]
    fn a_variable_left_unread_is_seen() {
        let ex = unread_variable();
        let features = example_features(&ex, None, None);
        assert!(has(&features[0], "var|y-unread-bound:true"));
        assert!(has(&features[0], "var|x-twice-on-line:true"));
        assert!(!has(&features[1], "var|y-unread-bound:true"));
        // Keywords are not variables: `and → or` is an operator change.
        assert!(!has(&features[2], "var|x-last-read:true"));
        assert!(!has(&features[2], "var|x-last-read:false"));
        assert!(has(&features[1], "kind:+\u{2192}-"));
        assert!(has(&features[1], "err:TypeError|tpl:arith-swap"));
        assert!(features.iter().all(|f| f.iter().all(|(b, _)| *b != 0)));
    }

    #[test]
    fn what_the_message_names_is_placed_against_the_change() {
        let named = Named::read(
            "t.py::test_a\n    TypeError: unsupported operand type(s) for %: 'Unit' and 'float'\n\
             t.py::test_b\n    AttributeError: 'NoneType' object has no attribute 'get'\n\
             t.py::test_c\n    TypeError: '<=' not supported between instances of 'A' and 'int'\n\
             t.py::test_d\n    TypeError: merge() got an unexpected keyword argument 'k'\n",
        );
        assert!(named.operators.contains("%") && named.operators.contains("<="));
        assert!(named.attributes.contains("get") && named.callees.contains("merge"));
        let place = |line: &str, changed: &str| {
            let tokens = rough_tokens(line);
            let at = tokens.iter().position(|t| *t == changed).unwrap();
            named.place(&tokens, at..at + 1)
        };
        assert_eq!(place("    s = fmt % value", "fmt"), "next");
        assert_eq!(place("    s = fmt % value + other", "other"), "line");
        assert_eq!(place("    s = fmt + value", "fmt"), "none");
        assert_eq!(place("    v = spec.get(name, None)", "spec"), "next");
        // A name that is not read as an attribute is not the attribute the message names.
        assert_eq!(place("    v = get + spec", "spec"), "none");
        assert_eq!(place("    return merge(a, b, c, d)", "d"), "line");
        assert_eq!(place("    if a <= b:", "b"), "next");
        assert_eq!(
            test_words("2 tests fail:\n\nt/test_a.py::test_custom_format[x-1]\n    E\n"),
            ["custom", "format"].iter().map(|w| w.to_string()).collect()
        );
        assert!(
            Named::read("1 test fails:\n\nt.py::t\n    AssertionError: assert 1 == 2\n").is_empty()
        );
    }

    #[test]
    fn features_are_stable_and_abstract_names() {
        // Pinned: a checkpoint's weights must keep meaning the same features.
        assert_eq!(fnv1a("kind:ID\u{2192}ID"), fnv1a("kind:ID\u{2192}ID"));
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(abstract_token("foo"), "ID");
        assert_eq!(abstract_token("len"), "len");
        assert_eq!(abstract_token("17"), "NUM");
        assert_eq!(abstract_token("1"), "1");
        assert_eq!(abstract_token("'x'"), "STR");
    }
}
