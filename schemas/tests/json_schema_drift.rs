//! The checked-in JSON Schemas must be exactly what the Rust types generate.

use std::path::Path;

#[test]
fn checked_in_json_schemas_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let mut stale = Vec::new();
    for (kind, schema) in schemas::json_schema::all() {
        let path = dir.join(schemas::json_schema::file_name(kind));
        let expected = schemas::json_schema::render(&schema);
        match std::fs::read_to_string(&path) {
            Ok(actual) if actual == expected => {}
            Ok(_) => stale.push(format!("{} differs from the types", path.display())),
            Err(err) => stale.push(format!("{}: {err}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "JSON Schemas drifted from the Rust types; run `just schemas` and commit:\n{}",
        stale.join("\n")
    );
}

#[test]
fn no_stray_schema_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let known: Vec<String> = schemas::KINDS
        .iter()
        .map(|kind| schemas::json_schema::file_name(kind))
        .collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            known.contains(&name),
            "{name} in {} is no record kind",
            dir.display()
        );
    }
}
