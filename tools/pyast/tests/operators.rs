//! Each operator on a small function: the buggy texts it proposes, all parsing.

use pyast::{Construct, Module, operators};

/// The buggy sources `op` makes from `src`, in site order; every one must parse.
fn bugs(op: &str, src: &str) -> Vec<String> {
    let module = Module::parse(src).unwrap();
    let op = operators::by_id(op).unwrap();
    let mut out = Vec::new();
    for site in module.sites(&[op]) {
        for edit in &site.edits {
            if module.parses_after(edit) {
                let buggy = module.apply(edit);
                assert!(pyast::parses(&buggy), "{buggy}");
                out.push(buggy);
            }
        }
    }
    out
}

fn body(lines: &[&str]) -> String {
    let mut s = String::from("def f(a, b=1, flag=True):\n");
    for line in lines {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

#[test]
fn the_repair_templates_reach_a_local_the_bug_operator_never_draws() {
    // `a` is read where `total` was meant; the bug operator would only ever have drawn the
    // two locals bound nearest before the read (`mid`, `last`), so its inverse cannot undo
    // a confusion with `total`.
    let src = body(&[
        "total = a + b",
        "first = total",
        "mid = first",
        "last = mid",
        "return a",
    ]);
    let module = Module::parse(src.clone()).unwrap();
    let read = src.rfind("return a").unwrap() + "return ".len();
    let proposals = |ops: &[&'static operators::Operator]| -> Vec<String> {
        module
            .sites(ops)
            .into_iter()
            .flat_map(|s| s.edits)
            .filter(|e| e.start == read)
            .map(|e| e.text)
            .collect()
    };
    let misuse = proposals(&[operators::by_id("var-misuse").unwrap()]);
    assert!(!misuse.contains(&"total".to_string()), "{misuse:?}");
    let repairs = proposals(&operators::repair_templates());
    for name in ["total", "first", "mid", "last", "b", "flag"] {
        assert!(repairs.contains(&name.to_string()), "{name}: {repairs:?}");
    }
    assert!(!operators::ALL.iter().any(|op| op.id == "var-replace"));
    assert_eq!(operators::by_id("var-replace").unwrap().family, "data-flow");
}

#[test]
fn every_operator_has_a_unique_kebab_case_id_and_a_family() {
    let mut ids: Vec<&str> = operators::ALL.iter().map(|op| op.id).collect();
    assert!(ids.len() >= 15);
    for op in &operators::ALL {
        assert!(op.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        assert!(!op.family.is_empty() && !op.name.is_empty());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), operators::ALL.len());
}

#[test]
fn cmp_swap_offers_both_neighbours_of_an_ordering() {
    let got = bugs("cmp-swap", &body(&["return a < b"]));
    assert_eq!(
        got,
        [body(&["return a <= b"]), body(&["return a > b"])].to_vec()
    );
    let got = bugs("cmp-swap", &body(&["return a not in b"]));
    assert_eq!(got, [body(&["return a in b"])].to_vec());
}

#[test]
fn arith_bool_and_negation_operators_swap_one_token() {
    assert_eq!(
        bugs("arith-swap", &body(&["return a + b"])),
        [body(&["return a - b"])].to_vec()
    );
    assert_eq!(
        bugs("arith-swap", &body(&["a += b"])),
        [body(&["a -= b"])].to_vec()
    );
    assert_eq!(
        bugs("bool-swap", &body(&["return a and b"])),
        [body(&["return a or b"])].to_vec()
    );
    assert_eq!(
        bugs("negate-remove", &body(&["return not a"])),
        [body(&["return a"])].to_vec()
    );
    assert_eq!(
        bugs("negate-insert", &body(&["if a > b:", "    return a"])),
        [body(&["if not (a > b):", "    return a"])].to_vec()
    );
}

#[test]
fn constant_operators_shift_integers_and_flip_literals() {
    assert_eq!(
        bugs("off-by-one", &body(&["return a[1:]"])),
        [body(&["return a[2:]"]), body(&["return a[0:]"])].to_vec()
    );
    assert_eq!(
        bugs("off-by-one", &body(&["return range(a)"])),
        [
            body(&["return range(a + 1)"]),
            body(&["return range(a - 1)"])
        ]
        .to_vec()
    );
    assert_eq!(
        bugs("const-change", &body(&["return None"])),
        [body(&["return False"])].to_vec()
    );
    // Defaults belong to default-change, not to the literal operators.
    let src = "def f(a, b=1, flag=True):\n    pass\n";
    assert!(bugs("off-by-one", src).is_empty());
    assert!(bugs("const-change", src).is_empty());
    assert_eq!(
        bugs("default-change", src),
        [
            "def f(a, b=2, flag=True):\n    pass\n",
            "def f(a, b=0, flag=True):\n    pass\n",
            "def f(a, b=1, flag=False):\n    pass\n",
        ]
        .to_vec()
    );
}

#[test]
fn if_remove_cond_keeps_the_body_dedented_or_drops_the_statement() {
    let src = body(&["if a:", "    b = 2", "    return b", "return a"]);
    assert_eq!(
        bugs("if-remove-cond", &src),
        [
            body(&["b = 2", "return b", "return a"]),
            body(&["return a"])
        ]
        .to_vec()
    );
}

#[test]
fn if_invert_swaps_the_branches() {
    let src = body(&["if a:", "    return 1", "else:", "    return 2"]);
    assert_eq!(
        bugs("if-invert", &src),
        [body(&["if a:", "    return 2", "else:", "    return 1"])].to_vec()
    );
    assert_eq!(
        bugs("if-invert", &body(&["return a if flag else b"])),
        [body(&["return b if flag else a"])].to_vec()
    );
}

#[test]
fn statement_removals_take_whole_lines_or_leave_pass() {
    let src = body(&["for x in a:", "    b(x)", "return b"]);
    assert_eq!(bugs("loop-remove", &src), [body(&["return b"])].to_vec());
    assert_eq!(
        bugs("call-remove", &src),
        [body(&["for x in a:", "    pass", "return b"])].to_vec()
    );
    assert_eq!(
        bugs("assign-remove", &body(&["a = b", "return a"])),
        [body(&["return a"])].to_vec()
    );
    assert_eq!(
        bugs("return-remove", &body(&["return a"])),
        [body(&["return"])].to_vec()
    );
    assert_eq!(
        bugs("call-remove", &body(&["return a.strip().lower()"])),
        [body(&["return a.strip()"])].to_vec()
    );
    // Module-level statements are left alone: removing them breaks the import.
    assert!(bugs("assign-remove", "a = 1\nb = 2\n").is_empty());
}

#[test]
fn stmt_swap_and_args_swap_exchange_neighbours() {
    assert_eq!(
        bugs("stmt-swap", &body(&["a = b", "b = 2", "return a"])),
        [body(&["b = 2", "a = b", "return a"])].to_vec()
    );
    assert_eq!(
        bugs("args-swap", &body(&["return g(a, b, key=1)"])),
        [body(&["return g(b, a, key=1)"])].to_vec()
    );
}

#[test]
fn var_misuse_replaces_a_read_with_another_local() {
    let got = bugs("var-misuse", &body(&["c = a", "return c"]));
    // `a` read in `c = a` and `c` read in `return c`; `c` on the left is a binding.
    assert!(got.contains(&body(&["c = b", "return c"])), "{got:?}");
    assert!(got.contains(&body(&["c = a", "return b"])), "{got:?}");
    // Never a name bound only on the same line or later.
    assert!(got.iter().all(|g| !g.contains("c = c")), "{got:?}");
}

#[test]
fn super_remove_drops_super_calls_and_base_classes() {
    let src =
        "class A(B, C):\n    def __init__(self):\n        super().__init__()\n        self.x = 1\n";
    assert_eq!(
        bugs("super-remove", src),
        [
            "class A(C):\n    def __init__(self):\n        super().__init__()\n        self.x = 1\n",
            "class A(B):\n    def __init__(self):\n        super().__init__()\n        self.x = 1\n",
            "class A(B, C):\n    def __init__(self):\n        self.x = 1\n",
        ]
        .to_vec()
    );
    assert_eq!(
        bugs("super-remove", "class A(B):\n    pass\n"),
        ["class A:\n    pass\n"].to_vec()
    );
}

#[test]
fn sites_carry_function_construct_and_depth() {
    let src = "class C:\n    def m(self, xs):\n        for x in xs:\n            if x < 1:\n                return x\n";
    let module = Module::parse(src).unwrap();
    let sites = module.sites(&[operators::by_id("cmp-swap").unwrap()]);
    assert_eq!(sites.len(), 1);
    let f = sites[0].features(&module);
    assert_eq!(f.function.as_deref(), Some("C.m"));
    assert_eq!(f.function_lines, Some(4));
    assert_eq!(f.construct, Construct::Condition);
    assert_eq!(f.depth, 2);
    assert_eq!(f.line, 4);
    assert_eq!(f.operand_kinds, ["identifier", "integer"]);
    let defs = module.definitions();
    assert_eq!(
        defs.iter().map(|d| d.qualname.as_str()).collect::<Vec<_>>(),
        ["C", "C.m"]
    );
}

#[test]
fn a_file_with_a_syntax_error_is_refused() {
    assert!(Module::parse("def f(:\n    pass\n").is_err());
    assert!(!pyast::parses("x = (1,\n"));
}
