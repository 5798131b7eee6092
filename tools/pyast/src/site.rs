//! Sites: the nodes an operator edits, and the features skills match on.

use tree_sitter::Node;

use crate::operators::Operator;
use crate::{Edit, Module, enclosing_function, qualname};

/// A node that an operator can edit, with one edit per alternative.
#[derive(Clone)]
pub struct Site<'m> {
    pub node: Node<'m>,
    pub operator: &'static Operator,
    pub edits: Vec<Edit>,
}

/// The nearest construct around a site that shapes what its bug does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Construct {
    Loop,
    Condition,
    Return,
    Call,
    Comprehension,
    None,
}

impl Construct {
    pub fn as_str(self) -> &'static str {
        match self {
            Construct::Loop => "loop",
            Construct::Condition => "condition",
            Construct::Return => "return",
            Construct::Call => "call",
            Construct::Comprehension => "comprehension",
            Construct::None => "none",
        }
    }
}

/// What skills match on: where a site is and what it looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// tree-sitter node kind of the edited node.
    pub node_kind: String,
    /// 1-based first and last line of the node.
    pub line: usize,
    pub end_line: usize,
    /// The nearest enclosing construct (the node itself counts).
    pub construct: Construct,
    /// Kinds of the node's named children (operands of an operator, arguments…).
    pub operand_kinds: Vec<String>,
    /// Number of enclosing compound statements (`if`, `for`, `while`, `with`,
    /// `try`, the node itself included) inside its function.
    pub depth: usize,
    /// Qualified name of the enclosing function, e.g. `Cache.pop`.
    pub function: Option<String>,
    /// Lines of the enclosing function.
    pub function_lines: Option<usize>,
    /// 1-based first line of the statement around the node (the node's own line
    /// for a statement): where Python reports a multi-line statement as run.
    pub statement_line: usize,
    /// How many tests of the repository's suite execute the site, from the line map
    /// of the validate stage (`task-validate --line-maps`); `None` without one.
    pub tests_reaching: Option<usize>,
}

fn construct_of(node: Node) -> Option<Construct> {
    Some(match node.kind() {
        "for_statement" | "while_statement" => Construct::Loop,
        "if_statement" | "elif_clause" | "conditional_expression" => Construct::Condition,
        "return_statement" => Construct::Return,
        "call" => Construct::Call,
        "list_comprehension"
        | "set_comprehension"
        | "dictionary_comprehension"
        | "generator_expression" => Construct::Comprehension,
        "function_definition" | "class_definition" | "module" => Construct::None,
        _ => return None,
    })
}

impl Site<'_> {
    /// The features of this site in `module`.
    pub fn features(&self, module: &Module) -> Features {
        features(module, self.node)
    }
}

/// The features of `node` in `module`.
pub fn features(module: &Module, node: Node) -> Features {
    let mut construct = None;
    let mut depth: usize = 0;
    let mut cur = Some(node);
    while let Some(n) = cur {
        if construct.is_none() {
            construct = construct_of(n);
        }
        if n.kind() == "function_definition" {
            break;
        }
        if matches!(
            n.kind(),
            "if_statement"
                | "for_statement"
                | "while_statement"
                | "with_statement"
                | "try_statement"
        ) {
            depth += 1;
        }
        cur = n.parent();
    }
    let function = enclosing_function(node);
    let statement = std::iter::successors(Some(node), |n| n.parent())
        .find(|n| n.kind().ends_with("_statement") || n.kind().ends_with("_definition"))
        .unwrap_or(node);
    let mut cursor = node.walk();
    Features {
        node_kind: node.kind().to_string(),
        line: node.start_position().row + 1,
        end_line: node.end_position().row + 1,
        construct: construct.unwrap_or(Construct::None),
        operand_kinds: node
            .named_children(&mut cursor)
            .map(|c| c.kind().to_string())
            .collect(),
        depth,
        function: function.and_then(|f| qualname(module, f)),
        function_lines: function.map(|f| f.end_position().row - f.start_position().row + 1),
        statement_line: statement.start_position().row + 1,
        tests_reaching: None,
    }
}
