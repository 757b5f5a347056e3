//! `reset-offsets` against the simulator: every target on both clouds, dry runs that
//! write nothing, each refusal, cloud failures during execute, the exact request
//! parameters, and the binary's exit statuses. Library runs use virtual time; nothing
//! sleeps.

mod support;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kafka_cloud_lag_exporter::cli::{ResetArgs, ResetOutput};
use kafka_cloud_lag_exporter::commands::demo::account_name;
use kafka_cloud_lag_exporter::commands::reset;
use kafka_cloud_lag_exporter::config::{Account, Config, InstanceDiscovery};
use kafka_cloud_lag_exporter::credentials::{CredentialSources, Source};
use kafka_cloud_lag_exporter::exporter::Runtime;
use kafka_cloud_lag_exporter::model::Cloud;
use kcle_clock::{Clock, unix_millis};
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{ResetTo, SimPartition, WorldSpec, group_name, instance_id};
use kcle_sim::{LoggedRequest, SimSettings, is_write_action};
use support::{SimEnvironment, start_environment};

const CLOUDS: [Cloud; 2] = [Cloud::Alibaba, Cloud::Tencent];
/// Group 3 of the generated world has no members: the one to reset. Its topics are 5
/// and 6; partition 0 of topic 5 has no committed offset.
const STOPPED: usize = 3;
const T5: &str = "topic-0005";
const T6: &str = "topic-0006";

/// Adds a target (and perhaps a topic) to the arguments.
type Edit = dyn Fn(&mut ResetArgs);

/// Committed offset and log end by (topic, partition).
type Offsets = BTreeMap<(String, i32), (Option<i64>, i64)>;

struct Env {
    clock: Clock,
    env: SimEnvironment,
    /// Where `--execute` writes its backups (every run's `--backup-dir`).
    backups: tempfile::TempDir,
}

/// What one run printed and returned.
#[derive(Debug)]
struct Run {
    code: u8,
    out: String,
    err: String,
}

impl Env {
    async fn new() -> Env {
        Env::with_settings(SimSettings::default()).await
    }

    async fn with_settings(settings: SimSettings) -> Env {
        let clock = Clock::virtual_at_unix(support::T0_SECS);
        let settings = SimSettings {
            record_raw: true,
            ..settings
        };
        let env = start_environment(
            &WorldSpec::default(),
            settings,
            clock.clone(),
            Duration::from_secs(30),
        )
        .await;
        // Ten minutes of production, so that the log ends have moved since the anchor.
        support::advance(Duration::from_secs(600)).await;
        Env {
            clock,
            env,
            backups: tempfile::tempdir().unwrap(),
        }
    }

    /// Arguments for `group` of the cloud's first instance; `edit` adds the target. Without
    /// a `--topic` (or a target that needs none) the scope is `--all-topics`; backups go to
    /// the test's directory.
    fn args(&self, cloud: Cloud, group: &str, edit: impl FnOnce(&mut ResetArgs)) -> ResetArgs {
        let mut args = ResetArgs {
            account: account_name(cloud).into(),
            instance: instance_id(cloud, 1),
            group: group.into(),
            backup_dir: Some(self.backups.path().to_path_buf()),
            ..ResetArgs::default()
        };
        edit(&mut args);
        if args.topic.is_empty() && args.from_file.is_none() && args.to_offsets.is_none() {
            args.all_topics = true;
        }
        args
    }

    /// Runs with `--execute` on group `group` of the cloud's first instance.
    async fn execute(&self, cloud: Cloud, group: &str, edit: impl FnOnce(&mut ResetArgs)) -> Run {
        let mut args = self.args(cloud, group, edit);
        args.execute = true;
        self.run(&args).await
    }

    async fn run(&self, args: &ResetArgs) -> Run {
        self.run_with(args, self.env.resolver()).await
    }

    async fn run_with(
        &self,
        args: &ResetArgs,
        resolver: impl Fn(&Account) -> CredentialSources + Send + Sync + 'static,
    ) -> Run {
        self.run_in(&self.env.config, args, resolver).await
    }

    async fn run_in(
        &self,
        config: &Config,
        args: &ResetArgs,
        resolver: impl Fn(&Account) -> CredentialSources + Send + Sync + 'static,
    ) -> Run {
        self.run_full(config, args, resolver, None).await
    }

    /// Runs as if stdin were a terminal from which `terminal` is read.
    async fn run_on_terminal(&self, args: &ResetArgs, terminal: &mut dyn BufRead) -> Run {
        self.run_full(&self.env.config, args, self.env.resolver(), Some(terminal))
            .await
    }

    async fn run_full(
        &self,
        config: &Config,
        args: &ResetArgs,
        resolver: impl Fn(&Account) -> CredentialSources + Send + Sync + 'static,
        terminal: Option<&mut dyn BufRead>,
    ) -> Run {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let runtime = Runtime {
            clock: self.clock.clone(),
            credentials: Arc::new(resolver),
            http: kafka_cloud_lag_exporter::providers::http::client(),
        };
        let code = reset::run(args, config, &runtime, &mut out, &mut err, terminal).await;
        Run {
            code,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        }
    }

    /// The backup files written so far.
    fn backup_files(&self) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(self.backups.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    fn now_ms(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    /// The group's offsets in the simulated world now.
    fn offsets(&self, cloud: Cloud, group: &str) -> Offsets {
        let now = self.now_ms();
        self.env
            .sim
            .state()
            .world(|w| w.progress(cloud, &instance_id(cloud, 1), group, now))
            .unwrap()
            .into_iter()
            .flat_map(|(topic, rows)| {
                rows.into_iter()
                    .map(move |r| ((topic.clone(), r.partition), (r.committed, r.log_end)))
            })
            .collect()
    }

    fn committed(&self, cloud: Cloud, group: &str) -> BTreeMap<(String, i32), Option<i64>> {
        self.offsets(cloud, group)
            .into_iter()
            .map(|(k, (c, _))| (k, c))
            .collect()
    }

    fn partition(&self, cloud: Cloud, topic: &str, p: usize) -> SimPartition {
        self.env.sim.state().world(|w| {
            w.instance(cloud, &instance_id(cloud, 1)).unwrap().topics[topic].partitions[p].clone()
        })
    }

    fn requests(&self) -> Vec<LoggedRequest> {
        self.env.sim.state().requests()
    }

    fn writes(&self) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| is_write_action(&r.action))
            .collect()
    }

    /// The single write request sent, which must have been answered `ok`.
    fn only_write(&self) -> LoggedRequest {
        let writes = self.writes();
        assert_eq!(writes.len(), 1, "{writes:#?}");
        assert_eq!(writes[0].outcome, "ok", "{:#?}", writes[0]);
        writes[0].clone()
    }

    fn inject(&self, rule: FaultRule) {
        self.env.sim.state().inject(rule);
    }

    fn set_members(&self, cloud: Cloud, group: &str, members: u32) {
        let now = self.now_ms();
        self.env.sim.state().world(|w| {
            w.set_members(cloud, &instance_id(cloud, 1), group, members, now)
                .unwrap()
        });
    }
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn assert_ok(run: &Run) {
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.out, run.err);
}

/// An executed run that succeeded: plan and before/after tables on stdout, the audit line
/// and the summary on stderr.
fn assert_executed(run: &Run) {
    assert_ok(run);
    assert!(
        run.out
            .starts_with("TOPIC       PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  TARGET\n"),
        "{}",
        run.out
    );
    assert!(
        run.out.contains("\nTOPIC       PARTITION  BEFORE "),
        "{}",
        run.out
    );
    assert!(!run.out.contains("NOT APPLIED"), "{}", run.out);
    assert_eq!(
        run.err.matches("audit: reset-offsets start ").count(),
        1,
        "{}",
        run.err
    );
    let result = run
        .err
        .lines()
        .find(|l| l.starts_with("audit: reset-offsets result "))
        .unwrap_or_else(|| panic!("no result audit line: {}", run.err));
    assert!(result.contains(" status=applied "), "{result}");
    assert!(run.err.contains("reset applied: "), "{}", run.err);
    // After the prompt on a terminal the line starts with what the operator typed.
    assert!(run.err.contains("backup: "), "{}", run.err);
}

fn assert_refused(run: &Run, fragment: &str) {
    assert_eq!(run.code, 2, "stdout:\n{}\nstderr:\n{}", run.out, run.err);
    assert!(run.err.starts_with("error: "), "{}", run.err);
    assert!(
        run.err.contains(fragment),
        "{:?} lacks {fragment:?}",
        run.err
    );
    assert!(!run.err.contains("audit:"), "{}", run.err);
    assert!(run.out.is_empty(), "no plan is printed: {}", run.out);
}

// ---- dry runs --------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn dry_runs_print_the_plan_and_make_no_write_call() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    let ts = e.now_ms() - 120_000;
    for cloud in CLOUDS {
        let before = e.offsets(cloud, &g);
        let earliest = e.partition(cloud, T5, 1).earliest;
        let mut targets: Vec<Box<Edit>> = vec![
            Box::new(|a| a.to_latest = true),
            Box::new(|a| a.to_earliest = true),
            Box::new(move |a| a.to_timestamp_ms = Some(ts)),
            Box::new(move |a| a.to_datetime = Some(reset::fmt_time_ms(ts))),
            Box::new(move |a| {
                a.topic = vec![T5.into()];
                a.to_offsets = Some(format!("1={}", earliest + 11));
            }),
        ];
        targets.push(Box::new(|a| {
            a.topic = vec![T6.into()];
            a.shift_by = Some(-5);
        }));
        targets.push(Box::new(|a| a.to_current = true));
        targets.push(Box::new(|a| a.by_duration = Some("PT5M".into())));
        targets.push(Box::new(|a| {
            a.topic = vec![format!("{T6}:0,2"), T5.into()];
            a.to_latest = true;
        }));
        for edit in targets {
            let args = e.args(cloud, &g, edit);
            let run = e.run(&args).await;
            assert_ok(&run);
            assert!(
                run.out
                    .starts_with("TOPIC       PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  TARGET\n"),
                "{}",
                run.out
            );
            assert!(
                !run.out.contains("BEFORE"),
                "no before/after table: {}",
                run.out
            );
            assert!(
                run.err.contains("dry run: nothing was changed"),
                "{}",
                run.err
            );
            assert!(run.err.contains("--execute"), "{}", run.err);
            assert!(!run.err.contains("audit:"), "{}", run.err);
        }
        assert_eq!(e.writes(), Vec::new(), "a dry run makes no write call");
        let now = e.offsets(cloud, &g);
        for (k, (c, _)) in &before {
            assert_eq!(now[k].0, *c, "{cloud} {k:?} unchanged");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_shows_each_target_as_an_offset_where_it_is_known() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    let offsets = e.offsets(Cloud::Tencent, &g);
    let (c6_0, end6_0) = offsets[&(T6.to_string(), 0)];
    let (c6_0, end5_0) = (c6_0.unwrap(), offsets[&(T5.to_string(), 0)].1);
    let line = |run: &Run, topic: &str, p: i32| -> Vec<String> {
        run.out
            .lines()
            .find(|l| l.starts_with(&format!("{topic}  {p} ")))
            .unwrap_or_else(|| panic!("no row for {topic}/{p}: {}", run.out))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let run = e
        .run(&e.args(Cloud::Tencent, &g, |a| a.to_latest = true))
        .await;
    assert_eq!(
        line(&run, T6, 0),
        [
            T6,
            "0",
            &c6_0.to_string(),
            &end6_0.to_string(),
            &end6_0.to_string()
        ]
    );
    assert_eq!(
        line(&run, T5, 0),
        [T5, "0", "-", &end5_0.to_string(), &end5_0.to_string()],
        "no committed offset is a dash"
    );
    let run = e
        .run(&e.args(Cloud::Tencent, &g, |a| a.to_earliest = true))
        .await;
    assert_eq!(line(&run, T6, 0)[4], "earliest");
    assert!(run.err.contains("does not report"), "{}", run.err);
    let ts = e.now_ms() - 60_000;
    let run = e
        .run(&e.args(Cloud::Tencent, &g, |a| a.to_timestamp_ms = Some(ts)))
        .await;
    assert_eq!(line(&run, T6, 0)[4], reset::fmt_time_ms(ts));
    let run = e
        .run(&e.args(Cloud::Tencent, &g, |a| {
            a.topic = vec![T6.into()];
            a.shift_by = Some(-5);
        }))
        .await;
    assert_eq!(line(&run, T6, 0)[4], (c6_0 - 5).to_string());
    assert!(run.err.contains("earliest retained offset"), "{}", run.err);
    assert_eq!(e.writes(), Vec::new());
}

// ---- every target, executed --------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn to_latest_moves_every_topic_to_its_log_end() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let run = e.execute(cloud, &g, |a| a.to_latest = true).await;
        assert_executed(&run);
        let write = e.only_write();
        let inst = instance_id(cloud, 1);
        match cloud {
            Cloud::Alibaba => assert_eq!(
                write.params,
                params(&[
                    ("RegionId", "cn-hangzhou"),
                    ("InstanceId", &inst),
                    ("ConsumerId", &g),
                    ("Topic", ""),
                    ("ResetType", "timestamp"),
                    ("Time", "-1"),
                ]),
                "all topics are an empty Topic"
            ),
            Cloud::Tencent => assert_eq!(
                write.params,
                params(&[
                    ("InstanceId", &inst),
                    ("Group", &g),
                    ("Strategy", "1"),
                    ("Topics", r#"["topic-0005","topic-0006"]"#),
                    ("ShiftTimestamp", "-1"),
                ])
            ),
        }
        for ((topic, p), committed) in e.committed(cloud, &g) {
            let log_end = e.partition(cloud, &topic, p as usize).log_end(write.at_ms);
            assert_eq!(committed, Some(log_end), "{cloud} {topic}/{p}");
        }
        assert!(
            run.err
                .contains("reset applied: 6 partitions at the target"),
            "{}",
            run.err
        );
        e.env.sim.state().clear_log();
    }
}

#[tokio::test(start_paused = true)]
async fn to_earliest_moves_one_topic_to_the_earliest_retained_offset() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let before = e.committed(cloud, &g);
        let run = e
            .execute(cloud, &g, |a| {
                a.topic = vec![T5.into()];
                a.to_earliest = true;
            })
            .await;
        assert_executed(&run);
        assert!(
            run.err.contains("exact offsets cannot be verified"),
            "{}",
            run.err
        );
        let write = e.only_write();
        let expected = match cloud {
            Cloud::Alibaba => [("Topic", T5), ("ResetType", "timestamp"), ("Time", "-2")],
            Cloud::Tencent => [
                ("Strategy", "1"),
                ("Topics", r#"["topic-0005"]"#),
                ("ShiftTimestamp", "-2"),
            ],
        };
        for (k, v) in expected {
            assert_eq!(write.params[k], v, "{cloud} {k}");
        }
        for ((topic, p), committed) in e.committed(cloud, &g) {
            if topic == T5 {
                let earliest = e.partition(cloud, &topic, p as usize).earliest;
                assert_eq!(committed, Some(earliest), "{cloud} {topic}/{p}");
            } else {
                assert_eq!(committed, before[&(topic.clone(), p)], "{topic} untouched");
            }
        }
        e.env.sim.state().clear_log();
    }
}

#[tokio::test(start_paused = true)]
async fn to_a_time_moves_to_the_first_offset_produced_since() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        for flag in ["--to-timestamp-ms", "--to-datetime", "--by-duration"] {
            // The time is read before the first request, so PT5M ago is this.
            let ts = e.now_ms() - 300_000;
            let run = e
                .execute(cloud, &g, |a| {
                    a.topic = vec![T6.into()];
                    match flag {
                        "--to-timestamp-ms" => a.to_timestamp_ms = Some(ts),
                        "--to-datetime" => a.to_datetime = Some(reset::fmt_time_ms(ts)),
                        _ => a.by_duration = Some("PT5M".into()),
                    }
                })
                .await;
            assert_executed(&run);
            assert!(
                run.err.contains(&format!("to-timestamp {ts}")),
                "{flag}: {}",
                run.err
            );
            if flag == "--by-duration" {
                let heading = format!("plan: by-duration PT5M (to-timestamp {ts}, ");
                assert!(run.err.contains(&heading), "{}", run.err);
            }
            let write = e.only_write();
            let ts_text = ts.to_string();
            match cloud {
                Cloud::Alibaba => {
                    assert_eq!(write.params["Topic"], T6);
                    assert_eq!(write.params["ResetType"], "timestamp");
                    assert_eq!(write.params["Time"], ts_text);
                }
                Cloud::Tencent => {
                    assert_eq!(write.params["Strategy"], "1");
                    assert_eq!(write.params["ShiftTimestamp"], ts_text);
                    assert!(!write.params.contains_key("Shift"));
                }
            }
            for ((topic, p), committed) in e.committed(cloud, &g) {
                if topic == T6 {
                    let part = e.partition(cloud, &topic, p as usize);
                    assert_eq!(
                        committed,
                        Some(part.offset_for_time(ts, write.at_ms)),
                        "{cloud} {topic}/{p}"
                    );
                }
            }
            e.env.sim.state().clear_log();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn to_offsets_sets_exactly_the_partitions_given() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let before = e.committed(cloud, &g);
        let o0 = e.partition(cloud, T5, 0).earliest + 11;
        let o2 = e.partition(cloud, T5, 2).earliest + 22;
        let run = e
            .execute(cloud, &g, |a| {
                a.topic = vec![T5.into()];
                a.to_offsets = Some(format!("2={o2},0={o0}"));
            })
            .await;
        assert_executed(&run);
        assert!(
            run.err
                .contains("reset applied: 2 partitions at the target"),
            "{}",
            run.err
        );
        let write = e.only_write();
        let inst = instance_id(cloud, 1);
        match cloud {
            Cloud::Alibaba => {
                assert_eq!(write.action, "UpdateConsumerOffset");
                assert_eq!(
                    write.params,
                    params(&[
                        ("RegionId", "cn-hangzhou"),
                        ("InstanceId", &inst),
                        ("ConsumerId", &g),
                        ("Topic", T5),
                        ("ResetType", "offset"),
                        (
                            "Offsets",
                            &format!(
                                r#"[{{"Partition":0,"Offset":{o0}}},{{"Partition":2,"Offset":{o2}}}]"#
                            )
                        ),
                    ]),
                    "Offsets is one compact JSON string"
                );
            }
            Cloud::Tencent => {
                assert_eq!(write.action, "BatchModifyGroupOffsets");
                // The log re-serializes nested objects with sorted keys; the raw body
                // is what was sent.
                assert_eq!(
                    write.params,
                    params(&[
                        ("GroupName", &g),
                        ("InstanceId", &inst),
                        (
                            "Partitions",
                            &format!(
                                r#"[{{"Offset":{o0},"Partition":0}},{{"Offset":{o2},"Partition":2}}]"#
                            )
                        ),
                        ("TopicName", r#"["topic-0005"]"#),
                    ])
                );
                assert_eq!(
                    write.raw.unwrap().body,
                    format!(
                        r#"{{"GroupName":"group-0003","InstanceId":"ckafka-sim0001","Partitions":[{{"Partition":0,"Offset":{o0}}},{{"Partition":2,"Offset":{o2}}}],"TopicName":["topic-0005"]}}"#
                    )
                );
            }
        }
        let after = e.committed(cloud, &g);
        for (k, c) in &after {
            let expected = match (k.0.as_str(), k.1) {
                (T5, 0) => Some(o0),
                (T5, 2) => Some(o2),
                _ => before[k],
            };
            assert_eq!(*c, expected, "{cloud} {k:?}");
        }
        e.env.sim.state().clear_log();
    }
}

#[tokio::test(start_paused = true)]
async fn shift_by_moves_tencent_partitions_relative_to_their_offsets() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    let before = e.committed(Cloud::Tencent, &g);
    let run = e
        .execute(Cloud::Tencent, &g, |a| {
            a.topic = vec![T6.into()];
            a.shift_by = Some(-5);
        })
        .await;
    assert_executed(&run);
    assert!(
        run.err
            .contains("reset applied: 3 partitions at the target"),
        "{}",
        run.err
    );
    let write = e.only_write();
    assert_eq!(
        write.params,
        params(&[
            ("InstanceId", "ckafka-sim0001"),
            ("Group", &g),
            ("Strategy", "0"),
            ("Topics", r#"["topic-0006"]"#),
            ("Shift", "-5"),
        ])
    );
    for (k, c) in e.committed(Cloud::Tencent, &g) {
        let expected = if k.0 == T6 {
            before[&k].map(|o| o - 5)
        } else {
            before[&k]
        };
        assert_eq!(c, expected, "{k:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_audit_line_names_who_what_where_when_and_the_plan() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    let at = reset::fmt_time_ms(e.now_ms());
    let run = e
        .execute(Cloud::Tencent, &g, |a| {
            a.topic = vec![T6.into()];
            a.to_latest = true;
        })
        .await;
    assert_executed(&run);
    let audit = run.err.lines().find(|l| l.starts_with("audit: ")).unwrap();
    for field in [
        "account=sim-tencent",
        "cloud=tencent",
        "region=ap-guangzhou",
        "instance=ckafka-sim0001",
        "group=group-0003",
        "topics=topic-0006",
        "target=\"to-latest\"",
        &format!("at={at}"),
        "plan=topic-0006/0:",
        ",topic-0006/2:",
        "user=",
        "confirmation=no-terminal",
        "requests=1",
    ] {
        assert!(audit.contains(field), "{audit} lacks {field}");
    }
    let backup = e.backup_files();
    assert_eq!(backup.len(), 1);
    assert!(
        audit.contains(&format!("backup={:?}", backup[0].display().to_string())),
        "{audit}"
    );
    let result = run
        .err
        .lines()
        .find(|l| l.starts_with("audit: reset-offsets result "))
        .unwrap();
    for field in [
        "account=sim-tencent",
        "instance=ckafka-sim0001",
        "group=group-0003",
        "status=applied",
        "requests_accepted=1/1",
        "moved=topic-0006/0:",
        "unmoved=none",
        "backup=",
    ] {
        assert!(result.contains(field), "{result} lacks {field}");
    }
    // The audit line comes before the write: printed before the before/after table's
    // numbers were read, and the write was logged after it.
    let audit_pos = run.err.find("audit: ").unwrap();
    assert!(run.err[audit_pos..].contains("reset applied"));
}

// ---- refusals --------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn refusals_exit_2_with_a_message_and_write_nothing() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    let ali = Cloud::Alibaba;
    let tc = Cloud::Tencent;
    let log_end_5_1 = e.offsets(tc, &g)[&(T5.to_string(), 1)].1;
    // Well ahead: the budget's pacing moves the virtual clock a little with every case.
    let future = e.now_ms() + 3_600_000;
    let cases: Vec<(ResetArgs, String)> = vec![
        (
            e.args(tc, &g, |a| {
                a.account = "prod".into();
                a.to_latest = true;
            }),
            "--account: no account named \"prod\" in the configuration (configured: sim-alibaba, sim-tencent)".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.instance = "ckafka-nope".into();
                a.to_latest = true;
            }),
            "--instance: instance ckafka-nope is not configured for account sim-tencent (its instances: ckafka-sim0001)".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.instance = instance_id(Cloud::Alibaba, 1);
                a.to_latest = true;
            }),
            "is configured under account sim-alibaba, not sim-tencent".into(),
        ),
        (
            e.args(tc, "group-nope", |a| a.to_latest = true),
            "group group-nope".into(),
        ),
        (
            e.args(ali, "group-nope", |a| a.to_latest = true),
            "group group-nope".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.topic = vec!["topic-0001".into()];
                a.to_latest = true;
            }),
            "--topic: group group-0003 has no offsets on topic topic-0001 (its topics: topic-0005, topic-0006)".into(),
        ),
        (
            e.args(ali, &g, |a| {
                a.topic = vec![T5.into()];
                a.to_offsets = Some("9=1".into());
            }),
            "--to-offsets: topic topic-0005 has no partition 9 (partitions: 0, 1, 2)".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.topic = vec![T5.into()];
                a.to_offsets = Some(format!("1={}", log_end_5_1 + 1));
            }),
            format!(
                "--to-offsets: offset {} for partition 1 of topic topic-0005 is outside [0, {log_end_5_1}]",
                log_end_5_1 + 1
            ),
        ),
        (
            e.args(ali, &g, |a| {
                a.topic = vec![T5.into()];
                a.to_offsets = Some("1=-3".into());
            }),
            "offset -3 for partition 1 of topic topic-0005 is outside".into(),
        ),
        (
            e.args(tc, &g, |a| a.to_offsets = Some("0=1".into())),
            "--to-offsets needs exactly one --topic".into(),
        ),
        (
            e.args(ali, &g, |a| a.to_timestamp_ms = Some(future)),
            "--to-timestamp-ms: 2023-11-14T23:23:20Z is in the future".into(),
        ),
        (
            e.args(tc, &g, |a| a.to_datetime = Some("2023-11-15T08:00:00+08:00".into())),
            "--to-datetime: 2023-11-15T00:00:00Z is in the future".into(),
        ),
        (
            e.args(tc, &g, |a| a.to_datetime = Some("yesterday".into())),
            "--to-datetime: \"yesterday\" is not an RFC 3339 time".into(),
        ),
        (
            e.args(ali, &g, |a| {
                a.topic = vec![format!("{T6}:1")];
                a.to_earliest = true;
            }),
            "alibaba cannot reset only some partitions of a topic to the earliest offset".into(),
        ),
        (
            e.args(ali, &g, |a| {
                a.topic = vec![format!("{T6}:1")];
                a.by_duration = Some("PT1H".into());
            }),
            "alibaba cannot reset only some partitions of a topic to a time".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.topic = vec![format!("{T6}:7")];
                a.to_latest = true;
            }),
            "--topic: topic topic-0006 has no partition 7 (partitions: 0, 1, 2)".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.topic = vec![T6.into(), format!("{T6}:1")];
                a.to_latest = true;
            }),
            "--topic: topic topic-0006 is given twice".into(),
        ),
        (
            e.args(tc, &g, |a| a.by_duration = Some("P1M".into())),
            "--by-duration: \"P1M\" is not an ISO 8601 duration".into(),
        ),
        (
            {
                let mut a = e.args(tc, &g, |a| a.to_latest = true);
                a.all_topics = false;
                a
            },
            "a scope is required, as with kafka-consumer-groups: --all-topics, or --topic".into(),
        ),
        (
            e.args(tc, &g, |a| a.from_file = Some(e.backups.path().join("missing.csv"))),
            "--from-file: cannot read ".into(),
        ),
        (
            e.args(ali, &g, |a| {
                a.export = true;
                a.to_earliest = true;
            }),
            "--export: the earliest retained offsets are not reported by the cloud".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.topic = vec![T5.into()];
                a.shift_by = Some(-5);
            }),
            "--shift-by: partition 0 of topic topic-0005 has no committed offset to shift from".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.to_latest = true;
                a.to_earliest = true;
            }),
            "exactly one target is required".into(),
        ),
    ];
    let before: Vec<_> = CLOUDS.iter().map(|c| e.committed(*c, &g)).collect();
    for (args, fragment) in &cases {
        for execute in [false, true] {
            let mut args = args.clone();
            args.execute = execute && !args.export;
            let run = e.run(&args).await;
            assert_refused(&run, fragment);
        }
    }
    assert_eq!(e.writes(), Vec::new());
    assert_eq!(
        e.backup_files(),
        Vec::<std::path::PathBuf>::new(),
        "no backup either"
    );
    let after: Vec<_> = CLOUDS.iter().map(|c| e.committed(*c, &g)).collect();
    assert_eq!(before, after);
}

#[tokio::test(start_paused = true)]
async fn refusals_of_the_command_line_and_config_send_no_request_at_all() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    let cases = [
        e.args(Cloud::Tencent, &g, |a| {
            a.account = "prod".into();
            a.to_latest = true;
        }),
        e.args(Cloud::Tencent, &g, |a| a.to_offsets = Some("0=1".into())),
        e.args(Cloud::Alibaba, &g, |a| a.to_timestamp_ms = Some(i64::MAX)),
        e.args(Cloud::Alibaba, &g, |a| a.by_duration = Some("PT0S".into())),
        {
            let mut a = e.args(Cloud::Alibaba, &g, |a| a.shift_by = Some(1));
            a.all_topics = false;
            a
        },
    ];
    for mut args in cases {
        args.execute = true;
        assert_eq!(e.run(&args).await.code, 2, "{args:?}");
    }
    assert_eq!(e.requests(), Vec::new());
}

#[tokio::test(start_paused = true)]
async fn an_active_group_is_refused_as_kafka_does() {
    let e = Env::new().await;
    for cloud in CLOUDS {
        let run = e
            .execute(cloud, &group_name(1), |a| {
                a.to_earliest = true;
            })
            .await;
        assert_refused(
            &run,
            "group group-0001 is active (state Stable, 2 members): offsets can only be reset while the group has no active members",
        );
        // A stopped group whose consumers come back is refused too.
        let g = group_name(STOPPED);
        e.set_members(cloud, &g, 1);
        let run = e
            .execute(cloud, &g, |a| {
                a.to_latest = true;
            })
            .await;
        assert_refused(&run, "group group-0003 is active (state Stable, 1 members)");
        e.set_members(cloud, &g, 0);
    }
    assert_eq!(e.writes(), Vec::new());
}

#[tokio::test(start_paused = true)]
async fn an_instance_found_by_discovery_can_be_reset() {
    let e = Env::new().await;
    let mut config = e.env.config.clone();
    for account in &mut config.accounts {
        account.instances.clear();
        account.discover_instances = Some(InstanceDiscovery::default());
    }
    for cloud in CLOUDS {
        let args = e.args(cloud, &group_name(STOPPED), |a| a.to_latest = true);
        let run = e.run_in(&config, &args, e.env.resolver()).await;
        assert_ok(&run);
        assert!(run.out.starts_with("TOPIC "), "{}", run.out);
        let mut args = args;
        args.instance = format!("{}-gone", instance_id(cloud, 1));
        let run = e.run_in(&config, &args, e.env.resolver()).await;
        assert_refused(&run, "was not found among the running instances of account");
    }
    assert_eq!(e.writes(), Vec::new());
}

#[tokio::test(start_paused = true)]
async fn missing_credentials_are_refused_naming_the_source() {
    let e = Env::new().await;
    let missing = |_: &Account| CredentialSources {
        id: Source::File("/nonexistent/kcle-reset-id".into()),
        secret: Source::File("/nonexistent/kcle-reset-secret".into()),
        token: Vec::new(),
    };
    let args = e.args(Cloud::Tencent, &group_name(STOPPED), |a| {
        a.to_latest = true;
        a.execute = true;
    });
    let run = e.run_with(&args, missing).await;
    assert_refused(&run, "account sim-tencent: ");
    assert!(
        run.err.contains("/nonexistent/kcle-reset-id"),
        "{}",
        run.err
    );
    assert_eq!(e.requests(), Vec::new());
}

// ---- failures during execute -------------------------------------------------------------------

/// A failed execute: status 1, the before/after table marking what was not applied.
fn assert_failed(run: &Run, fragments: &[&str]) {
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.out, run.err);
    assert!(
        run.out.contains("RESULT"),
        "before/after table: {}",
        run.out
    );
    assert_eq!(run.err.matches("audit: ").count(), 2, "{}", run.err);
    assert!(run.err.contains(" status=failed "), "{}", run.err);
    for f in fragments {
        assert!(run.err.contains(f), "{:?} lacks {f:?}", run.err);
    }
}

#[tokio::test(start_paused = true)]
async fn a_cloud_error_during_execute_is_status_1_and_says_what_was_not_applied() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for (cloud, action, code) in [
        (Cloud::Alibaba, "UpdateConsumerOffset", "InternalError"),
        (Cloud::Tencent, "ModifyGroupOffsets", "FailedOperation"),
    ] {
        let before = e.committed(cloud, &g);
        e.inject(FaultRule::times(Fault::ApiError(code.into()), 1).action(action));
        let run = e
            .execute(cloud, &g, |a| {
                a.topic = vec![T6.into()];
                a.to_earliest = true;
            })
            .await;
        assert_failed(
            &run,
            &[
                "error: the cloud did not apply the reset: ",
                code,
                "error: the reset failed: 3 of 3 partitions not at the target: topic-0006/0, topic-0006/1, topic-0006/2;",
            ],
        );
        assert_eq!(run.out.matches("NOT APPLIED").count(), 3, "{}", run.out);
        assert_eq!(e.committed(cloud, &g), before);
        let writes = e.writes();
        assert_eq!(writes.len(), 1, "sent once, never retried: {writes:#?}");
        assert_eq!(writes[0].outcome, "fault:api_error");
        e.env.sim.state().clear_log();
    }
}

#[tokio::test(start_paused = true)]
async fn business_failures_answered_with_http_200_are_failures() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        // Within [0, log end], so it passes our checks, but below the earliest retained
        // offset: Alibaba answers Success false, Tencent a non-zero ReturnCode.
        let before = e.committed(cloud, &g);
        let run = e
            .execute(cloud, &g, |a| {
                a.topic = vec![T6.into()];
                a.to_offsets = Some("1=1".into());
            })
            .await;
        assert_failed(
            &run,
            &[
                "error: the cloud did not apply the reset: ",
                "1 of 1 partition not at the target: topic-0006/1;",
            ],
        );
        assert_eq!(e.committed(cloud, &g), before);
        let write = &e.writes()[0];
        match cloud {
            Cloud::Alibaba => assert!(run.err.contains("out of range"), "{}", run.err),
            Cloud::Tencent => {
                assert_eq!(write.outcome, "ReturnCode:1");
                assert!(run.err.contains("outside"), "{}", run.err);
            }
        }
        e.env.sim.state().clear_log();
    }
}

#[tokio::test(start_paused = true)]
async fn a_write_that_landed_but_was_reported_failed_is_still_status_1() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    e.inject(FaultRule::times(Fault::Truncated, 1).action("ModifyGroupOffsets"));
    let run = e
        .execute(Cloud::Tencent, &g, |a| {
            a.to_latest = true;
        })
        .await;
    assert_failed(
        &run,
        &["every partition is at its target, yet the cloud reported a failure"],
    );
    assert!(!run.out.contains("NOT APPLIED"), "{}", run.out);
    assert_eq!(e.writes().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_read_before_the_write_is_status_1_and_writes_nothing() {
    let e = Env::new().await;
    e.inject(
        FaultRule::times(Fault::ApiError("AuthFailure.SignatureFailure".into()), 1)
            .action("DescribeGroupInfo"),
    );
    let run = e
        .execute(Cloud::Tencent, &group_name(STOPPED), |a| {
            a.to_latest = true;
        })
        .await;
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(
        run.err.contains("reading the state of group group-0003"),
        "{}",
        run.err
    );
    assert!(run.err.contains("nothing was changed"), "{}", run.err);
    assert_eq!(e.writes(), Vec::new());
}

// ---- the binary ------------------------------------------------------------------------------

/// A configuration file pointing at the simulator, with the keys in files.
fn write_config(dir: &Path, env: &SimEnvironment) -> String {
    let settings = &env.sim.state().settings;
    let mut yaml = String::from("poll_interval: 30s\nrequest_timeout: 10s\naccounts:\n");
    for (cloud, key) in [
        (Cloud::Alibaba, &settings.alibaba_keys[0]),
        (Cloud::Tencent, &settings.tencent_keys[0]),
    ] {
        let id = dir.join(format!("{cloud}-id"));
        let secret = dir.join(format!("{cloud}-secret"));
        std::fs::write(&id, &key.id).unwrap();
        std::fs::write(&secret, &key.secret).unwrap();
        let account = env
            .config
            .accounts
            .iter()
            .find(|a| a.cloud == cloud)
            .unwrap();
        yaml.push_str(&format!(
            "  - name: {}\n    cloud: {cloud}\n    region: {}\n    endpoint: {}\n    credentials: {{id_file: {}, secret_file: {}}}\n    instances: [{{id: {}, groups: [{}]}}]\n",
            account.name,
            account.regions()[0],
            env.sim.endpoint(cloud),
            id.display(),
            secret.display(),
            instance_id(cloud, 1),
            group_name(1),
        ));
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

async fn binary(args: Vec<String>) -> std::process::Output {
    binary_with_env(args, &[]).await
}

/// Runs the binary with stdin closed (not a terminal), and `vars` set.
async fn binary_with_env(args: Vec<String>, vars: &[(&str, &str)]) -> std::process::Output {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kafka-cloud-lag-exporter"))
            .args(&args)
            .envs(vars)
            .env_remove("RUST_BACKTRACE")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("binary runs")
    })
    .await
    .unwrap()
}

// The binary runs on the real clock, so the simulator does too (it checks request times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_dry_runs_executes_and_exits_with_the_documented_statuses() {
    let env = start_environment(
        &WorldSpec::default(),
        SimSettings::default(),
        Clock::system(),
        Duration::from_secs(30),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &env);
    let g = group_name(STOPPED);
    let cmd = |cloud: Cloud, group: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "reset-offsets",
            "--config.file",
            &config,
            "--account",
            account_name(cloud),
            "--instance",
            &instance_id(cloud, 1),
            "--group",
            group,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let text = |o: &std::process::Output| {
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let secrets: Vec<String> = {
        let s = &env.sim.state().settings;
        vec![
            s.alibaba_keys[0].secret.clone(),
            s.tencent_keys[0].secret.clone(),
        ]
    };
    let writes = || {
        env.sim
            .state()
            .requests()
            .into_iter()
            .filter(|r| is_write_action(&r.action))
            .count()
    };

    // Dry run: 0, the plan, no write.
    let o = binary(cmd(Cloud::Tencent, &g, &["--to-latest", "--all-topics"])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.starts_with("TOPIC "), "{out}");
    assert!(err.contains("dry run: nothing was changed"), "{err}");
    assert_eq!(writes(), 0);

    // Execute: 0, the audit line (stderr and the log), one write.
    let backups = dir.path().join("backups");
    let backups_arg = backups.display().to_string();
    for cloud in CLOUDS {
        let o = binary(cmd(
            cloud,
            &g,
            &[
                "--to-latest",
                "--all-topics",
                "--execute",
                "--backup-dir",
                &backups_arg,
            ],
        ))
        .await;
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        assert!(out.contains("RESULT"), "{out}");
        assert!(err.contains("audit: reset-offsets "), "{err}");
        assert!(
            err.contains("WARN reset-offsets: writing committed offsets"),
            "{err}"
        );
        for s in &secrets {
            assert!(
                !out.contains(s.as_str()) && !err.contains(s.as_str()),
                "secret printed"
            );
        }
    }
    assert_eq!(writes(), 2);
    assert_eq!(
        std::fs::read_dir(&backups).unwrap().count(),
        2,
        "a backup each"
    );

    // Without --backup-dir the backup goes under $XDG_STATE_HOME.
    let state = dir.path().join("state");
    let o = binary_with_env(
        cmd(
            Cloud::Tencent,
            &g,
            &["--to-latest", "--all-topics", "--execute"],
        ),
        &[("XDG_STATE_HOME", state.to_str().unwrap())],
    )
    .await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let default_dir = state.join("kafka-cloud-lag-exporter/reset-backups");
    let written: Vec<_> = std::fs::read_dir(&default_dir).unwrap().collect();
    assert_eq!(written.len(), 1, "{err}");
    assert!(
        err.contains(&format!("backup: {}", default_dir.display())),
        "{err}"
    );
    assert_eq!(writes(), 3);

    // Refusals: 2 (an active group; a usage error caught by clap).
    let o = binary(cmd(
        Cloud::Alibaba,
        &group_name(1),
        &["--to-latest", "--all-topics", "--execute"],
    ))
    .await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is active"), "{err}");
    let o = binary(cmd(Cloud::Tencent, &g, &["--execute"])).await;
    assert_eq!(o.status.code(), Some(2));
    let (_, err) = text(&o);
    assert!(err.contains("--to-latest|--to-earliest"), "{err}");
    let o = binary(cmd(
        Cloud::Tencent,
        &g,
        &["--to-offsets", "0=1", "--execute"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o)
            .1
            .contains("--to-offsets needs exactly one --topic")
    );
    let o = binary(cmd(Cloud::Tencent, &g, &["--to-latest", "--execute"])).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("a scope is required"), "{}", text(&o).1);
    // A backup that cannot be written: 2, and nothing is sent.
    let o = binary(cmd(
        Cloud::Tencent,
        &g,
        &[
            "--to-latest",
            "--all-topics",
            "--execute",
            "--backup-dir",
            &config,
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    assert!(
        text(&o).1.contains("cannot write the backup"),
        "{}",
        text(&o).1
    );
    assert_eq!(writes(), 3);

    // A cloud error during execute: 1.
    env.sim.state().inject(
        FaultRule::times(Fault::ApiError("FailedOperation".into()), 1).action("ModifyGroupOffsets"),
    );
    let o = binary(cmd(
        Cloud::Tencent,
        &g,
        &[
            "--to-earliest",
            "--all-topics",
            "--execute",
            "--backup-dir",
            &backups_arg,
        ],
    ))
    .await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains("NOT APPLIED"), "{out}");
    assert_eq!(writes(), 4);
}

// ---- unknown membership ------------------------------------------------------------------

/// Alibaba's documented `GetConsumerProgress` answer has neither `state` nor member fields:
/// whether the group is live cannot be known, so the reset is refused (status 2, nothing
/// written) unless the operator says so with `--assume-inactive`, which the audit records.
#[tokio::test(start_paused = true)]
async fn alibaba_reset_is_refused_when_the_answer_cannot_tell_membership() {
    let e = Env::with_settings(SimSettings {
        alibaba_legacy_answers: true,
        ..SimSettings::default()
    })
    .await;
    for group in [group_name(1), group_name(STOPPED)] {
        let run = e
            .execute(Cloud::Alibaba, &group, |a| a.to_latest = true)
            .await;
        assert_refused(&run, "cannot tell whether group");
        assert!(run.err.contains("--assume-inactive"), "{}", run.err);
    }
    assert_eq!(e.writes(), Vec::new(), "nothing was written");
    // A dry run is refused the same way: its plan would be misleading.
    let dry = e
        .run(&e.args(Cloud::Alibaba, &group_name(STOPPED), |a| a.to_latest = true))
        .await;
    assert_refused(&dry, "cannot tell whether group");

    let run = e
        .execute(Cloud::Alibaba, &group_name(STOPPED), |a| {
            a.to_latest = true;
            a.assume_inactive = true;
        })
        .await;
    assert_executed(&run);
    assert!(run.err.contains(" assume_inactive=true "), "{}", run.err);
    assert_eq!(e.only_write().params["Time"], "-1");
}

/// The flag never overrides what the cloud does report: a group it reports as active stays
/// refused.
#[tokio::test(start_paused = true)]
async fn assume_inactive_does_not_override_a_reported_active_group() {
    let e = Env::new().await;
    for cloud in CLOUDS {
        let run = e
            .execute(cloud, &group_name(1), |a| {
                a.to_latest = true;
                a.assume_inactive = true;
            })
            .await;
        assert_refused(&run, "is active");
    }
    assert_eq!(e.writes(), Vec::new());
}

/// A write whose answer shows no failure but confirms nothing either (no `Success: true`,
/// no `Code` 200) is a failure with the RequestId, not a success.
#[tokio::test(start_paused = true)]
async fn an_unconfirmed_alibaba_write_is_a_failure() {
    let e = Env::new().await;
    e.inject(FaultRule {
        action: Some("UpdateConsumerOffset".into()),
        ..FaultRule::times(Fault::Unconfirmed, 1)
    });
    let run = e
        .execute(Cloud::Alibaba, &group_name(STOPPED), |a| a.to_latest = true)
        .await;
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(run.err.contains("confirms nothing"), "{}", run.err);
    assert!(run.err.contains("request id "), "{}", run.err);
    assert!(run.err.contains("the reset failed"), "{}", run.err);
}

// ---- backups and undo ------------------------------------------------------------------------

/// The path the run printed on its `backup: PATH (...)` line.
fn backup_path(run: &Run) -> std::path::PathBuf {
    let line = run
        .err
        .lines()
        .find_map(|l| l.strip_prefix("backup: "))
        .unwrap_or_else(|| panic!("no backup line: {}", run.err));
    line.split(" (").next().unwrap().into()
}

/// The `topic,partition,offset` lines of a CSV, comments skipped.
fn csv_rows(text: &str) -> BTreeMap<(String, i32), i64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 3, "{l}");
            (
                (f[0].to_string(), f[1].parse().unwrap()),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

/// The last table line for partition `p` of `topic` (the before/after table comes last).
fn table_line<'a>(out: &'a str, topic: &str, p: i32) -> &'a str {
    out.lines()
        .rfind(|l| l.starts_with(&format!("{topic}  {p} ")))
        .unwrap_or_else(|| panic!("no row for {topic}/{p}: {out}"))
}

/// Column `n` (from 0) of the plan table's row for partition `p` of `topic`: 2 is
/// CURRENT-OFFSET, 3 LOG-END-OFFSET, 4 TARGET.
fn planned(out: &str, topic: &str, p: i32, n: usize) -> i64 {
    let plan = &out[..out.find("\nTOPIC ").unwrap_or(out.len())];
    table_line(plan, topic, p)
        .split_whitespace()
        .nth(n)
        .unwrap()
        .parse()
        .unwrap()
}

/// The committed offsets of the partitions that have one.
fn committed_only(offsets: &Offsets) -> BTreeMap<(String, i32), i64> {
    offsets
        .iter()
        .filter_map(|(k, (c, _))| Some((k.clone(), (*c)?)))
        .collect()
}

/// Item 1 and 2 of the incident workflow: `--execute` writes the group's offsets to a
/// backup before anything is sent, and `--from-file <backup>` puts them back exactly, on
/// both clouds.
#[tokio::test(start_paused = true)]
async fn the_backup_holds_the_offsets_before_and_undoes_the_reset_exactly() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let before = e.offsets(cloud, &g);
        let run = e.execute(cloud, &g, |a| a.to_latest = true).await;
        assert_executed(&run);
        let path = backup_path(&run);
        assert!(path.starts_with(e.backups.path()), "{}", path.display());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!(
                "{}.{}.{g}.",
                account_name(cloud),
                instance_id(cloud, 1)
            )),
            "{name}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            csv_rows(&text),
            committed_only(&before),
            "the backup holds exactly the committed offsets before: {text}"
        );
        let region = e
            .env
            .config
            .accounts
            .iter()
            .find(|a| a.cloud == cloud)
            .unwrap()
            .regions()[0]
            .to_string();
        for header in [
            format!(
                "# account={} cloud={cloud} region={region} instance={} group={g}\n",
                account_name(cloud),
                instance_id(cloud, 1)
            ),
            "# planned=to-latest of all topics (topic-0005, topic-0006)\n".to_string(),
            "# no committed offset, so none to restore: topic-0005/0\n".to_string(),
            "--from-file THIS_FILE --execute\n".to_string(),
        ] {
            assert!(text.contains(&header), "{text} lacks {header}");
        }
        let at = text.lines().find_map(|l| l.strip_prefix("# at=")).unwrap();
        assert!(at.starts_with("2023-11-14T22:"), "{at}");
        // The log ends in the header are those of the printed plan.
        for (topic, p) in before.keys() {
            let end = planned(&run.out, topic, *p, 3);
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("# log-end offsets of {topic} ")))
                .unwrap();
            assert!(
                line.contains(&format!(" {p}={end}")),
                "{line} lacks {p}={end}"
            );
        }
        assert_ne!(
            committed_only(&e.offsets(cloud, &g)),
            committed_only(&before),
            "the reset moved the offsets"
        );
        e.env.sim.state().clear_log();

        // The undo is one command.
        let undo = e
            .execute(cloud, &g, |a| a.from_file = Some(path.clone()))
            .await;
        assert_executed(&undo);
        assert!(
            undo.err.contains(&format!(
                "plan: from-file {} (5 rows) of topics topic-0005, topic-0006 of group",
                path.display()
            )),
            "{}",
            undo.err
        );
        let after = e.offsets(cloud, &g);
        assert_eq!(
            committed_only(&after)
                .into_iter()
                .filter(|(k, _)| before[k].0.is_some())
                .collect::<BTreeMap<_, _>>(),
            committed_only(&before),
            "{cloud}: restored exactly"
        );
        let writes = e.writes();
        assert_eq!(writes.len(), 2, "one request per topic: {writes:#?}");
        for (w, topic) in writes.iter().zip([T5, T6]) {
            assert_eq!(w.outcome, "ok");
            match cloud {
                Cloud::Alibaba => {
                    assert_eq!(w.params["ResetType"], "offset");
                    assert_eq!(w.params["Topic"], topic);
                }
                Cloud::Tencent => {
                    assert_eq!(w.action, "BatchModifyGroupOffsets");
                    assert_eq!(w.params["TopicName"], format!("[\"{topic}\"]"));
                }
            }
        }
        e.env.sim.state().clear_log();
    }
    assert_eq!(
        e.backup_files().len(),
        4,
        "every execute wrote its own backup"
    );

    // A reset of one topic backs up that topic; the others are on record, not restored.
    for cloud in CLOUDS {
        let before = e.committed(cloud, &g);
        let run = e
            .execute(cloud, &g, |a| {
                a.topic = vec![T6.into()];
                a.to_earliest = true;
            })
            .await;
        assert_executed(&run);
        let path = backup_path(&run);
        let text = std::fs::read_to_string(&path).unwrap();
        let t6: BTreeMap<(String, i32), i64> = before
            .iter()
            .filter(|(k, _)| k.0 == T6)
            .map(|(k, c)| (k.clone(), c.unwrap()))
            .collect();
        assert_eq!(csv_rows(&text), t6, "{text}");
        for p in 1..3 {
            let line = format!("\n# {T5},{p},{}\n", before[&(T5.to_string(), p)].unwrap());
            assert!(text.contains(&line), "{text} lacks {line}");
        }
        e.env.sim.state().clear_log();
        let undo = e.execute(cloud, &g, |a| a.from_file = Some(path)).await;
        assert_executed(&undo);
        assert_eq!(
            e.committed(cloud, &g),
            before,
            "{cloud}: the undo of one topic"
        );
        assert_eq!(e.writes().len(), 1, "one topic, one request");
        e.env.sim.state().clear_log();
    }
}

#[tokio::test(start_paused = true)]
async fn a_backup_that_cannot_be_written_stops_the_reset_before_any_write() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    let not_a_dir = e.backups.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    for cloud in CLOUDS {
        let before = e.committed(cloud, &g);
        let mut args = e.args(cloud, &g, |a| a.to_latest = true);
        args.execute = true;
        args.backup_dir = Some(not_a_dir.join("backups"));
        let run = e.run(&args).await;
        assert_eq!(run.code, 2, "{}", run.err);
        assert!(
            run.err.contains(&format!(
                "error: cannot write the backup of the offsets of group {g} in {}",
                not_a_dir.join("backups").display()
            )),
            "{}",
            run.err
        );
        assert!(
            run.err
                .contains("nothing was changed. Give a writable directory with --backup-dir"),
            "{}",
            run.err
        );
        assert!(!run.err.contains("audit:"), "{}", run.err);
        assert_eq!(e.committed(cloud, &g), before);
    }
    assert_eq!(e.writes(), Vec::new());
}

// ---- multi-request plans that stop part way ----------------------------------------------------

/// Explicit offsets for every partition of topics 5 and 6, away from the current ones.
fn offsets_file(
    e: &Env,
    cloud: Cloud,
    name: &str,
) -> (std::path::PathBuf, BTreeMap<(String, i32), i64>) {
    let mut wanted = BTreeMap::new();
    for topic in [T5, T6] {
        for p in 0..3 {
            wanted.insert(
                (topic.to_string(), p),
                e.partition(cloud, topic, p as usize).earliest + 3 + i64::from(p),
            );
        }
    }
    let text: String = wanted
        .iter()
        .map(|((t, p), o)| format!("{t},{p},{o}\n"))
        .collect();
    let path = e.backups.path().join(name);
    std::fs::write(&path, format!("# a hand-made plan\n{text}")).unwrap();
    (path, wanted)
}

/// A plan of two requests (one topic each) whose second write fails: the first topic moved,
/// the second did not, and the table, the status, the error and the audit line all say so
/// partition by partition. The backup undoes the part that landed.
#[tokio::test(start_paused = true)]
async fn a_failure_on_the_second_write_is_reported_partition_by_partition() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for (cloud, action, code) in [
        (Cloud::Alibaba, "UpdateConsumerOffset", "InternalError"),
        (Cloud::Tencent, "BatchModifyGroupOffsets", "FailedOperation"),
    ] {
        let before = e.committed(cloud, &g);
        let (file, wanted) = offsets_file(&e, cloud, &format!("{cloud}-plan.csv"));
        e.inject(
            FaultRule::times(Fault::ApiError(code.into()), 1)
                .action(action)
                .after(1),
        );
        let run = e
            .execute(cloud, &g, |a| a.from_file = Some(file.clone()))
            .await;
        assert_failed(
            &run,
            &[
                "6 partitions in 2 requests",
                &format!("error: the cloud did not apply request 2 of 2 (topic {T6}): "),
                code,
                "error: the reset failed: 3 of 6 partitions not at the target: topic-0006/0, topic-0006/1, topic-0006/2; moved: topic-0005/0:none->",
                "; requests: 1 of 2 accepted. To undo, run this command with --from-file ",
            ],
        );
        for p in 0..3 {
            assert!(
                table_line(&run.out, T5, p).ends_with(" applied"),
                "{}",
                run.out
            );
            assert!(
                table_line(&run.out, T6, p).ends_with(" NOT APPLIED"),
                "{}",
                run.out
            );
        }
        let result = run
            .err
            .lines()
            .find(|l| l.starts_with("audit: reset-offsets result "))
            .unwrap();
        assert!(
            result.contains(" status=failed requests_accepted=1/2 moved=topic-0005/0:none->"),
            "{result}"
        );
        assert!(
            result.contains(" unmoved=topic-0006/0,topic-0006/1,topic-0006/2 "),
            "{result}"
        );
        let after = e.committed(cloud, &g);
        for (k, c) in &after {
            let expected = if k.0 == T5 {
                Some(wanted[k])
            } else {
                before[k]
            };
            assert_eq!(*c, expected, "{cloud} {k:?}");
        }
        let writes = e.writes();
        assert_eq!(writes.len(), 2);
        assert_eq!(
            (writes[0].outcome.as_str(), writes[1].outcome.as_str()),
            ("ok", "fault:api_error")
        );
        e.env.sim.state().clear_log();

        // The backup written before the first request undoes what landed.
        let undo = e
            .execute(cloud, &g, |a| a.from_file = Some(backup_path(&run)))
            .await;
        assert_executed(&undo);
        for (k, c) in e.committed(cloud, &g) {
            let expected = if k == (T5.to_string(), 0) {
                after[&k]
            } else {
                before[&k]
            };
            assert_eq!(
                c, expected,
                "{cloud} {k:?}: restored (0 had no offset to restore)"
            );
        }
        e.env.sim.state().clear_log();
    }
}

/// The first request fails: the second is not sent, and says so.
#[tokio::test(start_paused = true)]
async fn requests_after_a_failure_are_not_sent_and_reported_as_such() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for (cloud, action) in [
        (Cloud::Alibaba, "UpdateConsumerOffset"),
        (Cloud::Tencent, "BatchModifyGroupOffsets"),
    ] {
        let before = e.committed(cloud, &g);
        let (file, _) = offsets_file(&e, cloud, &format!("{cloud}-first.csv"));
        e.inject(FaultRule::times(Fault::ServerError, 1).action(action));
        let mut args = e.args(cloud, &g, |a| a.from_file = Some(file));
        args.execute = true;
        args.output = ResetOutput::Json;
        let run = e.run(&args).await;
        assert_eq!(run.code, 1, "{}", run.err);
        assert!(
            run.err
                .contains("error: the cloud did not apply request 1 of 2 (topic topic-0005): "),
            "{}",
            run.err
        );
        assert!(
            run.err.contains("; the request after it was not sent"),
            "{}",
            run.err
        );
        assert!(
            run.err
                .contains("no partition moved; requests: 0 of 2 accepted, 1 not sent."),
            "{}",
            run.err
        );
        let doc: serde_json::Value = serde_json::from_str(&run.out).unwrap();
        assert_eq!(doc["status"], "failed");
        assert!(
            doc["error"]
                .as_str()
                .unwrap()
                .starts_with("the reset failed: 6 of 6 partitions not at the target")
        );
        assert_eq!(doc["requests"][0]["result"], "failed");
        assert!(
            doc["requests"][0]["error"]
                .as_str()
                .unwrap()
                .contains("InternalError"),
            "{doc}"
        );
        assert_eq!(doc["requests"][1]["result"], "not_sent");
        assert_eq!(doc["requests"][1]["scope"], "topic topic-0006");
        for p in doc["partitions"].as_array().unwrap() {
            let expected = if p["topic"] == T5 {
                "not_applied"
            } else {
                "not_sent"
            };
            assert_eq!(p["result"], expected, "{p}");
            assert_eq!(p["after"], p["before"], "nothing moved: {p}");
        }
        assert_eq!(e.committed(cloud, &g), before);
        assert_eq!(e.writes().len(), 1, "the second request was not sent");
        e.env.sim.state().clear_log();
    }
}

// ---- the new targets --------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn to_current_sets_every_partition_to_its_offset_as_read() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let before = e.offsets(cloud, &g);
        let run = e.execute(cloud, &g, |a| a.to_current = true).await;
        assert_executed(&run);
        assert!(
            run.err.contains("6 partitions in 2 requests"),
            "{}",
            run.err
        );
        let writes = e.writes();
        assert_eq!(writes.len(), 2, "explicit offsets, one topic per request");
        let after = e.offsets(cloud, &g);
        for (k, (c, end)) in &before {
            let planned_end = planned(&run.out, &k.0, k.1, 3);
            assert!(planned_end >= *end, "the log end only grows");
            assert_eq!(planned(&run.out, &k.0, k.1, 4), c.unwrap_or(planned_end));
            assert_eq!(after[k].0, Some(c.unwrap_or(planned_end)), "{cloud} {k:?}");
        }
        e.env.sim.state().clear_log();
    }
}

/// Alibaba has no relative reset: the shift is sent as the explicit offsets planned.
#[tokio::test(start_paused = true)]
async fn shift_by_works_on_both_clouds() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let before = e.committed(cloud, &g);
        let run = e
            .execute(cloud, &g, |a| {
                a.topic = vec![T6.into()];
                a.shift_by = Some(-5);
            })
            .await;
        assert_executed(&run);
        let write = e.only_write();
        let shifted = |p: i32| before[&(T6.to_string(), p)].unwrap() - 5;
        match cloud {
            Cloud::Alibaba => {
                assert!(
                    run.err.contains(
                        "note: alibaba has no relative reset: TARGET is sent as explicit offsets"
                    ),
                    "{}",
                    run.err
                );
                assert_eq!(write.params["ResetType"], "offset");
                assert_eq!(
                    write.params["Offsets"],
                    format!(
                        r#"[{{"Partition":0,"Offset":{}}},{{"Partition":1,"Offset":{}}},{{"Partition":2,"Offset":{}}}]"#,
                        shifted(0),
                        shifted(1),
                        shifted(2)
                    )
                );
            }
            Cloud::Tencent => assert_eq!(write.params["Shift"], "-5"),
        }
        for (k, c) in e.committed(cloud, &g) {
            let expected = if k.0 == T6 {
                Some(shifted(k.1))
            } else {
                before[&k]
            };
            assert_eq!(c, expected, "{cloud} {k:?}");
        }
        e.env.sim.state().clear_log();
    }
}

#[tokio::test(start_paused = true)]
async fn topics_repeat_and_take_partition_lists() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        // Some partitions of a topic, to the latest offset.
        let before = e.committed(cloud, &g);
        let run = e
            .execute(cloud, &g, |a| {
                a.topic = vec![format!("{T6}:0,2")];
                a.to_latest = true;
            })
            .await;
        assert_executed(&run);
        assert!(
            run.err
                .contains("plan: to-latest of topic topic-0006:0,2 of group"),
            "{}",
            run.err
        );
        let write = e.only_write();
        let planned_end = |p| planned(&run.out, T6, p, 3);
        match cloud {
            Cloud::Alibaba => {
                // No partition list for time resets: the log ends as read, explicitly.
                assert_eq!(write.params["ResetType"], "offset");
                assert!(write.params["Offsets"].contains(r#""Partition":2"#));
                assert!(!write.params["Offsets"].contains(r#""Partition":1"#));
            }
            Cloud::Tencent => {
                assert_eq!(write.params["Partitions"], "[0,2]");
                assert_eq!(write.params["ShiftTimestamp"], "-1");
            }
        }
        for (k, c) in e.committed(cloud, &g) {
            if k.0 == T6 && k.1 != 1 {
                let expected = match cloud {
                    // The log end as planned, sent explicitly.
                    Cloud::Alibaba => planned_end(k.1),
                    // The log end when the reset is applied.
                    Cloud::Tencent => e.partition(cloud, T6, k.1 as usize).log_end(write.at_ms),
                };
                assert_eq!(c, Some(expected), "{cloud} {k:?}");
            } else {
                assert_eq!(c, before[&k], "{cloud} {k:?} untouched");
            }
        }
        e.env.sim.state().clear_log();

        // Several whole topics: Alibaba one request each, Tencent one for both.
        let run = e
            .execute(cloud, &g, |a| {
                a.topic = vec![T5.into(), T6.into()];
                a.to_earliest = true;
            })
            .await;
        assert_executed(&run);
        let writes = e.writes();
        match cloud {
            Cloud::Alibaba => {
                let topics: Vec<&str> = writes.iter().map(|w| w.params["Topic"].as_str()).collect();
                assert_eq!(topics, [T5, T6]);
            }
            Cloud::Tencent => {
                assert_eq!(writes.len(), 1);
                assert_eq!(writes[0].params["Topics"], r#"["topic-0005","topic-0006"]"#);
            }
        }
        for ((topic, p), c) in e.committed(cloud, &g) {
            assert_eq!(
                c,
                Some(e.partition(cloud, &topic, p as usize).earliest),
                "{cloud} {topic}/{p}"
            );
        }
        e.env.sim.state().clear_log();
    }
}

// ---- export and JSON ------------------------------------------------------------------------

/// `--export` prints the plan as the CSV `--from-file` reads, and writes nothing; applying
/// that file does what the plan said.
#[tokio::test(start_paused = true)]
async fn export_prints_the_plan_as_the_csv_from_file_reads() {
    let e = Env::new().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let before = e.committed(cloud, &g);
        let run = e
            .run(&e.args(cloud, &g, |a| {
                a.topic = vec![T6.into()];
                a.shift_by = Some(-7);
                a.export = true;
            }))
            .await;
        assert_ok(&run);
        assert!(
            run.err.contains("export: nothing was changed"),
            "{}",
            run.err
        );
        let rows = csv_rows(&run.out);
        let expected: BTreeMap<(String, i32), i64> = (0..3)
            .map(|p| {
                (
                    (T6.to_string(), p),
                    before[&(T6.to_string(), p)].unwrap() - 7,
                )
            })
            .collect();
        assert_eq!(rows, expected, "{}", run.out);
        assert!(
            !run.out.contains('#'),
            "an export is plain CSV: {}",
            run.out
        );
        assert_eq!(e.writes(), Vec::new());
        assert!(e.backup_files().is_empty());
        let file = elsewhere.path().join(format!("{cloud}-export.csv"));
        std::fs::write(&file, &run.out).unwrap();
        let run = e
            .execute(cloud, &g, |a| a.from_file = Some(file.clone()))
            .await;
        assert_executed(&run);
        for (k, c) in e.committed(cloud, &g) {
            assert_eq!(c, rows.get(&k).copied().or(before[&k]), "{cloud} {k:?}");
        }
        std::fs::remove_file(backup_path(&run)).unwrap();
        e.env.sim.state().clear_log();
    }
}

/// `--output json`: one document on stdout, parsed here, for the plan and the result.
#[tokio::test(start_paused = true)]
async fn json_output_has_the_plan_and_the_result_of_each_partition() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let mut args = e.args(cloud, &g, |a| a.to_latest = true);
        args.output = ResetOutput::Json;
        let dry = e.run(&args).await;
        assert_ok(&dry);
        let doc: serde_json::Value = serde_json::from_str(&dry.out).unwrap();
        assert_eq!(doc["status"], "dry_run");
        assert_eq!(doc["cloud"], cloud.to_string());
        assert_eq!(doc["group"], g);
        assert_eq!(doc["target"], "to-latest");
        assert!(doc.get("backup").is_none());
        let before = e.offsets(cloud, &g);
        let parts = doc["partitions"].as_array().unwrap();
        assert_eq!(parts.len(), before.len());
        for p in parts {
            let k = (
                p["topic"].as_str().unwrap().to_string(),
                p["partition"].as_i64().unwrap() as i32,
            );
            assert_eq!(p["before"].as_i64(), before[&k].0, "{p}");
            assert_eq!(p["target"], p["log_end"], "{p}");
            assert!(p.get("after").is_none() && p.get("result").is_none(), "{p}");
        }

        args.execute = true;
        let run = e.run(&args).await;
        assert_eq!(run.code, 0, "{}", run.err);
        let doc: serde_json::Value = serde_json::from_str(&run.out).unwrap();
        assert_eq!(doc["status"], "applied");
        assert_eq!(
            doc["backup"].as_str().unwrap(),
            backup_path(&run).display().to_string()
        );
        assert_eq!(doc["requests"][0]["result"], "accepted");
        let now = e.committed(cloud, &g);
        for p in doc["partitions"].as_array().unwrap() {
            let k = (
                p["topic"].as_str().unwrap().to_string(),
                p["partition"].as_i64().unwrap() as i32,
            );
            assert_eq!(p["after"].as_i64(), now[&k], "{p}");
            assert_eq!(p["result"], "applied", "{p}");
            assert!(p["after"].as_i64() >= p["target"].as_i64(), "{p}");
        }
        assert!(
            run.err.contains("audit: reset-offsets start "),
            "{}",
            run.err
        );

        // --export prints CSV, so it does not mix with JSON (clap refuses it too).
        let mut export = args.clone();
        (export.export, export.execute) = (true, false);
        let run = e.run(&export).await;
        assert_eq!(run.code, 2);
        let doc: serde_json::Value = serde_json::from_str(&run.out).unwrap();
        assert!(
            doc["error"]
                .as_str()
                .unwrap()
                .starts_with("--export prints the plan as CSV"),
            "{doc}"
        );

        // A refusal is a document too.
        args.group = "group-nope".into();
        let run = e.run(&args).await;
        assert_eq!(run.code, 2);
        let doc: serde_json::Value = serde_json::from_str(&run.out).unwrap();
        assert_eq!(doc["status"], "refused");
        assert!(
            doc["error"].as_str().unwrap().contains("group group-nope"),
            "{doc}"
        );
        assert_eq!(doc["partitions"], serde_json::json!([]));
        e.env.sim.state().clear_log();
    }
}

// ---- confirmation on a terminal -------------------------------------------------------------

/// A terminal whose first read runs `hook` (what happens while the operator reads the
/// plan), then answers `answer`.
struct Terminal<F: FnMut()> {
    hook: Option<F>,
    answer: std::io::Cursor<Vec<u8>>,
}

impl<F: FnMut()> Terminal<F> {
    fn new(answer: &str, hook: F) -> Self {
        Terminal {
            hook: Some(hook),
            answer: std::io::Cursor::new(answer.as_bytes().to_vec()),
        }
    }
}

impl<F: FnMut()> std::io::Read for Terminal<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.answer, buf)
    }
}

impl<F: FnMut()> BufRead for Terminal<F> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if let Some(mut hook) = self.hook.take() {
            hook();
        }
        self.answer.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.answer.consume(n);
    }
}

fn typed(answer: &str) -> Terminal<fn()> {
    Terminal::new(answer, || {})
}

#[tokio::test(start_paused = true)]
async fn on_a_terminal_the_group_name_must_be_typed() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    let cloud = Cloud::Tencent;
    let mut args = e.args(cloud, &g, |a| a.to_latest = true);
    args.execute = true;

    for answer in ["group-0001\n", "\n", ""] {
        let run = e.run_on_terminal(&args, &mut typed(answer)).await;
        assert_eq!(run.code, 2, "{answer:?}: {}", run.err);
        assert!(
            run.err
                .contains("type the group name to apply it, anything else to cancel: "),
            "{}",
            run.err
        );
        assert!(run.err.contains("error: not confirmed"), "{}", run.err);
        assert!(
            run.out.starts_with("TOPIC "),
            "the plan was shown: {}",
            run.out
        );
    }
    assert_eq!(e.writes(), Vec::new());
    assert!(
        e.backup_files().is_empty(),
        "nothing written before the confirmation"
    );

    let run = e.run_on_terminal(&args, &mut typed(" group-0003 \n")).await;
    assert_executed(&run);
    assert!(run.err.contains(" confirmation=typed "), "{}", run.err);
    e.env.sim.state().clear_log();

    // --yes skips the question; without a terminal nothing is asked (as before).
    args.yes = true;
    let run = e.run_on_terminal(&args, &mut typed("")).await;
    assert_executed(&run);
    assert!(!run.err.contains("type the group name"), "{}", run.err);
    assert!(run.err.contains(" confirmation=yes-flag "), "{}", run.err);
    args.yes = false;
    let run = e.run(&args).await;
    assert_executed(&run);
    assert!(
        run.err.contains(" confirmation=no-terminal "),
        "{}",
        run.err
    );
}

/// While the operator reads the plan the group may change: what was confirmed must still
/// hold, or nothing is written.
#[tokio::test(start_paused = true)]
async fn a_group_that_changes_at_the_prompt_is_refused() {
    let e = Env::new().await;
    let g = group_name(STOPPED);
    for cloud in CLOUDS {
        let mut args = e.args(cloud, &g, |a| a.to_earliest = true);
        args.execute = true;
        let state = e.env.sim.state().clone();
        let (inst, group, now) = (instance_id(cloud, 1), g.clone(), e.now_ms());
        let mut moved = Terminal::new("group-0003\n", move || {
            state.world(|w| {
                w.reset(
                    cloud,
                    &inst,
                    &group,
                    &[T6.to_string()],
                    &[1],
                    &ResetTo::Latest,
                    now,
                )
                .unwrap()
            });
        });
        let run = e.run_on_terminal(&args, &mut moved).await;
        assert_eq!(run.code, 2, "{}", run.err);
        assert!(
            run.err.contains("error: the committed offset of partition 1 of topic topic-0006 changed while waiting for confirmation"),
            "{}",
            run.err
        );

        let (state, inst, group) = (e.env.sim.state().clone(), instance_id(cloud, 1), g.clone());
        let mut started = Terminal::new("group-0003\n", move || {
            state.world(|w| w.set_members(cloud, &inst, &group, 1, now).unwrap());
        });
        let run = e.run_on_terminal(&args, &mut started).await;
        assert_eq!(run.code, 2, "{}", run.err);
        assert!(
            run.err.contains("error: group group-0003 is active"),
            "{}",
            run.err
        );
        e.set_members(cloud, &g, 0);
    }
    assert_eq!(e.writes(), Vec::new());
    assert!(e.backup_files().is_empty());
}
