//! Alibaba provider (placeholder until implemented).

pub mod sign;
pub mod wire;

use std::time::SystemTime;

use super::{AccountSpec, ErrorKind, Provider, ProviderDeps, ProviderError, ProviderFuture};
use crate::model::{
    Cloud, DiscoveredInstance, GroupInfo, GroupProgress, InstanceRef, ResetRequest, ResetTarget,
};

/// Alibaba provider.
#[derive(Debug)]
pub struct AlibabaProvider {
    spec: AccountSpec,
}

impl AlibabaProvider {
    pub fn new(spec: AccountSpec, _deps: &ProviderDeps) -> Self {
        AlibabaProvider { spec }
    }
}

fn unimplemented_yet() -> ProviderError {
    ProviderError::new(ErrorKind::ApiError, "not implemented")
}

impl Provider for AlibabaProvider {
    fn cloud(&self) -> Cloud {
        self.spec.cloud
    }
    fn group_progress<'a>(
        &'a self,
        _: &'a InstanceRef,
        _: &'a str,
        _: SystemTime,
    ) -> ProviderFuture<'a, GroupProgress> {
        Box::pin(async { Err(unimplemented_yet()) })
    }
    fn list_groups<'a>(
        &'a self,
        _: &'a InstanceRef,
        _: SystemTime,
    ) -> ProviderFuture<'a, Vec<String>> {
        Box::pin(async { Err(unimplemented_yet()) })
    }
    fn list_instances<'a>(
        &'a self,
        _: &'a str,
        _: SystemTime,
    ) -> ProviderFuture<'a, Vec<DiscoveredInstance>> {
        Box::pin(async { Err(unimplemented_yet()) })
    }
    fn group_info<'a>(
        &'a self,
        _: &'a InstanceRef,
        _: &'a str,
        _: SystemTime,
    ) -> ProviderFuture<'a, GroupInfo> {
        Box::pin(async { Err(unimplemented_yet()) })
    }
    fn supports_reset(&self, _: &ResetTarget) -> bool {
        false
    }
    fn reset_offsets<'a>(
        &'a self,
        _: &'a InstanceRef,
        _: &'a str,
        _: &'a ResetRequest,
        _: SystemTime,
    ) -> ProviderFuture<'a, ()> {
        Box::pin(async { Err(unimplemented_yet()) })
    }
}
