//! A scrape rendered piece by piece: the exposition of one moment, written into the
//! caller's buffer a piece at a time as the response is sent, so that a scrape holds a
//! piece of the text rather than all of it, and a worker renders for a piece's time before
//! other work runs.
//!
//! A [`Scrape`] takes its snapshot when it starts: the store's entries (a list of `Arc`s;
//! polls published later replace entries in the store, not in the snapshot), the
//! scheduler's status and the scrape's time. Every family is rendered from that snapshot,
//! so a scrape is consistent however long its client takes to read it. The order of
//! families and series is the one `lag` and `status` define; only the exporter's own
//! instruments (`prometheus` crate) are read when the scrape reaches them, at the end.
//!
//! The position between pieces is a cursor into the snapshot (family, group or instance,
//! topic), so resuming costs nothing; the scratch buffers (a line's fixed part, one
//! instance's log-end plan) are reused for the whole scrape, so rendering allocates per
//! scrape, never per series.

use std::sync::Arc;

use prometheus::{Encoder, Registry, TextEncoder};

use super::lag::{self, LogEnds, RenderOptions, STEPS, Step};
use super::status;
use super::text;
use crate::scheduler::Status;
use crate::store::GroupEntry;

/// Steps of a scrape: the lag families, the status families, the exporter's instruments.
const STATUS_START: usize = STEPS;
const OWN: usize = STATUS_START + status::FAMILIES.len();

/// One scrape's snapshot and where its rendering stands.
pub struct Scrape {
    entries: Vec<Arc<GroupEntry>>,
    status: Status,
    opts: RenderOptions,
    steps: [Option<Step>; STEPS],
    registry: Registry,
    at: Cursor,
    /// A sample line's fixed part (name and labels), written once per group or topic and
    /// copied per series.
    line: Vec<u8>,
    log_ends: LogEnds,
}

/// Where rendering resumes: the step, whether its header is written, and the unit within
/// it (`a`: a group, or an instance's first group; `b`: a topic of it).
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    step: usize,
    started: bool,
    a: usize,
    b: usize,
}

impl Scrape {
    pub(super) fn new(
        entries: Vec<Arc<GroupEntry>>,
        status: Status,
        opts: RenderOptions,
        registry: Registry,
    ) -> Scrape {
        Scrape {
            steps: lag::steps(&opts.naming),
            entries,
            status,
            opts,
            registry,
            at: Cursor::default(),
            line: Vec::with_capacity(256),
            log_ends: LogEnds::default(),
        }
    }

    /// Appends the next piece of the exposition to `out`: units (a group's or a topic's
    /// series) until `out` holds at least `until` bytes, so a piece ends at most one unit
    /// past it. Returns `false` once the exposition is complete (nothing more to write).
    pub fn fill(&mut self, out: &mut Vec<u8>, until: usize) -> bool {
        while self.at.step <= OWN {
            if out.len() >= until {
                return true;
            }
            if !self.step(out, until) {
                return true;
            }
            self.at = Cursor {
                step: self.at.step + 1,
                ..Cursor::default()
            };
        }
        false
    }

    /// Renders the current step from the cursor; `true` when the step is complete.
    fn step(&mut self, out: &mut Vec<u8>, until: usize) -> bool {
        let Scrape {
            entries,
            status,
            opts,
            steps,
            registry,
            at,
            line,
            log_ends,
        } = self;
        if at.step == OWN {
            own(registry, out);
            return true;
        }
        if at.step >= STATUS_START {
            let family = at.step - STATUS_START;
            if !at.started {
                text::header(out, &status::FAMILIES[family]);
                at.started = true;
            }
            return status::rows(out, status, family, &mut at.a, until);
        }
        let Some(step) = steps[at.step] else {
            return true;
        };
        if !at.started {
            text::header(out, step.family());
            at.started = true;
        }
        let n = entries.len();
        match step {
            Step::Partitions(family, scheme, value) => {
                while at.a < n {
                    let entry = &entries[at.a];
                    if let Some(polled) = opts.shown(entry) {
                        let topics = polled.progress.topics.len();
                        let mut group_len = None;
                        while at.b < topics {
                            if out.len() >= until {
                                return false;
                            }
                            let len = *group_len.get_or_insert_with(|| {
                                lag::open_group(line, &family, scheme, entry);
                                line.len()
                            });
                            lag::topic_partitions(out, line, len, value, polled, at.b);
                            at.b += 1;
                        }
                    }
                    at.a += 1;
                    at.b = 0;
                }
                true
            }
            Step::TopicLag(family, scheme) => each(&mut at.a, n, out, until, |out, i| {
                if let Some(polled) = opts.shown(&entries[i]) {
                    lag::open_group(line, &family, scheme, &entries[i]);
                    lag::topic_lags(out, line, polled);
                }
            }),
            Step::Groups(family, scheme, value) => each(&mut at.a, n, out, until, |out, i| {
                if let Some(polled) = opts.shown(&entries[i]) {
                    lag::group_value(out, &family, scheme, value, &entries[i], polled);
                }
            }),
            Step::LogEnd(family, scheme) => {
                while at.a < n {
                    let (end, topics) = log_ends.plan(entries, at.a, opts);
                    while at.b < topics {
                        if out.len() >= until {
                            return false;
                        }
                        at.b = log_ends.topic(out, line, &family, scheme, entries, at.b);
                    }
                    at.a = end;
                    at.b = 0;
                }
                true
            }
            Step::Health(which) => each(&mut at.a, n, out, until, |out, i| {
                lag::health(out, line, which, entries, i, opts)
            }),
        }
    }
}

/// Runs `unit` for `*at..n` while `out` is shorter than `until`; `true` when all ran.
fn each(
    at: &mut usize,
    n: usize,
    out: &mut Vec<u8>,
    until: usize,
    mut unit: impl FnMut(&mut Vec<u8>, usize),
) -> bool {
    while *at < n {
        if out.len() >= until {
            return false;
        }
        unit(out, *at);
        *at += 1;
    }
    true
}

/// Appends the exporter's own instruments.
pub(super) fn own(registry: &Registry, out: &mut Vec<u8>) {
    let families = registry.gather();
    // The text encoder only fails on invalid metric families, which static registration
    // rules out.
    if let Err(e) = TextEncoder::new().encode(&families, out) {
        tracing::error!(error = %e, "encoding exporter metrics failed");
    }
}
