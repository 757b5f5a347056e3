//! Where an account's credentials come from, in one cloud-neutral form: what
//! `accounts[].credentials` says, before any environment variable or file is read. Each
//! cloud's `providers/<cloud>/credentials.rs` turns it into sources that fetch.

use std::path::PathBuf;
use std::time::Duration;

use super::CredentialSources;

/// The role session name used when none is configured.
pub const DEFAULT_SESSION_NAME: &str = "kafka-cloud-lag-exporter";

/// An account's credential sources: one base, optionally a role assumed with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSpec {
    pub base: BaseSource,
    /// A role assumed with the base credentials (cross-account monitoring).
    pub assume_role: Option<AssumeRoleSpec>,
    /// STS base URL instead of the one the SDKs' rules choose.
    pub sts_endpoint: Option<String>,
    /// Instance metadata base URL instead of the cloud's.
    pub metadata_endpoint: Option<String>,
}

impl CredentialSpec {
    /// The official SDKs' default chain, with nothing overridden.
    pub fn default_chain() -> Self {
        CredentialSpec::from_base(BaseSource::DefaultChain)
    }

    /// Static keys only.
    pub fn keys(sources: CredentialSources) -> Self {
        CredentialSpec::from_base(BaseSource::Keys(sources))
    }

    pub fn from_base(base: BaseSource) -> Self {
        CredentialSpec {
            base,
            assume_role: None,
            sts_endpoint: None,
            metadata_endpoint: None,
        }
    }
}

/// The credentials everything else starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseSource {
    /// Whatever the cloud's official SDKs find first, in their order (environment keys,
    /// OIDC variables, profile files, the instance's role, ...).
    DefaultChain,
    /// An id, a secret and an optional token from environment variables or files.
    Keys(CredentialSources),
    /// A role assumed with an OIDC token file (ACK RRSA, TKE pod identity).
    Oidc(OidcSpec),
    /// The role of the instance, from the metadata service.
    InstanceRole { name: Option<String> },
    /// A profile of the cloud's CLI or SDK credentials file.
    Profile {
        name: Option<String>,
        file: Option<PathBuf>,
    },
}

/// An OIDC role; every value left out comes from the cloud's standard variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OidcSpec {
    pub role_arn: Option<String>,
    /// Alibaba: the OIDC provider's ARN; Tencent: the identity provider's id.
    pub provider: Option<String>,
    pub token_file: Option<PathBuf>,
    pub session_name: Option<String>,
    pub duration: Option<Duration>,
    /// Tencent: the `X-TC-Region` of the call (`TKE_REGION`).
    pub region: Option<String>,
}

/// A role assumed on top of the base credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumeRoleSpec {
    pub role_arn: String,
    pub session_name: Option<String>,
    pub duration: Option<Duration>,
    /// The role's external id, when its trust policy requires one. Not a secret: it
    /// guards against the confused-deputy problem, it does not authenticate.
    pub external_id: Option<String>,
}
