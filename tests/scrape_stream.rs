//! A scrape is rendered piece by piece from the snapshot it took when it started: the
//! text does not depend on where the pieces end, and polls published, groups failing,
//! added or removed while a scrape is in flight do not show in it, so each family of a
//! scrape shows the groups of one moment even when two scrapes overlap.
//!
//! `varied` stores cover what the renderer distinguishes (both clouds, shared topics with
//! the newest log end winning, stale, failing, skipped and unpolled groups, hidden
//! partitions, names to escape); the whole renderings are compared, byte for byte.

#[path = "support/varied.rs"]
mod varied;

use std::time::Duration;

use kafka_cloud_lag_exporter::config::MetricNames;
use kafka_cloud_lag_exporter::metrics::{Metrics, Scrape};
use kafka_cloud_lag_exporter::model::GroupTarget;
use kafka_cloud_lag_exporter::scheduler::Status;
use kafka_cloud_lag_exporter::store::Store;

/// The rest of `scrape`, in pieces of about `step` bytes, appended to `out`.
fn finish(scrape: &mut Scrape, out: &mut Vec<u8>, step: usize) {
    loop {
        let until = out.len() + step;
        if !scrape.fill(out, until) {
            return;
        }
    }
}

#[test]
fn the_text_does_not_depend_on_where_pieces_end() {
    for names in [MetricNames::KafkaExporter, MetricNames::KafkaLagExporter] {
        let metrics = Metrics::new();
        metrics.set_metric_names(names);
        for seed in 0..12 {
            let store = varied::store(seed, 4 + seed as usize * 7);
            let whole = metrics.render(&store, &Status::default(), varied::now());
            // One unit per piece, odd sizes, and everything at once.
            for step in [1, 333, 4096, usize::MAX / 2] {
                let mut scrape = metrics.scrape(&store, Status::default(), varied::now());
                let mut out = Vec::new();
                finish(&mut scrape, &mut out, step);
                assert!(out == whole, "{names:?}, seed {seed}, pieces of {step}");
                assert!(!scrape.fill(&mut out, usize::MAX), "nothing after the end");
                assert_eq!(out.len(), whole.len());
            }
        }
    }
}

/// Publishes a new poll (the next version: every offset moves) for every third group from
/// `from`, fails one and drops another from the store.
fn churn(store: &Store, targets: &[GroupTarget], version: i64, from: usize) {
    let mut rng = fastrand::Rng::with_seed(version as u64);
    let at = varied::now() - Duration::from_secs(1);
    for t in targets.iter().skip(from % 3).step_by(3) {
        store.record_poll(t, varied::poll(&mut rng, t, at, version));
    }
    store.record_failure(&targets[from % targets.len()], at);
    let kept: Vec<GroupTarget> = targets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != (from * 7) % targets.len())
        .map(|(_, t)| t.clone())
        .collect();
    store.set_targets(&kept);
}

#[test]
fn overlapping_scrapes_each_show_the_store_of_their_start() {
    let metrics = Metrics::new();
    let targets = varied::targets(3, 60);
    let store = varied::store(3, 60);
    let render = |store: &Store| metrics.render(store, &Status::default(), varied::now());

    let expected_a = render(&store);
    let mut a = metrics.scrape(&store, Status::default(), varied::now());
    let mut text_a = Vec::new();
    assert!(a.fill(&mut text_a, 2_000), "more than one piece");
    churn(&store, &targets, 1, 0);

    let expected_b = render(&store);
    let mut b = metrics.scrape(&store, Status::default(), varied::now());
    let mut text_b = Vec::new();
    assert_ne!(expected_a, expected_b, "the polls changed the exposition");

    // Pieces of both in turn, a poll round's worth of changes between them.
    let mut version = 2;
    let (mut more_a, mut more_b) = (true, true);
    while more_a || more_b {
        if more_a {
            let until = text_a.len() + 1_000;
            more_a = a.fill(&mut text_a, until);
        }
        churn(&store, &targets, version, version as usize);
        if more_b {
            let until = text_b.len() + 1_500;
            more_b = b.fill(&mut text_b, until);
        }
        version += 1;
    }
    assert!(version > 20, "the scrapes overlapped {version} changes");
    assert!(
        text_a == expected_a,
        "scrape A shows the store of its start"
    );
    assert!(
        text_b == expected_b,
        "scrape B shows the store of its start"
    );
    assert_ne!(render(&store), expected_b, "the store moved on meanwhile");
}
