//! The deliveries-over-time chart: stacked bars per time bucket, one colour
//! per outcome, laid out here and drawn as inline SVG by the template (no
//! script, no library, nothing from another host).

use crate::domain::delivery::DeliveryStatus;
use crate::store::HistogramRow;

pub struct Range {
    pub key: &'static str,
    pub label: &'static str,
    pub bucket_ms: i64,
    pub buckets: i64,
    /// Label every this many buckets.
    label_every: i64,
    daily_labels: bool,
}

pub const RANGES: [Range; 3] = [
    Range {
        key: "1h",
        label: "Last hour",
        bucket_ms: 5 * 60_000,
        buckets: 12,
        label_every: 2,
        daily_labels: false,
    },
    Range {
        key: "24h",
        label: "Last 24 hours",
        bucket_ms: 3_600_000,
        buckets: 24,
        label_every: 4,
        daily_labels: false,
    },
    Range {
        key: "7d",
        label: "Last 7 days",
        bucket_ms: 6 * 3_600_000,
        buckets: 28,
        label_every: 4,
        daily_labels: true,
    },
];

impl Range {
    pub fn find(key: &str) -> &'static Range {
        RANGES.iter().find(|r| r.key == key).unwrap_or(&RANGES[1])
    }

    /// Start of the oldest bucket: buckets are aligned, the newest holds `now`.
    pub fn since(&self, now: i64) -> i64 {
        now.div_euclid(self.bucket_ms) * self.bucket_ms - (self.buckets - 1) * self.bucket_ms
    }
}

/// Outcomes drawn, bottom to top: (CSS class, label).
const SERIES: [(&str, &str); 4] = [
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("diverted", "Diverted"),
    ("pending", "Pending or retrying"),
];

fn series_of(status: DeliveryStatus) -> usize {
    match status {
        DeliveryStatus::Succeeded => 0,
        DeliveryStatus::Failed => 1,
        DeliveryStatus::Diverted => 2,
        DeliveryStatus::Pending | DeliveryStatus::Retrying => 3,
    }
}

pub const WIDTH: u32 = 720;
pub const HEIGHT: u32 = 240;
const LEFT: u32 = 48;
const RIGHT: u32 = 8;
const TOP: u32 = 12;
const BOTTOM: u32 = 28;

pub struct Segment {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub class: &'static str,
    pub title: String,
}

pub struct Tick {
    pub y: u32,
    pub label: String,
}

pub struct XLabel {
    pub x: u32,
    pub label: String,
}

pub struct LegendItem {
    pub class: &'static str,
    pub label: &'static str,
    pub count: u64,
}

pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub segments: Vec<Segment>,
    pub y_ticks: Vec<Tick>,
    pub x_labels: Vec<XLabel>,
    pub legend: Vec<LegendItem>,
    pub total: u64,
    /// One sentence for screen readers.
    pub summary: String,
    pub plot_left: u32,
    pub plot_right: u32,
    pub baseline: u32,
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `n`.
fn nice_step(n: u64) -> u64 {
    let mut magnitude = 1;
    loop {
        for m in [1, 2, 5] {
            if m * magnitude >= n {
                return m * magnitude;
            }
        }
        magnitude *= 10;
    }
}

fn format_bucket(ms: i64, daily: bool) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = if daily {
        time::macros::format_description!("[month repr:short] [day]")
    } else {
        time::macros::format_description!("[hour]:[minute]")
    };
    t.format(&f).unwrap_or_default()
}

pub fn build(range: &Range, since: i64, rows: &[HistogramRow]) -> Chart {
    let n = range.buckets as usize;
    let mut counts = vec![[0u64; 4]; n];
    for r in rows {
        if let Some(bucket) = usize::try_from(r.bucket).ok().filter(|b| *b < n) {
            counts[bucket][series_of(r.status)] += r.count;
        }
    }
    let max = counts
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let step = nice_step(max.div_ceil(4).max(1));
    let top_value = step * 4;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let baseline = HEIGHT - BOTTOM;
    let slot = plot_w / n as u32;
    let bar_w = (slot * 7 / 10).max(1);
    let scale = |v: u64| (v * plot_h as u64 / top_value) as u32;

    let mut segments = Vec::new();
    let mut x_labels = Vec::new();
    for (i, c) in counts.iter().enumerate() {
        let start = since + i as i64 * range.bucket_ms;
        let x = LEFT + i as u32 * slot + (slot - bar_w) / 2;
        let when = format!(
            "{} – {}",
            format_bucket(start, range.daily_labels),
            format_bucket(start + range.bucket_ms, range.daily_labels)
        );
        let mut below = 0u64;
        for (s, &count) in c.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let y0 = baseline - scale(below);
            let y1 = baseline - scale(below + count);
            below += count;
            segments.push(Segment {
                x,
                y: y1,
                width: bar_w,
                height: (y0 - y1).max(1),
                class: SERIES[s].0,
                title: format!("{when}: {count} {}", SERIES[s].1.to_lowercase()),
            });
        }
        if i as i64 % range.label_every == 0 {
            x_labels.push(XLabel {
                x: LEFT + i as u32 * slot + slot / 2,
                label: format_bucket(start, range.daily_labels),
            });
        }
    }
    let legend: Vec<LegendItem> = SERIES
        .iter()
        .enumerate()
        .map(|(s, (class, label))| LegendItem {
            class,
            label,
            count: counts.iter().map(|c| c[s]).sum(),
        })
        .collect();
    let total = legend.iter().map(|l| l.count).sum();
    let summary = format!(
        "{}: {total} deliveries; {}.",
        range.label,
        legend
            .iter()
            .map(|l| format!("{} {}", l.count, l.label.to_lowercase()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Chart {
        width: WIDTH,
        height: HEIGHT,
        segments,
        y_ticks: (0..=4)
            .map(|k| Tick {
                y: baseline - scale(k * step),
                label: (k * step).to_string(),
            })
            .collect(),
        x_labels,
        legend,
        total,
        summary,
        plot_left: LEFT,
        plot_right: WIDTH - RIGHT,
        baseline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bucket: i64, status: DeliveryStatus, count: u64) -> HistogramRow {
        HistogramRow {
            bucket,
            status,
            count,
        }
    }

    #[test]
    fn steps_are_round_numbers() {
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(3), 5);
        assert_eq!(nice_step(7), 10);
        assert_eq!(nice_step(11), 20);
        assert_eq!(nice_step(260), 500);
    }

    #[test]
    fn buckets_stack_outcomes_and_the_legend_totals_them() {
        let range = Range::find("24h");
        let rows = [
            row(0, DeliveryStatus::Succeeded, 6),
            row(0, DeliveryStatus::Failed, 2),
            row(23, DeliveryStatus::Retrying, 1),
            row(23, DeliveryStatus::Pending, 1),
            row(99, DeliveryStatus::Succeeded, 50), // outside the window: ignored
        ];
        let c = build(range, 0, &rows);
        assert_eq!(c.total, 10);
        let counts: Vec<u64> = c.legend.iter().map(|l| l.count).collect();
        assert_eq!(counts, vec![6, 2, 0, 2]);
        assert_eq!(c.segments.len(), 3);
        // The tallest bar (8) fits under the top tick (4 × 2).
        assert_eq!(c.y_ticks.last().unwrap().label, "8");
        let first = &c.segments[0];
        let second = &c.segments[1];
        assert_eq!(first.class, "succeeded");
        assert_eq!(second.y + second.height, first.y, "stacked without a gap");
        assert_eq!(
            second.y,
            c.y_ticks.last().unwrap().y,
            "reaches the top tick"
        );
        assert!(c.summary.contains("10 deliveries"));
    }

    #[test]
    fn windows_end_with_the_bucket_holding_now() {
        let r = Range::find("1h");
        let now = 10 * r.bucket_ms + 123;
        let since = r.since(now);
        assert_eq!((now - since) / r.bucket_ms, r.buckets - 1);
        assert_eq!(Range::find("bogus").key, "24h");
    }

    #[test]
    fn an_empty_window_still_draws_axes() {
        let c = build(Range::find("7d"), 0, &[]);
        assert_eq!(c.total, 0);
        assert!(c.segments.is_empty());
        assert_eq!(c.y_ticks.len(), 5);
        assert_eq!(c.x_labels.len(), 7);
    }
}
