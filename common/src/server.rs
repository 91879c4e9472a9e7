//! The HTTP accept loop every process runs: hyper's HTTP/1 + HTTP/2 builder with limits that
//! cut off slow or hostile clients (header read timeout, body stall timeout, header block size,
//! a connection cap answered with 503 SlowDown), TCP_NODELAY and graceful drain; over TLS when
//! given a certificate (the handshake bounded by the same timeout).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::tls::ServerTls;

/// What a server tolerates from its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's header block (and an idle keep-alive connection's next one) must arrive
    /// within this; a request body that sends nothing for this long fails with [`BodyTimeout`].
    pub request_timeout: Duration,
    /// Open connections at most; one more is answered 503 SlowDown and closed.
    pub max_connections: usize,
    /// Headers per request at most (hyper answers a bare 431 beyond it).
    pub max_headers: usize,
    /// Bytes an HTTP/1 connection buffers: a request's head at most (hyper answers a bare 431
    /// beyond it), and the response bytes queued before the body's next chunk is asked for.
    pub max_buf: usize,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this; None: plain HTTP.
    pub tls: Option<ServerTls>,
}

/// A request extension: the request came over TLS (for `aws:SecureTransport`).
#[derive(Debug, Clone, Copy)]
pub struct SecureTransport;

impl Default for Limits {
    /// For internal servers: longer than the clients' 60 s idle pool timeout, so that a pooled
    /// connection is never closed under a request being sent on it.
    fn default() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(120),
            max_connections: 4096,
            max_headers: 500,
            max_buf: INTERNAL_MAX_BUF,
            tls: None,
        }
    }
}

/// The error a request body yields when its client stopped sending.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the client sent no body bytes for {:?}", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether `e` (anything a request body failed with) is a [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A request body that fails when no frame arrives for `idle`.
struct TimeoutBody {
    inner: Incoming,
    idle: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl http_body::Body for TimeoutBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.sleep = None;
                Poll::Ready(r.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(idle))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Answered on a connection over the cap, before closing it.
fn slow_down() -> Vec<u8> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                <Message>Please reduce your request rate.</Message></Error>";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nRetry-After: 1\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// [`Limits::max_buf`] of internal servers: with hyper's default a worker stream kept a second
/// 1 MiB page queued behind the one being written.
const INTERNAL_MAX_BUF: usize = 64 << 10;

/// [`Limits::max_buf`] of gateways, hyper's default: header sections far past AWS's 8 KiB are
/// read, and answered with S3's error rather than a bare 431.
pub const CLIENT_MAX_BUF: usize = 8192 + 4096 * 100;

/// Serves `router` until `shutdown` fires, then drains open requests for up to `drain`.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    drain: Duration,
    limits: Limits,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_buf)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to close.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Responses go out in several writes (head, then body chunks): with Nagle's algorithm
        // on, the second waits for the peer's delayed ACK, about 40 ms per small response.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY on an accepted connection: {e}");
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("strata_http_connections_refused_total").increment(1);
            // A TLS client cannot read a plain answer: it is only closed.
            if limits.tls.is_none() {
                tokio::spawn(async move {
                    let mut tcp = tcp;
                    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(&slow_down())).await;
                });
            }
            continue;
        };
        let router = router.clone();
        let (idle, tls) = (limits.request_timeout, limits.tls.clone());
        let secure = tls.is_some();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(|inner| Body::new(TimeoutBody { inner, idle, sleep: None }));
            if secure {
                req.extensions_mut().insert(SecureTransport);
            }
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            // hyper reads the first bytes (HTTP/1 or HTTP/2?) with no timeout of its own: a
            // connection that sends nothing would hold its slot for ever.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(idle, tcp.peek(&mut first)).await, Ok(Ok(n)) if n > 0) {
                drop(slot);
                return;
            }
            let io = match tls {
                None => Either::Left(tcp),
                Some(tls) => match tokio::time::timeout(idle, tls.acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => Either::Right(stream),
                    Ok(Err(e)) => {
                        metrics::counter!("strata_tls_handshake_failures_total").increment(1);
                        tracing::debug!("TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        metrics::counter!("strata_tls_handshake_failures_total").increment(1);
                        tracing::debug!("TLS handshake timed out after {idle:?}");
                        return;
                    }
                },
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!("connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown: open requests did not finish within {drain:?}; closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_down_length_matches() {
        let text = String::from_utf8(slow_down()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head} / {}", body.len());
        assert!(head.starts_with("HTTP/1.1 503 ") && head.contains("\r\nRetry-After: 1\r\n"), "{head}");
        assert!(body.contains("<Code>SlowDown</Code>") && !body.contains("  "), "{body}");
    }
}
