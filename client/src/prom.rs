//! A small parser for the Prometheus text format (0.0.4) and an HTTP GET of
//! `/metrics` over a plain TCP connection (no HTTP client dependency); used
//! by `kmon tui` and by the node agent's cluster sampler.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
/// sample, or only those of the metrics `names` (a kmon broker then renders
/// only those; the samples are checked here too).
pub async fn scrape(address: &str, names: &[&str], timeout: Duration) -> Result<Vec<Sample>, String> {
    let call = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {address}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
            metrics_path(names)
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&body);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
        if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1).is_none_or(|c| c != "200") {
            return Err(format!("HTTP: {}", head.lines().next().unwrap_or_default()));
        }
        let mut samples = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            parse(&dechunk(body))
        } else {
            parse(body)
        };
        if !names.is_empty() {
            samples.retain(|s| names.contains(&s.name.as_str()));
        }
        Ok(samples)
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
}
