//! One rustls `ClientConfig` per registry client, always with the `ring` provider:
//! webpki roots + system roots + an optional extra CA bundle, or (opt-in) no
//! verification at all.

use std::sync::{Arc, Once, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::error::RegistryError;

/// Installs `ring` as the process-wide default rustls provider (once; an
/// already installed provider is left alone).
pub fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// System roots, loaded once per process (load errors are ignored).
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let result = rustls_native_certs::load_native_certs();
        if !result.errors.is_empty() {
            tracing::debug!(
                errors = result.errors.len(),
                "some system CA certificates could not be loaded"
            );
        }
        result.certs
    })
}

/// Parses a PEM bundle; every certificate must be valid.
fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| RegistryError::config("caBundle", format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(RegistryError::config(
            "caBundle",
            "contains no PEM CERTIFICATE block",
        ));
    }
    Ok(certs)
}

/// Builds the client TLS configuration.
pub(crate) fn client_config(
    ca_bundle_pem: Option<&[u8]>,
    insecure_skip_tls_verify: bool,
    registry: &str,
) -> Result<rustls::ClientConfig, RegistryError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::config("tls", format!("protocol versions: {e}")))?;
    let mut config = if insecure_skip_tls_verify {
        // Still validate the bundle so a bad config is reported consistently.
        if let Some(pem) = ca_bundle_pem {
            parse_ca_bundle(pem)?;
        }
        tracing::warn!(
            registry,
            "insecureSkipTlsVerify is set: server certificates are NOT verified"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let (_added, _ignored) = roots.add_parsable_certificates(native_roots().iter().cloned());
        if let Some(pem) = ca_bundle_pem {
            for (i, cert) in parse_ca_bundle(pem)?.into_iter().enumerate() {
                roots.add(cert).map_err(|e| {
                    RegistryError::config(
                        "caBundle",
                        format!("certificate #{} is not a usable CA certificate: {e}", i + 1),
                    )
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any server certificate (handshake signatures are still checked
/// against the presented certificate).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed_ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(vec!["ca.test".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn builds_default_and_insecure_configs() {
        ensure_crypto_provider();
        ensure_crypto_provider();
        let c = client_config(None, false, "r:443").unwrap();
        assert_eq!(c.alpn_protocols.len(), 2);
        client_config(None, true, "r:443").unwrap();
        let pem = self_signed_ca_pem();
        client_config(Some(pem.as_bytes()), false, "r:443").unwrap();
    }

    #[test]
    fn bad_ca_bundle_names_field() {
        for bad in [
            &b"not pem at all"[..],
            b"",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        ] {
            let e = client_config(Some(bad), false, "r:443").unwrap_err();
            match &e {
                RegistryError::Config { field, .. } => assert_eq!(field, "caBundle"),
                other => panic!("{other:?}"),
            }
            assert_eq!(e.reason(), "InvalidConfig");
        }
    }
}
