//! Python syntax trees for socratic-swe, built on `tree-sitter-python`.
//!
//! [`Module`] parses one source file and lists its [`Definition`]s (functions and
//! classes with their spans) and its bug [`Site`]s: nodes that a bug
//! [`Operator`](operators::Operator) can edit, each with the features that skills
//! match on. An operator turns a site into one [`Edit`] per alternative; the
//! buggy file is the source with the edit applied, and the gold patch is its
//! exact inverse.
//!
//! ```
//! use pyast::{Module, operators};
//!
//! let module = Module::parse("def f(a, b):\n    return a < b\n").unwrap();
//! let cmp = operators::by_id("cmp-swap").unwrap();
//! let edits: Vec<_> = module
//!     .sites(&[cmp])
//!     .into_iter()
//!     .flat_map(|site| site.edits)
//!     .collect();
//! let buggy: Vec<String> = edits.iter().map(|e| module.apply(e)).collect();
//! assert_eq!(buggy[0], "def f(a, b):\n    return a <= b\n");
//! assert!(edits.iter().all(|e| module.parses_after(e)));
//! ```

use tree_sitter::{InputEdit, Node, Parser, Point, Tree};

pub mod condition;
pub mod files;
pub mod operators;
mod site;

pub use site::{Construct, Features, Site, features};

/// Why a source file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("tree-sitter could not parse the file")]
    Failed,
    #[error("syntax error at line {line}")]
    Syntax { line: usize },
}

/// One replacement of a byte range of a source file: the bug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edit {
    /// First byte replaced.
    pub start: usize,
    /// One past the last byte replaced.
    pub end: usize,
    /// The replacement text.
    pub text: String,
}

impl Edit {
    pub fn new(start: usize, end: usize, text: impl Into<String>) -> Edit {
        Edit {
            start,
            end,
            text: text.into(),
        }
    }
}

/// A function or class definition with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Dotted name through enclosing classes and functions, e.g. `Cache.pop`.
    pub qualname: String,
    /// `function` or `class`.
    pub kind: &'static str,
    /// 1-based first and last line.
    pub start_line: usize,
    pub end_line: usize,
    pub start_byte: usize,
    pub end_byte: usize,
}

/// A parsed Python source file without syntax errors.
pub struct Module {
    source: String,
    tree: Tree,
    /// The names bound in each function, by the function's byte span: every read of a local
    /// asks for its function's, which is a walk of the whole function.
    bound_names: std::sync::Mutex<
        std::collections::HashMap<(usize, usize), std::sync::Arc<operators::BoundNames>>,
    >,
}

fn parser() -> Parser {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("the Python grammar matches the tree-sitter version");
    parser
}

/// The 1-based line of the first ERROR or MISSING node under `node`.
fn first_error(node: Node) -> Option<usize> {
    if node.is_error() || node.is_missing() {
        return Some(node.start_position().row + 1);
    }
    if !node.has_error() {
        return None;
    }
    let mut cursor = node.walk();
    node.children(&mut cursor).find_map(first_error)
}

/// Whether `source` parses as Python without ERROR or MISSING nodes.
pub fn parses(source: &str) -> bool {
    parser()
        .parse(source, None)
        .is_some_and(|tree| !tree.root_node().has_error())
}

fn point_at(source: &str, byte: usize) -> Point {
    let before = &source.as_bytes()[..byte];
    let row = before.iter().filter(|&&b| b == b'\n').count();
    let column = byte
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
    Point { row, column }
}

impl Module {
    /// Parses `source`; a file with syntax errors is refused.
    pub fn parse(source: impl Into<String>) -> Result<Module, ParseError> {
        let source = source.into();
        let tree = parser().parse(&source, None).ok_or(ParseError::Failed)?;
        if let Some(line) = first_error(tree.root_node()) {
            return Err(ParseError::Syntax { line });
        }
        Ok(Module {
            source,
            tree,
            bound_names: Default::default(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn root(&self) -> Node<'_> {
        self.tree.root_node()
    }

    /// The source text of `node`.
    pub fn text(&self, node: Node) -> &str {
        &self.source[node.byte_range()]
    }

    /// The source with `edit` applied.
    pub fn apply(&self, edit: &Edit) -> String {
        let mut out = String::with_capacity(self.source.len() + edit.text.len());
        out.push_str(&self.source[..edit.start]);
        out.push_str(&edit.text);
        out.push_str(&self.source[edit.end..]);
        out
    }

    /// Whether the source with `edit` applied still parses without ERROR or
    /// MISSING nodes (reparsed incrementally from this module's tree).
    pub fn parses_after(&self, edit: &Edit) -> bool {
        let new = self.apply(edit);
        let mut tree = self.tree.clone();
        tree.edit(&InputEdit {
            start_byte: edit.start,
            old_end_byte: edit.end,
            new_end_byte: edit.start + edit.text.len(),
            start_position: point_at(&self.source, edit.start),
            old_end_position: point_at(&self.source, edit.end),
            new_end_position: point_at(&new, edit.start + edit.text.len()),
        });
        parser()
            .parse(&new, Some(&tree))
            .is_some_and(|tree| !tree.root_node().has_error())
    }

    /// Every function and class, outermost first, in source order.
    pub fn definitions(&self) -> Vec<Definition> {
        let mut out = Vec::new();
        let mut stack = vec![self.root()];
        while let Some(node) = stack.pop() {
            let kind = match node.kind() {
                "function_definition" => Some("function"),
                "class_definition" => Some("class"),
                _ => None,
            };
            if let Some(kind) = kind {
                out.push(Definition {
                    qualname: qualname(self, node).unwrap_or_default(),
                    kind,
                    start_line: node.start_position().row + 1,
                    end_line: node.end_position().row + 1,
                    start_byte: node.start_byte(),
                    end_byte: node.end_byte(),
                });
            }
            let mut cursor = node.walk();
            let children: Vec<Node> = node.named_children(&mut cursor).collect();
            stack.extend(children.into_iter().rev());
        }
        out
    }

    /// Every site that one of `operators` can edit, in source order, with the
    /// edits each operator proposes there. Edits are not yet checked to parse:
    /// see [`Module::parses_after`].
    pub fn sites<'m>(&'m self, operators: &[&'static operators::Operator]) -> Vec<Site<'m>> {
        self.sites_in(operators, 0..self.source.len())
    }

    /// [`Module::sites`] restricted to nodes that overlap the byte range `bytes`
    /// (subtrees outside it are not visited).
    pub fn sites_in<'m>(
        &'m self,
        operators: &[&'static operators::Operator],
        bytes: std::ops::Range<usize>,
    ) -> Vec<Site<'m>> {
        let mut out = Vec::new();
        let mut cursor = self.tree.walk();
        'walk: loop {
            let node = cursor.node();
            let overlaps = node.start_byte() < bytes.end && bytes.start < node.end_byte()
                || node.start_byte() == node.end_byte();
            if overlaps && node.is_named() {
                for op in operators {
                    let edits = op.apply(self, node);
                    if !edits.is_empty() {
                        out.push(Site {
                            node,
                            operator: op,
                            edits,
                        });
                    }
                }
            }
            if overlaps && cursor.goto_first_child() {
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    continue 'walk;
                }
                if !cursor.goto_parent() {
                    break 'walk;
                }
            }
        }
        out
    }
}

/// The dotted name of a definition node through its enclosing definitions.
fn qualname(module: &Module, def: Node) -> Option<String> {
    let mut names = Vec::new();
    let mut node = Some(def);
    while let Some(n) = node {
        if matches!(n.kind(), "function_definition" | "class_definition") {
            names.push(module.text(n.child_by_field_name("name")?).to_string());
        }
        node = n.parent();
    }
    names.reverse();
    Some(names.join("."))
}

/// The innermost function definition around `node` (or `node` itself).
pub fn enclosing_function(node: Node) -> Option<Node> {
    let mut cur = Some(node);
    while let Some(n) = cur {
        if n.kind() == "function_definition" {
            return Some(n);
        }
        cur = n.parent();
    }
    None
}
