//! The daemon's own loop (`Scheduler::run`, what the process runs) on virtual time: rounds
//! spread over the interval, a round that cannot fit and stretches, a group still polling
//! when its turn comes again, discovery on its own interval, staleness at exactly
//! `stale_after`, a reload in the middle of a round, and the shutdown grace. The test
//! runtime's clock is paused, so hours of schedule take no real time; times are read
//! from the simulator's request log, which is stamped with the same clock.

mod support;

use std::time::Duration;

use kafka_cloud_lag_exporter::config::NameFilter;
use kafka_cloud_lag_exporter::model::Cloud;
use kafka_cloud_lag_exporter::scheduler::SHUTDOWN_GRACE;
use kcle_clock::unix_millis;
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{WorldSpec, group_name, instance_id};
use kcle_sim::{LoggedRequest, SimSettings};
use support::{Harness, T0_SECS, advance, get, parse};
use tokio::sync::watch;

const T0_MS: i64 = T0_SECS as i64 * 1000;

/// The daemon loop of a harness, running in the background until [`Daemon::stop`].
struct Daemon {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(h: &Harness) -> Daemon {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(h.exporter.scheduler.clone().run(stopped));
    Daemon { stop, task }
}

impl Daemon {
    async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.unwrap();
    }
}

/// Waits (in virtual time) until `n` rounds have finished.
async fn rounds(h: &Harness, n: u64) {
    let mut finished = h.exporter.scheduler.rounds_finished();
    finished.wait_for(|r| *r >= n).await.unwrap();
}

/// Successful poll requests of `cloud`, as (ms after T0, group).
fn polls(h: &Harness, cloud: Cloud) -> Vec<(i64, String)> {
    let action = kafka_cloud_lag_exporter::providers::profile(cloud).poll_action;
    h.env
        .sim
        .state()
        .requests()
        .iter()
        .filter(|r| r.cloud == cloud && r.action == action)
        .map(|r: &LoggedRequest| (r.at_ms - T0_MS, r.group.clone().unwrap_or_default()))
        .collect()
}

/// Moves virtual time to `ms` after T0.
async fn advance_to(h: &Harness, ms: i64) {
    let now = unix_millis(h.clock.now()) - T0_MS;
    advance(Duration::from_millis((ms - now) as u64)).await;
}

fn spec() -> WorldSpec {
    WorldSpec {
        groups_per_instance: 3,
        topics_per_group: 1,
        partitions_per_topic: 1,
        ..WorldSpec::default()
    }
}

/// The first round starts every poll at the budget's pace; later rounds spread the
/// groups evenly over `poll_interval` and start on time, round after round.
#[tokio::test(start_paused = true)]
async fn rounds_are_spread_over_the_interval() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let daemon = start(&h);
    rounds(&h, 3).await;
    daemon.stop().await;
    let (g1, g2, g3) = (group_name(1), group_name(2), group_name(3));
    let at = |times: &[i64], groups: [&String; 3]| -> Vec<(i64, String)> {
        times
            .iter()
            .zip(groups.iter().cycle())
            .map(|(t, g)| (*t, g.to_string()))
            .collect()
    };
    // Alibaba: 10/s budget in round 0; rounds of 30 s spread 10 s apart after it.
    let alibaba = polls(&h, Cloud::Alibaba);
    assert_eq!(
        alibaba[..9],
        at(
            &[0, 100, 200, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000],
            [&g1, &g2, &g3]
        )[..]
    );
    // Tencent: the documented 100/s in round 0.
    let tencent = polls(&h, Cloud::Tencent);
    assert_eq!(
        tencent[..6],
        at(&[0, 10, 20, 30_000, 40_000, 50_000], [&g1, &g2, &g3])[..]
    );
    let s = parse(&h.text());
    assert_eq!(
        get(
            &s,
            "kafka_cloud_lag_exporter_poll_round_duration_seconds",
            &[]
        ),
        Some(20.0),
        "the last round's polls span 20 s of its 30"
    );
}

/// A round whose polls cannot fit the interval at the account's budget stretches to what
/// fits: polls keep the budget's spacing, the next round starts when the last is due, and
/// the round's need is exported.
#[tokio::test(start_paused = true)]
async fn a_round_that_cannot_fit_stretches_instead_of_overlapping() {
    let h = Harness::with_config(spec(), SimSettings::default(), |c| {
        for a in c.accounts.iter_mut().filter(|a| a.cloud == Cloud::Alibaba) {
            a.api_rate_limits.insert("GetConsumerProgress".into(), 0.05);
        }
    })
    .await;
    let daemon = start(&h);
    rounds(&h, 2).await;
    daemon.stop().await;
    let times: Vec<i64> = polls(&h, Cloud::Alibaba).iter().map(|(t, _)| *t).collect();
    // 3 polls at one per 20 s need 60 s: rounds start at 0 and 60 s, not at 30 s.
    assert_eq!(times[..6], [0, 20_000, 40_000, 60_000, 80_000, 100_000]);
    let s = parse(&h.text());
    assert_eq!(
        get(
            &s,
            "kafka_cloud_lag_exporter_poll_round_budget_seconds",
            &[("cloud", "alibaba"), ("account", "sim-alibaba")]
        ),
        Some(60.0)
    );
}

/// A group whose poll is still running when its next turn comes is skipped (and counted),
/// never polled twice at once. Here a reload removes the groups before it mid-round, so
/// its next turn comes 10 s after its hung poll began.
#[tokio::test(start_paused = true)]
async fn a_group_still_polling_at_its_next_turn_is_skipped_and_counted() {
    let h = Harness::with_config(spec(), SimSettings::default(), |c| {
        c.request_timeout = Some(Duration::from_secs(25));
    })
    .await;
    let daemon = start(&h);
    rounds(&h, 1).await;
    let g3 = group_name(3);
    h.env.sim.state().inject(
        FaultRule::times(Fault::Hang, 1)
            .cloud(Cloud::Tencent)
            .action("DescribeGroupOffsets")
            .group(&g3),
    );
    // Round 1 polls group 3 at +50 s and hangs until +75 s; at +55 s a reload leaves
    // group 3 alone, so round 2 (at +60 s) polls it first, while the hung poll still runs.
    advance(Duration::from_secs(55)).await;
    let mut config = h.exporter.config();
    for a in &mut config.accounts {
        a.instances[0].groups.retain(|g| *g == g3);
    }
    h.exporter.apply(config);
    advance(Duration::from_secs(30)).await;
    daemon.stop().await;
    let s = parse(&h.text());
    assert_eq!(
        get(
            &s,
            "kafka_cloud_lag_exporter_polls_skipped_total",
            &[("cloud", "tencent")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            &s,
            "kafka_cloud_lag_exporter_polls_skipped_total",
            &[("cloud", "alibaba")]
        ),
        Some(0.0)
    );
    let tencent_g3: Vec<i64> = polls(&h, Cloud::Tencent)
        .into_iter()
        .filter(|(_, g)| *g == g3)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        tencent_g3,
        [20, 50_000],
        "no second poll while the first hangs"
    );
}

/// Discovery runs before the first round and then every `discovery_interval` on its own
/// timer, whatever the poll rounds do.
#[tokio::test(start_paused = true)]
async fn discovery_is_refreshed_every_discovery_interval() {
    let h = Harness::with_config(spec(), SimSettings::default(), |c| {
        c.discovery_interval = Duration::from_secs(70);
        for a in c.accounts.iter_mut().filter(|a| a.cloud == Cloud::Alibaba) {
            a.instances[0].groups.clear();
            a.instances[0].discover_groups = Some(NameFilter::default());
        }
    })
    .await;
    let daemon = start(&h);
    advance(Duration::from_secs(300)).await;
    daemon.stop().await;
    let listings: Vec<i64> = h
        .env
        .sim
        .state()
        .requests()
        .iter()
        .filter(|r| r.action == "GetConsumerList")
        .map(|r| r.at_ms - T0_MS)
        .collect();
    assert_eq!(listings, [0, 70_000, 140_000, 210_000, 280_000]);
    assert!(
        polls(&h, Cloud::Alibaba).len() >= 9,
        "discovered groups are polled"
    );
}

/// A group whose polls fail keeps its last values for exactly `stale_after` (default
/// 3 × `poll_interval`) after its last success, with `group_up` 0; then its lag goes.
#[tokio::test(start_paused = true)]
async fn staleness_begins_exactly_at_stale_after() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let daemon = start(&h);
    rounds(&h, 1).await;
    let g1 = group_name(1);
    h.env.sim.state().inject(
        FaultRule::random(Fault::ApiError("InvalidParameter".into()), 1.0)
            .cloud(Cloud::Tencent)
            .group(&g1),
    );
    let iid = instance_id(Cloud::Tencent, 1);
    let g = [
        ("cloud", "tencent"),
        ("instance_id", iid.as_str()),
        ("consumergroup", g1.as_str()),
    ];
    let has_lag = |text: &str| {
        text.lines().any(|l| {
            l.starts_with("kafka_consumergroup_lag{cloud=\"tencent\"")
                && l.contains(&format!("consumergroup=\"{g1}\""))
        })
    };
    // The last success was at T0 (round 0); round 1 fails at +30 s.
    advance_to(&h, 89_999).await;
    let text = h.text();
    assert_eq!(
        get(&parse(&text), "kafka_cloud_lag_exporter_group_up", &g),
        Some(0.0)
    );
    assert!(has_lag(&text), "still fresh before stale_after");
    advance_to(&h, 90_000).await;
    assert!(has_lag(&h.text()), "still fresh at exactly stale_after");
    advance_to(&h, 90_001).await;
    let text = h.text();
    assert!(!has_lag(&text), "stale after stale_after");
    assert_eq!(
        get(&parse(&text), "kafka_cloud_lag_exporter_group_up", &g),
        Some(0.0)
    );
    daemon.stop().await;
}

/// A reload in the middle of a round (what SIGHUP and `POST /-/reload` do): groups removed
/// lose their series at once and are not polled for the rest of the round; groups added
/// are polled from the next round on.
#[tokio::test(start_paused = true)]
async fn a_reload_mid_round_applies_at_once() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let daemon = start(&h);
    rounds(&h, 1).await;
    // Round 1 polls at +30, +40 and +50 s; reload at +35 s without group 3.
    advance(Duration::from_secs(35)).await;
    let g3 = group_name(3);
    let mut config = h.exporter.config();
    for a in &mut config.accounts {
        a.instances[0].groups.retain(|g| *g != g3);
    }
    h.exporter.apply(config);
    assert!(
        !h.text().contains(&format!("consumergroup=\"{g3}\"")),
        "removed at once"
    );
    advance(Duration::from_secs(60)).await;
    daemon.stop().await;
    for cloud in [Cloud::Alibaba, Cloud::Tencent] {
        let late: Vec<_> = polls(&h, cloud)
            .into_iter()
            .filter(|(t, g)| *t > 35_000 && *g == g3)
            .collect();
        assert_eq!(late, [], "{cloud}: group 3 not polled after the reload");
        assert!(
            polls(&h, cloud)
                .iter()
                .any(|(t, g)| *t > 35_000 && *g == group_name(1)),
            "{cloud}: the others go on"
        );
    }
}

/// On shutdown no new poll starts; polls in flight get [`SHUTDOWN_GRACE`]: one that ends
/// within it is recorded, one that hangs is abandoned when the grace ends.
#[tokio::test(start_paused = true)]
async fn shutdown_waits_the_grace_period_for_polls_in_flight() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let daemon = start(&h);
    rounds(&h, 1).await;
    let state = h.env.sim.state();
    state.inject(
        FaultRule::times(Fault::Delay(Duration::from_secs(3)), 1)
            .cloud(Cloud::Alibaba)
            .group(&group_name(1)),
    );
    state.inject(
        FaultRule::times(Fault::Hang, 1)
            .cloud(Cloud::Tencent)
            .action("DescribeGroupOffsets")
            .group(&group_name(1)),
    );
    // Round 1 starts both polls at +30 s; shut down 1 s later.
    advance(Duration::from_secs(31)).await;
    let stopped_at = h.clock.instant();
    let (stop, task) = (daemon.stop, daemon.task);
    stop.send_replace(true);
    task.await.unwrap();
    assert_eq!(h.clock.instant() - stopped_at, SHUTDOWN_GRACE);
    let s = parse(&h.text());
    let success = |cloud: Cloud| {
        get(
            &s,
            "kafka_cloud_lag_exporter_last_success_timestamp_seconds",
            &[
                ("cloud", cloud.as_str()),
                ("instance_id", &instance_id(cloud, 1)),
                ("consumergroup", &group_name(1)),
            ],
        )
    };
    assert_eq!(
        success(Cloud::Alibaba),
        Some((T0_SECS + 33) as f64),
        "the delayed poll finished within the grace"
    );
    assert_eq!(
        success(Cloud::Tencent),
        Some(T0_SECS as f64),
        "the hung poll was abandoned"
    );
    let after: Vec<_> = polls(&h, Cloud::Alibaba)
        .into_iter()
        .filter(|(t, _)| *t > 31_000)
        .collect();
    assert_eq!(after, [], "no poll starts after shutdown");
}
