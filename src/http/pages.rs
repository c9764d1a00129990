//! `/metrics` and `/status`, read from the inventory's snapshot.
//!
//! Both first wait for the inventory's writer to apply what earlier requests observed
//! ([`crate::inventory::Live::flush`]), so a page never lags behind an answer the
//! server already gave.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use super::metrics::HostCounts;
use super::request::Request;
use super::response::only_get;
use super::{App, Response};

impl App {
    pub(super) async fn metrics_page(&self, req: &Request) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        self.inventory.flush().await;
        let inventory = self.inventory.snapshot();
        let mut out = String::with_capacity(4096);
        self.metrics.render(&HostCounts::of(&inventory), &mut out);
        let stats = self.inventory.stats();
        let _ = write!(
            out,
            "# HELP sixboot_inventory_degraded 1 while the inventory store is unreachable and hosts are served from memory.\n\
             # TYPE sixboot_inventory_degraded gauge\nsixboot_inventory_degraded {}\n\
             # HELP sixboot_inventory_observations_dropped_total Boot stages not recorded because the queue was full.\n\
             # TYPE sixboot_inventory_observations_dropped_total counter\nsixboot_inventory_observations_dropped_total {}\n\
             # HELP sixboot_inventory_store_errors_total Failed writes to the inventory store.\n\
             # TYPE sixboot_inventory_store_errors_total counter\nsixboot_inventory_store_errors_total {}\n",
            u8::from(stats.degraded.load(Relaxed)),
            stats.observations_dropped.load(Relaxed),
            stats.store_errors.load(Relaxed),
        );
        for source in &self.extra_metrics {
            source(&mut out);
        }
        Response::text(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            out.into_bytes(),
        )
    }

    pub(super) async fn status_page(&self, req: &Request) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        self.inventory.flush().await;
        let inventory = self.inventory.snapshot();
        let mut out = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sixboot status</title>\
             <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style>\
             </head><body>\n<h1>sixboot hosts</h1>\n<table>\n\
             <tr><th>name</th><th>MAC</th><th>address</th><th>install</th><th>last stage</th><th>since</th></tr>\n",
        );
        for host in inventory.sorted_by_name() {
            let state = &host.state;
            let since = if state.stage_at == 0 {
                "-".to_owned()
            } else {
                httpdate::fmt_http_date(
                    SystemTime::UNIX_EPOCH + Duration::from_millis(state.stage_at),
                )
            };
            let stage = match &state.detail {
                Some(detail) => format!("{} ({detail})", state.stage.as_str()),
                None => state.stage.as_str().to_owned(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape_html(&host.spec.name),
                host.spec.mac,
                host.spec.address.map(|a| a.to_string()).unwrap_or_default(),
                if state.install { "yes" } else { "no" },
                escape_html(&stage),
                since
            );
        }
        let _ = writeln!(
            out,
            "</table>\n<p>{} active download(s); <a href=\"/metrics\">metrics</a></p>\n</body></html>",
            self.metrics.active_downloads.load(Relaxed)
        );
        Response::text(200, "text/html; charset=utf-8", out.into_bytes())
    }
}

pub(super) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
