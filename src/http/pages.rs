//! `/metrics`, read from the inventory's snapshot (the status pages are in
//! [`super::status`]).
//!
//! It first waits for the inventory's writer to apply what earlier requests observed
//! ([`crate::inventory::Live::flush`]), so a scrape never lags behind an answer the
//! server already gave.

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
        if !self.metrics.on() {
            // `[monitor] metrics = false`: nothing is counted, so nothing is served.
            return Response::error(404);
        }
        self.inventory.flush().await;
        let inventory = self.inventory.snapshot();
        let hosts = HostCounts::of(&inventory, now_millis(), &self.watch);
        let out = self.metrics.render(&hosts, Some(self.inventory.stats()));
        Response::text(200, crate::metrics::CONTENT_TYPE, out.into_bytes())
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
