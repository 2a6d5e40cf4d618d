//! The overview's charts, drawn on the server as inline SVG (no script, no external library):
//! proxied calls and errors per provider and hour, refresh outcomes, grants by status. Every text
//! in them is escaped; colours are presentation attributes (the portal's CSP allows no inline
//! `style`), from the Okabe-Ito palette (told apart with colour blindness), each at least 3:1
//! against the white background; every bar also has a text label or a legend entry, and each
//! chart has `role="img"` with a summary of its numbers in `aria-label` and `<title>`.

use std::fmt::Write;

use tokenvault_service::{PortalStats, ProviderTraffic};

use crate::pages::escape;

const SUCCESS: &str = "#0072B2";
const ERROR: &str = "#D55E00";
const GOOD: &str = "#009E73";
const WARN: &str = "#CC79A7";
const NEUTRAL: &str = "#6F6F6F";
const TEXT: &str = "#1B1B1B";
const MUTED: &str = "#5A5A5A";
const GRID: &str = "#D0D0D0";
/// The hourly chart's width (it spans the page), and the bar lists' (two side by side).
const WIDTH: u32 = 640;
const LIST_WIDTH: u32 = 400;
const HOUR_MS: i64 = 3_600_000;

/// What the overview shows about activity (`templates/portal/overview.html`).
pub(crate) struct OverviewCharts {
    /// The SVG documents (escaped inside; inserted as they are).
    pub traffic: String,
    pub refreshes: String,
    pub statuses: String,
    pub traffic_rows: Vec<TrafficRow>,
    pub needs_reauth_total: u64,
    pub needs_reauth: Vec<ReauthRow>,
    pub since: String,
    pub until: String,
}

pub(crate) struct TrafficRow {
    pub provider: String,
    pub calls: u64,
    pub errors: u64,
}

pub(crate) struct ReauthRow {
    pub app_id: String,
    pub app_name: String,
    pub count: u64,
}

impl OverviewCharts {
    pub(crate) fn new(stats: PortalStats) -> OverviewCharts {
        OverviewCharts {
            traffic: traffic_chart(&stats),
            refreshes: refresh_chart(&stats),
            statuses: status_chart(&stats),
            traffic_rows: stats
                .traffic
                .iter()
                .map(|t| TrafficRow { provider: t.provider.clone(), calls: t.total_calls(), errors: t.total_errors() })
                .collect(),
            needs_reauth_total: stats.needs_reauth_total(),
            needs_reauth: stats
                .needs_reauth
                .into_iter()
                .map(|a| ReauthRow { app_id: a.app_id, app_name: a.app_name, count: a.count })
                .collect(),
            since: stats.since.to_rfc3339(),
            until: stats.until.to_rfc3339(),
        }
    }
}

/// `n thing` / `n things`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The smallest of 1, 2, 5, 10, 20, 50, ... that is at least `value` (an axis' top).
fn nice_max(value: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step.saturating_mul(factor);
            if candidate >= value {
                return candidate;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// `HH:00` (UTC) of an hour's start.
fn hour_label(ms: i64) -> String {
    format!("{:02}:00", ms.div_euclid(HOUR_MS).rem_euclid(24))
}

/// An `<svg>` opening tag with its summary as `aria-label` and `<title>`.
fn open_svg(out: &mut String, id: &str, (width, height): (u32, u32), summary: &str) {
    let summary = escape(summary);
    let _ = write!(
        out,
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" aria-label=\"{summary}\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"system-ui, sans-serif\" \
         font-size=\"12\" fill=\"{TEXT}\"><title>{summary}</title>"
    );
}

fn legend_entry(out: &mut String, x: u32, y: u32, colour: &str, label: &str) {
    let _ = write!(
        out,
        "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"{y}\">{}</text>",
        y - 10,
        x + 16,
        escape(label)
    );
}

/// Proxied calls of the last 24 hours: one panel per provider, a bar per hour, its errors the
/// bottom part (so they line up on one baseline), the rest above.
fn traffic_chart(stats: &PortalStats) -> String {
    const LEFT: u32 = 44;
    const PANEL: u32 = 96;
    const BARS: u32 = 56;
    let hours = stats.hours.len().max(1) as u32;
    let slot = f64::from(WIDTH - LEFT - 8) / f64::from(hours);
    let summary = if stats.traffic.is_empty() {
        "Proxied calls per hour, last 24 hours: none.".to_owned()
    } else {
        let parts: Vec<String> = stats
            .traffic
            .iter()
            .map(|t| {
                format!(
                    "{} {}, {}",
                    t.provider,
                    plural(t.total_calls(), "call", "calls"),
                    plural(t.total_errors(), "error", "errors")
                )
            })
            .collect();
        format!("Proxied calls per hour, last 24 hours: {}.", parts.join("; "))
    };
    let panels = stats.traffic.len().max(1) as u32;
    let height = 28 + panels * PANEL;
    let mut out = String::new();
    open_svg(&mut out, "chart-traffic", (WIDTH, height), &summary);
    legend_entry(&mut out, LEFT, 16, SUCCESS, "successful calls");
    legend_entry(&mut out, LEFT + 140, 16, ERROR, "errors (failed, or upstream status 400 or more)");
    if stats.traffic.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{MUTED}\">No proxied calls in the last 24 hours</text>",
            WIDTH / 2,
            28 + PANEL / 2
        );
    }
    for (index, traffic) in stats.traffic.iter().enumerate() {
        let top = 28 + index as u32 * PANEL;
        traffic_panel(&mut out, stats, traffic, top, (LEFT, BARS, slot));
    }
    out.push_str("</svg>");
    out
}

fn traffic_panel(
    out: &mut String,
    stats: &PortalStats,
    t: &ProviderTraffic,
    top: u32,
    (left, bars, slot): (u32, u32, f64),
) {
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"{}\" font-weight=\"600\">{} ({}, {})</text>",
        top + 14,
        escape(&t.provider),
        plural(t.total_calls(), "call", "calls"),
        plural(t.total_errors(), "error", "errors")
    );
    let max = nice_max(t.calls.iter().copied().max().unwrap_or(0));
    let base = top + 20 + bars;
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"{GRID}\"/>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{GRID}\" stroke-dasharray=\"3 3\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{MUTED}\">{max}</text>\
         <text x=\"{}\" y=\"{base}\" text-anchor=\"end\" fill=\"{MUTED}\">0</text>",
        WIDTH - 8,
        base - bars,
        WIDTH - 8,
        base - bars,
        left - 6,
        base - bars + 4,
        left - 6,
    );
    let scale = f64::from(bars) / max as f64;
    let width = (slot * 0.7).max(1.0);
    for (i, hour) in stats.hours.iter().enumerate() {
        let calls = t.calls.get(i).copied().unwrap_or(0);
        let errors = t.errors.get(i).copied().unwrap_or(0).min(calls);
        let x = f64::from(left) + slot * i as f64 + (slot - width) / 2.0;
        let label = hour_label(hour.as_millis());
        if calls > 0 {
            let error_height = errors as f64 * scale;
            let ok_height = (calls - errors) as f64 * scale;
            let _ = write!(
                out,
                "<g><title>{} {label} UTC: {}, {}</title>",
                escape(&t.provider),
                plural(calls, "call", "calls"),
                plural(errors, "error", "errors")
            );
            if errors > 0 {
                let _ = write!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{error_height:.1}\" fill=\"{ERROR}\"/>",
                    f64::from(base) - error_height
                );
            }
            if calls > errors {
                let _ = write!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{ok_height:.1}\" fill=\"{SUCCESS}\"/>",
                    f64::from(base) - error_height - ok_height
                );
            }
            out.push_str("</g>");
        }
        if i % 6 == 0 || i + 1 == stats.hours.len() {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{MUTED}\">{label}</text>",
                x + width / 2.0,
                base + 12
            );
        }
    }
}

/// Horizontal bars, each with its label above and its count after it.
fn bar_list(id: &str, summary: &str, bars: &[(String, u64, &str)]) -> String {
    const ROW: u32 = 40;
    let height = 8 + ROW * bars.len().max(1) as u32;
    let max = bars.iter().map(|(_, n, _)| *n).max().unwrap_or(0).max(1);
    let room = f64::from(LIST_WIDTH - 48);
    let mut out = String::new();
    open_svg(&mut out, id, (LIST_WIDTH, height), summary);
    for (i, (label, count, colour)) in bars.iter().enumerate() {
        let top = 8 + i as u32 * ROW;
        let width = if *count == 0 { 0.0 } else { (*count as f64 / max as f64 * room).max(2.0) };
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"0\" y=\"{}\" width=\"{width:.1}\" height=\"16\" fill=\"{colour}\"/>\
             <line x1=\"0\" y1=\"{}\" x2=\"0\" y2=\"{}\" stroke=\"{GRID}\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-weight=\"600\">{count}</text>",
            top + 12,
            escape(label),
            top + 17,
            top + 17,
            top + 33,
            width + 6.0,
            top + 30,
        );
    }
    out.push_str("</svg>");
    out
}

fn refresh_chart(stats: &PortalStats) -> String {
    let bars: Vec<(String, u64, &str)> = stats
        .refreshes
        .iter()
        .map(|r| match (r.outcome.as_str(), &r.reason) {
            ("refreshed", _) => ("refreshed".to_owned(), r.count, GOOD),
            (outcome, Some(reason)) => (format!("{outcome}: {reason}"), r.count, ERROR),
            (outcome, None) => (outcome.to_owned(), r.count, ERROR),
        })
        .collect();
    let parts: Vec<String> = bars.iter().map(|(label, n, _)| format!("{label} {n}")).collect();
    let summary = format!("Refresh outcomes, last 24 hours: {}.", parts.join(", "));
    bar_list("chart-refreshes", &summary, &bars)
}

fn status_chart(stats: &PortalStats) -> String {
    let bars: Vec<(String, u64, &str)> = stats
        .grants_by_status
        .iter()
        .map(|s| {
            let colour = match s.status.as_str() {
                "active" => GOOD,
                "needs_reauth" => ERROR,
                "revoke_failed" => WARN,
                _ => NEUTRAL,
            };
            (s.status.clone(), s.count, colour)
        })
        .collect();
    let parts: Vec<String> = bars.iter().map(|(label, n, _)| format!("{label} {n}")).collect();
    let summary = format!("Grants by status: {}.", parts.join(", "));
    bar_list("chart-grant-status", &summary, &bars)
}

#[cfg(test)]
mod tests {
    use tokenvault_service::{
        AppNeedingReauth, PortalStats, ProviderTraffic, RefreshCount, STATS_HOURS, StatusCount, Timestamp,
    };

    use super::*;

    fn stats() -> PortalStats {
        let since = 480_000 * HOUR_MS;
        let mut calls = vec![0; STATS_HOURS];
        let mut errors = vec![0; STATS_HOURS];
        calls[3] = 5;
        errors[3] = 2;
        calls[23] = 1;
        PortalStats {
            since: Timestamp::from_millis(since),
            until: Timestamp::from_millis(since + 23 * HOUR_MS + 5),
            hours: (0..STATS_HOURS as i64).map(|i| Timestamp::from_millis(since + i * HOUR_MS)).collect(),
            traffic: vec![ProviderTraffic { provider: "<zoom>".into(), calls, errors }],
            refreshes: vec![
                RefreshCount { outcome: "refreshed".into(), reason: None, count: 4 },
                RefreshCount {
                    outcome: "needs_reauth".into(),
                    reason: Some("refresh_token_rejected".into()),
                    count: 1,
                },
            ],
            grants_by_status: vec![
                StatusCount { status: "active".into(), count: 3 },
                StatusCount { status: "revoked".into(), count: 0 },
            ],
            needs_reauth: vec![AppNeedingReauth { app_id: "app_1".into(), app_name: "A".into(), count: 2 }],
        }
    }

    #[test]
    fn charts_summarise_their_numbers_and_escape_every_text() {
        let charts = OverviewCharts::new(stats());
        assert!(
            charts
                .traffic
                .contains("aria-label=\"Proxied calls per hour, last 24 hours: &lt;zoom&gt; 6 calls, 2 errors.\""),
            "{}",
            charts.traffic
        );
        assert!(!charts.traffic.contains("<zoom>"));
        assert!(charts.traffic.contains("role=\"img\"") && charts.traffic.contains("<title>"));
        assert!(charts.traffic.contains("03:00 UTC: 5 calls, 2 errors"), "{}", charts.traffic);
        assert!(charts.refreshes.contains("refreshed 4, needs_reauth: refresh_token_rejected 1."));
        assert!(charts.statuses.contains("Grants by status: active 3, revoked 0."));
        assert!(!charts.traffic.contains("style="), "no inline styles under the CSP");
        assert_eq!(charts.needs_reauth_total, 2);
        assert_eq!((charts.traffic_rows[0].calls, charts.traffic_rows[0].errors), (6, 2));
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!([0, 1, 2, 3, 6, 11, 99, 101].map(nice_max), [1, 1, 2, 5, 10, 20, 100, 200]);
    }

    #[test]
    fn no_traffic_is_said_in_words() {
        let mut stats = stats();
        stats.traffic.clear();
        let chart = traffic_chart(&stats);
        assert!(chart.contains("last 24 hours: none.") && chart.contains("No proxied calls"));
    }
}
