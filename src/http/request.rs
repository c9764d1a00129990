//! The request head: parsed by httparse from bytes we have buffered, reduced to the
//! few fields the server acts on. Pure: no I/O.

/// Request methods the server distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Other(String),
}

/// One parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The request target's path, without query string and without a scheme and
    /// authority if the client sent the absolute form.
    pub path: String,
    /// Whether the connection stays open after the response (HTTP/1.1 default).
    pub keep_alive: bool,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub content_length: u64,
    /// `Transfer-Encoding` present: we accept no chunked bodies.
    pub has_transfer_encoding: bool,
    /// The query string after `?`, not decoded; empty when none.
    pub query: String,
    /// The `Authorization` field, for the API's bearer tokens. Never logged.
    pub authorization: Option<String>,
    /// The body (at most 64 KiB; the connection reads it before the handler runs).
    pub body: Vec<u8>,
    /// Whether it came over HTTPS (set by the connection, not parsed).
    pub tls: bool,
}

/// Why a request head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// 431: more header lines than allowed.
    #[error("too many header fields")]
    TooManyHeaders,
    /// 400: not HTTP/1.x as RFC 9112 describes it.
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// The most header fields any request may have.
pub const MAX_HEADERS: usize = 100;

/// Parses a request head from the start of `buf`: `Ok(None)` when more bytes are
/// needed, else the request and the length of its head.
pub fn parse_head(buf: &[u8], max_headers: usize) -> Result<Option<(Request, usize)>, HeadError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut storage[..max_headers.min(MAX_HEADERS)]);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(err) => return Err(HeadError::Malformed(err.to_string())),
    };
    let method = match parsed.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_owned()),
    };
    let version = parsed.version.unwrap_or(1);
    let mut target = parsed.path.unwrap_or("");
    if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        target = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    if !target.starts_with('/') {
        return Err(HeadError::Malformed(format!(
            "request target `{}` is not a path",
            target.chars().take(64).collect::<String>()
        )));
    }
    let without_fragment = target.split('#').next().unwrap_or("/");
    let (path, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let (path, query) = (path.to_owned(), query.to_owned());
    let mut request = Request {
        method,
        path,
        keep_alive: version == 1,
        range: None,
        if_range: None,
        if_none_match: None,
        if_modified_since: None,
        content_length: 0,
        has_transfer_encoding: false,
        query,
        authorization: None,
        body: Vec::new(),
        tls: false,
    };
    let mut content_length: Option<u64> = None;
    for header in parsed.headers.iter() {
        let value = || String::from_utf8_lossy(header.value).trim().to_owned();
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            let v = value().to_ascii_lowercase();
            if v.split(',').any(|t| t.trim() == "close") {
                request.keep_alive = false;
            } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                request.keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("range") {
            request.range = Some(value());
        } else if name.eq_ignore_ascii_case("if-range") {
            request.if_range = Some(value());
        } else if name.eq_ignore_ascii_case("if-none-match") {
            request.if_none_match = Some(value());
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            request.if_modified_since = Some(value());
        } else if name.eq_ignore_ascii_case("authorization") {
            request.authorization = Some(value());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            request.has_transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value()
                .parse::<u64>()
                .map_err(|_| HeadError::Malformed("bad Content-Length".into()))?;
            if content_length.is_some_and(|old| old != n) {
                return Err(HeadError::Malformed("conflicting Content-Length".into()));
            }
            content_length = Some(n);
        }
    }
    request.content_length = content_length.unwrap_or(0);
    Ok(Some((request, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get_with_range_and_keep_alive() {
        let head = b"GET /files/vmlinuz?x=1 HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\nrest";
        let (req, len) = parse_head(head, 16).unwrap().unwrap();
        assert_eq!(len, head.len() - 4);
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.path, "/files/vmlinuz");
        assert_eq!(req.range.as_deref(), Some("bytes=0-9"));
        assert!(req.keep_alive);
    }

    #[test]
    fn needs_more_bytes_for_a_partial_head() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost:", 16)
            .unwrap()
            .is_none());
    }

    #[test]
    fn http_1_0_and_connection_close_end_the_connection() {
        let (req, _) = parse_head(b"GET / HTTP/1.0\r\n\r\n", 16).unwrap().unwrap();
        assert!(!req.keep_alive);
        let (req, _) = parse_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 16)
            .unwrap()
            .unwrap();
        assert!(!req.keep_alive);
    }

    #[test]
    fn refuses_too_many_headers_and_garbage() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..20 {
            head.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_head(&head, 16).unwrap_err(),
            HeadError::TooManyHeaders
        );
        assert!(parse_head(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 16).is_err());
        assert!(parse_head(b"GET * HTTP/1.1\r\n\r\n", 16).is_err());
        assert!(parse_head(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            16
        )
        .is_err());
    }

    #[test]
    fn absolute_form_targets_become_paths() {
        let (req, _) = parse_head(b"GET http://[2001:db8::1]/ks/x HTTP/1.1\r\n\r\n", 16)
            .unwrap()
            .unwrap();
        assert_eq!(req.path, "/ks/x");
    }
}
