//! Discovery of instances and consumer groups: lists them through the providers, applies
//! the include/exclude filters, and keeps the last good answer of each listing when a
//! later one fails, so an API error never drops groups that still exist.
//!
//! The scheduler decides when discovery runs; this module only does one pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use kcle_clock::Instant;

use crate::config::{InstanceDiscovery, NameFilter};
use crate::model::{Cloud, InstanceRef};
use crate::providers::{ErrorKind, Provider, ProviderError};

/// What an account discovers.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Instance discovery in `regions`, with its filters.
    pub instances: Option<InstanceDiscovery>,
    pub regions: Vec<Arc<str>>,
    /// Listed instances whose groups are discovered.
    pub groups: Vec<(Arc<InstanceRef>, NameFilter)>,
    /// Instance ids listed explicitly; discovery leaves them to their listing.
    pub listed: Vec<Arc<str>>,
}

impl Rules {
    /// Whether there is anything to discover.
    pub fn is_empty(&self) -> bool {
        self.instances.is_none() && self.groups.is_empty()
    }
}

/// A discovered instance and its groups.
pub type InstanceGroups = (Arc<InstanceRef>, Vec<Arc<str>>);

/// One account's discovered instances and groups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovered {
    /// Groups by instance id, as of the last successful listing of each.
    pub instances: BTreeMap<Arc<str>, InstanceGroups>,
    /// When a pass last completed without any error.
    pub last_success: Option<SystemTime>,
}

/// Everything a pass needs besides the rules.
pub struct Pass<'a> {
    pub cloud: Cloud,
    pub account: Arc<str>,
    pub provider_for: &'a (dyn Fn(&str) -> Option<Arc<dyn Provider>> + Sync),
    pub deadline: Instant,
    pub now: SystemTime,
}

/// Runs one discovery pass; returns the new state and the errors met on the way.
pub async fn discover(
    rules: &Rules,
    previous: &Discovered,
    pass: &Pass<'_>,
) -> (Discovered, Vec<ProviderError>) {
    let mut next = Discovered::default();
    let mut errors = Vec::new();
    if let Some(filter) = &rules.instances {
        for region in &rules.regions {
            let Some(provider) = (pass.provider_for)(region) else {
                continue;
            };
            match provider.list_instances(region, pass.deadline).await {
                Ok(found) => {
                    for inst in found {
                        if rules.listed.iter().any(|l| **l == *inst.instance_id)
                            || !filter.keeps(&inst.instance_id, &inst.name)
                        {
                            continue;
                        }
                        let iref = Arc::new(InstanceRef {
                            cloud: pass.cloud,
                            account: pass.account.clone(),
                            region: region.clone(),
                            instance_id: inst.instance_id.as_str().into(),
                        });
                        list_into(
                            &mut next,
                            &mut errors,
                            &*provider,
                            iref,
                            &filter.groups,
                            previous,
                            pass,
                        )
                        .await;
                    }
                }
                Err(e) => {
                    // Keep what this region had: an API error is not a deletion.
                    for (id, entry) in &previous.instances {
                        if entry.0.region == *region
                            && !rules.groups.iter().any(|(i, _)| i.instance_id == *id)
                        {
                            next.instances.insert(id.clone(), entry.clone());
                        }
                    }
                    errors.push(e);
                }
            }
        }
    }
    for (iref, filter) in &rules.groups {
        let Some(provider) = (pass.provider_for)(&iref.region) else {
            continue;
        };
        list_into(
            &mut next,
            &mut errors,
            &*provider,
            iref.clone(),
            filter,
            previous,
            pass,
        )
        .await;
    }
    next.last_success = if errors.is_empty() {
        Some(pass.now)
    } else {
        previous.last_success
    };
    (next, errors)
}

async fn list_into(
    next: &mut Discovered,
    errors: &mut Vec<ProviderError>,
    provider: &dyn Provider,
    iref: Arc<InstanceRef>,
    filter: &NameFilter,
    previous: &Discovered,
    pass: &Pass<'_>,
) {
    match provider.list_groups(&iref, pass.deadline).await {
        Ok(groups) => {
            let mut kept: Vec<Arc<str>> = groups
                .iter()
                .filter(|g| filter.keeps(g))
                .map(|g| Arc::from(g.as_str()))
                .collect();
            kept.sort();
            kept.dedup();
            next.instances
                .insert(iref.instance_id.clone(), (iref, kept));
        }
        // A deleted instance has no groups any more.
        Err(e) if e.kind == ErrorKind::NotFound => errors.push(e),
        Err(e) => {
            if let Some(entry) = previous.instances.get(&iref.instance_id) {
                next.instances
                    .insert(iref.instance_id.clone(), entry.clone());
            }
            errors.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;

    #[test]
    fn filters_match_whole_names() {
        let f = NameFilter {
            include: vec![
                Pattern::new("orders-.*").unwrap(),
                Pattern::new("billing").unwrap(),
            ],
            exclude: vec![Pattern::new(".*-test").unwrap()],
        };
        assert!(f.keeps("orders-consumer"));
        assert!(f.keeps("billing"));
        assert!(!f.keeps("billing-2"), "anchored");
        assert!(!f.keeps("x-orders-consumer"), "anchored");
        assert!(!f.keeps("orders-test"), "excluded");
        assert!(NameFilter::default().keeps("anything"));
    }
}
