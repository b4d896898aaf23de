//! A small fault-injecting HTTP proxy in front of s3s-fs (test-only). One request per
//! connection (`Connection: close` both ways), so faults can be aimed at single
//! requests: a 500 reply, a dropped connection, a truncated response, a late answer, or
//! a hang.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `500 InternalError` without forwarding.
    Status500,
    /// Close the connection without answering.
    Drop,
    /// Forward, then send the response head and only half of its body.
    Truncate,
    /// Forward, then hold the answer for [`SLOW_ANSWER`]: the request is still in
    /// flight for the client while the server has done its work.
    SlowAnswer,
    /// Never answer (until the test ends).
    Hang,
}

const SLOW_ANSWER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Rule {
    /// Substring of the request line, such as `partNumber=2` or `GET /`.
    matches: String,
    fault: Fault,
    /// How many matching requests get the fault.
    times: usize,
}

#[derive(Debug, Default)]
struct Shared {
    rules: Vec<Rule>,
    /// Request lines seen, with the fault applied (if any).
    log: Vec<(String, Option<Fault>)>,
    /// Request lines as their requests arrived (`> line`) and were answered (`< line`),
    /// in that order.
    events: Vec<String>,
}

pub struct FaultProxy {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let accept_shared = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let shared = accept_shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, upstream_port, &shared);
                });
            }
        });
        Self { port, shared }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Give the next `times` requests whose request line contains `matches` the fault.
    pub fn inject(&self, matches: &str, fault: Fault, times: usize) {
        self.shared.lock().unwrap().rules.push(Rule { matches: matches.into(), fault, times });
    }

    pub fn clear(&self) {
        self.shared.lock().unwrap().rules.clear();
    }

    /// How many requests got `fault`.
    pub fn applied(&self, fault: Fault) -> usize {
        self.shared.lock().unwrap().log.iter().filter(|(_, f)| *f == Some(fault)).count()
    }

    /// Every request line seen, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().unwrap().log.iter().map(|(line, _)| line.clone()).collect()
    }

    /// When each request arrived (`> request line`) and was answered (`< request
    /// line`), in order.
    pub fn events(&self) -> Vec<String> {
        self.shared.lock().unwrap().events.clone()
    }

    /// How many requests had `matches` in their request line.
    pub fn seen(&self, matches: &str) -> usize {
        self.shared.lock().unwrap().log.iter().filter(|(line, _)| line.contains(matches)).count()
    }
}

fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(head)
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
    })
}

fn serve(mut client: TcpStream, upstream_port: u16, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let head = String::from_utf8_lossy(&read_head(&mut client)?).into_owned();
    if header(&head, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let length: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body)?;
    let request_line = head.lines().next().unwrap_or("").to_string();
    let fault = {
        let mut shared = shared.lock().unwrap();
        let fault = shared.rules.iter_mut().find(|r| r.times > 0 && request_line.contains(&r.matches)).map(|rule| {
            rule.times -= 1;
            rule.fault
        });
        shared.log.push((request_line.clone(), fault));
        shared.events.push(format!("> {request_line}"));
        fault
    };
    match fault {
        Some(Fault::Status500) => {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>";
            let reply = format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            client.write_all(reply.as_bytes())?;
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::Drop) => return client.shutdown(Shutdown::Both),
        Some(Fault::Hang) => {
            std::thread::sleep(Duration::from_secs(600));
            return Ok(());
        }
        _ => {}
    }
    // Forward with one request per connection.
    let mut forwarded = String::new();
    for line in head.trim_end().lines() {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("expect:") {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    upstream.write_all(forwarded.as_bytes())?;
    upstream.write_all(&body)?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response)?;
    if fault == Some(Fault::SlowAnswer) {
        std::thread::sleep(SLOW_ANSWER);
    }
    // Logged before the answer goes out, so that a client's next request always
    // comes after it in the log.
    shared.lock().unwrap().events.push(format!("< {request_line}"));
    if fault == Some(Fault::Truncate) {
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
        let body_len = response.len() - split;
        client.write_all(&response[..split + body_len / 2])?;
    } else {
        client.write_all(&response)?;
    }
    client.shutdown(Shutdown::Both)
}
