//! A closed-loop HTTP load generator for the benchmarks: N keep-alive
//! connections on loopback, each sending the next request as soon as the last
//! answer is read, for a fixed time. Reports throughput and latency
//! percentiles; every answer must have the expected status.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request, sent again and again.
#[derive(Debug, Clone)]
pub struct Target {
    pub method: hyper::Method,
    pub path: String,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    /// The status every answer must have.
    pub status: u16,
}

impl Target {
    pub fn get(path: &str) -> Target {
        Target {
            method: hyper::Method::GET,
            path: path.to_string(),
            content_type: None,
            body: Bytes::new(),
            status: 200,
        }
    }

    pub fn post_json(path: &str, body: String) -> Target {
        Target {
            method: hyper::Method::POST,
            path: path.to_string(),
            content_type: Some("application/json"),
            body: Bytes::from(body),
            status: 200,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub requests: usize,
    /// Answers with another status, or connections that failed.
    pub failures: usize,
    pub elapsed: Duration,
    /// Sorted latencies of the successful requests.
    latencies: Vec<Duration>,
}

impl Report {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0.5 for the median) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }
}

/// Runs `connections` connections against `addr` for `duration` (after a
/// short warm-up that is not counted) and reports.
pub async fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    target: Target,
) -> Report {
    let target = Arc::new(target);
    let warm_up = Duration::from_millis(300);
    let started = Instant::now();
    let counting_from = started + warm_up;
    let until = counting_from + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(connection(addr, target, counting_from, until))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (own, failed) = task.await.expect("a load connection panicked");
        latencies.extend(own);
        failures += failed;
    }
    latencies.sort();
    Report {
        requests: latencies.len(),
        failures,
        elapsed: duration,
        latencies,
    }
}

/// One connection's loop; reconnects after a failure. Returns the latencies
/// of the requests that started in the counted window, and the failures.
async fn connection(
    addr: SocketAddr,
    target: Arc<Target>,
    counting_from: Instant,
    until: Instant,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut failures = 0;
    'connect: while Instant::now() < until {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            failures += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = hyper_util::rt::TokioIo::new(stream);
        let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(io).await else {
            failures += 1;
            continue;
        };
        let driver = tokio::spawn(conn);
        loop {
            let sent = Instant::now();
            if sent >= until {
                break 'connect;
            }
            let mut request = hyper::Request::builder()
                .method(target.method.clone())
                .uri(target.path.as_str())
                .header("host", addr.to_string());
            if let Some(content_type) = target.content_type {
                request = request.header("content-type", content_type);
            }
            let request = request
                .body(Full::new(target.body.clone()))
                .expect("a valid request");
            let ok = match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let read = response.into_body().collect().await.is_ok();
                    read && status == target.status
                }
                Err(_) => false,
            };
            if !ok {
                failures += 1;
                driver.abort();
                continue 'connect;
            }
            if sent >= counting_from {
                latencies.push(sent.elapsed());
            }
        }
    }
    (latencies, failures)
}
