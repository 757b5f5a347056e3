//! Client-certificate policies of the HTTPS server, as exporter-toolkit's
//! `client_auth_type` and `client_allowed_sans` define them, on top of rustls.
//!
//! rustls covers "no certificate", "verify if given" and "require and verify" itself;
//! this module adds Go's two unverified modes (`RequestClientCert`,
//! `RequireAnyClientCert`: a certificate is asked for but not chained to a CA, only
//! its handshake signature is checked) and the SAN allow list, which needs the
//! certificate's subject alternative names, read by a small DER walker below.
//!
//! This module decides who may complete a handshake; it never reads files or logs.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};

/// exporter-toolkit's `client_auth_type` values (Go's `tls.ClientAuthType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub enum ClientAuthType {
    /// No client certificate is asked for.
    #[default]
    NoClientCert,
    /// A certificate is asked for but optional, and not verified.
    RequestClientCert,
    /// A certificate is required but not verified against a CA (only its key).
    /// `RequireClientCert` is exporter-toolkit's older spelling.
    #[serde(alias = "RequireClientCert")]
    RequireAnyClientCert,
    /// A certificate is optional; one that is sent must chain to the client CA.
    VerifyClientCertIfGiven,
    /// A certificate is required and must chain to the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    /// Whether certificates are chained to `client_ca_file`, which is then required.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert
        )
    }

    /// Whether every client must send a certificate, as `client_allowed_sans` needs.
    pub fn requires_certificate(self) -> bool {
        matches!(
            self,
            ClientAuthType::RequireAnyClientCert | ClientAuthType::RequireAndVerifyClientCert
        )
    }
}

/// Builds the verifier for a policy. `roots` must be set when the policy verifies
/// (checked by the caller, which knows the field names).
pub fn verifier(
    auth: ClientAuthType,
    roots: Option<RootCertStore>,
    allowed_sans: Option<Vec<String>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let algorithms = provider.signature_verification_algorithms;
    let webpki = |roots: Option<RootCertStore>, optional: bool| {
        let roots = Arc::new(roots.unwrap_or_else(RootCertStore::empty));
        let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| e.to_string())
    };
    let base: Arc<dyn ClientCertVerifier> = match auth {
        ClientAuthType::NoClientCert => Arc::new(NoClientAuth),
        ClientAuthType::RequestClientCert => Arc::new(AnyClientCert {
            mandatory: false,
            algorithms,
        }),
        ClientAuthType::RequireAnyClientCert => Arc::new(AnyClientCert {
            mandatory: true,
            algorithms,
        }),
        ClientAuthType::VerifyClientCertIfGiven => webpki(roots, true)?,
        ClientAuthType::RequireAndVerifyClientCert => webpki(roots, false)?,
    };
    Ok(match allowed_sans {
        Some(allowed) => Arc::new(SanAllowList {
            inner: base,
            allowed,
        }),
        None => base,
    })
}

/// Go's `RequestClientCert` / `RequireAnyClientCert`: any certificate is accepted, but
/// the client must still prove that it holds its key (the handshake signature is checked).
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner policy accepted the certificate, one of its
/// subject alternative names (DNS, IP, e-mail or URI) must equal an allowed entry.
#[derive(Debug)]
struct SanAllowList {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for SanAllowList {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if names.iter().any(|n| self.allowed.contains(n)) {
            Ok(verified)
        } else {
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The DNS names, e-mail addresses, IP addresses and URIs of a certificate's subject
/// alternative name extension, spelled as Go prints them (IPv4-mapped IPv6 as IPv4).
pub fn subject_alt_names(cert: &[u8]) -> Result<Vec<String>, &'static str> {
    const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11]; // 2.5.29.17
    let (tag, certificate, _) = der(cert)?;
    expect(tag, 0x30)?;
    let (tag, tbs, _) = der(certificate)?;
    expect(tag, 0x30)?;
    // TBSCertificate fields in order; the extensions are the explicit [3] element.
    let mut rest = tbs;
    let mut extensions = None;
    while !rest.is_empty() {
        let (tag, content, next) = der(rest)?;
        if tag == 0xa3 {
            extensions = Some(content);
        }
        rest = next;
    }
    let mut names = Vec::new();
    let Some(extensions) = extensions else {
        return Ok(names);
    };
    let (tag, mut list, _) = der(extensions)?;
    expect(tag, 0x30)?;
    while !list.is_empty() {
        let (tag, extension, next) = der(list)?;
        expect(tag, 0x30)?;
        list = next;
        let (tag, oid, mut fields) = der(extension)?;
        expect(tag, 0x06)?;
        if oid != SAN_OID {
            continue;
        }
        // Optional `critical` BOOLEAN, then the value as an OCTET STRING.
        let value = loop {
            let (tag, content, next) = der(fields)?;
            fields = next;
            if tag == 0x04 {
                break content;
            }
        };
        let (tag, mut general_names, _) = der(value)?;
        expect(tag, 0x30)?;
        while !general_names.is_empty() {
            let (tag, content, next) = der(general_names)?;
            general_names = next;
            match tag {
                // [1] rfc822Name, [2] dNSName, [6] uniformResourceIdentifier: IA5String.
                0x81 | 0x82 | 0x86 => {
                    names.push(String::from_utf8_lossy(content).into_owned());
                }
                // [7] iPAddress: 4 or 16 octets.
                0x87 => {
                    let ip = match content.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(content).expect("4 bytes")),
                        16 => {
                            let v6 = std::net::Ipv6Addr::from(
                                <[u8; 16]>::try_from(content).expect("16 bytes"),
                            );
                            v6.to_ipv4_mapped()
                                .map(IpAddr::V4)
                                .unwrap_or(IpAddr::V6(v6))
                        }
                        _ => return Err("bad iPAddress length"),
                    };
                    names.push(ip.to_string());
                }
                // otherName, x400Address, directoryName, ediPartyName, registeredID:
                // Go does not match them either.
                _ => {}
            }
        }
    }
    Ok(names)
}

fn expect(tag: u8, want: u8) -> Result<(), &'static str> {
    if tag == want {
        Ok(())
    } else {
        Err("unexpected DER tag")
    }
}

/// Splits one DER element off `input`: (tag, content, rest). Certificates use only
/// low tag numbers and definite lengths, so nothing else is accepted.
fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("truncated DER")?;
    if tag & 0x1f == 0x1f {
        return Err("high-tag-number form in DER");
    }
    let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad DER length");
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated DER");
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_extraction_reads_every_matchable_kind() {
        let mut params =
            rcgen::CertificateParams::new(vec!["client.example".to_string()]).expect("valid name");
        params.subject_alt_names.extend([
            rcgen::SanType::IpAddress("10.1.2.3".parse().unwrap()),
            rcgen::SanType::IpAddress("::1".parse().unwrap()),
            rcgen::SanType::Rfc822Name("ops@example.com".try_into().unwrap()),
            rcgen::SanType::URI(
                "spiffe://cluster/ns/monitoring/sa/prometheus"
                    .try_into()
                    .unwrap(),
            ),
        ]);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let names = subject_alt_names(cert.der()).unwrap();
        assert_eq!(
            names,
            [
                "client.example",
                "10.1.2.3",
                "::1",
                "ops@example.com",
                "spiffe://cluster/ns/monitoring/sa/prometheus"
            ]
        );
    }

    #[test]
    fn certificate_without_sans_has_none_and_garbage_is_an_error() {
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert!(subject_alt_names(cert.der()).unwrap().is_empty());
        assert!(subject_alt_names(b"\x30\x05\x30").is_err());
        assert!(subject_alt_names(b"").is_err());
    }
}
