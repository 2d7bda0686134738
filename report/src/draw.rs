//! Drawing the panels with plotters: PNG (bitmap backend) or SVG, chosen
//! by the file's extension.
//!
//! Layout ([`WIDTH`] × [`HEIGHT`] pixels): a header of [`HEADER_HEIGHT`]
//! with the report's title and window, then [`ROWS`] × [`COLUMNS`] panels
//! of [`PANEL_WIDTH`] × [`PANEL_HEIGHT`], in the order of
//! [`crate::extract::TITLES`]; [`panel_rect`] gives each one's rectangle.
//! Each panel: title, time axis (UTC), value axis labelled with its unit,
//! one coloured line per series and a legend; a panel without data says
//! so in grey (series colours are the only saturated pixels, which the
//! end-to-end test counts).
//!
//! Text uses DejaVu Sans, bundled by the `dejavu` crate and registered with
//! plotters' `ab_glyph` font backend: no fontconfig or freetype needed.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::ReportError;
use crate::extract::{Chart, Unit};

pub const COLUMNS: usize = 2;
pub const ROWS: usize = 4;
pub const PANEL_WIDTH: u32 = 800;
pub const PANEL_HEIGHT: u32 = 480;
pub const HEADER_HEIGHT: u32 = 70;
pub const WIDTH: u32 = PANEL_WIDTH * COLUMNS as u32;
pub const HEIGHT: u32 = HEADER_HEIGHT + PANEL_HEIGHT * ROWS as u32;

const FONT: &str = "sans-serif";
/// Distinct saturated colours (Tableau 10 without its grey).
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Most lines drawn in one panel (one per colour); the title says how many
/// more there were.
pub const MAX_LINES: usize = PALETTE.len();
const GREY: RGBColor = RGBColor(120, 120, 120);

/// The image format, from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn from_path(path: &Path) -> Result<Format, ReportError> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
        match extension.as_str() {
            "png" => Ok(Format::Png),
            "svg" => Ok(Format::Svg),
            _ => Err(ReportError::UnknownFormat { path: path.to_owned(), extension: format!(".{extension}") }),
        }
    }
}

/// Pixel rectangle `(x range, y range)` of panel `index` (layout order).
pub fn panel_rect(index: usize) -> (Range<i32>, Range<i32>) {
    let (row, column) = ((index / COLUMNS) as i32, (index % COLUMNS) as i32);
    let (w, h) = (PANEL_WIDTH as i32, PANEL_HEIGHT as i32);
    let top = HEADER_HEIGHT as i32 + row * h;
    (column * w..(column + 1) * w, top..top + h)
}

/// Draws `charts` (at most `ROWS × COLUMNS`) under the header `title` to
/// `path`, in `format`.
pub fn draw(path: &Path, format: Format, title: &str, charts: &[Chart]) -> Result<(), ReportError> {
    register_fonts()?;
    let error = |message: String| ReportError::Draw { path: path.to_owned(), message };
    match format {
        Format::Png => {
            let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            draw_on(&root, title, charts).map_err(error)?;
            root.present().map_err(|e| error(e.to_string()))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            draw_on(&root, title, charts).map_err(error)?;
            root.present().map_err(|e| error(e.to_string()))
        }
    }
}

fn register_fonts() -> Result<(), ReportError> {
    // Registering twice only replaces the entry: cheap and idempotent.
    register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).map_err(|_| ReportError::Font)?;
    register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).map_err(|_| ReportError::Font)
}

fn draw_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, charts: &[Chart]) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (header, body) = root.split_vertically(HEADER_HEIGHT);
    header
        .draw_text(title, &(FONT, 26, FontStyle::Bold).into_text_style(&header), (20, 20))
        .map_err(|e| e.to_string())?;
    for (panel, chart) in body.split_evenly((ROWS, COLUMNS)).iter().zip(charts) {
        draw_panel(panel, chart).map_err(|e| format!("{}: {e}", chart.title))?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (scale, unit) = axis_unit(chart);
    let (mut t0, mut t1) = chart
        .lines
        .iter()
        .flat_map(|l| &l.points)
        .fold((i64::MAX, i64::MIN), |(lo, hi), (t, _)| (lo.min(*t), hi.max(*t)));
    if t0 > t1 {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        (t0, t1) = (now - 60_000, now);
    }
    if t1 - t0 < 1_000 {
        t1 = t0 + 1_000;
    }
    let (x0, x1) = (t0 as f64 / 1000.0, t1 as f64 / 1000.0);
    let peak = chart.lines.iter().flat_map(|l| &l.points).map(|(_, v)| v / scale).fold(0.0_f64, f64::max);
    let y1 = if chart.unit == Unit::Percent {
        100.0_f64.max(peak)
    } else if peak > 0.0 {
        peak * 1.15
    } else {
        1.0
    };

    let hidden = chart.lines.len().saturating_sub(MAX_LINES);
    let caption =
        if hidden > 0 { format!("{} ({hidden} more not shown)", chart.title) } else { chart.title.to_owned() };
    let mut ctx = ChartBuilder::on(area)
        .caption(caption, (FONT, 22, FontStyle::Bold))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(err)?;
    let time_label = |x: &f64| clock(*x);
    let value_label = |y: &f64| compact(*y);
    // At most one time label per second: labels are whole seconds.
    let x_labels = ((t1 - t0) / 1000).clamp(2, 6) as usize;
    ctx.configure_mesh()
        .x_labels(x_labels)
        .y_labels(6)
        .x_label_formatter(&time_label)
        .y_label_formatter(&value_label)
        .x_desc("time (UTC, hh:mm:ss)")
        .y_desc(unit)
        .axis_desc_style((FONT, 17))
        .label_style((FONT, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()
        .map_err(err)?;

    if chart.lines.is_empty() {
        let (w, h) = area.dim_in_pixel();
        let style = (FONT, 20).into_text_style(area).color(&GREY);
        area.draw_text("no data in this window", &style, (w as i32 / 2 - 110, h as i32 / 2 - 10)).map_err(err)?;
        return Ok(());
    }
    for (line, color) in chart.lines.iter().zip(PALETTE) {
        let points = line.points.iter().map(|(t, v)| (*t as f64 / 1000.0, v / scale));
        ctx.draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(line.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The divisor applied to the values and the value axis label.
fn axis_unit(chart: &Chart) -> (f64, &'static str) {
    match chart.unit {
        Unit::BytesPerSecond => {
            let peak = chart.lines.iter().flat_map(|l| &l.points).map(|(_, v)| *v).fold(0.0_f64, f64::max);
            const STEPS: [(f64, &str); 4] =
                [(1024.0 * 1024.0 * 1024.0, "GiB/s"), (1024.0 * 1024.0, "MiB/s"), (1024.0, "KiB/s"), (1.0, "bytes/s")];
            STEPS.into_iter().find(|(divisor, _)| peak >= *divisor * 2.0).unwrap_or((1.0, "bytes/s"))
        }
        Unit::Records => (1.0, "lag (records)"),
        Unit::Partitions => (1.0, "partitions"),
        Unit::Replicas => (1.0, "replicas"),
        Unit::Percent => (1.0, "CPU busy (%)"),
    }
}

/// `hh:mm:ss` (UTC) of seconds since the Unix epoch.
pub fn clock(seconds: f64) -> String {
    let s = seconds.floor() as i64;
    format!("{:02}:{:02}:{:02}", s.div_euclid(3600).rem_euclid(24), s.div_euclid(60).rem_euclid(60), s.rem_euclid(60))
}

/// `YYYY-MM-DD hh:mm:ss` (UTC) of milliseconds since the Unix epoch.
pub fn utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    // Days to a civil date (Howard Hinnant's algorithm): no date crate needed.
    let z = seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {}", clock(seconds as f64))
}

/// A tick value without needless decimals.
fn compact(value: f64) -> String {
    let text = if value.abs() >= 10.0 { format!("{value:.1}") } else { format!("{value:.2}") };
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Line;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::from_path(Path::new("r.png")).unwrap(), Format::Png);
        assert_eq!(Format::from_path(Path::new("dir/R.SVG")).unwrap(), Format::Svg);
        let err = Format::from_path(Path::new("x.gif")).unwrap_err().to_string();
        assert!(err.contains("x.gif") && err.contains(".gif") && err.contains(".png"), "{err}");
        assert!(Format::from_path(Path::new("report")).is_err());
    }

    #[test]
    fn panel_rects_tile_the_body() {
        assert_eq!(panel_rect(0), (0..800, 70..550));
        assert_eq!(panel_rect(7), (800..1600, 1510..1990));
        assert_eq!(HEIGHT, 1990);
    }

    #[test]
    fn clock_and_units() {
        assert_eq!(clock(3_600.0 * 25.0 + 61.5), "01:01:01");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(
            (compact(0.8), compact(2.5), compact(16.0), compact(0.0)),
            ("0.8".into(), "2.5".into(), "16".into(), "0".into())
        );
        assert_eq!(utc(1_709_251_199_000), "2024-02-29 23:59:59");
        let chart = |v| Chart {
            title: "t",
            unit: Unit::BytesPerSecond,
            lines: vec![Line { name: "x".into(), points: vec![(0, v)] }],
        };
        assert_eq!(axis_unit(&chart(100.0)).1, "bytes/s");
        assert_eq!(axis_unit(&chart(5_000.0)).1, "KiB/s");
        assert_eq!(axis_unit(&chart(3e6)).1, "MiB/s");
    }

    #[test]
    fn draws_a_png_and_an_svg_with_and_without_data() {
        let dir = std::env::temp_dir().join(format!("kmon-report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let charts: Vec<Chart> = crate::extract::TITLES
            .iter()
            .enumerate()
            .map(|(i, title)| Chart {
                title,
                unit: Unit::Partitions,
                lines: if i % 2 == 0 {
                    vec![Line { name: "a".into(), points: vec![(1_000, 1.0), (61_000, 3.0)] }]
                } else {
                    vec![]
                },
            })
            .collect();
        for name in ["r.png", "r.svg"] {
            let path = dir.join(name);
            draw(&path, Format::from_path(&path).unwrap(), "kmon report test", &charts).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        }
        let svg = std::fs::read_to_string(dir.join("r.svg")).unwrap();
        assert!(svg.contains("Consumer lag per group") && svg.contains("no data in this window"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
