//! The certificate authorities the run's clients trust: the system's, found as
//! rustls-platform-verifier finds them on Linux (rustls-native-certs: `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, or the distribution's bundle), read and decoded once per run and handed to
//! every client, with `--cacert`'s beside them.
//!
//! Each client (one per shard, and `--confirm`'s) used to have the platform verifier load them
//! again: ~17M instructions (~2 ms) a client, most of it decoding the PEM bundle, so a run of one
//! URL took 6.8 ms with two shards instead of 4.8. And a system without any stopped every run at
//! start-up, plain-HTTP lists included ("No CA certificates were loaded from the system"); such a
//! run now starts with a warning, and its https URLs fail as signed by an unknown issuer.

use std::sync::OnceLock;

use reqwest::Certificate;

use crate::config::FetchOptions;

/// The system's certificate authorities, loaded on first use. Certificates that rustls cannot
/// use as roots are left out, as the platform verifier leaves them out.
pub fn system() -> &'static [Certificate] {
    static SYSTEM: OnceLock<Vec<Certificate>> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let mut scratch = rustls::RootCertStore::empty();
        rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .filter(|der| scratch.add(der.clone()).is_ok())
            .filter_map(|der| Certificate::from_der(&der).ok())
            .collect()
    })
}

/// The warning for a run that would trust no authority at all.
pub fn missing(options: &FetchOptions) -> Option<&'static str> {
    (!options.insecure && options.cacert.is_none() && system().is_empty()).then_some(
        "warning: no CA certificates on this system (SSL_CERT_FILE, SSL_CERT_DIR or the \
         distribution's bundle): https URLs will fail unless --cacert names one",
    )
}
