//! The daemon as a process, for what only a process shows: real signals (SIGHUP reloads,
//! SIGTERM exits 0), `POST /-/reload`, and serving `/metrics` after its first round. The
//! poll interval is an hour, so nothing here waits on a timer: waits are on the daemon's
//! own log lines, and the guard below only keeps a broken build from hanging the run. The
//! daemon's loop itself (rounds, skips, discovery, staleness, grace) is tested on virtual
//! time in `tests/daemon_loop.rs`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use kcle_clock::Clock;
use kcle_sim::SimSettings;
use kcle_sim::world::WorldSpec;
use support::start_environment;

const GUARD: Duration = Duration::from_secs(60);

fn config_yaml(env: &support::SimEnvironment, dir: &Path, groups: &[&str]) -> String {
    let mut yaml = String::from("poll_interval: 1h\naccounts:\n");
    for a in &env.config.accounts {
        let key = &env.credentials[&a.name];
        let (id, secret) = match (&key.id, &key.secret) {
            (
                kafka_cloud_lag_exporter::credentials::Source::Inline(i),
                kafka_cloud_lag_exporter::credentials::Source::Inline(s),
            ) => (i.expose().to_string(), s.expose().to_string()),
            _ => unreachable!("the simulator's keys are inline"),
        };
        let idf = dir.join(format!("{}-id", a.name));
        let secf = dir.join(format!("{}-secret", a.name));
        std::fs::write(&idf, id).unwrap();
        std::fs::write(&secf, secret).unwrap();
        yaml.push_str(&format!(
            "  - name: {}\n    cloud: {}\n    region: {}\n    endpoint: {}\n    credentials: {{id_file: {}, secret_file: {}}}\n    instances:\n      - id: {}\n        groups: [{}]\n",
            a.name,
            a.cloud,
            a.regions()[0],
            a.endpoint.as_deref().unwrap(),
            idf.display(),
            secf.display(),
            a.instances[0].id,
            groups.join(", ")
        ));
    }
    yaml
}

/// Lines the daemon writes to stderr.
fn log_lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(lines: &Receiver<String>, needle: &str) -> String {
    loop {
        match lines.recv_timeout(GUARD) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => continue,
            Err(e) => panic!("no log line with {needle:?}: {e}"),
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_polls_reloads_and_stops_cleanly() {
    // The process signs with the real time, so the simulator runs on it too.
    let env = start_environment(
        &WorldSpec::default(),
        SimSettings::default(),
        Clock::system(),
        Duration::from_secs(3600),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        config_yaml(&env, dir.path(), &["group-0001", "group-0002"]),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafka-cloud-lag-exporter"))
        .args([
            "--config.file",
            config.to_str().unwrap(),
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = log_lines(&mut child);
    let lines = tokio::task::spawn_blocking(move || {
        wait_for(&lines, "first poll round complete; ready");
        lines
    })
    .await
    .unwrap();

    kafka_cloud_lag_exporter::providers::http::install_crypto_provider();
    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let text = scrape().await;
    for cloud in ["alibaba", "tencent"] {
        for group in ["group-0001", "group-0002"] {
            let up = format!("kafka_cloud_lag_exporter_group_up{{cloud=\"{cloud}\",instance_id=");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&up)
                        && l.contains(&format!("consumergroup=\"{group}\"}} 1"))),
                "{cloud} {group} up"
            );
        }
    }

    // SIGHUP with a group removed: its series go, the others stay.
    std::fs::write(&config, config_yaml(&env, dir.path(), &["group-0001"])).unwrap();
    signal(&child, "-HUP");
    let lines = tokio::task::spawn_blocking(move || {
        wait_for(&lines, "configuration reloaded");
        lines
    })
    .await
    .unwrap();
    let text = scrape().await;
    assert!(
        !text.contains("consumergroup=\"group-0002\""),
        "removed on reload"
    );
    assert!(text.contains("consumergroup=\"group-0001\""));
    assert!(text.contains("kafka_cloud_lag_exporter_config_last_reload_successful 1"));

    // A bad file is rejected over HTTP; the running configuration stays in force.
    std::fs::write(&config, "accounts:\n  - name: x\n    cloud: aws\n").unwrap();
    let r = http.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.contains("accounts[0].cloud"), "{body}");
    let text = scrape().await;
    assert!(text.contains("kafka_cloud_lag_exporter_config_last_reload_successful 0"));
    assert!(
        text.contains("consumergroup=\"group-0001\""),
        "still polling the old configuration"
    );

    // SIGTERM: exits 0 after finishing in-flight polls.
    signal(&child, "-TERM");
    let status = tokio::task::spawn_blocking(move || {
        wait_for(&lines, "stopped");
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
}
