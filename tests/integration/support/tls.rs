//! Certificates made in the test: a throwaway certificate authority and leaf certificates it
//! signs, for serving HTTPS on loopback.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A certificate authority that exists only for one test.
pub struct Authority {
    /// The CA certificate, PEM, for `--cacert`.
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key, DER.
pub struct Identity {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl Authority {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA certificate");
        Authority {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for these names (host names or IP addresses), signed by this CA.
    pub fn leaf(&self, names: &[&str]) -> Identity {
        self.leaf_valid_for(names, time::Duration::days(365))
    }

    /// A leaf certificate that expires `valid_for` from now.
    pub fn leaf_valid_for(&self, names: &[&str], valid_for: time::Duration) -> Identity {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = time::OffsetDateTime::now_utc() + valid_for;
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Identity {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}
