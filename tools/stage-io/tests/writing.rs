//! Output goes to its file whole or not at all.

use stage_io::output::{AtomicFile, Output, write_atomic};

#[test]
fn output_appears_only_when_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("round-1").join("tasks.jsonl");
    let mut out = Output::create(Some(&path)).unwrap();
    out.write_line(r#"{"a":1}"#).unwrap();
    assert!(!path.exists(), "visible before finish");
    out.finish().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
}

#[test]
fn an_abandoned_output_leaves_the_old_file_and_no_litter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.jsonl");
    std::fs::write(&path, "old\n").unwrap();
    {
        let mut out = Output::create(Some(&path)).unwrap();
        out.write_line(r#"{"new":true}"#).unwrap();
        // dropped: the stage failed
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["tasks.jsonl"]);
}

#[test]
fn atomic_files_are_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.md");
    write_atomic(&path, b"# report\n").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn an_uncommitted_atomic_file_is_removed() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut file = AtomicFile::create(&path).unwrap();
    file.write_all(b"half").unwrap();
    drop(file);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_output_that_is_not_a_regular_file_is_written_in_place_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    stage_io::output::write_atomic(&fifo, b"through the pipe\n").unwrap();
    let kind = std::fs::metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced by a {kind:?}");
    assert_eq!(reader.join().unwrap(), "through the pipe\n");
}
