//! Hostile candidates: bug patches whose code attacks the host. Each must be
//! rejected with a reason that names the violation or the limit it hit, within
//! its time limit, with the host unchanged, and the stage must go on with the
//! next candidate. Needs `just setup`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod common;

use common::workdir;

const REPO: &str = "inflection-0.5.1";
const FILE: &str = "inflection/__init__.py";
/// The first statement of `ordinal()`, which the tests call.
const ANCHOR: &str = "    number = abs(int(number))\n";

/// A unified diff of one changed region, as task-gen would write it.
fn diff(path: &str, old: &str, new: &str) -> String {
    patches::unified_diff(path, old, new)
}

fn candidate(id: &str, clean: &str, buggy: &str) -> Value {
    assert!(buggy != clean, "{id} changes nothing");
    json!({
        "schema": "task/1",
        "instance_id": format!("{REPO}.hostile.{id}"),
        "repo": REPO,
        "bug_patch": diff(FILE, clean, buggy),
        "gold_patch": diff(FILE, buggy, clean),
        "test_cmd": "pytest test_inflection.py -p no:cacheprovider -o pythonpath=.",
        "provenance": {"strategy": "hostile"}
    })
}

struct Sentinel {
    path: PathBuf,
    content: &'static str,
}

impl Sentinel {
    fn new(path: PathBuf) -> Sentinel {
        let content = "sentinel: the sandbox must leave this file alone";
        std::fs::write(&path, content).unwrap();
        Sentinel { path, content }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.path).unwrap(),
            self.content,
            "{} changed",
            self.path.display()
        );
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn hostile_candidates_are_rejected_and_the_host_is_unchanged() {
    let work = workdir();
    let clean = std::fs::read_to_string(work.join("repos").join(REPO).join(FILE)).unwrap();
    // Host paths the guest must not reach. Not under /tmp: there a path would
    // name the guest's own private /tmp, where writing is allowed and harmless.
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    assert!(
        !home.starts_with("/tmp"),
        "HOME={} is under /tmp",
        home.display()
    );
    let home_secret = Sentinel::new(home.join(format!(".socratic-hostile-{}", std::process::id())));
    let outside_dir = tempfile::tempdir_in(&home).unwrap();
    let outside = Sentinel::new(outside_dir.path().join("sentinel.txt"));
    let planted = outside_dir.path().join("planted.txt");

    // Each attack and what its rejection must name (any of the alternatives).
    let attacks: Vec<(&str, String, &[&str])> = vec![
        ("read-passwd", "    open('/etc/passwd').read()\n".into(), &["'/etc/passwd' outside the working copy"]),
        (
            "read-home",
            format!("    open({:?}).read()\n", home_secret.path.display().to_string()),
            &["outside the working copy"],
        ),
        (
            "write-outside",
            format!("    open({:?}, 'w').write('pwned')\n", outside.path.display().to_string()),
            &["outside the working copy"],
        ),
        (
            "socket",
            "    __import__('socket').create_connection(('127.0.0.1', 9))\n".into(),
            &["socket", "resolve a host name"],
        ),
        (
            "subprocess",
            format!("    __import__('subprocess').run(['touch', {:?}])\n", planted.display().to_string()),
            &["start a process"],
        ),
        (
            "ctypes-system",
            format!(
                "    __import__('ctypes').CDLL(None).system(b'touch {}')\n",
                planted.display()
            ),
            &["start a process", "load native code"],
        ),
        (
            "fork",
            format!(
                "    import os\n    if os.fork() == 0:\n        open({:?}, 'w').close()\n        os._exit(0)\n",
                planted.display().to_string()
            ),
            &["start a process"],
        ),
        (
            "edit-the-guard",
            "    import sys\n    sys.modules['__main__'].ALLOWED_ROOTS.append('/')\n".into(),
            &["tamper with the sandbox"],
        ),
        ("loop-forever", "    while True:\n        pass\n".into(), &["time limit hit: "]),
        (
            "allocate-10-gib",
            "    _hog = [bytearray(1 << 27) for _ in range(80)]\n".into(),
            &["memory limit"],
        ),
        (
            "print-1-gb",
            "    import sys\n    for _ in range(1 << 14):\n        print('x' * (1 << 16), file=sys.__stdout__)\n".into(),
            &["output limit"],
        ),
        (
            "delete-parent",
            "    import os, shutil\n    shutil.rmtree(os.path.dirname(os.getcwd()))\n".into(),
            &["delete"],
        ),
    ];
    let mut lines: Vec<Value> = attacks
        .iter()
        .map(|(id, snippet, _)| {
            let buggy = clean.replacen(ANCHOR, &format!("{snippet}{ANCHOR}"), 1);
            candidate(id, &clean, &buggy)
        })
        .collect();
    // An ordinary bug among them: the stage goes on and still validates it.
    let ordinary = clean.replacen(
        "if number % 100 in (11, 12, 13):",
        "if number % 100 in (11, 12):",
        1,
    );
    lines.insert(5, candidate("ordinary", &clean, &ordinary));
    // Endless recursion is a real bug (a missing base case), not an attack: a
    // RecursionError inside a test is a failing test.
    let recursing = clean.replacen(
        ANCHOR,
        &format!("    def _down(n):\n        return _down(n + 1)\n    _down(0)\n{ANCHOR}"),
        1,
    );
    lines.push(candidate("recurse-forever", &clean, &recursing));

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hostile.jsonl");
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let valid = dir.path().join("valid.jsonl");
    let rejects = dir.path().join("rejects.jsonl");
    let started = std::time::Instant::now();
    let result = Command::new(env!("CARGO_BIN_EXE_task-validate"))
        .arg(&input)
        // The tools' default executor: native inside bubblewrap where it works, wasm
        // otherwise; both name the same reasons.
        .args(["--no-cache", "--jobs", "2", "--timeout", "60", "-o"])
        .arg(&valid)
        .arg("--rejects")
        .arg(&rejects)
        .env("SOCRATIC_WORKDIR", &work)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    // Each candidate costs at most a few runs, each bounded by the 60 s limit.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(600),
        "took {:?}",
        started.elapsed()
    );

    let read = |path: &Path| -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let valid = read(&valid);
    let valid_ids: Vec<&Value> = valid.iter().map(|task| &task["instance_id"]).collect();
    assert_eq!(
        valid_ids.first(),
        Some(&&json!(format!("{REPO}.hostile.ordinary"))),
        "the ordinary bug is valid"
    );
    let rejected = read(&rejects);
    // The recursion fails hundreds of tests with tracebacks 1000 frames deep: valid,
    // or stopped at the time limit, never rejected as exhaustion.
    let recursion = format!("{REPO}.hostile.recurse-forever");
    if let Some(task) = rejected
        .iter()
        .find(|task| task["instance_id"] == recursion)
    {
        let reason = task["rejection"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("time limit hit"),
            "recurse-forever: {reason}"
        );
    }
    assert!(
        valid.len() <= 2,
        "only the ordinary bugs are valid: {valid_ids:?}"
    );
    let rejected: Vec<Value> = rejected
        .into_iter()
        .filter(|task| task["instance_id"] != recursion)
        .collect();
    assert_eq!(rejected.len(), attacks.len());
    for (id, _, expected) in &attacks {
        let task = rejected
            .iter()
            .find(|task| task["instance_id"] == format!("{REPO}.hostile.{id}"))
            .unwrap_or_else(|| panic!("{id} is missing from the rejects"));
        let reason = task["rejection"]["reason"].as_str().unwrap();
        eprintln!("hostile {id}: {reason}");
        assert!(
            expected.iter().any(|fragment| reason.contains(fragment)),
            "{id}: expected one of {expected:?} in `{reason}`"
        );
    }
    // The endless loop is stopped at 3× the clean suite's time (at least 30 s of wall
    // time, 15 s of CPU time), not at --timeout.
    let endless = rejected
        .iter()
        .find(|task| task["instance_id"] == format!("{REPO}.hostile.loop-forever"))
        .unwrap();
    let reason = endless["rejection"]["reason"].as_str().unwrap();
    let seconds = |after: &str| -> f64 {
        reason
            .split(after)
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{after}` limit in `{reason}`"))
    };
    assert!((30.0..60.0).contains(&seconds("hit: ")), "{reason}");
    assert!((15.0..30.0).contains(&seconds(" or ")), "{reason}");

    home_secret.assert_untouched();
    outside.assert_untouched();
    assert!(!planted.exists(), "a process ran on the host");
    assert!(
        work.join("repos").join(REPO).join(FILE).is_file(),
        "the corpus copy was damaged"
    );
}
