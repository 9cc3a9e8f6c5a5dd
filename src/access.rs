//! Who may connect to a server of netsql's (Flight SQL, fleet workers, metrics): the
//! bearer token, read from a file only its owner may read and compared in constant
//! time, and TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::error::Error;

/// Who may connect: the bearer token and TLS every server of netsql's takes (Flight,
/// fleet workers, metrics).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub token_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
}

impl Access {
    /// The token, read from its file.
    pub fn token(&self) -> Result<Option<String>, Error> {
        self.token_file.as_deref().map(read_token).transpose()
    }

    /// Refuses to listen beyond loopback without a token.
    pub fn check_reach(&self, listen: SocketAddr, token: bool) -> Result<(), Error> {
        if !token && !listen.ip().is_loopback() {
            return Err(Error::Usage(format!(
                "refusing to serve on {listen} without --token-file: anyone who can reach it could read this host's sockets and processes"
            )));
        }
        Ok(())
    }

    pub(crate) fn read(path: &PathBuf) -> Result<Vec<u8>, Error> {
        std::fs::read(path).map_err(|source| Error::Input {
            path: path.clone(),
            source,
        })
    }

    /// The TLS settings for rustls, when a certificate is given (the metrics endpoint;
    /// Flight's go through tonic's own).
    pub fn rustls(&self) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, Error> {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls::{server::WebPkiClientVerifier, RootCertStore, ServerConfig};
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let bad = |what: &PathBuf, e: &dyn std::fmt::Display| {
            Error::Usage(format!("TLS: {}: {e}", what.display()))
        };
        let certs = |path: &PathBuf| -> Result<Vec<CertificateDer<'static>>, Error> {
            CertificateDer::pem_slice_iter(&Self::read(path)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(path, &e))
        };
        let chain = certs(cert)?;
        let private = PrivateKeyDer::from_pem_slice(&Self::read(key)?).map_err(|e| bad(key, &e))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Usage(format!("TLS: {e}")))?;
        let builder = match &self.tls_client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for root in certs(ca)? {
                    roots.add(root).map_err(|e| bad(ca, &e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| bad(ca, &e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, private)
            .map_err(|e| bad(cert, &e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

/// Reads a token file that only its owner may read; the token is its first line.
pub fn read_token(path: &std::path::Path) -> Result<String, Error> {
    use std::os::unix::fs::PermissionsExt;
    let input = |source| Error::Input {
        path: path.to_path_buf(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(input)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "{}: mode {:o} lets group or others read the token; chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(input)?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(Error::Usage(format!("{}: no token in it", path.display())));
    }
    Ok(token)
}

/// Checks a bearer token in constant time.
#[derive(Clone)]
pub struct Token {
    token: Option<Arc<[u8]>>,
}

impl Token {
    pub fn new(token: Option<String>) -> Self {
        Token {
            token: token.map(|t| Arc::from(t.into_bytes())),
        }
    }

    /// Whether an `authorization` header's value carries the token (any value does when
    /// there is none).
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(given.as_bytes().ct_eq(token))
    }
}
