//! `kmon report` end to end: a real 3-broker cluster and a real `kmon
//! agent` shipping host and cluster samples every 200 ms; records are
//! produced and a group consumes part of them; once every panel has data,
//! `kmon report --since 5m` writes a PNG of the layout's size in which
//! every panel holds drawn series, and an SVG with every panel's title and
//! lines. Bad input is refused with a message naming what was wrong.

mod common;

use std::time::Duration;

use common::*;
use kmon_report::draw::{HEIGHT, WIDTH, panel_rect};
use kmon_report::extract::TITLES;

/// Least saturated (series-coloured) pixels a panel must hold: a line of
/// two pixels' width across a fraction of the panel, beyond the legend's
/// swatches.
const MIN_COLOURED_PIXELS: usize = 300;

/// Parses the per-panel summary lines of `kmon report`'s output:
/// `  <title>: <n> lines, <m> points`.
fn points_per_panel(stdout: &str) -> Vec<(String, usize)> {
    stdout
        .lines()
        .filter_map(|line| {
            let (title, rest) = line.trim().rsplit_once(": ")?;
            let points = rest.strip_suffix(" points")?.rsplit(", ").next()?.parse().ok()?;
            Some((title.to_owned(), points))
        })
        .collect()
}

/// Pixels whose colour is clearly not a grey (text, axes and grid are
/// black or grey; only series and legend swatches are coloured).
fn coloured_pixels(image: &image::RgbImage, (xs, ys): (std::ops::Range<i32>, std::ops::Range<i32>)) -> usize {
    let mut count = 0;
    for y in ys {
        for x in xs.clone() {
            let [r, g, b] = image.get_pixel(x as u32, y as u32).0;
            let (hi, lo) = (r.max(g).max(b), r.min(g).min(b));
            if hi - lo > 60 {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn report_charts_the_shipped_history_as_png_and_svg() {
    let cluster = Cluster::start(3, &[]);
    let bootstrap = cluster.brokers[0].grpc.clone();
    let all_brokers = cluster.brokers.iter().map(|b| b.grpc.as_str()).collect::<Vec<_>>().join(",");
    let agent = AgentProcess::start(&all_brokers, &cluster.root.path().join("agent-buffer"), "report-node", &[]);

    kmon_ok(&bootstrap, &["topic", "create", "orders", "--partitions", "3", "--replication-factor", "3"], "");
    let lines: String = (0..400).map(|i| format!("key{i}:{}\n", "x".repeat(200))).collect();
    kmon_ok(&bootstrap, &["produce", "--topic", "orders", "--key-separator", ":", "--acks", "all"], &lines);
    kmon_ok(
        &bootstrap,
        &["consume", "--topic", "orders", "--group", "billing", "--from-beginning", "--max-records", "150"],
        "",
    );

    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("report.png");
    let png_arg = png.to_str().unwrap();
    // Every panel needs a few samples (rates need two) taken after the
    // group committed; the agent ships every 200 ms.
    let stdout = wait_for("every panel of the report to have data", Duration::from_secs(90), || {
        let out = kmon(&bootstrap, &["report", "--since", "5m", "--out", png_arg], "");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let panels = points_per_panel(&stdout);
        (out.status.success() && panels.len() == TITLES.len() && panels.iter().all(|(_, points)| *points >= 4))
            .then_some(stdout)
    });
    assert!(stdout.contains(&format!("({WIDTH}x{HEIGHT} PNG)")), "{stdout}");
    let panels = points_per_panel(&stdout);
    assert_eq!(panels.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), TITLES);

    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG signature");
    let image =
        image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).expect("the PNG decodes").to_rgb8();
    assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
    for (index, title) in TITLES.iter().enumerate() {
        let coloured = coloured_pixels(&image, panel_rect(index));
        assert!(
            coloured >= MIN_COLOURED_PIXELS,
            "panel {index} ({title}) has only {coloured} coloured pixels\n{stdout}\nagent:\n{}",
            agent.stderr()
        );
    }
    // The header is text only.
    assert_eq!(coloured_pixels(&image, (0..WIDTH as i32, 0..60)), 0);

    let svg = dir.path().join("report.svg");
    let stdout = kmon_ok(&bootstrap, &["report", "--since", "5m", "--out", svg.to_str().unwrap()], "");
    assert!(stdout.contains("SVG"), "{stdout}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.trim_start().starts_with("<svg") || text.trim_start().starts_with("<?xml"), "an SVG document");
    assert!(text.contains(&format!("width=\"{WIDTH}\"")) && text.contains(&format!("height=\"{HEIGHT}\"")));
    for title in TITLES {
        assert!(text.contains(title), "SVG lacks the panel {title}");
    }
    assert!(text.matches("<polyline").count() >= TITLES.len(), "a line per panel at least");
    assert!(text.contains("bytes/s") || text.contains("KiB/s"), "value axes carry units");
    assert!(text.contains("time (UTC, hh:mm:ss)"));
    drop(agent);
}

#[test]
fn report_refuses_bad_input_with_what_was_wrong() {
    // Checked before anything is asked of a cluster (there is none here).
    let err = kmon_err("127.0.0.1:1", &["report", "--out", "x.gif"], "");
    assert!(err.contains("x.gif") && err.contains(".gif") && err.contains(".png or .svg"), "{err}");
    let err = kmon_err("127.0.0.1:1", &["report", "--since", "soon", "--out", "x.png"], "");
    assert!(err.contains("--since") && err.contains("soon"), "{err}");
    let err = kmon_err("127.0.0.1:1", &["report", "--since", "0s", "--out", "x.png"], "");
    assert!(err.contains("--since"), "{err}");

    // A cluster that no agent ships to has no history to chart.
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let out = dir.path().join("r.png");
    let err = kmon_err(&broker.bootstrap(), &["report", "--since", "5m", "--out", out.to_str().unwrap()], "");
    assert!(err.contains("no history in the last 5m") && err.contains("__kmon_node_metrics"), "{err}");
    assert!(!out.exists(), "no image for no history");
}
