//! The status pages: `GET /status` (hosts, paginated and filtered: text, stage,
//! install flag, stuck or looping), `GET /status.json` (the same selection as JSON,
//! which the page polls to update its table without reloading) and
//! `GET /status/host/{mac}` (one host's boot timeline).
//!
//! Every page is whole without JavaScript (server-rendered rows, a GET form, links
//! for the pages) and carries its CSS and script inline: no external asset, so it works
//! offline. Rows come in name order, which is computed once per inventory generation
//! (definitions change; stages do not reorder) together with each host's search text
//! ([`Indexed`]), so a page costs one pass over the snapshot without allocating per
//! host and at most [`MAX_PER_PAGE`] rows of output (`cargo xtask bench status`
//! measures it at 100,000 hosts).

use std::fmt::Write;
use std::sync::Arc;

use serde::Serialize;

use super::pages::escape_html;
use super::request::Request;
use super::response::only_get;
use super::{App, Response};
use crate::inventory::live::now_millis;
use crate::inventory::progress::{attention_of, Watch};
use crate::inventory::timeline::{format_duration, format_utc, HostTimeline};
use crate::inventory::{Inventory, Stage, UnixMillis};
use crate::mac::Mac;

/// Rows per page unless the query asks for another number.
pub const DEFAULT_PER_PAGE: usize = 100;
/// The most rows one page holds.
pub const MAX_PER_PAGE: usize = 500;

const STYLE: &str = include_str!("status.css");
const SCRIPT: &str = include_str!("status.js");

/// Which hosts a status page shows: the query string's `q` (text in name, MAC,
/// address or stage detail, case-insensitive), `stage`, `install` (`yes`/`no`),
/// `attention` (`stuck`, `looping` or `any`), `page` (from 1) and `per` (rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    pub stage: Option<Stage>,
    pub install: Option<bool>,
    pub attention: Option<AttentionFilter>,
    pub page: usize,
    pub per_page: usize,
}

/// The `attention` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionFilter {
    Stuck,
    Looping,
    Any,
}

impl Filter {
    /// Reads a query string; unknown or bad values are ignored (the page shows all).
    pub fn parse(query: &str) -> Filter {
        let mut filter = Filter {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            ..Filter::default()
        };
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .trim()
                .to_owned();
            match key {
                "q" => filter.text = value.to_lowercase(),
                "stage" => filter.stage = Stage::parse(&value),
                "install" => {
                    filter.install = match value.as_str() {
                        "yes" => Some(true),
                        "no" => Some(false),
                        _ => None,
                    }
                }
                "attention" => {
                    filter.attention = match value.as_str() {
                        "stuck" => Some(AttentionFilter::Stuck),
                        "looping" => Some(AttentionFilter::Looping),
                        "any" => Some(AttentionFilter::Any),
                        _ => None,
                    }
                }
                "page" => filter.page = value.parse().unwrap_or(1).max(1),
                "per" => {
                    filter.per_page = value
                        .parse()
                        .unwrap_or(DEFAULT_PER_PAGE)
                        .clamp(1, MAX_PER_PAGE)
                }
                _ => {}
            }
        }
        filter
    }

    /// The query string for `page` of this filter.
    fn query(&self, page: usize) -> String {
        let mut query = format!("page={page}");
        let encode = |text: &str| {
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        if !self.text.is_empty() {
            let _ = write!(query, "&q={}", encode(&self.text));
        }
        if let Some(stage) = self.stage {
            let _ = write!(query, "&stage={}", stage.as_str());
        }
        if let Some(install) = self.install {
            let _ = write!(query, "&install={}", if install { "yes" } else { "no" });
        }
        if let Some(attention) = self.attention {
            let _ = write!(query, "&attention={}", attention.as_str());
        }
        if self.per_page != DEFAULT_PER_PAGE {
            let _ = write!(query, "&per={}", self.per_page);
        }
        query
    }
}

impl AttentionFilter {
    fn as_str(self) -> &'static str {
        match self {
            AttentionFilter::Stuck => "stuck",
            AttentionFilter::Looping => "looping",
            AttentionFilter::Any => "any",
        }
    }
}

/// One host row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub name: String,
    pub mac: Mac,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::Ipv6Addr>,
    pub install: bool,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// ms since the epoch of the last stage (0: never seen).
    pub at: UnixMillis,
    pub stuck: bool,
    pub looping: bool,
}

/// What one page shows (also the body of `/status.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// Hosts in the inventory.
    pub n_hosts: usize,
    /// Hosts the filter matches.
    pub n_matched: usize,
    pub n_stuck: usize,
    pub n_looping: usize,
    pub page: usize,
    pub n_pages: usize,
    pub per_page: usize,
    pub rows: Vec<Row>,
    /// When the selection was made (ms since the epoch).
    pub now: UnixMillis,
}

/// One host in the status pages' order: its MAC and the lowercased text its definition
/// is searched by (name, MAC in both spellings, address), built once per inventory
/// generation by [`index`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    /// The host's MAC (the key into the snapshot).
    pub mac: Mac,
    search: Box<str>,
}

/// The inventory's hosts in name order, with their search text.
pub fn index(inventory: &Inventory) -> Vec<Indexed> {
    inventory
        .sorted_by_name()
        .into_iter()
        .map(|host| {
            let spec = &host.spec;
            let mut search = String::with_capacity(spec.name.len() + 80);
            if spec.name.is_ascii() {
                search.push_str(&spec.name);
            } else {
                search.push_str(&spec.name.to_lowercase());
            }
            let _ = write!(search, "\n{}\n{}", spec.mac, spec.mac.hyphenated());
            if let Some(address) = spec.address {
                let _ = write!(search, "\n{address}");
            }
            search.make_ascii_lowercase();
            Indexed {
                mac: spec.mac,
                search: search.into_boxed_str(),
            }
        })
        .collect()
}

/// Whether `hay` contains `lower` (already lowercase), ignoring case; allocates only
/// when either is not ASCII.
fn contains_folded(hay: &str, lower: &str) -> bool {
    if hay.is_ascii() && lower.is_ascii() {
        hay.as_bytes()
            .windows(lower.len())
            .any(|w| w.eq_ignore_ascii_case(lower.as_bytes()))
    } else {
        hay.to_lowercase().contains(lower)
    }
}

/// What the pages read of one host's state, copied out of one snapshot.
#[derive(Debug, Clone)]
struct Judged {
    /// The host's place in [`View::order`].
    slot: u32,
    install: bool,
    stage: Stage,
    detail: Option<Box<str>>,
    progress: crate::inventory::Progress,
}

/// One snapshot as the status pages read it: every host's state in name order in one
/// contiguous array, built once per snapshot ([`View::new`], one pass over the
/// snapshot's hosts), so that a page is a scan of that array: the snapshot's hosts
/// are scattered in memory, and at 100,000 hosts reaching each of them again per
/// request is what cost most (`cargo xtask bench status`).
///
/// A view does not keep its snapshot alive (a `Weak`, for identity only): dropping an
/// old snapshot frees every host it alone held, and that must not be a status
/// request's work.
#[derive(Debug)]
pub struct View {
    snapshot: std::sync::Weak<Inventory>,
    order: Arc<Vec<Indexed>>,
    hosts: Vec<Judged>,
}

impl View {
    /// `order` must come from [`index`] of `snapshot`'s generation.
    pub fn new(snapshot: &Arc<Inventory>, order: Arc<Vec<Indexed>>) -> View {
        let hosts = order
            .iter()
            .enumerate()
            .filter_map(|(slot, entry)| {
                let state = &snapshot.get(&entry.mac)?.state;
                Some(Judged {
                    slot: u32::try_from(slot).ok()?,
                    install: state.install,
                    stage: state.stage,
                    detail: state.detail.as_deref().map(Box::from),
                    progress: state.progress,
                })
            })
            .collect();
        View {
            snapshot: Arc::downgrade(snapshot),
            order,
            hosts,
        }
    }

    /// Whether this view was built from `snapshot`.
    fn is_of(&self, snapshot: &Arc<Inventory>) -> bool {
        std::ptr::eq(self.snapshot.as_ptr(), Arc::as_ptr(snapshot))
    }
}

/// The hosts of `view` (of `snapshot`) that `filter` matches, in name order, judged at
/// `now` by `watch`: the requested page of them and the counts. Pure.
pub fn select(
    view: &View,
    snapshot: &Inventory,
    filter: &Filter,
    now: UnixMillis,
    watch: &Watch,
) -> Selection {
    let first = (filter.page - 1).saturating_mul(filter.per_page);
    let mut selection = Selection {
        n_hosts: snapshot.len(),
        n_matched: 0,
        n_stuck: 0,
        n_looping: 0,
        page: filter.page,
        n_pages: 0,
        per_page: filter.per_page,
        rows: Vec::new(),
        now,
    };
    for judged in &view.hosts {
        let attention = attention_of(judged.install, judged.stage, &judged.progress, now, watch);
        let (stuck, looping) = (attention.stuck_since.is_some(), attention.looping.is_some());
        selection.n_stuck += usize::from(stuck);
        selection.n_looping += usize::from(looping);
        let matches = filter.stage.map_or(true, |s| s == judged.stage)
            && filter.install.map_or(true, |i| i == judged.install)
            && match filter.attention {
                None => true,
                Some(AttentionFilter::Stuck) => stuck,
                Some(AttentionFilter::Looping) => looping,
                Some(AttentionFilter::Any) => stuck || looping,
            }
            && (filter.text.is_empty()
                || view.order[judged.slot as usize]
                    .search
                    .contains(filter.text.as_str())
                || judged
                    .detail
                    .as_ref()
                    .is_some_and(|d| contains_folded(d, &filter.text)));
        if !matches {
            continue;
        }
        if selection.n_matched >= first && selection.rows.len() < filter.per_page {
            let mac = view.order[judged.slot as usize].mac;
            if let Some(host) = snapshot.get(&mac) {
                let state = &host.state;
                selection.rows.push(Row {
                    name: host.spec.name.clone(),
                    mac,
                    address: host.spec.address,
                    install: state.install,
                    stage: state.stage,
                    detail: state.detail.clone(),
                    at: state.stage_at,
                    stuck,
                    looping,
                });
            }
        }
        selection.n_matched += 1;
    }
    selection.n_pages = selection.n_matched.div_ceil(filter.per_page).max(1);
    selection
}

/// The status pages' caches: the name order with search texts (per inventory
/// generation) and the [`View`] of the latest snapshot.
#[derive(Debug, Default)]
pub(super) struct StatusCache {
    order: Option<(u64, Arc<Vec<Indexed>>)>,
    view: Option<Arc<View>>,
}

impl App {
    /// The view of `snapshot`: the cached one, or built now (outside the lock, so that
    /// no other request waits on a worker thread for it).
    fn view(&self, snapshot: &Arc<Inventory>) -> Arc<View> {
        let order = {
            let cache = self.status_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(view) = cache.view.as_ref().filter(|v| v.is_of(snapshot)) {
                return view.clone();
            }
            cache
                .order
                .as_ref()
                .filter(|(generation, _)| *generation == snapshot.generation())
                .map(|(_, order)| order.clone())
        };
        let generation = snapshot.generation();
        let order = order.unwrap_or_else(|| Arc::new(index(snapshot)));
        let view = Arc::new(View::new(snapshot, order.clone()));
        let mut cache = self.status_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.order = Some((generation, order));
        cache.view = Some(view.clone());
        view
    }

    async fn selection(&self, req: &Request) -> (Filter, Selection) {
        // The last published snapshot, without waiting for the inventory's writer: it
        // may be committing (the file backend rewrites its state file per commit, most
        // of a second at 100,000 hosts), and a page polled every 3 s needs no more than
        // what was published (at most every 100 ms).
        let snapshot = self.inventory.snapshot();
        let view = self.view(&snapshot);
        let filter = Filter::parse(&req.query);
        let selection = select(&view, &snapshot, &filter, now_millis(), &self.watch);
        (filter, selection)
    }

    /// `GET /status.json`.
    pub(super) async fn status_json(&self, req: &Request) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        let (_, selection) = self.selection(req).await;
        let body = serde_json::to_vec(&selection).expect("a selection always serializes");
        let mut response = Response::text(200, "application/json", body);
        response.headers.push(("Cache-Control", "no-store".into()));
        response
    }

    /// `GET /status` (and `/`).
    pub(super) async fn status_page(&self, req: &Request) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        let (filter, selection) = self.selection(req).await;
        let mut out = String::with_capacity(32 * 1024);
        head(&mut out, "sixboot status");
        let _ = write!(
            out,
            "<header><h1>sixboot</h1><p id=\"summary\">{}</p></header>\n\
             <form id=\"filter\" method=\"get\" action=\"/status\">\
             <input type=\"search\" name=\"q\" placeholder=\"name, MAC, address\" value=\"{}\" aria-label=\"search\">\
             <select name=\"stage\" aria-label=\"stage\"><option value=\"\">any stage</option>",
            summary(&selection),
            escape_html(&filter.text)
        );
        for stage in Stage::ALL {
            let _ = write!(
                out,
                "<option value=\"{0}\"{1}>{0}</option>",
                stage.as_str(),
                if filter.stage == Some(stage) {
                    " selected"
                } else {
                    ""
                }
            );
        }
        out.push_str("</select><select name=\"install\" aria-label=\"install flag\">");
        for (value, label, on) in [
            ("", "install: any", filter.install.is_none()),
            ("yes", "installing", filter.install == Some(true)),
            ("no", "not installing", filter.install == Some(false)),
        ] {
            let _ = write!(
                out,
                "<option value=\"{value}\"{}>{label}</option>",
                if on { " selected" } else { "" }
            );
        }
        out.push_str("</select><select name=\"attention\" aria-label=\"attention\">");
        for (value, label, on) in [
            ("", "all hosts", filter.attention.is_none()),
            (
                "any",
                "stuck or looping",
                filter.attention == Some(AttentionFilter::Any),
            ),
            (
                "stuck",
                "stuck",
                filter.attention == Some(AttentionFilter::Stuck),
            ),
            (
                "looping",
                "looping",
                filter.attention == Some(AttentionFilter::Looping),
            ),
        ] {
            let _ = write!(
                out,
                "<option value=\"{value}\"{}>{label}</option>",
                if on { " selected" } else { "" }
            );
        }
        out.push_str(
            "</select><button type=\"submit\">filter</button></form>\n\
             <div class=\"scroll\"><table id=\"hosts\"><thead><tr><th>name</th><th class=\"wide\">MAC</th>\
             <th class=\"wide\">address</th><th class=\"wide\">install</th><th>stage</th><th>since</th></tr>\
             </thead><tbody>\n",
        );
        for row in &selection.rows {
            row_html(&mut out, row, selection.now);
        }
        out.push_str("</tbody></table></div>\n<nav id=\"pager\">");
        pager(&mut out, &filter, &selection);
        let _ = write!(
            out,
            "</nav>\n<footer><a href=\"/metrics\">metrics</a></footer>\n<script>{SCRIPT}</script>\n</body></html>\n"
        );
        let mut response = Response::text(200, "text/html; charset=utf-8", out.into_bytes());
        response.headers.push(("Cache-Control", "no-store".into()));
        response
    }

    /// `GET /status/host/{mac}`: one host's timeline, its last 10 boots.
    pub(super) async fn status_host(&self, req: &Request, rest: &str) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        let decoded = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
        let Ok(mac) = decoded.trim_end_matches('/').parse::<Mac>() else {
            return Response::error(404);
        };
        self.inventory.flush().await;
        let inventory = self.inventory.snapshot();
        let Some(host) = inventory.get(&mac) else {
            return Response::error(404);
        };
        let events = match self.inventory.events(mac, 10).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(%mac, error = %err, "cannot read boot events for the status page");
                Vec::new()
            }
        };
        let timeline = HostTimeline::of(host, &events, now_millis(), &self.watch);
        let mut out = String::with_capacity(8 * 1024);
        head(&mut out, &format!("{} - sixboot", host.spec.name));
        let _ = write!(
            out,
            "<header><h1><a href=\"/status\">sixboot</a> / <span id=\"host\">{}</span></h1>\
             <p>{} {} · install: {} · last stage: <b>{}</b>{}</p>",
            escape_html(&host.spec.name),
            host.spec.mac,
            host.spec.address.map(|a| a.to_string()).unwrap_or_default(),
            if timeline.install { "yes" } else { "no" },
            timeline.stage.as_str(),
            badges(timeline.stuck_since.is_some(), timeline.looping.is_some()),
        );
        if let Some(since) = timeline.stuck_since {
            let _ = write!(
                out,
                "<p class=\"warn\">Stuck: its install started at {} UTC and has not reached /done.</p>",
                format_utc(since)
            );
        }
        if let Some((first, second)) = timeline.looping {
            let _ = write!(
                out,
                "<p class=\"warn\">Possible boot loop: script fetched at {} and again at {} without /done.</p>",
                format_utc(first),
                format_utc(second)
            );
        }
        out.push_str("</header>\n");
        if timeline.boots.is_empty() {
            out.push_str("<p>No boot seen yet.</p>\n");
        }
        for boot in timeline.boots.iter().rev() {
            let _ = writeln!(
                out,
                "<section class=\"boot\"><h2>boot {}</h2><p>started {} UTC, {} to {}</p>\
                 <div class=\"scroll\"><table class=\"timeline\"><thead><tr><th>stage</th>\
                 <th>at (UTC)</th><th>+previous</th><th class=\"wide\">server</th><th>peer</th>\
                 <th>detail</th></tr></thead><tbody>",
                boot.boot,
                format_utc(boot.started_at),
                format_duration(boot.duration_ms),
                boot.last.as_str()
            );
            for step in &boot.steps {
                let _ = writeln!(
                    out,
                    "<tr data-stage=\"{0}\"><td title=\"{1}\">{0}</td><td>{2}</td><td>+{3}</td>\
                     <td class=\"wide\">{4}</td><td>{5}</td><td>{6}</td></tr>",
                    step.stage.as_str(),
                    step.stage.describe(),
                    format_utc(step.at),
                    format_duration(step.since_previous_ms),
                    escape_html(&step.server),
                    step.peer.map(|p| p.to_string()).unwrap_or_default(),
                    escape_html(step.detail.as_deref().unwrap_or(""))
                );
            }
            out.push_str("</tbody></table></div></section>\n");
        }
        out.push_str("</body></html>\n");
        let mut response = Response::text(200, "text/html; charset=utf-8", out.into_bytes());
        response.headers.push(("Cache-Control", "no-store".into()));
        response
    }
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape_html(title)
    );
}

fn summary(selection: &Selection) -> String {
    format!(
        "{} of {} hosts · {} stuck · {} looping",
        selection.n_matched, selection.n_hosts, selection.n_stuck, selection.n_looping
    )
}

fn badges(stuck: bool, looping: bool) -> String {
    let mut out = String::new();
    if stuck {
        out.push_str(" <span class=\"badge stuck\">stuck</span>");
    }
    if looping {
        out.push_str(" <span class=\"badge loop\">loop?</span>");
    }
    out
}

/// How long ago `at` was, for the "since" column.
fn ago(at: UnixMillis, now: UnixMillis) -> String {
    if at == 0 {
        "-".to_owned()
    } else {
        format!("{} ago", format_duration(now.saturating_sub(at)))
    }
}

fn row_html(out: &mut String, row: &Row, now: UnixMillis) {
    let stage = match &row.detail {
        Some(detail) => format!("{} ({})", row.stage.as_str(), escape_html(detail)),
        None => row.stage.as_str().to_owned(),
    };
    let _ = writeln!(
        out,
        "<tr data-mac=\"{mac}\"><td><a href=\"/status/host/{mac}\">{name}</a></td><td class=\"wide\">{mac}</td>\
         <td class=\"wide\">{address}</td><td class=\"wide\">{install}</td><td>{stage}{badges}</td><td>{ago}</td></tr>",
        mac = row.mac,
        name = escape_html(&row.name),
        address = row.address.map(|a| a.to_string()).unwrap_or_default(),
        install = if row.install { "yes" } else { "no" },
        badges = badges(row.stuck, row.looping),
        ago = ago(row.at, now),
    );
}

fn pager(out: &mut String, filter: &Filter, selection: &Selection) {
    if selection.page > 1 {
        let _ = write!(
            out,
            "<a rel=\"prev\" href=\"/status?{}\">&larr; previous</a> ",
            filter.query(selection.page - 1)
        );
    }
    let _ = write!(
        out,
        "<span>page {} of {}</span>",
        selection.page, selection.n_pages
    );
    if selection.page < selection.n_pages {
        let _ = write!(
            out,
            " <a rel=\"next\" href=\"/status?{}\">next &rarr;</a>",
            filter.query(selection.page + 1)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{HostSpec, HostState, Rows, StoredHost};

    fn inventory(n: u32) -> Inventory {
        let mut rows = Rows::default();
        for i in 0..n {
            let mac = Mac([2, 0, 0, 0, (i >> 8) as u8, i as u8]);
            rows.hosts.insert(
                mac,
                StoredHost {
                    spec: HostSpec {
                        mac,
                        name: format!("node-{i:03}"),
                        address: None,
                        vars: Default::default(),
                        installer: None,
                        bmc: None,
                    },
                    version: 1,
                },
            );
            let mut state = HostState::initial(i % 2 == 0);
            state.stage = if i % 3 == 0 {
                Stage::Script
            } else {
                Stage::None
            };
            rows.states.insert(mac, state);
        }
        Inventory::new(Vec::new(), rows)
    }

    fn view(inventory: Inventory) -> (View, Arc<Inventory>) {
        let order = Arc::new(index(&inventory));
        let snapshot = Arc::new(inventory);
        (View::new(&snapshot, order), snapshot)
    }

    #[test]
    fn search_ignores_case_without_allocating_for_ascii() {
        assert!(contains_folded("VMLINUZ-6.1", "vmlinuz"));
        assert!(contains_folded("initrd.img", "rd.i"));
        assert!(!contains_folded("initrd", "initrd.img"));
        assert!(contains_folded("Ärger.img", "ärger"));
    }

    #[test]
    fn filters_combine_and_pages_count_matches() {
        let (view, snapshot) = view(inventory(250));
        let all = select(&view, &snapshot, &Filter::parse(""), 1, &Watch::default());
        assert_eq!((all.n_hosts, all.n_matched, all.n_pages), (250, 250, 3));
        assert_eq!(all.rows.len(), 100);
        assert_eq!(all.rows[0].name, "node-000");
        let page3 = select(
            &view,
            &snapshot,
            &Filter::parse("page=3"),
            1,
            &Watch::default(),
        );
        assert_eq!(page3.rows.len(), 50);
        assert_eq!(page3.rows[0].name, "node-200");
        let far = Filter::parse(&format!("page={}&per=500", usize::MAX));
        let beyond = select(&view, &snapshot, &far, 1, &Watch::default());
        assert!(beyond.rows.is_empty() && beyond.n_matched == 250);
        let one = select(
            &view,
            &snapshot,
            &Filter::parse("q=NODE-042"),
            1,
            &Watch::default(),
        );
        assert_eq!(one.n_matched, 1);
        assert_eq!(one.rows[0].name, "node-042");
        // Stage script: every third; installing: every second; both: every sixth.
        let both = select(
            &view,
            &snapshot,
            &Filter::parse("stage=script&install=yes&per=7"),
            1,
            &Watch::default(),
        );
        assert_eq!(both.n_matched, 42);
        assert_eq!((both.rows.len(), both.n_pages), (7, 6));
        let by_mac = select(
            &view,
            &snapshot,
            &Filter::parse("q=02%3A00%3A00%3A00%3A00%3A2a"),
            1,
            &Watch::default(),
        );
        assert_eq!(by_mac.rows[0].name, "node-042");
    }

    #[test]
    fn the_query_of_a_filter_reads_back_as_the_same_filter() {
        let filter =
            Filter::parse("q=rack+1%2F&stage=kernel&install=no&attention=any&per=20&page=2");
        assert_eq!(filter.text, "rack 1/");
        assert_eq!(Filter::parse(&filter.query(2)), filter);
        assert_eq!(Filter::parse("page=0&per=100000").per_page, MAX_PER_PAGE);
        assert_eq!(Filter::parse("page=0").page, 1);
    }
}
