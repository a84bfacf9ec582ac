//! The control plane's keys and certificates: a CA, kube-apiserver's serving certificate, the
//! service-account signing key and the admin token, written once into the control plane's folder.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::{Error, Result};

/// The names kube-apiserver's serving certificate is valid for: loopback, and the names pods
/// use for the `kubernetes` Service.
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The user the admin token authenticates as; in `system:masters`, so RBAC allows it everything.
pub const ADMIN_USER: &str = "kubewasm-admin";

/// Where each file of the PKI lives, and what a client needs to trust the server.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate (PEM): trusts the serving certificate.
    pub ca_pem: String,
    /// The CA certificate (DER), for the crate's own HTTPS client.
    pub ca_der: Vec<u8>,
    /// `ca.crt`: also kube-apiserver's `--client-ca-file` and the controller manager's
    /// `--root-ca-file`.
    pub ca_file: PathBuf,
    /// `apiserver.crt` / `apiserver.key`: the serving certificate and its key.
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    /// `sa.key` (PKCS#8, ECDSA P-256) signs service-account tokens; `sa.pub` verifies them.
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    /// `tokens.csv`: kube-apiserver's `--token-auth-file`, with the admin token.
    pub token_file: PathBuf,
    /// The admin bearer token.
    pub admin_token: String,
}

impl Pki {
    /// Generates a fresh PKI into `dir` (created if missing).
    ///
    /// # Errors
    /// When a key cannot be generated or a file cannot be written.
    pub fn generate(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let pki_err = |what: &str, e: rcgen::Error| Error::Pki(format!("{what}: {e}"));

        let ca_key = KeyPair::generate().map_err(|e| pki_err("generating the CA key", e))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| pki_err("CA", e))?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kubewasm-controlplane-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| pki_err("signing the CA", e))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let serving_key =
            KeyPair::generate().map_err(|e| pki_err("generating the serving key", e))?;
        let mut serving = CertificateParams::new(
            SERVING_NAMES
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .map_err(|e| pki_err("serving certificate", e))?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving
            .signed_by(&serving_key, &issuer)
            .map_err(|e| pki_err("signing the serving certificate", e))?;

        let sa_key =
            KeyPair::generate().map_err(|e| pki_err("generating the service-account key", e))?;
        let admin_token = random_hex(24)?;

        let pki = Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            ca_file: dir.join("ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
            token_file: dir.join("tokens.csv"),
            admin_token,
        };
        write(&pki.ca_file, &pki.ca_pem)?;
        write(&pki.serving_cert, &serving_cert.pem())?;
        write(&pki.serving_key, &serving_key.serialize_pem())?;
        write(&pki.sa_key, &sa_key.serialize_pem())?;
        write(&pki.sa_pub, &sa_key.public_key_pem())?;
        // token,user,uid,"group1,group2"
        write(
            &pki.token_file,
            &format!(
                "{},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n",
                pki.admin_token
            ),
        )?;
        Ok(pki)
    }

    /// Reads a PKI that [`Pki::generate`] wrote into `dir` earlier.
    ///
    /// # Errors
    /// When a file is missing or does not hold what it should.
    pub fn load(dir: &Path) -> Result<Self> {
        let ca_file = dir.join("ca.crt");
        let ca_pem = read(&ca_file)?;
        let ca_der = pem_body(&ca_pem)
            .ok_or_else(|| Error::Pki(format!("{} holds no certificate", ca_file.display())))?;
        let token_file = dir.join("tokens.csv");
        let admin_token = read(&token_file)?
            .split(',')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            ca_pem,
            ca_der,
            ca_file,
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
            token_file,
            admin_token,
        })
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// `n` random bytes from the kernel, as lowercase hex.
pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("reading /dev/urandom".into(), e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The DER bytes of the first PEM block in `pem`.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pki_loads_back_with_the_same_ca_and_token() {
        let dir = std::env::temp_dir().join(format!("kubewasm-pki-{}", std::process::id()));
        let made = Pki::generate(&dir).unwrap();
        let loaded = Pki::load(&dir).unwrap();
        assert_eq!(made.ca_der, loaded.ca_der);
        assert_eq!(made.admin_token, loaded.admin_token);
        assert!(
            fs::read_to_string(&made.sa_key)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let _ = fs::remove_dir_all(dir);
    }
}
