//! `reset-offsets` against the simulator: every target on both clouds, dry runs that
//! write nothing, each refusal, cloud failures during execute, the exact request
//! parameters, and the binary's exit statuses. Library runs use virtual time; nothing
//! sleeps.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kafka_cloud_lag_exporter::cli::ResetArgs;
use kafka_cloud_lag_exporter::commands::demo::account_name;
use kafka_cloud_lag_exporter::commands::reset;
use kafka_cloud_lag_exporter::config::{Account, Config, InstanceDiscovery};
use kafka_cloud_lag_exporter::credentials::{CredentialSources, Source};
use kafka_cloud_lag_exporter::exporter::Runtime;
use kafka_cloud_lag_exporter::model::Cloud;
use kcle_clock::{Clock, unix_millis};
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{SimPartition, WorldSpec, group_name, instance_id};
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
        Env { clock, env }
    }

    /// Arguments for `group` of the cloud's first instance; `edit` adds the target.
    fn args(&self, cloud: Cloud, group: &str, edit: impl FnOnce(&mut ResetArgs)) -> ResetArgs {
        let mut args = ResetArgs {
            account: account_name(cloud).into(),
            instance: instance_id(cloud, 1),
            group: group.into(),
            ..ResetArgs::default()
        };
        edit(&mut args);
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
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let runtime = Runtime {
            clock: self.clock.clone(),
            credentials: Arc::new(resolver),
            http: kafka_cloud_lag_exporter::providers::http::client(),
        };
        let code = reset::run(args, config, &runtime, &mut out, &mut err).await;
        Run {
            code,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        }
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
        run.err.matches("audit: reset-offsets ").count(),
        1,
        "{}",
        run.err
    );
    assert!(run.err.contains("reset applied: "), "{}", run.err);
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
                a.topic = Some(T5.into());
                a.to_offsets = Some(format!("1={}", earliest + 11));
            }),
        ];
        if cloud == Cloud::Tencent {
            targets.push(Box::new(|a| {
                a.topic = Some(T6.into());
                a.shift_by = Some(-5);
            }));
        }
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
            a.topic = Some(T6.into());
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
                a.topic = Some(T5.into());
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
    let ts = e.now_ms() - 300_000;
    for cloud in CLOUDS {
        for by_datetime in [false, true] {
            let run = e
                .execute(cloud, &g, |a| {
                    a.topic = Some(T6.into());
                    if by_datetime {
                        a.to_datetime = Some(reset::fmt_time_ms(ts));
                    } else {
                        a.to_timestamp_ms = Some(ts);
                    }
                })
                .await;
            assert_executed(&run);
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
                a.topic = Some(T5.into());
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
            a.topic = Some(T6.into());
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
            a.topic = Some(T6.into());
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
    ] {
        assert!(audit.contains(field), "{audit} lacks {field}");
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
                a.topic = Some("topic-0001".into());
                a.to_latest = true;
            }),
            "--topic: group group-0003 has no offsets on topic topic-0001 (its topics: topic-0005, topic-0006)".into(),
        ),
        (
            e.args(ali, &g, |a| {
                a.topic = Some(T5.into());
                a.to_offsets = Some("9=1".into());
            }),
            "--to-offsets: topic topic-0005 has no partition 9 (partitions: 0, 1, 2)".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.topic = Some(T5.into());
                a.to_offsets = Some(format!("1={}", log_end_5_1 + 1));
            }),
            format!(
                "--to-offsets: offset {} for partition 1 of topic topic-0005 is outside [0, {log_end_5_1}]",
                log_end_5_1 + 1
            ),
        ),
        (
            e.args(ali, &g, |a| {
                a.topic = Some(T5.into());
                a.to_offsets = Some("1=-3".into());
            }),
            "offset -3 for partition 1 of topic topic-0005 is outside".into(),
        ),
        (
            e.args(tc, &g, |a| a.to_offsets = Some("0=1".into())),
            "--to-offsets needs --topic".into(),
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
                a.topic = Some(T6.into());
                a.shift_by = Some(-5);
            }),
            "alibaba has no shift-by reset; set the offsets you want with --topic and --to-offsets".into(),
        ),
        (
            e.args(tc, &g, |a| {
                a.topic = Some(T5.into());
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
            args.execute = execute;
            let run = e.run(&args).await;
            assert_refused(&run, fragment);
        }
    }
    assert_eq!(e.writes(), Vec::new());
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
        e.args(Cloud::Alibaba, &g, |a| a.shift_by = Some(1)),
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
    assert_eq!(run.err.matches("audit: ").count(), 1, "{}", run.err);
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
                a.topic = Some(T6.into());
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
                a.topic = Some(T6.into());
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
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kafka-cloud-lag-exporter"))
            .args(&args)
            .env_remove("RUST_BACKTRACE")
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
    let o = binary(cmd(Cloud::Tencent, &g, &["--to-latest"])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.starts_with("TOPIC "), "{out}");
    assert!(err.contains("dry run: nothing was changed"), "{err}");
    assert_eq!(writes(), 0);

    // Execute: 0, the audit line (stderr and the log), one write.
    for cloud in CLOUDS {
        let o = binary(cmd(cloud, &g, &["--to-latest", "--execute"])).await;
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

    // Refusals: 2 (an active group; a usage error caught by clap).
    let o = binary(cmd(
        Cloud::Alibaba,
        &group_name(1),
        &["--to-latest", "--execute"],
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
    assert!(text(&o).1.contains("--to-offsets needs --topic"));
    assert_eq!(writes(), 2);

    // A cloud error during execute: 1.
    env.sim.state().inject(
        FaultRule::times(Fault::ApiError("FailedOperation".into()), 1).action("ModifyGroupOffsets"),
    );
    let o = binary(cmd(Cloud::Tencent, &g, &["--to-earliest", "--execute"])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains("NOT APPLIED"), "{out}");
    assert_eq!(writes(), 3);
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
