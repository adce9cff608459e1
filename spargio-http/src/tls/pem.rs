//! Reading certificates and keys from PEM text.

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// All certificates in `pem`, in order (a chain: the end-entity certificate
/// first). Sections of other kinds (a private key in the same file) are
/// skipped.
///
/// # Errors
/// [`TlsError::InvalidPem`] for a malformed section,
/// [`TlsError::NoCertificate`] if there is no certificate at all.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::InvalidPem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// The first private key in `pem` (`PRIVATE KEY`, `RSA PRIVATE KEY` or
/// `EC PRIVATE KEY`); other sections are skipped.
///
/// # Errors
/// [`TlsError::InvalidPem`] for a malformed section,
/// [`TlsError::NoPrivateKey`] if there is no key.
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        e => TlsError::InvalidPem(e),
    })
}

/// A root store trusting every certificate in `pem`: for a
/// [`TlsConnector`](super::TlsConnector) that talks to servers with a
/// private CA or a self-signed certificate.
///
/// ```
/// use spargio_http::tls::{root_store_from_pem, TlsConnector};
///
/// let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let roots = root_store_from_pem(ca.cert.pem().as_bytes()).unwrap();
/// assert_eq!(roots.len(), 1);
/// let connector = TlsConnector::with_root_store(roots);
/// # drop(connector);
/// ```
///
/// # Errors
/// [`TlsError::InvalidPem`] for a malformed section,
/// [`TlsError::NoCertificate`] if there is no certificate, and
/// [`TlsError::Config`] for a certificate rustls cannot use as a trust
/// anchor.
pub fn root_store_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(pem)? {
        roots.add(cert).map_err(TlsError::Config)?;
    }
    Ok(roots)
}
