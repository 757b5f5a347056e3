//! The binary's command line: exit statuses and messages of `check-config` and `once`.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kafka-cloud-lag-exporter"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn check_config_accepts_the_example() {
    let out = run(&[
        "check-config",
        "--config.file",
        "config.example.yaml",
        "--skip-credentials",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (2 accounts, 3 consumer groups)"));
}

#[test]
fn check_config_rejects_with_status_2_naming_file_field_value_and_choices() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "accounts:\n  - name: a\n    cloud: alibaba\n    region: cn-hangzhou\n    instances: [{id: i, groups: [g]}]\n  - name: b\n    cloud: aws\n    region: x\n    instances: []\n",
            vec!["accounts[1].cloud", "aws", "`alibaba` or `tencent`"],
        ),
        (
            "poll_interval: soon\naccounts: []\n",
            vec!["poll_interval", "\"soon\"", "30s"],
        ),
        ("accounts: []\n", vec!["accounts", "at least one account"]),
        ("listen: 9758\naccounts: []\n", vec!["listen", "host:port"]),
        ("accounts: [\n", vec!["line"]),
    ];
    for (i, (yaml, fragments)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("c{i}.yaml"), yaml);
        let out = run(&["check-config", "--config.file", &file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(
            err.starts_with(&format!("error: {file}: ")),
            "case {i}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one message: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        for f in fragments {
            assert!(err.contains(f), "case {i}: {err:?} lacks {f:?}");
        }
    }
}

#[test]
fn missing_credentials_are_a_config_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.yaml",
        "accounts:\n  - name: prod\n    cloud: tencent\n    region: ap-guangzhou\n    credentials: {id_env: KCLE_TEST_UNSET_ID, secret_env: KCLE_TEST_UNSET_KEY}\n    instances: [{id: ckafka-1, groups: [g]}]\n",
    );
    for cmd in [&["check-config"][..], &["once"][..], &[][..]] {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend(["--config.file", &file]);
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("accounts[0].credentials"), "{err}");
        assert!(err.contains("KCLE_TEST_UNSET_ID is not set"), "{err}");
    }
}

#[test]
fn no_config_file_is_a_usage_error() {
    let out = run(&["once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config.file"));
    let out = run(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kafka-cloud-lag-exporter {}", env!("CARGO_PKG_VERSION"))
    );
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).into_owned();
    for flag in [
        "--config.file",
        "--web.listen-address",
        "--web.telemetry-path",
        "--log.level",
        "--log.format",
        "check-config",
        "once",
        "demo",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn a_key_id_with_a_line_break_is_a_config_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let id = write(dir.path(), "id", "AKIDfirst\nAKIDsecond\n");
    let secret = write(dir.path(), "secret", "s3cr3t\n");
    let file = write(
        dir.path(),
        "c.yaml",
        &format!(
            "poll_interval: 5s\naccounts:\n  - name: prod\n    cloud: tencent\n    region: ap-guangzhou\n    credentials: {{id_file: {id}, secret_file: {secret}}}\n    instances: [{{id: ckafka-1, groups: [g]}}]\n"
        ),
    );
    let out = run(&["check-config", "--config.file", &file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("accounts[0].credentials"), "{err}");
    assert!(err.contains(&format!("file {id}")), "{err}");
    assert!(err.contains("control character"), "{err}");
    assert!(
        !err.contains("AKIDfirst") && !err.contains("s3cr3t"),
        "{err}"
    );
}

#[test]
fn a_short_poll_interval_needs_no_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    for interval in ["1s", "5s", "30s", "5m"] {
        let file = write(
            dir.path(),
            "c.yaml",
            &format!(
                "poll_interval: {interval}\naccounts:\n  - name: prod\n    cloud: tencent\n    region: ap-guangzhou\n    instances: [{{id: ckafka-1, groups: [g]}}]\n"
            ),
        );
        let out = run(&["check-config", "--config.file", &file, "--skip-credentials"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{interval}: {err}");
    }
}
