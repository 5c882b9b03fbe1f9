//! The accept loop: HTTP/1.1 connections served by hyper with a header
//! deadline (silent, idle and half-sent connections close), a write deadline
//! (clients that stop reading), and a cap on open connections past which a
//! new one is told 503 and closed.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// What the accept loop enforces; read from the configuration at start.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most (`SwitchboardSettings.MaxConnections`).
    pub max_connections: u32,
    /// How long a connection may take to send a complete request header,
    /// counted from its start or the end of its previous response
    /// (`ServiceSettings.IdleTimeout`).
    pub header_timeout: Duration,
    /// How long a write to the client may make no progress before the
    /// connection is closed (`ServiceSettings.WriteTimeout`).
    pub write_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets requests in flight finish and closes idle connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1) as usize));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) => {
                    // Out of file descriptors, mostly: wait instead of spinning.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let (router, closed) = (router.clone(), closed.clone());
                connections.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    serve_connection(stream, Some(peer), router, limits, closed).await;
                    drop(slot);
                });
            }
            Err(_) => {
                tracing::warn!(
                    "refused a connection: {} connections are open (SwitchboardSettings.MaxConnections)",
                    limits.max_connections
                );
                connections.spawn(refuse(stream));
            }
        }
    }
    // Refuse new connections at once, while those open finish.
    drop(listener);
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection; each request carries `peer` as axum's
/// `ConnectInfo<SocketAddr>`, for limits kept per client address.
async fn serve_connection<IO>(
    io: IO,
    peer: Option<SocketAddr>,
    router: Router,
    limits: ConnectionLimits,
    closed: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let io = WriteDeadline {
        io,
        limit: limits.write_timeout,
        stalled: None,
    };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        if let Some(peer) = peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        // The router is always ready; a clone per request, as hyper-util's
        // adapter makes.
        tower_service::Service::call(&mut router.clone(), request)
    });
    let connection = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection closed: {e}");
            }
        }
        () = until_closing(closed) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn until_closing(mut closed: watch::Receiver<bool>) {
    let _ = closed.wait_for(|closed| *closed).await;
}

/// Fails a write that has made no progress for `limit`, so a client that
/// stops reading its answers cannot hold a connection (and the answer's
/// memory) for ever. Any progress starts the clock again.
struct WriteDeadline<T> {
    io: T,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn progress<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if stalled.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading (ServiceSettings.WriteTimeout)",
            )));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.progress(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.progress(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.progress(cx, poll)
    }
}

/// Tells a connection over the cap why it is closed, in Mattermost's envelope.
async fn refuse(mut stream: TcpStream) {
    let body = serde_json::json!({
        "id": "api.server.too_many_connections.app_error",
        "message": "The server has too many open connections; try again shortly.",
        "detailed_error": "",
        "request_id": crate::store::new_id(),
        "status_code": 503,
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    // Read what the client sent (briefly) so closing does not reset the
    // connection before it has read the answer.
    let mut sink = [0u8; 4096];
    let drain = async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 1,
            header_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_millis(200),
        }
    }

    /// A client that asks for a large answer and never reads it: the
    /// connection ends once writing has stalled for the write timeout.
    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped() {
        let router = Router::new().route("/big", get(|| async { vec![b'x'; 4 << 20] }));
        // A small in-memory pipe: the answer cannot fit, so writes stall.
        let (mut client, server) = tokio::io::duplex(16 << 10);
        let (_closing, closed) = watch::channel(false);
        let served = tokio::spawn(serve_connection(server, None, router, limits(), closed));
        client
            .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("the stalled connection was closed")
            .unwrap();
    }

    /// A slow but reading client is not cut off: progress restarts the clock.
    #[tokio::test]
    async fn a_reading_client_gets_the_whole_answer() {
        let router = Router::new().route("/big", get(|| async { vec![b'x'; 1 << 20] }));
        let (mut client, server) = tokio::io::duplex(16 << 10);
        let (_closing, closed) = watch::channel(false);
        tokio::spawn(serve_connection(server, None, router, limits(), closed));
        client
            .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut chunk = [0u8; 64 << 10];
        loop {
            let n = client.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
            // Slower than the pipe fills, well within the write timeout.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        assert!(answer.ends_with(&[b'x'; 1024]));
        assert!(answer.len() > 1 << 20);
    }
}
