//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1, driven by the tests.
//!
//! It sits in front of a real registry (distribution 2.8) or the spec
//! registry (`OciRegistry`) and, per request, either forwards it (one
//! upstream connection per request, `Connection: close` both ways) or
//! injects a fault chosen by the first matching [`Rule`]: refuse connections,
//! reset, never answer, stall or trickle a body, synthetic answers (status
//! bursts, 429s, garbage, endless bodies, redirects, pagination traps, a token
//! gate…). Faults are switched at runtime with [`FaultProxy::set_rules`] /
//! [`FaultProxy::set_refuse`]; every request is logged (method, target,
//! `Authorization`) so tests can count requests and check where credentials
//! went.
//!
//! Every loop and wait here is bounded (sizes, pages, [`MAX_HOLD`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::Result;

/// Longest a connection is held open by a stalling fault (the client's
/// timeout must be far shorter).
pub const MAX_HOLD: Duration = Duration::from_secs(30);
/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest upstream response buffered.
const MAX_UPSTREAM: usize = 32 * 1024 * 1024;
/// Endless bodies stop after this many bytes even if the client keeps reading.
const ENDLESS_CAP: u64 = 1024 * 1024 * 1024;

/// What the proxy saw of a request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query as received.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

impl Seen {
    /// A header value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// How a synthetic body is delivered.
#[derive(Clone, Debug)]
pub enum Body {
    /// All at once with `Content-Length`.
    Full(Vec<u8>),
    /// `Content-Length: declared`, `sent` bytes, then nothing until the client gives up.
    Stall { declared: usize, sent: Vec<u8> },
    /// One byte every `every`, with `Content-Length`.
    Trickle(Vec<u8>, Duration),
    /// Chunked, never ends (capped at 1 GiB, stops when the client hangs up).
    Endless,
    /// Full body, but the connection is reset after `after` body bytes.
    ResetAfter(Vec<u8>, usize),
}

/// A synthetic answer.
#[derive(Clone, Debug)]
pub struct Synth {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Synth {
    pub fn new(status: u16) -> Self {
        Synth {
            status,
            headers: Vec::new(),
            body: Body::Full(Vec::new()),
        }
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Full(b.into());
        self
    }
    pub fn json(self, v: &serde_json::Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(v.to_string())
    }
    pub fn with_body(mut self, b: Body) -> Self {
        self.body = b;
        self
    }
}

/// A responder: `None` forwards the request upstream.
pub type Responder = Arc<dyn Fn(&Seen) -> Option<Synth> + Send + Sync>;
/// Rewrites a forwarded answer.
pub type Mangler = Arc<dyn Fn(&Seen, Synth) -> Synth + Send + Sync>;

/// What a rule does to a matching request.
#[derive(Clone)]
pub enum Action {
    /// Pass through unchanged.
    Forward,
    /// Close with a TCP RST right after reading the request.
    Reset,
    /// Read the request, never answer (held until the client hangs up or [`MAX_HOLD`]).
    NoResponse,
    /// Forward, but reset the connection after the head and `n` body bytes.
    ForwardResetAfter(usize),
    /// Forward, but send the head and `n` body bytes, then stall.
    ForwardStallAfter(usize),
    /// Forward, one byte of the whole answer every interval.
    ForwardTrickle(Duration),
    /// Forward, then change the answer (status, headers, body) before sending it.
    ForwardMangle(Mangler),
    /// A synthetic answer.
    Respond(Synth),
    /// A synthetic answer computed from the request (`None`: forward).
    Dynamic(Responder),
    /// Raw bytes, then close (not HTTP).
    Raw(Vec<u8>),
}

/// A fault rule: the first rule whose matcher fits and that has hits left applies.
#[derive(Clone)]
pub struct Rule {
    pub method: Option<String>,
    pub path_contains: Option<String>,
    /// Hits left (`None`: unlimited).
    pub remaining: Option<u32>,
    pub action: Action,
}

impl Rule {
    /// Every request.
    pub fn any(action: Action) -> Self {
        Rule {
            method: None,
            path_contains: None,
            remaining: None,
            action,
        }
    }
    /// Requests whose target contains `needle`.
    pub fn on(needle: &str, action: Action) -> Self {
        Rule {
            path_contains: Some(needle.to_string()),
            ..Rule::any(action)
        }
    }
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_string());
        self
    }
    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }
    fn matches(&self, s: &Seen) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(&s.method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|n| s.target.contains(n))
    }
}

struct State {
    upstream: Option<SocketAddr>,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Seen>>,
    refuse: AtomicBool,
    refuse_changed: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The proxy; stops (and drops every connection) on Drop.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy forwarding to `upstream` (`127.0.0.1:port`).
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy> {
        Self::start_inner(Some(upstream))
    }

    /// A server answering only from its rules (no upstream: unmatched -> 502).
    pub fn standalone() -> Result<FaultProxy> {
        Self::start_inner(None)
    }

    /// A proxy in front of a harness server URL (`http://127.0.0.1:PORT`).
    pub fn in_front_of(url: &str) -> Result<FaultProxy> {
        let u = url::Url::parse(url)?;
        let host = u.host_str().ok_or("upstream URL without host")?;
        if host != "127.0.0.1" {
            return Err(format!("upstream must be on 127.0.0.1, got {host}").into());
        }
        let port = u
            .port_or_known_default()
            .ok_or("upstream URL without port")?;
        Self::start(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn start_inner(upstream: Option<SocketAddr>) -> Result<FaultProxy> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            refuse: AtomicBool::new(false),
            refuse_changed: tokio::sync::Notify::new(),
        });
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let first = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("listener: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        _ = accept_loop(first, addr, st) => {}
                        _ = shutdown_rx => {}
                    }
                });
            })?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => return Err(format!("fault proxy did not start: {e}").into()),
        }
        Ok(FaultProxy {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Replaces the rules (an empty list forwards everything).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *lock(&self.state.rules) = rules;
    }

    /// Forward everything again (and accept connections).
    pub fn heal(&self) {
        self.set_rules(Vec::new());
        self.set_refuse(false);
    }

    /// Closes (true) or reopens (false) the listening socket: connections are refused meanwhile.
    pub fn set_refuse(&self, refuse: bool) {
        self.state.refuse.store(refuse, Ordering::SeqCst);
        self.state.refuse_changed.notify_one();
        // Let the accept loop close/reopen the socket before the test goes on.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let open = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
                .is_ok();
            if open != refuse {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every request seen so far.
    pub fn log(&self) -> Vec<Seen> {
        lock(&self.state.log).clone()
    }

    pub fn clear_log(&self) {
        lock(&self.state.log).clear();
    }

    /// Requests whose target contains `needle`.
    pub fn count(&self, needle: &str) -> usize {
        lock(&self.state.log)
            .iter()
            .filter(|s| s.target.contains(needle))
            .count()
    }

    /// Arrival times of requests whose target contains `needle`.
    pub fn times_of(&self, needle: &str) -> Vec<Instant> {
        lock(&self.state.log)
            .iter()
            .filter(|s| s.target.contains(needle))
            .map(|s| s.at)
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

async fn rebind(addr: SocketAddr) -> Option<tokio::net::TcpListener> {
    // The port was ours a moment ago; retry briefly in case of TIME_WAIT races.
    for _ in 0..50 {
        let sock = TcpSocket::new_v4().ok()?;
        let _ = sock.set_reuseaddr(true);
        if sock.bind(addr).is_ok()
            && let Ok(l) = sock.listen(1024)
        {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn accept_loop(first: tokio::net::TcpListener, addr: SocketAddr, st: Arc<State>) {
    let mut listener = Some(first);
    loop {
        let refuse = st.refuse.load(Ordering::SeqCst);
        if refuse && listener.is_some() {
            listener = None; // closing the socket: connects are refused
        }
        if !refuse && listener.is_none() {
            listener = rebind(addr).await;
        }
        match &listener {
            None => st.refuse_changed.notified().await,
            Some(l) => {
                tokio::select! {
                    r = l.accept() => {
                        if let Ok((sock, _)) = r {
                            let st = st.clone();
                            tokio::spawn(async move {
                                let _ = tokio::time::timeout(MAX_HOLD * 2, handle(sock, st)).await;
                            });
                        }
                    }
                    _ = st.refuse_changed.notified() => {}
                }
            }
        }
    }
}

/// Reads a request head (and a `Content-Length` body). `Err(first_byte)` for
/// something that is not HTTP.
async fn read_request(sock: &mut TcpStream) -> Option<std::result::Result<(Seen, Vec<u8>), u8>> {
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut tmp))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if buf.first().is_some_and(|b| !b.is_ascii_alphabetic()) {
            return Some(Err(buf[0]));
        }
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let seen = Seen {
        method,
        target,
        headers,
        at: Instant::now(),
    };
    let len: usize = seen
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(MAX_UPSTREAM);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut tmp))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Ok((seen, body)))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn pick(st: &State, seen: &Seen) -> Action {
    let mut rules = lock(&st.rules);
    for r in rules.iter_mut() {
        if r.remaining == Some(0) || !r.matches(seen) {
            continue;
        }
        if let Some(n) = r.remaining.as_mut() {
            *n -= 1;
        }
        return r.action.clone();
    }
    Action::Forward
}

async fn handle(mut sock: TcpStream, st: Arc<State>) {
    let (seen, body) = match read_request(&mut sock).await {
        None => return,
        Some(Err(_first_byte)) => {
            // Not HTTP (e.g. a TLS ClientHello on this plain port): answer in plain HTTP.
            let _ = sock
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        }
        Some(Ok(x)) => x,
    };
    lock(&st.log).push(seen.clone());
    let action = pick(&st, &seen);
    match action {
        Action::Forward => match forward(&st, &seen, &body).await {
            Some(resp) => {
                let _ = sock.write_all(&resp).await;
            }
            None => {
                let _ = send_synth(&mut sock, &Synth::new(502).body("upstream failed")).await;
            }
        },
        Action::Reset => {
            reset(sock);
            return;
        }
        Action::NoResponse => hold(&mut sock).await,
        Action::ForwardResetAfter(n) => {
            if let Some(resp) = forward(&st, &seen, &body).await {
                let cut = find(&resp, b"\r\n\r\n").map_or(resp.len(), |p| p + 4 + n);
                let _ = sock.write_all(&resp[..cut.min(resp.len())]).await;
                let _ = sock.flush().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                reset(sock);
            }
            return;
        }
        Action::ForwardStallAfter(n) => {
            if let Some(resp) = forward(&st, &seen, &body).await {
                let cut = find(&resp, b"\r\n\r\n").map_or(resp.len(), |p| p + 4 + n);
                let _ = sock.write_all(&resp[..cut.min(resp.len())]).await;
                hold(&mut sock).await;
            }
        }
        Action::ForwardTrickle(every) => {
            if let Some(resp) = forward(&st, &seen, &body).await {
                for b in resp {
                    if sock.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
            }
        }
        Action::ForwardMangle(f) => match forward(&st, &seen, &body)
            .await
            .and_then(|r| parse_response(&r))
        {
            Some(synth) => {
                let _ = send_synth(&mut sock, &f(&seen, synth)).await;
            }
            None => {
                let _ = send_synth(&mut sock, &Synth::new(502).body("upstream failed")).await;
            }
        },
        Action::Respond(s) => {
            if send_synth(&mut sock, &s).await.is_err() {
                return; // reset on purpose, or the client hung up
            }
        }
        Action::Dynamic(f) => match f(&seen) {
            Some(s) => {
                if send_synth(&mut sock, &s).await.is_err() {
                    return;
                }
            }
            None => match forward(&st, &seen, &body).await {
                Some(resp) => {
                    let _ = sock.write_all(&resp).await;
                }
                None => {
                    let _ = send_synth(&mut sock, &Synth::new(502).body("upstream failed")).await;
                }
            },
        },
        Action::Raw(bytes) => {
            let _ = sock.write_all(&bytes).await;
        }
    }
    let _ = sock.shutdown().await;
}

/// Drops the socket with SO_LINGER 0: the peer sees a connection reset.
#[allow(deprecated)] // zero linger never blocks on drop
fn reset(sock: TcpStream) {
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(sock);
}

/// Keeps the connection open without answering until the client hangs up.
async fn hold(sock: &mut TcpStream) {
    let mut tmp = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + MAX_HOLD;
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends the request upstream (`Connection: close`) and reads the whole
/// answer, rewritten to carry `Connection: close`.
async fn forward(st: &State, seen: &Seen, body: &[u8]) -> Option<Vec<u8>> {
    let upstream = st.upstream?;
    let mut up = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream))
        .await
        .ok()?
        .ok()?;
    let mut req = format!("{} {} HTTP/1.1\r\n", seen.method, seen.target);
    for (k, v) in &seen.headers {
        if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    up.write_all(req.as_bytes()).await.ok()?;
    up.write_all(body).await.ok()?;
    let mut resp = Vec::new();
    let read = async {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            let n = up.read(&mut tmp).await.ok()?;
            if n == 0 {
                return Some(());
            }
            resp.extend_from_slice(&tmp[..n]);
            if resp.len() > MAX_UPSTREAM {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .ok()??;
    let head_end = find(&resp, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&resp[..head_end - 4]).to_string();
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        let lower = line.to_ascii_lowercase();
        if i > 0 && (lower.starts_with("connection:") || lower.starts_with("keep-alive:")) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&resp[head_end..]);
    Some(bytes)
}

/// A buffered upstream answer as a [`Synth`] (chunked bodies decoded).
fn parse_response(raw: &[u8]) -> Option<Synth> {
    let head_end = find(raw, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..head_end - 4]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    let mut chunked = false;
    for l in lines {
        let (k, v) = l.split_once(':')?;
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.eq_ignore_ascii_case("chunked");
            continue;
        }
        if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("connection") {
            continue;
        }
        headers.push((k.to_string(), v.to_string()));
    }
    let rest = &raw[head_end..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Synth {
        status,
        headers,
        body: Body::Full(body),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let line_end = find(b, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&b[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
    None
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn synth_head(s: &Synth, length: Option<usize>) -> String {
    let mut head = format!("HTTP/1.1 {} {}\r\n", s.status, reason_phrase(s.status));
    for (k, v) in &s.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

async fn send_synth(sock: &mut TcpStream, s: &Synth) -> std::io::Result<()> {
    match &s.body {
        Body::Full(b) => {
            sock.write_all(synth_head(s, Some(b.len())).as_bytes())
                .await?;
            sock.write_all(b).await?;
        }
        Body::Stall { declared, sent } => {
            sock.write_all(synth_head(s, Some(*declared)).as_bytes())
                .await?;
            sock.write_all(sent).await?;
            sock.flush().await?;
            hold(sock).await;
        }
        Body::Trickle(b, every) => {
            sock.write_all(synth_head(s, Some(b.len())).as_bytes())
                .await?;
            for byte in b {
                sock.write_all(&[*byte]).await?;
                sock.flush().await?;
                tokio::time::sleep(*every).await;
            }
        }
        Body::Endless => {
            sock.write_all(synth_head(s, None).as_bytes()).await?;
            let chunk = vec![b'['; 64 * 1024];
            let framed = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk,
                b"\r\n".to_vec(),
            ]
            .concat();
            let mut sent: u64 = 0;
            while sent < ENDLESS_CAP {
                sock.write_all(&framed).await?;
                sent += framed.len() as u64;
            }
        }
        Body::ResetAfter(b, after) => {
            sock.write_all(synth_head(s, Some(b.len())).as_bytes())
                .await?;
            sock.write_all(&b[..(*after).min(b.len())]).await?;
            sock.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            #[allow(deprecated)] // zero linger never blocks on drop
            let _ = sock.set_linger(Some(Duration::ZERO));
            return Err(std::io::Error::other("reset"));
        }
    }
    sock.flush().await
}
