//! A minimal blocking HTTP/1.0 client for the few requests the control plane makes itself:
//! readiness checks, etcd's JSON gateway, creating the fake Nodes. HTTP/1.0 keeps the answers
//! unchunked (the Go servers close the connection instead), so nothing here parses chunks.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use crate::{Error, Result};

/// An answer: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// Where requests go and how they authenticate.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<String>,
}

impl Client {
    /// Plain HTTP to `addr` (etcd on loopback).
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            tls: None,
            token: None,
        }
    }

    /// HTTPS to `addr`, trusting only `ca_der`, with a bearer `token`.
    ///
    /// # Errors
    /// When the CA certificate is not one rustls accepts.
    pub fn https(addr: SocketAddr, ca_der: &[u8], token: &str) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca_der.to_vec()))
            .map_err(|e| Error::Pki(format!("the CA certificate is not usable: {e}")))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Pki(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            addr,
            tls: Some(Arc::new(config)),
            token: Some(token.to_owned()),
        })
    }

    /// `GET path`.
    ///
    /// # Errors
    /// When nothing answers or the answer is not HTTP.
    pub fn get(&self, path: &str) -> Result<Response> {
        self.request("GET", path, None)
    }

    /// `method path` with a JSON `body`.
    ///
    /// # Errors
    /// When nothing answers or the answer is not HTTP.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response> {
        let http =
            |e: std::io::Error| Error::Http(format!("{method} {path} on {}: {e}", self.addr));
        let stream =
            TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).map_err(http)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(http)?;
        let body = body.map(serde_json::Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\n",
            self.addr
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut raw = Vec::new();
        match &self.tls {
            None => {
                let mut s = stream;
                s.write_all(head.as_bytes()).map_err(http)?;
                s.write_all(body.as_bytes()).map_err(http)?;
                s.read_to_end(&mut raw).map_err(http)?;
            }
            Some(config) => {
                let name = ServerName::IpAddress(self.addr.ip().into());
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| Error::Http(format!("TLS to {}: {e}", self.addr)))?;
                let mut s = rustls::StreamOwned::new(conn, stream);
                s.write_all(head.as_bytes()).map_err(http)?;
                s.write_all(body.as_bytes()).map_err(http)?;
                // Go closes the TLS connection without close_notify at times: keep what came.
                if let Err(e) = s.read_to_end(&mut raw)
                    && e.kind() != std::io::ErrorKind::UnexpectedEof
                {
                    return Err(http(e));
                }
            }
        }
        parse(&raw).ok_or_else(|| {
            Error::Http(format!(
                "{method} {path} on {}: not an HTTP answer ({} bytes)",
                self.addr,
                raw.len()
            ))
        })
    }
}

fn parse(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Response {
        status,
        body: body.to_owned(),
    })
}
