//! `kmon produce`: one record per line of standard input.

use anyhow::{Context, bail};
use kmon_client::{Acks, Producer, ProducerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::ClientArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct ProduceArgs {
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Split each line at the first SEP into key and value; a line without
    /// SEP is an error.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Acknowledgement level: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Turn the idempotent producer off (at-least-once: a retry after a
    /// lost acknowledgement can write a batch twice). It is on with
    /// --acks all.
    #[arg(long)]
    no_idempotence: bool,
}

pub(crate) async fn run(client: ClientArgs, args: ProduceArgs) -> anyhow::Result<()> {
    if args.key_separator.as_deref() == Some("") {
        bail!("--key-separator must not be empty");
    }
    let mut config = ProducerConfig::new(client.bootstrap);
    config.acks = args.acks;
    config.idempotence = !args.no_idempotence;
    let producer = Producer::connect(config).await?;
    // Fail early (and clearly) on an unknown topic.
    producer.partition_count(&args.topic).await?;

    let mut stdin = BufReader::with_capacity(1 << 20, tokio::io::stdin());
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let outcome = loop {
        line.clear();
        if stdin.read_until(b'\n', &mut line).await.context("cannot read standard input")? == 0 {
            break Ok(());
        }
        line_number += 1;
        let text = strip_line_end(&line);
        let (key, value) = match split_key(text, args.key_separator.as_deref()) {
            Ok(parts) => parts,
            Err(()) => {
                break Err(anyhow::anyhow!(
                    "No key separator found on line number {line_number}: {:?}",
                    String::from_utf8_lossy(text)
                ));
            }
        };
        if let Err(err) = producer.send_to(&args.topic, None, key, value).await {
            break Err(anyhow::Error::new(err).context(format!("cannot send line {line_number}")));
        }
    };
    // Deliver what was read before a failure, then report it.
    let flushed = producer.flush().await;
    outcome?;
    flushed.context("producing failed")?;
    Ok(())
}

fn parse_acks(text: &str) -> Result<Acks, String> {
    Acks::parse(text)
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits a line into key and value at the first separator.
fn split_key<'a>(line: &'a [u8], separator: Option<&str>) -> Result<(Option<&'a [u8]>, &'a [u8]), ()> {
    let Some(separator) = separator.map(str::as_bytes) else {
        return Ok((None, line));
    };
    let at = line.windows(separator.len()).position(|window| window == separator).ok_or(())?;
    Ok((Some(&line[..at]), &line[at + separator.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_the_first_separator() {
        assert_eq!(split_key(b"k:v:w", Some(":")), Ok((Some(&b"k"[..]), &b"v:w"[..])));
        assert_eq!(split_key(b"k::v", Some("::")), Ok((Some(&b"k"[..]), &b"v"[..])));
        assert_eq!(split_key(b":v", Some(":")), Ok((Some(&b""[..]), &b"v"[..])));
        assert_eq!(split_key(b"novalue", Some(":")), Err(()));
        assert_eq!(split_key(b"a:b", None), Ok((None, &b"a:b"[..])));
    }

    #[test]
    fn line_ends_are_stripped() {
        assert_eq!(strip_line_end(b"abc\r\n"), b"abc");
        assert_eq!(strip_line_end(b"abc\n"), b"abc");
        assert_eq!(strip_line_end(b"abc"), b"abc");
    }

    #[test]
    fn acks_parse() {
        assert_eq!(parse_acks("0"), Ok(Acks::None));
        assert_eq!(parse_acks("1"), Ok(Acks::Leader));
        assert_eq!(parse_acks("all"), Ok(Acks::All));
        assert!(parse_acks("2").is_err());
    }
}
