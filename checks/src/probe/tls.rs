//! rustls client configuration for SSL_GET: no verification unless the `SSL` block has a `ca`
//! (keepalived's behaviour), optional client certificate, SNI only with `enable_sni`.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::probe::PrepareError;
use crate::spec::{HttpCheck, TlsSpec};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Build the client configuration from the `SSL` block.
pub fn client_config(spec: Option<&TlsSpec>) -> Result<ClientConfig, PrepareError> {
    let err = |e: &dyn std::fmt::Display| PrepareError::Tls(e.to_string());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?;
    let ca = spec.and_then(|s| s.ca.as_ref());
    let builder = match ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(&e))? {
                roots.add(cert.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider()))),
    };
    let mut config = match spec.and_then(|s| s.certificate.as_ref().zip(s.key.as_ref())) {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| err(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(&e))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| err(&e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| err(&e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = true;
    Ok(config)
}

/// The name to present and verify: `sni_name`, else the virtualhost, when `enable_sni`; else
/// the address (rustls sends no SNI for an IP name).
pub fn server_name(spec: &HttpCheck, dest: IpAddr) -> Result<ServerName<'static>, PrepareError> {
    let name = spec
        .enable_sni
        .then(|| spec.sni_name.clone().or_else(|| spec.virtualhost.clone()))
        .flatten();
    match name {
        Some(n) => ServerName::try_from(n).map_err(|e| PrepareError::Tls(format!("sni_name: {e}"))),
        None => Ok(ServerName::IpAddress(dest.into())),
    }
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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
