//! Writes `schemas/json/<kind>.schema.json` for every record kind.
//!
//! ```text
//! cargo run -p schemas --example write-json-schemas
//! ```

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    std::fs::create_dir_all(&dir)?;
    for (kind, schema) in schemas::json_schema::all() {
        let path = dir.join(schemas::json_schema::file_name(kind));
        std::fs::write(&path, schemas::json_schema::render(&schema))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
