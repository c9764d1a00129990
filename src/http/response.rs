//! A response before it is written: status, headers, body (bytes or a file range),
//! and the status-line reason phrases. [`super::conn`] writes it.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::SystemTime;

use super::files;
use super::request::{Method, Request};

/// 405 for anything but GET and HEAD.
pub(crate) fn only_get(req: &Request) -> Option<Response> {
    match req.method {
        Method::Get | Method::Head => None,
        _ => Some(Response::error(405).with_header("Allow", "GET, HEAD".into())),
    }
}

/// Who a file goes to, for the log line written when it has been sent.
#[derive(Debug)]
pub(crate) struct Download {
    pub(crate) path: String,
    pub(crate) host: Option<String>,
    pub(crate) peer: SocketAddr,
}

#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    Bytes(Vec<u8>),
    File {
        file: std::fs::File,
        start: u64,
        len: u64,
        download: Download,
    },
}

/// A response before it is written.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body,
    pub(crate) close: bool,
}

impl Response {
    pub(crate) fn new(status: u16) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: Body::Empty,
            close: false,
        }
    }

    pub(crate) fn text(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            content_type,
            body: Body::Bytes(body),
            ..Response::new(status)
        }
    }

    /// A short plain-text error page.
    pub(crate) fn error(status: u16) -> Response {
        let body = format!("{} {}\n", status, reason(status)).into_bytes();
        Response::text(status, "text/plain; charset=utf-8", body)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    /// The status line and header fields.
    pub(crate) fn head(&self, now: SystemTime) -> String {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nServer: sixboot\r\nDate: {}\r\n",
            self.status,
            reason(self.status),
            files::http_date(now)
        );
        let len = match &self.body {
            Body::Empty => None,
            Body::Bytes(bytes) => Some(bytes.len() as u64),
            Body::File { len, .. } => Some(*len),
        };
        if let Some(len) = len {
            let _ = write!(
                head,
                "Content-Type: {}\r\nContent-Length: {len}\r\n",
                self.content_type
            );
        }
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if self.close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
