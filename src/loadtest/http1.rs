//! Plain HTTP/1.1 for the load generator: kept-alive connections, each carrying one request at
//! a time, taken from and given back to a small idle list. A general client's pool costs
//! several times more per request; a generator must stay cheaper than the server it measures.
//! The task sending a request also drives its connection (no task per connection, no wake-up
//! between two tasks per request). (`https://` goes through reqwest.)

use bytes::Bytes;
use futures_util::FutureExt as _;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Connection, SendRequest};
use std::sync::Mutex;
use std::time::Duration;

/// What an answer carried.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made.
    Connect,
    /// A broken answer or connection.
    Other,
}

/// Connections to one `http://` server.
pub struct Pool {
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header, made once.
    host_value: hyper::header::HeaderValue,
    /// A path the base URL starts with (`/shop`), put before every request's path.
    prefix: String,
    connect_timeout: Duration,
    idle: Mutex<Vec<Kept>>,
}

/// A connection: the request side and the connection itself, driven by whoever holds it.
struct Kept {
    sender: SendRequest<Full<Bytes>>,
    conn: Connection<hyper_util::rt::TokioIo<tokio::net::TcpStream>, Full<Bytes>>,
}

impl Pool {
    /// A pool for `base_url` when it is `http://host[:port][/prefix]`; `None` otherwise.
    pub fn new(base_url: &str, connect_timeout: Duration) -> Option<Pool> {
        let rest = base_url.strip_prefix("http://")?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let has_port = match authority.rfind(':') {
            Some(i) => !authority.ends_with(']') && authority[i + 1..].parse::<u16>().is_ok(),
            None => false,
        };
        let addr = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Some(Pool {
            addr,
            host_value: hyper::header::HeaderValue::from_str(authority).ok()?,
            prefix: prefix.to_string(),
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Option<Kept> {
        match self.idle.lock() {
            Ok(mut v) => v.pop(),
            Err(p) => p.into_inner().pop(),
        }
    }

    fn give_back(&self, k: Kept) {
        if k.sender.is_closed() {
            return;
        }
        match self.idle.lock() {
            Ok(mut v) => v.push(k),
            Err(p) => p.into_inner().push(k),
        }
    }

    async fn connect(&self) -> Result<Kept, Failure> {
        let stream = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|_| Failure::Connect)?
            .map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        Ok(Kept { sender, conn })
    }

    /// Sends one request (`path` after the base URL's prefix) and reads the whole answer. A
    /// kept connection the server closed meanwhile is replaced once.
    pub async fn send(
        &self,
        method: &str,
        path: String,
        headers: &[(&str, std::borrow::Cow<'_, str>)],
        body: Option<(Option<&'static str>, Vec<u8>)>,
    ) -> Result<Answer, Failure> {
        // The path as given becomes the request's target without a copy when there is no prefix.
        let target = if self.prefix.is_empty() {
            path
        } else {
            format!("{}{path}", self.prefix)
        };
        let uri = hyper::Uri::try_from(target).map_err(|_| Failure::Other)?;
        const AGENT: hyper::header::HeaderValue =
            hyper::header::HeaderValue::from_static(concat!("tend-loadtest/", env!("CARGO_PKG_VERSION")));
        let body = body.map(|(t, b)| (t, Bytes::from(b)));
        let mut reused = self.take();
        loop {
            let was_reused = reused.is_some();
            let mut kept = match reused.take() {
                Some(k) => k,
                None => self.connect().await?,
            };
            let mut rb = hyper::Request::builder()
                .method(method)
                .uri(uri.clone())
                .header(hyper::header::HOST, self.host_value.clone());
            let mut agent = false;
            for (k, v) in headers {
                agent |= k.eq_ignore_ascii_case("user-agent");
                rb = rb.header(*k, v.as_ref());
            }
            if !agent {
                rb = rb.header(hyper::header::USER_AGENT, AGENT);
            }
            let payload = match &body {
                Some((content_type, b)) => {
                    if let Some(t) = content_type {
                        rb = rb.header(hyper::header::CONTENT_TYPE, *t);
                    }
                    Full::new(b.clone())
                }
                None => Full::new(Bytes::new()),
            };
            let request = rb.body(payload).map_err(|_| Failure::Other)?;
            let outcome = {
                let Kept { sender, conn } = &mut kept;
                let exchange = async {
                    sender.ready().await?;
                    let response = sender.send_request(request).await?;
                    let (parts, incoming) = response.into_parts();
                    let body = incoming.collect().await?.to_bytes();
                    Ok::<_, hyper::Error>((parts, body))
                };
                // The connection is driven while the request goes out and the answer comes in. It
                // may end first: after delivering its answer (the server's `Connection: close`),
                // which is then read at once, or without one (a kept connection the server had
                // closed), which nothing would ever answer.
                tokio::pin!(exchange);
                tokio::select! {
                    biased;
                    r = &mut exchange => Some(r),
                    _ = conn => exchange.now_or_never(),
                }
            };
            let outcome = match outcome {
                Some(r) => r,
                None if was_reused => continue,
                None => return Err(Failure::Other),
            };
            match outcome {
                Ok((parts, body)) => {
                    self.give_back(kept);
                    return Ok(Answer {
                        status: parts.status.as_u16(),
                        headers: parts.headers,
                        body,
                    });
                }
                // The server closed a kept connection just as it was reused: a new one.
                Err(e) if was_reused && (e.is_canceled() || e.is_incomplete_message() || e.is_closed()) => continue,
                Err(_) => return Err(Failure::Other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_split_into_address_host_and_prefix() {
        let p = Pool::new("http://10.0.0.7", Duration::from_secs(1)).expect("http");
        assert_eq!(
            (
                p.addr.as_str(),
                p.host_value.to_str().unwrap_or_default(),
                p.prefix.as_str()
            ),
            ("10.0.0.7:80", "10.0.0.7", "")
        );
        let p = Pool::new("http://shop.internal:8080/api/", Duration::from_secs(1)).expect("http");
        assert_eq!((p.addr.as_str(), p.prefix.as_str()), ("shop.internal:8080", "/api"));
        let p = Pool::new("http://[::1]:81", Duration::from_secs(1)).expect("http");
        assert_eq!(p.addr, "[::1]:81");
        assert!(Pool::new("https://shop", Duration::from_secs(1)).is_none());
        assert!(Pool::new("http://user@shop", Duration::from_secs(1)).is_none());
    }
}
