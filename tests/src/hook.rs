//! A webhook receiver for notification tests: an HTTP/1.1 server on 127.0.0.1:0 (tokio)
//! that records every request (method, path, headers, body) and answers with a configurable
//! status after a configurable delay.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Largest request accepted (headers and body).
const MAX_REQUEST: usize = 1 << 20;

/// One recorded request.
#[derive(Clone, Debug)]
pub struct HookRequest {
    /// `POST`, …
    pub method: String,
    /// The request target.
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HookRequest {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Clone)]
struct Behaviour {
    status: u16,
    delay: Duration,
}

/// The receiver; stops when dropped.
pub struct HookReceiver {
    port: u16,
    requests: Arc<Mutex<Vec<HookRequest>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: tokio::task::JoinHandle<()>,
}

impl HookReceiver {
    /// Starts answering 200 at once.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour {
            status: 200,
            delay: Duration::ZERO,
        }));
        let (recorded, answer) = (requests.clone(), behaviour.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (recorded, answer) = (recorded.clone(), answer.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, recorded, answer).await;
                });
            }
        });
        Ok(Self {
            port,
            requests,
            behaviour,
            task,
        })
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Answer with `status` from now on.
    pub fn set_status(&self, status: u16) {
        self.behaviour.lock().expect("lock").status = status;
    }

    /// Wait `delay` before answering from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour.lock().expect("lock").delay = delay;
    }

    /// Every request received (complete ones), in order.
    pub fn requests(&self) -> Vec<HookRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for HookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    recorded: Arc<Mutex<Vec<HookRequest>>>,
    answer: Arc<Mutex<Behaviour>>,
) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).await?;
        anyhow::ensure!(read > 0 && buffer.len() < MAX_REQUEST, "bad request");
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(key, _)| key == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(length <= MAX_REQUEST, "too large");
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await?;
        anyhow::ensure!(read > 0, "short body");
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    recorded.lock().expect("lock").push(HookRequest {
        method,
        path,
        headers,
        body,
    });
    let Behaviour { status, delay } = answer.lock().expect("lock").clone();
    tokio::time::sleep(delay).await;
    let response =
        format!("HTTP/1.1 {status} Test\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}
