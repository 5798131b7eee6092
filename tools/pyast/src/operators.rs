//! Bug operators: edits on the syntax tree whose exact inverse is the gold patch.
//!
//! Each operator looks at one node and proposes zero or more [`Edit`]s, one per
//! alternative (`<` gives `<=` and `>`). Statement removals and rewrites stay
//! inside functions, where a bug breaks behaviour rather than the import.

use std::collections::BTreeMap;

use tree_sitter::Node;

use crate::{Edit, Module, enclosing_function};

/// A bug operator: a named edit on one kind of node.
pub struct Operator {
    /// Kebab-case id used in Task provenance, e.g. `cmp-swap`.
    pub id: &'static str,
    /// What it does, in words.
    pub name: &'static str,
    /// The family of bugs it belongs to (`operator`, `constant`, `control-flow`,
    /// `statement`, `data-flow`, `class`).
    pub family: &'static str,
    apply: fn(&Module, Node) -> Vec<Edit>,
}

impl Operator {
    /// The edits this operator proposes at `node` (none when it does not apply).
    pub fn apply(&self, module: &Module, node: Node) -> Vec<Edit> {
        (self.apply)(module, node)
    }
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

/// Every operator, in a fixed order.
pub static ALL: [Operator; 18] = [
    Operator {
        id: "cmp-swap",
        name: "comparison operator swap",
        family: "operator",
        apply: cmp_swap,
    },
    Operator {
        id: "arith-swap",
        name: "arithmetic operator swap",
        family: "operator",
        apply: arith_swap,
    },
    Operator {
        id: "bool-swap",
        name: "boolean and/or swap",
        family: "operator",
        apply: bool_swap,
    },
    Operator {
        id: "negate-remove",
        name: "removed negation",
        family: "operator",
        apply: negate_remove,
    },
    Operator {
        id: "negate-insert",
        name: "negated condition",
        family: "operator",
        apply: negate_insert,
    },
    Operator {
        id: "off-by-one",
        name: "integer constant or bound off by one",
        family: "constant",
        apply: off_by_one,
    },
    Operator {
        id: "const-change",
        name: "changed constant (True/False/None)",
        family: "constant",
        apply: const_change,
    },
    Operator {
        id: "default-change",
        name: "changed default argument",
        family: "constant",
        apply: default_change,
    },
    Operator {
        id: "if-remove-cond",
        name: "removed if condition (body kept or dropped)",
        family: "control-flow",
        apply: if_remove_cond,
    },
    Operator {
        id: "if-invert",
        name: "swapped if/else branches",
        family: "control-flow",
        apply: if_invert,
    },
    Operator {
        id: "loop-remove",
        name: "removed loop",
        family: "control-flow",
        apply: loop_remove,
    },
    Operator {
        id: "return-remove",
        name: "removed return value",
        family: "control-flow",
        apply: return_remove,
    },
    Operator {
        id: "assign-remove",
        name: "removed assignment",
        family: "statement",
        apply: assign_remove,
    },
    Operator {
        id: "call-remove",
        name: "removed call statement or chained call",
        family: "statement",
        apply: call_remove,
    },
    Operator {
        id: "stmt-swap",
        name: "swapped adjacent simple statements",
        family: "statement",
        apply: stmt_swap,
    },
    Operator {
        id: "args-swap",
        name: "swapped call arguments",
        family: "data-flow",
        apply: args_swap,
    },
    Operator {
        id: "var-misuse",
        name: "variable misuse (another local of the function)",
        family: "data-flow",
        apply: var_misuse,
    },
    Operator {
        id: "super-remove",
        name: "removed super() call or base class",
        family: "class",
        apply: super_remove,
    },
];

/// Repair templates that are not bug operators: they widen the solver's candidate edits
/// beyond the exact inverses of [`ALL`] (task-gen never injects them).
pub static REPAIR_ONLY: [Operator; 1] = [Operator {
    id: "var-replace",
    name: "variable read replaced by any other local of the function",
    family: "data-flow",
    apply: var_replace,
}];

/// The operator (or repair-only template) with id `id`.
pub fn by_id(id: &str) -> Option<&'static Operator> {
    ALL.iter().chain(&REPAIR_ONLY).find(|op| op.id == id)
}

/// Every template the solver proposes repairs with: the bug operators (each is its own
/// family's inverse) and [`REPAIR_ONLY`].
pub fn repair_templates() -> Vec<&'static Operator> {
    ALL.iter().chain(&REPAIR_ONLY).collect()
}

/// Every operator, as references.
pub fn all() -> Vec<&'static Operator> {
    ALL.iter().collect()
}

fn is_child(parent: Node, field: &str, node: Node) -> bool {
    parent.child_by_field_name(field) == Some(node)
}

fn in_function(node: Node) -> bool {
    enclosing_function(node).is_some()
}

fn has_ancestor(node: Node, kinds: &[&str]) -> bool {
    let mut cur = node.parent();
    while let Some(n) = cur {
        if kinds.contains(&n.kind()) {
            return true;
        }
        cur = n.parent();
    }
    false
}

/// Replace each token child of `node` found in `table` by its alternatives.
fn swap_tokens(node: Node, table: &[(&str, &[&str])]) -> Vec<Edit> {
    let mut out = Vec::new();
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.is_named() {
            continue;
        }
        if let Some((_, alts)) = table.iter().find(|(k, _)| *k == child.kind()) {
            out.extend(
                alts.iter()
                    .map(|alt| Edit::new(child.start_byte(), child.end_byte(), *alt)),
            );
        }
    }
    out
}

fn cmp_swap(_: &Module, node: Node) -> Vec<Edit> {
    if node.kind() != "comparison_operator" {
        return vec![];
    }
    swap_tokens(
        node,
        &[
            ("<", &["<=", ">"]),
            ("<=", &["<", ">="]),
            (">", &[">=", "<"]),
            (">=", &[">", "<="]),
            ("==", &["!="]),
            ("!=", &["=="]),
            ("in", &["not in"]),
            ("not in", &["in"]),
            ("is", &["is not"]),
            ("is not", &["is"]),
        ],
    )
}

fn arith_swap(_: &Module, node: Node) -> Vec<Edit> {
    match node.kind() {
        "binary_operator" => swap_tokens(
            node,
            &[
                ("+", &["-"]),
                ("-", &["+"]),
                ("*", &["/"]),
                ("/", &["*", "//"]),
                ("//", &["/"]),
                ("%", &["//"]),
                ("**", &["*"]),
                ("<<", &[">>"]),
                (">>", &["<<"]),
                ("&", &["|"]),
                ("|", &["&"]),
            ],
        ),
        "augmented_assignment" => swap_tokens(node, &[("+=", &["-="]), ("-=", &["+="])]),
        _ => vec![],
    }
}

fn bool_swap(_: &Module, node: Node) -> Vec<Edit> {
    if node.kind() != "boolean_operator" {
        return vec![];
    }
    swap_tokens(node, &[("and", &["or"]), ("or", &["and"])])
}

fn negate_remove(module: &Module, node: Node) -> Vec<Edit> {
    if node.kind() != "not_operator" {
        return vec![];
    }
    let Some(arg) = node.child_by_field_name("argument") else {
        return vec![];
    };
    vec![Edit::new(
        node.start_byte(),
        node.end_byte(),
        module.text(arg),
    )]
}

fn negate_insert(module: &Module, node: Node) -> Vec<Edit> {
    if !matches!(
        node.kind(),
        "if_statement" | "elif_clause" | "while_statement"
    ) {
        return vec![];
    }
    let Some(cond) = node.child_by_field_name("condition") else {
        return vec![];
    };
    if cond.kind() == "not_operator" {
        return vec![];
    }
    let text = module.text(cond);
    let negated = match cond.kind() {
        "identifier" | "call" | "attribute" | "subscript" | "parenthesized_expression" => {
            format!("not {text}")
        }
        _ => format!("not ({text})"),
    };
    vec![Edit::new(cond.start_byte(), cond.end_byte(), negated)]
}

fn is_default_value(node: Node) -> bool {
    has_ancestor(node, &["default_parameter", "typed_default_parameter"])
}

/// `expr + 1` and `expr - 1` for a bound that is not a literal.
fn shift_expr(module: &Module, node: Node) -> Vec<Edit> {
    if !matches!(
        node.kind(),
        "identifier" | "attribute" | "call" | "subscript"
    ) {
        return vec![];
    }
    let text = module.text(node);
    ["+", "-"]
        .iter()
        .map(|op| Edit::new(node.start_byte(), node.end_byte(), format!("{text} {op} 1")))
        .collect()
}

fn off_by_one(module: &Module, node: Node) -> Vec<Edit> {
    match node.kind() {
        "integer" if !is_default_value(node) => {
            let Ok(n) = module.text(node).parse::<u64>() else {
                return vec![];
            };
            let mut alts = vec![n + 1];
            if n > 0 {
                alts.push(n - 1);
            }
            alts.into_iter()
                .map(|m| Edit::new(node.start_byte(), node.end_byte(), m.to_string()))
                .collect()
        }
        "slice" => {
            let mut cursor = node.walk();
            let children: Vec<Node> = node.named_children(&mut cursor).collect();
            children
                .into_iter()
                .flat_map(|c| shift_expr(module, c))
                .collect()
        }
        "call" => {
            let (Some(func), Some(args)) = (
                node.child_by_field_name("function"),
                node.child_by_field_name("arguments"),
            ) else {
                return vec![];
            };
            if module.text(func) != "range" || args.kind() != "argument_list" {
                return vec![];
            }
            let mut cursor = args.walk();
            let children: Vec<Node> = args.named_children(&mut cursor).collect();
            children
                .into_iter()
                .take(2)
                .flat_map(|c| shift_expr(module, c))
                .collect()
        }
        _ => vec![],
    }
}

fn const_change(_: &Module, node: Node) -> Vec<Edit> {
    let alt = match node.kind() {
        "true" => "False",
        "false" => "True",
        "none" => "False",
        _ => return vec![],
    };
    if is_default_value(node) || has_ancestor(node, &["type"]) {
        return vec![];
    }
    vec![Edit::new(node.start_byte(), node.end_byte(), alt)]
}

fn default_change(module: &Module, node: Node) -> Vec<Edit> {
    if !matches!(node.kind(), "default_parameter" | "typed_default_parameter") {
        return vec![];
    }
    let Some(value) = node.child_by_field_name("value") else {
        return vec![];
    };
    let text = module.text(value);
    let alts: Vec<String> = match value.kind() {
        "true" => vec!["False".into()],
        "false" => vec!["True".into()],
        "integer" => match text.parse::<u64>() {
            Ok(0) => vec!["1".into()],
            Ok(n) => vec![(n + 1).to_string(), (n - 1).to_string()],
            Err(_) => vec![],
        },
        "string" if text.len() > 2 && (text.starts_with('"') || text.starts_with('\'')) => {
            vec!["''".into()]
        }
        _ => vec![],
    };
    alts.into_iter()
        .map(|alt| Edit::new(value.start_byte(), value.end_byte(), alt))
        .collect()
}

/// Byte offset where the line of `byte` starts.
fn line_start(src: &str, byte: usize) -> usize {
    src[..byte].rfind('\n').map_or(0, |i| i + 1)
}

/// Byte offset of the newline that ends the line of `byte` (or the end of file).
fn line_end(src: &str, byte: usize) -> usize {
    src[byte..].find('\n').map_or(src.len(), |i| byte + i)
}

fn named_statements(parent: Node) -> Vec<Node> {
    let mut cursor = parent.walk();
    parent
        .named_children(&mut cursor)
        .filter(|c| c.kind() != "comment")
        .collect()
}

/// Removes a statement: its whole lines, or `pass` when it is alone in its block.
fn remove_statement(module: &Module, node: Node) -> Option<Edit> {
    let parent = node.parent()?;
    if !matches!(parent.kind(), "block" | "module") {
        return None;
    }
    if named_statements(parent).len() == 1 {
        return Some(Edit::new(node.start_byte(), node.end_byte(), "pass"));
    }
    let src = module.source();
    let start = line_start(src, node.start_byte());
    let end = line_end(src, node.end_byte());
    let after = src[node.end_byte()..end].trim();
    if !src[start..node.start_byte()].trim().is_empty()
        || !(after.is_empty() || after.starts_with('#'))
    {
        return None;
    }
    Some(Edit::new(start, (end + 1).min(src.len()), ""))
}

/// The body of `block` moved to the indentation of `stmt`, or None when a line
/// (inside a multi-line string, say) does not carry the block's indentation.
fn dedent_block(module: &Module, stmt: Node, block: Node) -> Option<String> {
    let src = module.source();
    let stmt_prefix = &src[line_start(src, stmt.start_byte())..stmt.start_byte()];
    let body_start = line_start(src, block.start_byte());
    let body_prefix = &src[body_start..block.start_byte()];
    if block.start_position().row == stmt.start_position().row
        || !body_prefix.trim().is_empty()
        || !stmt_prefix.trim().is_empty()
    {
        return None;
    }
    let mut out = String::new();
    for line in src[body_start..block.end_byte()].split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(line);
        } else {
            out.push_str(stmt_prefix);
            out.push_str(line.strip_prefix(body_prefix)?);
        }
    }
    Some(out[stmt_prefix.len()..].to_string())
}

fn if_remove_cond(module: &Module, node: Node) -> Vec<Edit> {
    if node.kind() != "if_statement"
        || node.child_by_field_name("alternative").is_some()
        || !in_function(node)
    {
        return vec![];
    }
    let Some(block) = node.child_by_field_name("consequence") else {
        return vec![];
    };
    let kept = dedent_block(module, node, block)
        .map(|body| Edit::new(node.start_byte(), block.end_byte(), body));
    kept.into_iter()
        .chain(remove_statement(module, node))
        .collect()
}

/// Swaps the text of `a` and `b`, keeping what lies between.
fn swap(module: &Module, a: Node, b: Node) -> Option<Edit> {
    let (ta, tb) = (module.text(a), module.text(b));
    if ta == tb {
        return None;
    }
    let between = &module.source()[a.end_byte()..b.start_byte()];
    Some(Edit::new(
        a.start_byte(),
        b.end_byte(),
        format!("{tb}{between}{ta}"),
    ))
}

fn if_invert(module: &Module, node: Node) -> Vec<Edit> {
    match node.kind() {
        "if_statement" => {
            let mut cursor = node.walk();
            let alts: Vec<Node> = node
                .children_by_field_name("alternative", &mut cursor)
                .collect();
            let ([els], Some(cons)) = (alts.as_slice(), node.child_by_field_name("consequence"))
            else {
                return vec![];
            };
            let Some(body) = els.child_by_field_name("body") else {
                return vec![];
            };
            if els.kind() != "else_clause"
                || cons.start_position().row == node.start_position().row
                || body.start_position().row == els.start_position().row
                || cons.start_position().column != body.start_position().column
            {
                return vec![];
            }
            swap(module, cons, body).into_iter().collect()
        }
        "conditional_expression" => {
            let mut cursor = node.walk();
            let parts: Vec<Node> = node.named_children(&mut cursor).collect();
            match parts.as_slice() {
                [a, _, b] => swap(module, *a, *b).into_iter().collect(),
                _ => vec![],
            }
        }
        _ => vec![],
    }
}

fn loop_remove(module: &Module, node: Node) -> Vec<Edit> {
    if !matches!(node.kind(), "for_statement" | "while_statement") || !in_function(node) {
        return vec![];
    }
    remove_statement(module, node).into_iter().collect()
}

fn return_remove(_: &Module, node: Node) -> Vec<Edit> {
    if node.kind() != "return_statement" || node.named_child_count() == 0 {
        return vec![];
    }
    vec![Edit::new(node.start_byte(), node.end_byte(), "return")]
}

/// The single named child of an expression statement.
fn statement_expr(node: Node) -> Option<Node> {
    if node.kind() != "expression_statement" || node.named_child_count() != 1 {
        return None;
    }
    node.named_child(0)
}

fn assign_remove(module: &Module, node: Node) -> Vec<Edit> {
    let Some(expr) = statement_expr(node) else {
        return vec![];
    };
    let is_assignment = match expr.kind() {
        "assignment" => expr.child_by_field_name("right").is_some(),
        "augmented_assignment" => true,
        _ => false,
    };
    if !is_assignment || !in_function(node) {
        return vec![];
    }
    remove_statement(module, node).into_iter().collect()
}

fn is_super_call(module: &Module, expr: Node) -> bool {
    module.text(expr).starts_with("super(")
}

fn call_remove(module: &Module, node: Node) -> Vec<Edit> {
    if let Some(expr) = statement_expr(node) {
        let call = if expr.kind() == "await" {
            expr.named_child(0)
        } else {
            Some(expr)
        };
        if call.is_some_and(|c| c.kind() == "call")
            && in_function(node)
            && !is_super_call(module, expr)
        {
            return remove_statement(module, node).into_iter().collect();
        }
        return vec![];
    }
    if node.kind() == "call" {
        let inner = node
            .child_by_field_name("function")
            .filter(|f| f.kind() == "attribute")
            .and_then(|f| f.child_by_field_name("object"))
            .filter(|o| o.kind() == "call");
        if let Some(inner) = inner {
            return vec![Edit::new(
                node.start_byte(),
                node.end_byte(),
                module.text(inner),
            )];
        }
    }
    vec![]
}

fn is_simple_statement(node: Node) -> bool {
    statement_expr(node).is_some_and(|e| {
        matches!(
            e.kind(),
            "assignment" | "augmented_assignment" | "call" | "await"
        )
    })
}

/// Adjacent simple statements (assignments, calls) of one block, each on its
/// own lines, swapped. Whether the order matters is for the tests to tell.
fn stmt_swap(module: &Module, node: Node) -> Vec<Edit> {
    if !is_simple_statement(node) || !in_function(node) {
        return vec![];
    }
    let Some(next) = node.next_named_sibling() else {
        return vec![];
    };
    if !is_simple_statement(next) || next.start_position().row <= node.end_position().row {
        return vec![];
    }
    let src = module.source();
    if !src[line_start(src, node.start_byte())..node.start_byte()]
        .trim()
        .is_empty()
    {
        return vec![];
    }
    swap(module, node, next).into_iter().collect()
}

fn positional_args(args: Node) -> Vec<Node> {
    let mut cursor = args.walk();
    args.named_children(&mut cursor)
        .filter(|c| c.kind() != "comment")
        .collect()
}

fn args_swap(module: &Module, node: Node) -> Vec<Edit> {
    if node.kind() != "call" {
        return vec![];
    }
    let Some(args) = node
        .child_by_field_name("arguments")
        .filter(|a| a.kind() == "argument_list")
    else {
        return vec![];
    };
    let children = positional_args(args);
    let positional = |n: &Node| {
        !matches!(
            n.kind(),
            "keyword_argument" | "list_splat" | "dictionary_splat" | "parenthesized_list_splat"
        )
    };
    children
        .windows(2)
        .filter(|w| positional(&w[0]) && positional(&w[1]))
        .filter_map(|w| swap(module, w[0], w[1]))
        .collect()
}

/// The names bound in a function, with the byte offset of each one's first binding.
pub(crate) type BoundNames = BTreeMap<String, usize>;

/// [`bound_names`] of `func`, computed once per module.
fn bound_names_cached(module: &Module, func: Node) -> std::sync::Arc<BoundNames> {
    let key = (func.start_byte(), func.end_byte());
    let mut cache = module
        .bound_names
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| std::sync::Arc::new(bound_names(module, func)))
        .clone()
}

/// Names bound in `func` (parameters, assignment and loop targets), with the
/// byte offset of their first binding; nested definitions are not entered.
fn bound_names(module: &Module, func: Node) -> BoundNames {
    let mut names = BTreeMap::new();
    let bind = |n: Node, names: &mut BTreeMap<String, usize>| {
        let mut targets = vec![n];
        while let Some(t) = targets.pop() {
            match t.kind() {
                "identifier" => {
                    names
                        .entry(module.text(t).to_string())
                        .or_insert(t.start_byte());
                }
                "pattern_list"
                | "tuple_pattern"
                | "list_pattern"
                | "tuple"
                | "list"
                | "list_splat_pattern"
                | "dictionary_splat_pattern"
                | "typed_parameter" => {
                    let mut cursor = t.walk();
                    targets.extend(t.named_children(&mut cursor));
                }
                "default_parameter" | "typed_default_parameter" => {
                    targets.extend(t.child_by_field_name("name"));
                }
                _ => {}
            }
        }
    };
    if let Some(params) = func.child_by_field_name("parameters") {
        let mut cursor = params.walk();
        for p in params.named_children(&mut cursor) {
            bind(p, &mut names);
        }
    }
    let mut stack: Vec<Node> = func.child_by_field_name("body").into_iter().collect();
    while let Some(n) = stack.pop() {
        match n.kind() {
            "function_definition" | "class_definition" | "lambda" => continue,
            "assignment" | "augmented_assignment" | "for_statement" | "for_in_clause" => {
                if let Some(left) = n.child_by_field_name("left") {
                    bind(left, &mut names);
                }
            }
            _ => {}
        }
        let mut cursor = n.walk();
        stack.extend(n.named_children(&mut cursor));
    }
    names.remove("self");
    names.remove("cls");
    names
}

/// Whether identifier `node` is read (not bound, not an attribute or keyword name).
fn is_read(node: Node) -> bool {
    let Some(parent) = node.parent() else {
        return false;
    };
    match parent.kind() {
        "binary_operator"
        | "comparison_operator"
        | "boolean_operator"
        | "not_operator"
        | "unary_operator"
        | "argument_list"
        | "return_statement"
        | "parenthesized_expression"
        | "conditional_expression"
        | "subscript"
        | "list"
        | "set"
        | "pair" => true,
        "attribute" => is_child(parent, "object", node),
        "keyword_argument" => is_child(parent, "value", node),
        "assignment" | "augmented_assignment" | "for_statement" => is_child(parent, "right", node),
        "if_statement" | "elif_clause" | "while_statement" => is_child(parent, "condition", node),
        _ => false,
    }
}

/// For a read of a local variable: its name and every name bound in its function.
fn local_read<'m>(module: &'m Module, node: Node) -> Option<(&'m str, std::sync::Arc<BoundNames>)> {
    if node.kind() != "identifier" || !is_read(node) {
        return None;
    }
    let func = enclosing_function(node)?;
    let name = module.text(node);
    let names = bound_names_cached(module, func);
    names.contains_key(name).then_some((name, names))
}

fn var_misuse(module: &Module, node: Node) -> Vec<Edit> {
    let Some((name, names)) = local_read(module, node) else {
        return vec![];
    };
    // The two other locals bound before the use's line, nearest first.
    let before = line_start(module.source(), node.start_byte());
    let mut others: Vec<(usize, &String)> = names
        .iter()
        .filter(|(n, at)| n.as_str() != name && **at < before)
        .map(|(n, &at)| (at.abs_diff(node.start_byte()), n))
        .collect();
    others.sort();
    others
        .into_iter()
        .take(2)
        .map(|(_, other)| Edit::new(node.start_byte(), node.end_byte(), other.clone()))
        .collect()
}

/// The repair side of [`var_misuse`]: a read of a local may be any other local of the
/// function, wherever it is bound (the bug operator draws only the two bound nearest before
/// the read, so its inverse cannot reach a variable bound further away or later).
fn var_replace(module: &Module, node: Node) -> Vec<Edit> {
    let Some((name, names)) = local_read(module, node) else {
        return vec![];
    };
    names
        .keys()
        .filter(|other| other.as_str() != name)
        .map(|other| Edit::new(node.start_byte(), node.end_byte(), other.clone()))
        .collect()
}

fn super_remove(module: &Module, node: Node) -> Vec<Edit> {
    if let Some(expr) = statement_expr(node) {
        if is_super_call(module, expr) {
            return remove_statement(module, node).into_iter().collect();
        }
        return vec![];
    }
    if node.kind() != "class_definition" {
        return vec![];
    }
    let Some(args) = node.child_by_field_name("superclasses") else {
        return vec![];
    };
    let all = positional_args(args);
    let bases: Vec<Node> = all
        .iter()
        .copied()
        .filter(|n| n.kind() != "keyword_argument" && module.text(*n) != "object")
        .collect();
    if all.len() == 1 && bases.len() == 1 {
        return vec![Edit::new(args.start_byte(), args.end_byte(), "")];
    }
    if all.len() < 2 {
        return vec![];
    }
    bases
        .iter()
        .filter_map(|base| {
            let i = all.iter().position(|n| n == base)?;
            Some(match all.get(i + 1) {
                Some(next) => Edit::new(base.start_byte(), next.start_byte(), ""),
                None => Edit::new(all[i - 1].end_byte(), base.end_byte(), ""),
            })
        })
        .collect()
}
