//! A small parser for the Prometheus text format (0.0.4) and an HTTP GET of
//! `/metrics` over a plain TCP connection (no HTTP client dependency); used
//! by `kmon tui` and by the node agent's cluster sampler.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One sample: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parses the text format; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (&line[..open], parse_labels(&line[open + 1..close]), &line[close + 1..])
        }
        None => {
            let space = line.find(' ')?;
            (&line[..space], Vec::new(), &line[space..])
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { name: name.to_owned(), labels, value })
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        let after = &rest[eq + 1..];
        let Some(body) = after.strip_prefix('"') else { break };
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = body.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.push((key, value));
        rest = &body[end.min(body.len())..];
    }
    labels
}

/// `GET /metrics` from `address` (host:port), bounded by `timeout`: every
/// sample, or only those of the metrics `names`.
///
/// A broker is asked for `names` only (`?name[]=`); the lines are still
/// checked here, since a server may ignore the parameter. The body is read
/// a line at a time into one reused buffer, only wanted lines are parsed,
/// and with `names` given reading stops once every wanted metric has been
/// read: the text format keeps a metric's samples together, so a wanted
/// metric is complete at the first sample of another one after it. (A
/// broker leading 10,000 partitions serves ~6.5 MB when asked for all.)
pub async fn scrape(address: &str, names: &[&str], timeout: Duration) -> Result<Vec<Sample>, String> {
    let call = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {address}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
            metrics_path(names)
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut reader = BufReader::with_capacity(64 << 10, stream);
        let mut line = Vec::with_capacity(256);
        let mut chunked = false;
        let mut status = None;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).await.map_err(|e| e.to_string())? == 0 {
                return Err("no HTTP header end".into());
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if text.is_empty() {
                break;
            }
            match &status {
                None => status = Some(text.to_owned()),
                Some(_) => chunked |= text.to_ascii_lowercase().starts_with("transfer-encoding: chunked"),
            }
        }
        let status = status.unwrap_or_default();
        if !status.starts_with("HTTP/1.") || status.split_whitespace().nth(1) != Some("200") {
            return Err(format!("HTTP: {status}"));
        }
        if chunked {
            // Not what a server answers an HTTP/1.0 request with; handled
            // the simple way.
            let mut body = Vec::new();
            reader.read_to_end(&mut body).await.map_err(|e| e.to_string())?;
            return Ok(filter(&dechunk(&String::from_utf8_lossy(&body)), names));
        }
        let mut samples = Vec::new();
        let mut read = Progress::new(names.len());
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).await.map_err(|e| e.to_string())? == 0 {
                return Ok(samples);
            }
            if line.starts_with(b"#") || line.trim_ascii().is_empty() {
                continue;
            }
            let metric = metric_of(&line, names);
            if (names.is_empty() || metric.is_some())
                && let Ok(text) = std::str::from_utf8(&line)
            {
                samples.extend(parse(text));
            }
            if !names.is_empty() && read.sample_of(metric) {
                // Dropping the connection ends the transfer.
                return Ok(samples);
            }
        }
    };
    tokio::time::timeout(timeout, call).await.unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
}

/// `/metrics`, with `?name[]=` for each of `names` (none: the whole page).
pub fn metrics_path(names: &[&str]) -> String {
    let query: Vec<String> = names.iter().map(|n| format!("name[]={n}")).collect();
    if query.is_empty() { "/metrics".into() } else { format!("/metrics?{}", query.join("&")) }
}

/// The body of an HTTP/1.1 `Transfer-Encoding: chunked` response, joined.
pub fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// Which of `names` the sample `line` belongs to (its metric name runs up
/// to `{` or a space).
fn metric_of(line: &[u8], names: &[&str]) -> Option<usize> {
    names.iter().position(|name| {
        line.strip_prefix(name.as_bytes()).is_some_and(|rest| matches!(rest.first(), Some(b'{' | b' ')))
    })
}

/// Which wanted metrics have been read whole.
#[derive(Debug)]
struct Progress {
    complete: Vec<bool>,
    /// The wanted metric whose samples came last.
    reading: Option<usize>,
}

impl Progress {
    fn new(wanted: usize) -> Progress {
        Progress { complete: vec![false; wanted], reading: None }
    }

    /// A sample line of wanted metric `metric` (`None`: of another one);
    /// true once every wanted metric is complete.
    fn sample_of(&mut self, metric: Option<usize>) -> bool {
        if let Some(previous) = self.reading
            && metric != Some(previous)
        {
            self.complete[previous] = true;
        }
        self.reading = metric;
        self.complete.iter().all(|c| *c)
    }
}

/// The samples of `text` of the metrics `names` (none: every sample).
fn filter(text: &str, names: &[&str]) -> Vec<Sample> {
    text.lines().filter(|l| names.is_empty() || metric_of(l.as_bytes(), names).is_some()).flat_map(parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_and_values() {
        let samples = parse(
            "# HELP x y\n# TYPE x counter\nkafka_server_brokertopicmetrics_messagesin_total 42\n\
             kafka_server_brokertopicmetrics_messagesin_total{topic=\"a\\\"b\",x=\"1\"} 7.5\nbad line\n",
        );
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].value, 42.0);
        assert!(samples[0].labels.is_empty());
        assert_eq!(samples[1].label("topic"), Some("a\"b"));
        assert_eq!(samples[1].label("x"), Some("1"));
        assert_eq!(samples[1].value, 7.5);
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }

    #[test]
    fn keeps_only_the_named_series() {
        let page = "# TYPE a_total counter\na_total 1\na_total{topic=\"t\"} 2\nab_total 3\n\
                    kafka_log_log_size{topic=\"t\",partition=\"0\"} 9\nb 4\n";
        let kept = filter(page, &["a_total", "b"]);
        let values: Vec<f64> = kept.iter().map(|s| s.value).collect();
        assert_eq!(values, [1.0, 2.0, 4.0]);
        assert_eq!(kept[1].label("topic"), Some("t"));
    }

    #[test]
    fn a_metric_is_complete_at_the_next_metric() {
        let mut read = Progress::new(2);
        assert!(!read.sample_of(None), "nothing wanted read yet");
        assert!(!read.sample_of(Some(1)));
        assert!(!read.sample_of(Some(1)));
        assert!(!read.sample_of(None), "metric 1 complete, 0 not seen");
        assert!(!read.sample_of(Some(0)));
        assert!(read.sample_of(None), "both complete");

        let mut read = Progress::new(3);
        assert!(!read.sample_of(Some(0)));
        assert!(!read.sample_of(Some(1)), "0 complete: 1 follows it");
        assert!(!read.sample_of(Some(2)));
        assert!(read.sample_of(None), "as a broker's page has them: one after the other");
    }

    /// Against a real HTTP server: a page far larger than the read buffer,
    /// with a line split across reads.
    #[tokio::test]
    async fn scrapes_a_large_page_line_by_line() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let mut page = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
        for p in 0..20_000 {
            page.push_str(&format!("kafka_log_log_size{{topic=\"t\",partition=\"{p}\"}} {p}\n"));
        }
        page.push_str("# TYPE kafka_server_brokertopicmetrics_messagesin_total counter\n");
        page.push_str("kafka_server_brokertopicmetrics_messagesin_total 42\n");
        page.push_str("kafka_server_brokertopicmetrics_messagesin_total{topic=\"t\"} 40\n");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            socket.write_all(page.as_bytes()).await.unwrap();
        });
        let samples = scrape(&address, &["kafka_server_brokertopicmetrics_messagesin_total"], Duration::from_secs(5))
            .await
            .unwrap();
        let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
        assert_eq!(values, [42.0, 40.0], "read to the end: the metric may go on");
    }

    /// Once every wanted metric has been read, the rest of the page is not:
    /// the server sees the connection closed early.
    #[tokio::test]
    async fn stops_reading_after_the_wanted_metrics() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            let head = "HTTP/1.1 200 OK\r\n\r\nwanted_total 1\nwanted_total{topic=\"t\"} 2\nother 3\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            // 64 MiB more: far beyond the socket buffers, so writing them
            // fails unless the client reads them all.
            let filler = "kafka_log_log_size{topic=\"t\",partition=\"0\"} 0\n".repeat(1 << 16);
            for _ in 0..20 {
                if socket.write_all(filler.as_bytes()).await.is_err() {
                    return true;
                }
            }
            false
        });
        let samples = scrape(&address, &["wanted_total"], Duration::from_secs(10)).await.unwrap();
        assert_eq!(samples.len(), 2);
        assert!(server.await.unwrap(), "the client stopped reading");
    }
}
