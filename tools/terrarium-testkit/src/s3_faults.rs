//! A hostile S3 peer: a small HTTP proxy in front of [`crate::S3Server`] that gives
//! chosen requests a fault. One request per connection (`Connection: close` both ways),
//! so a fault hits exactly the request it was aimed at.
//!
//! A [`Select`] picks requests by method, a glob over the path (`*` matches anything,
//! `/` too) and a substring of the query, and says which of the matching requests get
//! the fault: "the 2nd GET of a `*.zfs.zst` gets a corrupted body" is
//! `proxy.add(Select::get("*.zfs.zst").nth(2), Fault::CorruptBody)`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What the proxy does to a selected request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `500 InternalError` without forwarding.
    Status500,
    /// Answer `503 SlowDown` (S3's "reduce your request rate") without forwarding.
    SlowDown503,
    /// Close the connection without answering (a clean FIN).
    Drop,
    /// Reset the connection (TCP RST) without forwarding.
    Reset,
    /// Forward, then send the response head and only half of its body.
    Truncate,
    /// Forward, then send the answer with bytes of its body flipped: same length, same
    /// headers (the ETag too), wrong content.
    CorruptBody,
    /// Forward (the server stores what it was sent), then answer with an ETag that is
    /// not the object's: what a broken gateway or a lost write looks like to the client.
    WrongEtag,
    /// Forward a ListObjectsV2, then leave out of the answer every object whose key
    /// matches this glob.
    ListOmits(String),
    /// Forward a ListObjectsV2, then add to the answer an object that does not exist,
    /// with this key and size.
    ListAdds(String, u64),
    /// Forward, then hold the answer for [`SLOW_ANSWER`]: the request is still in
    /// flight for the client while the server has done its work.
    SlowAnswer,
    /// Never answer (until the test ends).
    Hang,
}

/// How long [`Fault::SlowAnswer`] holds an answer.
pub const SLOW_ANSWER: Duration = Duration::from_secs(1);

/// The ETag [`Fault::WrongEtag`] answers with.
pub const WRONG_ETAG: &str = "\"0badc0de0badc0de0badc0de0badc0de\"";

/// Which requests get a fault.
#[derive(Debug, Clone)]
pub struct Select {
    method: Option<String>,
    path_glob: Option<String>,
    query: Option<String>,
    line: Option<String>,
    first: usize,
    times: usize,
}

impl Select {
    /// Requests whose request line (`GET /bucket/key?x-id=GetObject HTTP/1.1`)
    /// contains `substring`.
    pub fn line(substring: &str) -> Self {
        Self { method: None, path_glob: None, query: None, line: Some(substring.into()), first: 1, times: 1 }
    }
    /// Requests with `method` whose path (`/bucket/key`, percent-decoded, no query)
    /// matches `path_glob`.
    pub fn method(method: &str, path_glob: &str) -> Self {
        Self {
            method: Some(method.to_ascii_uppercase()),
            path_glob: Some(path_glob.into()),
            query: None,
            line: None,
            first: 1,
            times: 1,
        }
    }
    pub fn get(path_glob: &str) -> Self {
        Self::method("GET", path_glob)
    }
    pub fn put(path_glob: &str) -> Self {
        Self::method("PUT", path_glob)
    }
    pub fn post(path_glob: &str) -> Self {
        Self::method("POST", path_glob)
    }
    pub fn delete(path_glob: &str) -> Self {
        Self::method("DELETE", path_glob)
    }
    /// ListObjectsV2 requests (`GET /bucket?list-type=2...`).
    pub fn list() -> Self {
        Self::get("*").with_query("list-type=2")
    }
    /// Only requests whose query contains `substring` (`partNumber=2`, `uploads`).
    pub fn with_query(mut self, substring: &str) -> Self {
        self.query = Some(substring.into());
        self
    }
    /// The fault starts at the `n`th matching request (1 = the first).
    pub fn nth(mut self, n: usize) -> Self {
        self.first = n.max(1);
        self
    }
    /// How many matching requests (from the first selected one on) get the fault.
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    fn matches(&self, request: &Request) -> bool {
        self.line.as_ref().is_none_or(|s| request.line.contains(s.as_str()))
            && self.method.as_ref().is_none_or(|m| *m == request.method)
            && self.path_glob.as_ref().is_none_or(|g| glob_matches(g, &request.path))
            && self.query.as_ref().is_none_or(|q| request.query.contains(q.as_str()))
    }
}

/// `*` matches any run of characters (`/` too); everything else matches itself.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    let (first, rest) = parts.split_first().unwrap_or((&"", &[]));
    let Some(mut left) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty();
    };
    for part in middle {
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    left.len() >= last.len() && left.ends_with(last)
}

#[derive(Debug)]
struct Rule {
    select: Select,
    fault: Fault,
    matched: usize,
    applied: usize,
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

struct Request {
    line: String,
    method: String,
    path: String,
    query: String,
}

impl Request {
    fn parse(line: &str) -> Self {
        let mut words = line.split(' ');
        let method = words.next().unwrap_or("").to_string();
        let target = words.next().unwrap_or("");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        // Globs are written with the key as stored (`.../autosnap_2026-11-29_10:00:00_daily...`);
        // the SDK sends `:` as `%3A`.
        let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned();
        Self { line: line.to_string(), method, path, query: query.to_string() }
    }
}

/// The proxy: listens on 127.0.0.1 (random port) and forwards to the upstream port.
/// Its threads end with the test process.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> Self {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("testkit: bind the fault proxy: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("testkit: fault proxy address: {e}")).port();
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

    pub fn port(&self) -> u16 {
        self.port
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Give the requests `select` picks the fault. A request gets the fault of the
    /// first rule (in the order they were added) that selects it and is due.
    pub fn add(&self, select: Select, fault: Fault) {
        self.lock().rules.push(Rule { select, fault, matched: 0, applied: 0 });
    }

    /// Give the next `times` requests whose request line contains `matches` the fault
    /// (short for `add(Select::line(matches).times(times), fault)`).
    pub fn inject(&self, matches: &str, fault: Fault, times: usize) {
        self.add(Select::line(matches).times(times), fault);
    }

    /// Remove every rule: from now on requests pass untouched.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many requests got `fault`.
    pub fn applied(&self, fault: Fault) -> usize {
        self.lock().log.iter().filter(|(_, f)| f.as_ref() == Some(&fault)).count()
    }

    /// Every request line seen, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().log.iter().map(|(line, _)| line.clone()).collect()
    }

    /// When each request arrived (`> request line`) and was answered (`< request
    /// line`), in order.
    pub fn events(&self) -> Vec<String> {
        self.lock().events.clone()
    }

    /// How many requests had `matches` in their request line.
    pub fn seen(&self, matches: &str) -> usize {
        self.lock().log.iter().filter(|(line, _)| line.contains(matches)).count()
    }
}

/// Wait until the whole request head has arrived and return its length, without
/// consuming it: a [`Fault::Reset`] then closes a socket with unread data, which makes
/// the kernel answer with RST rather than FIN.
fn peek_head(stream: &TcpStream) -> std::io::Result<usize> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = stream.peek(&mut buffer)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(at) = buffer[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(at + 4);
        }
        if n == buffer.len() {
            return Err(std::io::Error::other("request head over 64 KiB"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
    })
}

fn error_reply(status: &str, code: &str) -> String {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
        xml.len()
    )
}

fn serve(mut client: TcpStream, upstream_port: u16, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let head_len = peek_head(&client)?;
    let mut head = vec![0u8; head_len];
    // Peeked, not yet read: decide first, so that a reset finds the head unread.
    client.peek(&mut head)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let request = Request::parse(head.lines().next().unwrap_or(""));
    let fault = {
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        // Every rule counts every request it selects (so `nth(2)` is the 2nd such
        // request, whatever other rules did to the 1st); the first rule due applies.
        let mut fault = None;
        for rule in shared.rules.iter_mut().filter(|r| r.select.matches(&request)) {
            rule.matched += 1;
            if fault.is_none() && rule.matched >= rule.select.first && rule.applied < rule.select.times {
                rule.applied += 1;
                fault = Some(rule.fault.clone());
            }
        }
        shared.log.push((request.line.clone(), fault.clone()));
        shared.events.push(format!("> {}", request.line));
        fault
    };
    if fault == Some(Fault::Reset) {
        return Ok(()); // dropped with the head unread: RST
    }
    client.read_exact(&mut vec![0u8; head_len])?;
    if header(&head, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let length: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body)?;
    match fault {
        Some(Fault::Status500) => {
            client.write_all(error_reply("500 Internal Server Error", "InternalError").as_bytes())?;
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::SlowDown503) => {
            client.write_all(error_reply("503 Slow Down", "SlowDown").as_bytes())?;
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
    let response = match &fault {
        Some(Fault::Truncate) => {
            let (head, body) = split_response(&response);
            let mut cut = join_response(&head, &body);
            cut.truncate(cut.len() - body.len().div_ceil(2));
            cut
        }
        Some(Fault::CorruptBody) => {
            let (head, mut body) = split_response(&response);
            corrupt(&mut body);
            join_response(&head, &body)
        }
        Some(Fault::WrongEtag) => {
            let (head, body) = split_response(&response);
            join_response(&replace_header(&head, "etag", WRONG_ETAG), &body)
        }
        Some(Fault::ListOmits(glob)) => {
            let (head, body) = split_response(&response);
            join_response(&head, list_omitting(&String::from_utf8_lossy(&body), glob).as_bytes())
        }
        Some(Fault::ListAdds(key, size)) => {
            let (head, body) = split_response(&response);
            join_response(&head, list_adding(&String::from_utf8_lossy(&body), key, *size).as_bytes())
        }
        _ => response,
    };
    // Logged before the answer goes out, so that a client's next request always
    // comes after it in the log.
    shared.lock().unwrap_or_else(PoisonError::into_inner).events.push(format!("< {}", request.line));
    client.write_all(&response)?;
    client.shutdown(Shutdown::Both)
}

/// The response's head (without the blank line) and its body, de-chunked.
fn split_response(response: &[u8]) -> (String, Vec<u8>) {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&response[..split]).trim_end().to_string();
    let raw = &response[split.min(response.len())..];
    let chunked = header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    (head, if chunked { dechunk(raw) } else { raw.to_vec() })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            break;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[(size + 2).min(raw.len())..];
    }
    body
}

/// A response with `head`'s status and headers, a `Content-Length` of `body` (no
/// chunking) and `body`.
fn join_response(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    for line in head.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("content-length:") || lower.starts_with("transfer-encoding:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn replace_header(head: &str, name: &str, value: &str) -> String {
    head.lines()
        .map(|line| match line.split_once(':') {
            Some((key, _)) if key.trim().eq_ignore_ascii_case(name) => format!("{key}: {value}"),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Flip every bit of a few bytes spread over the body (the length stays).
fn corrupt(body: &mut [u8]) {
    let len = body.len();
    for at in [len / 3, len / 2, len * 2 / 3] {
        if let Some(byte) = body.get_mut(at) {
            *byte = !*byte;
        }
    }
}

/// The `<Contents>` entries of a ListObjectsV2 answer, as (start, end, key).
fn contents(xml: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(start) = xml[from..].find("<Contents>").map(|i| i + from) {
        let Some(end) = xml[start..].find("</Contents>").map(|i| i + start + "</Contents>".len()) else {
            break;
        };
        let entry = &xml[start..end];
        let key = entry
            .split_once("<Key>")
            .and_then(|(_, rest)| rest.split_once("</Key>"))
            .map(|(key, _)| key.to_string())
            .unwrap_or_default();
        found.push((start, end, key));
        from = end;
    }
    found
}

fn with_key_count(xml: &str, delta: isize) -> String {
    let Some((before, rest)) = xml.split_once("<KeyCount>") else {
        return xml.to_string();
    };
    let Some((count, after)) = rest.split_once("</KeyCount>") else {
        return xml.to_string();
    };
    let count = count.trim().parse::<isize>().unwrap_or(0) + delta;
    format!("{before}<KeyCount>{count}</KeyCount>{after}")
}

fn list_omitting(xml: &str, glob: &str) -> String {
    let mut out = String::new();
    let mut from = 0;
    let mut omitted = 0;
    for (start, end, key) in contents(xml) {
        if glob_matches(glob, &key) {
            out.push_str(&xml[from..start]);
            from = end;
            omitted += 1;
        }
    }
    out.push_str(&xml[from..]);
    with_key_count(&out, -omitted)
}

fn list_adding(xml: &str, key: &str, size: u64) -> String {
    let entry = format!(
        "<Contents><Key>{key}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>{WRONG_ETAG}</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
    );
    let entries = contents(xml);
    // Keys come sorted; so does the one added.
    let at = entries
        .iter()
        .find(|(_, _, k)| k.as_str() > key)
        .map(|(start, _, _)| *start)
        .or_else(|| entries.last().map(|(_, end, _)| *end))
        .or_else(|| xml.find("</ListBucketResult>"))
        .unwrap_or(xml.len());
    with_key_count(&format!("{}{entry}{}", &xml[..at], &xml[at..]), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_paths() {
        assert!(glob_matches("*.zfs.zst", "/b/p/h/web/s1.zfs.zst"));
        assert!(!glob_matches("*.zfs.zst", "/b/p/h/web/s1.manifest.json"));
        assert!(glob_matches("*/web/*", "/b/p/h/web/s1.zfs.zst"));
        assert!(glob_matches("/b/x", "/b/x"));
        assert!(!glob_matches("/b/x", "/b/xy"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("a*a", "a"));
    }

    #[test]
    fn a_select_matches_the_key_as_stored_not_as_sent() {
        let request =
            Request::parse("GET /b/p/web/autosnap_2026-11-29_10%3A00%3A00_daily.zfs.zst?x-id=GetObject HTTP/1.1");
        assert!(Select::get("*/autosnap_2026-11-29_10:00:00_daily.zfs.zst").matches(&request));
        assert_eq!(request.query, "x-id=GetObject");
    }

    #[test]
    fn a_listing_can_lose_and_gain_objects() {
        let xml = "<ListBucketResult><KeyCount>2</KeyCount><Contents><Key>p/a</Key><Size>1</Size></Contents><Contents><Key>p/c</Key><Size>2</Size></Contents></ListBucketResult>";
        let omitted = list_omitting(xml, "*/a");
        assert!(!omitted.contains("p/a") && omitted.contains("p/c") && omitted.contains("<KeyCount>1<"), "{omitted}");
        let added = list_adding(xml, "p/b", 9);
        let keys: Vec<String> = contents(&added).into_iter().map(|(_, _, k)| k).collect();
        assert_eq!(keys, ["p/a", "p/b", "p/c"]);
        assert!(added.contains("<KeyCount>3<"), "{added}");
    }

    #[test]
    fn chunked_bodies_are_rejoined_with_a_length() {
        let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (head, body) = split_response(response);
        assert_eq!(body, b"abcde");
        let joined = String::from_utf8(join_response(&head, &body)).unwrap_or_default();
        assert_eq!(joined, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde");
    }
}
