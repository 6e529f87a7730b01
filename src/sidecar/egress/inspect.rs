//! TLS for inspected routes: the per-run CA that signs a leaf certificate for
//! each inspected host (the guest trusts the CA; its key exists only in this
//! process's memory), and the client configuration that re-encrypts to the
//! upstream, verifying it against the system roots or the policy's
//! `upstream_ca`.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The per-run certificate authority for inspected routes.
pub struct Authority {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    /// One key for every leaf: minting a leaf then costs a signature only.
    leaf_key: KeyPair,
    configs: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
}

fn tls_error(what: &str, err: impl std::fmt::Display) -> miette::Report {
    miette::miette!(
        help = "this is a bug in bottle's TLS setup",
        "{what}: {err}"
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Authority {
    /// A fresh CA, named after the bottle.
    pub fn generate(bottle: &str) -> miette::Result<Authority> {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("bottle egress CA ({bottle})"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "bottle");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let ca_key = KeyPair::generate().map_err(|e| tls_error("generating the CA key", e))?;
        let ca = params
            .self_signed(&ca_key)
            .map_err(|e| tls_error("signing the CA", e))?;
        let leaf_key = KeyPair::generate().map_err(|e| tls_error("generating the leaf key", e))?;
        Ok(Authority {
            ca,
            ca_key,
            leaf_key,
            configs: Mutex::new(HashMap::new()),
        })
    }

    pub fn certificate_pem(&self) -> String {
        self.ca.pem()
    }

    /// The TLS server configuration presenting a certificate for `host`
    /// (minted on first use, then cached).
    pub fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = configs.get(host) {
            return Ok(config.clone());
        }
        let mut params =
            CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, host);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let leaf = params
            .signed_by(&self.leaf_key, &self.ca, &self.ca_key)
            .map_err(|e| e.to_string())?;
        let chain = vec![leaf.der().clone(), self.ca.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())?;
        // The inner server speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        configs.insert(host.to_string(), config.clone());
        Ok(config)
    }
}

/// The TLS client configuration for upstreams: trust `upstream_ca` alone when
/// given, otherwise the system roots.
pub fn upstream_config(upstream_ca: Option<&Path>) -> miette::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match upstream_ca {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|err| {
                miette::miette!(
                    help = "`upstream_ca` must name a PEM file of CA certificates",
                    "cannot read upstream_ca {}: {err}",
                    path.display()
                )
            })?;
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|err| {
                    miette::miette!("upstream_ca {} is not PEM: {err}", path.display())
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(miette::miette!(
                    help = "`upstream_ca` must name a PEM file of CA certificates",
                    "upstream_ca {} holds no usable certificate",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS versions", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
