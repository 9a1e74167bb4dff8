//! `explain` says which environment it assumed, in its text and its JSON: LD_LIBRARY_PATH and
//! where it came from, secure mode, which notes.

use std::process::Command;

use serde_json::Value;

/// `ldcache explain ARGS` on the tool's own binary, with LD_LIBRARY_PATH set to `env` (or unset).
fn explain(args: &[&str], env: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ldcache"));
    command
        .arg("explain")
        .args(args)
        .arg(env!("CARGO_BIN_EXE_ldcache"));
    match env {
        Some(dirs) => command.env("LD_LIBRARY_PATH", dirs),
        None => command.env_remove("LD_LIBRARY_PATH"),
    };
    let output = command.output().expect("ran");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn environment(args: &[&str], env: Option<&str>) -> Value {
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(args);
    let report: Value = serde_json::from_str(&explain(&json_args, env)).expect("JSON");
    report["environment"].clone()
}

#[test]
fn says_where_ld_library_path_came_from() {
    let from_env = environment(&[], Some("/nonexistent/lib"));
    assert_eq!(from_env["library_path"], "/nonexistent/lib");
    assert_eq!(from_env["library_path_from"], "environment");
    let overridden = environment(&["--library-path", ""], Some("/nonexistent/lib"));
    assert_eq!(overridden["library_path"], Value::Null);
    assert_eq!(overridden["library_path_from"], "option");
    let given = environment(&["--library-path", "/a:/b"], None);
    assert_eq!(
        (
            given["library_path"].as_str(),
            given["library_path_from"].as_str()
        ),
        (Some("/a:/b"), Some("option"))
    );
    let none = environment(&[], None);
    assert_eq!(none["library_path_from"], "none");
}

#[test]
fn says_secure_mode_and_the_notes() {
    let env = environment(&["--secure", "--cache", "off"], None);
    assert_eq!(
        (env["secure"].as_bool(), env["cache"].as_str()),
        (Some(true), Some("off"))
    );
}

#[test]
fn the_text_begins_with_what_it_assumed() {
    let text = explain(&[], Some("/nonexistent/lib"));
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("assuming: LD_LIBRARY_PATH=/nonexistent/lib (from the environment"),
        "{first}"
    );
    let text = explain(&["--library-path", "", "--secure"], None);
    assert_eq!(
        text.lines().next().unwrap(),
        "assuming: no LD_LIBRARY_PATH, secure mode; the files' notes read"
    );
}
