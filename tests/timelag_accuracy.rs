//! Time-lag accuracy on virtual time: every traffic pattern of `support::accuracy` on both
//! clouds, polled by the daemon loop for four hours (a second's wall time per hour), with
//! each estimate checked against the simulator's true produce time of the message at the
//! committed offset. The bounds asserted are the ones docs/metrics.md documents per case;
//! `cargo bench --bench timelag` prints the full error distribution.

mod support;

use std::time::Duration;

use kafka_cloud_lag_exporter::model::{Cloud, Status, TimeLagMethod};
use support::accuracy::{Pattern, Restart, Run, Sample, Variant, run};

const POLL: Duration = Duration::from_secs(30);
const HOURS: u64 = 4;
const CLOUDS: [Cloud; 2] = [Cloud::Alibaba, Cloud::Tencent];

async fn measured(restart: Restart, probe: bool) -> (Variant, Run) {
    let variant = Variant { restart, probe };
    let result = run(variant, Duration::from_secs(HOURS * 3600), POLL).await;
    (variant, result)
}

fn poll_ms() -> i64 {
    POLL.as_millis() as i64
}

/// The bound a sample must meet, by the facts it rests on (docs/metrics.md, "Time lag").
fn check_sample(s: &Sample, probe: bool) {
    let what = format!("{:?} {} {s:?}", s.cloud, s.pattern.name());
    assert!(
        s.bracketed(),
        "the truth lies outside the claimed bounds: {what}"
    );
    assert!(
        s.estimate.seconds >= s.estimate.min_seconds,
        "never less than what is known: {what}"
    );
    let err = s.error().abs();
    match s.estimate.method {
        TimeLagMethod::CaughtUp => {
            assert_eq!(s.truth_seconds, 0.0, "{what}");
            assert_eq!(s.estimate.seconds, 0.0, "{what}");
        }
        TimeLagMethod::Exact => assert!(err <= 0.001, "a probe is exact: {what}"),
        TimeLagMethod::Interpolated => {
            // Within the two observations around the message: one poll interval while
            // polls succeed (the history keeps the knees of bursts and ramps).
            assert!(err <= POLL.as_secs_f64(), "{what}");
            if matches!(
                s.pattern,
                Pattern::Steady | Pattern::Slow | Pattern::Stopped | Pattern::CatchingUp
            ) {
                // Steady production: exact to the spacing of messages (0.1 s).
                assert!(err <= 0.5, "{what}");
            }
        }
        TimeLagMethod::BeforeHistory => match (s.pattern, s.cloud) {
            (Pattern::IdleBacklog, Cloud::Alibaba) => {
                // LastTimestamp is the message before: 0.1 s earlier.
                assert!(err <= 0.5, "{what}");
            }
            (Pattern::IdleBacklog, Cloud::Tencent) => {
                // Nothing produced while observed and no probe: the lower bound itself.
                assert!(
                    !probe || s.at_ms < 10 * poll_ms(),
                    "the probe is used: {what}"
                );
                assert_eq!(s.estimate.seconds, s.estimate.min_seconds, "{what}");
                assert!(s.truth_seconds >= s.estimate.seconds, "{what}");
            }
            _ => {
                // Extrapolated at the observed rate: for steady production off by the
                // rate's quantisation (one message over the observed span).
                let allowed = match s.pattern {
                    Pattern::Ramp | Pattern::Bursts => POLL.as_secs_f64(),
                    _ => 0.01 * s.truth_seconds + 1.0,
                };
                assert!(err <= allowed, "{what}");
            }
        },
    }
}

/// What every variant must show, for every pattern on both clouds.
fn check_run(variant: Variant, result: &Run) {
    let restart_ms = (variant.restart != Restart::None).then_some((HOURS * 3600 * 1000 / 2) as i64);
    let polls = (HOURS * 3600 / POLL.as_secs()) as usize;
    for cloud in CLOUDS {
        for pattern in Pattern::ALL {
            let samples: Vec<&Sample> = result.of(cloud, pattern).collect();
            assert!(
                samples.len() + 2 >= polls,
                "{cloud:?} {}: {} samples of {polls} polls",
                pattern.name(),
                samples.len()
            );
            for s in samples {
                check_sample(s, variant.probe);
            }
        }
    }
    // An estimate is missing only at the first poll of a process, and only without a
    // cloud timestamp (Tencent) or a saved history.
    for (cloud, pattern, at_ms) in &result.missing {
        let after_start = *at_ms < poll_ms();
        let after_restart = variant.restart == Restart::Fresh
            && restart_ms.is_some_and(|r| (r..r + 2 * poll_ms()).contains(at_ms));
        assert!(
            *cloud == Cloud::Tencent && (after_start || after_restart),
            "{cloud:?} {} has no time lag at {at_ms} ms",
            pattern.name()
        );
    }
    // Verdicts at the end of the run.
    for cloud in CLOUDS {
        let verdict = |p: Pattern| result.verdicts.get(&(cloud, p)).copied();
        assert_eq!(verdict(Pattern::Stopped), Some(Status::Stop), "{cloud:?}");
        assert_eq!(
            verdict(Pattern::IdleBacklog),
            Some(Status::Stop),
            "{cloud:?}"
        );
        assert_eq!(verdict(Pattern::Slow), Some(Status::Warn), "{cloud:?}");
        assert_eq!(verdict(Pattern::Ramp), Some(Status::Warn), "{cloud:?}");
        assert_eq!(verdict(Pattern::CatchingUp), Some(Status::Ok), "{cloud:?}");
        assert_eq!(verdict(Pattern::Steady), Some(Status::Ok), "{cloud:?}");
    }
}

/// The idle backlog's lower bound on Tencent at the end of the run: how long the exporter
/// has known the partition's log end, seconds.
fn idle_lower_bound_at_end(result: &Run) -> f64 {
    result
        .of(Cloud::Tencent, Pattern::IdleBacklog)
        .last()
        .expect("samples")
        .estimate
        .min_seconds
}

#[tokio::test(start_paused = true)]
async fn one_process_meets_every_bound() {
    let (variant, result) = measured(Restart::None, false).await;
    check_run(variant, &result);
    // The ramp's lag grew to over an hour, and its estimate stayed within a poll.
    let worst = result
        .of(Cloud::Tencent, Pattern::Ramp)
        .map(|s| s.truth_seconds)
        .fold(0.0, f64::max);
    assert!(worst > 1000.0, "the ramp outran its consumer: {worst} s");
}

#[tokio::test(start_paused = true)]
async fn a_restart_without_state_starts_over_and_stays_within_bounds() {
    let (variant, result) = measured(Restart::Fresh, false).await;
    check_run(variant, &result);
    // What is known about the idle backlog starts again at the restart.
    let half = (HOURS * 3600 / 2) as f64;
    let bound = idle_lower_bound_at_end(&result);
    assert!(bound <= half + 60.0, "{bound}");
}

#[tokio::test(start_paused = true)]
async fn a_restart_with_state_dir_continues_the_history() {
    let (variant, result) = measured(Restart::WithState, false).await;
    check_run(variant, &result);
    assert!(
        result.missing.iter().all(|(_, _, at)| *at < poll_ms()),
        "nothing is missing after the restart: {:?}",
        result.missing
    );
    // The idle backlog is still known to be older than the first poll before the restart.
    let bound = idle_lower_bound_at_end(&result);
    assert!(bound >= (HOURS * 3600) as f64 - 60.0, "{bound}");
}

#[tokio::test(start_paused = true)]
async fn tencent_probes_make_stopped_consumers_exact() {
    let (variant, result) = measured(Restart::None, true).await;
    check_run(variant, &result);
    for pattern in [Pattern::IdleBacklog, Pattern::Stopped] {
        let exact = result
            .of(Cloud::Tencent, pattern)
            .filter(|s| s.estimate.method == TimeLagMethod::Exact)
            .count();
        let all = result.of(Cloud::Tencent, pattern).count();
        assert!(
            exact + 2 >= all,
            "{}: {exact} exact of {all}",
            pattern.name()
        );
    }
}
