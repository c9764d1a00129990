//! `/metrics` and `/status`, read from the inventory's snapshot.
//!
//! Both first wait for the inventory's writer to apply what earlier requests observed
//! ([`crate::inventory::Live::flush`]), so a page never lags behind an answer the
//! server already gave.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use super::request::Request;
use super::response::only_get;
use super::{App, Response};
use crate::inventory::live::now_millis;
use crate::metrics::HostCounts;

impl App {
    pub(super) async fn metrics_page(&self, req: &Request) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        self.inventory.flush().await;
        let inventory = self.inventory.snapshot();
        let hosts = HostCounts::of(&inventory, now_millis(), &self.watch);
        let out = self.metrics.render(&hosts, Some(self.inventory.stats()));
        Response::text(200, crate::metrics::CONTENT_TYPE, out.into_bytes())
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
            self.metrics.http.active_downloads.load(Relaxed)
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
