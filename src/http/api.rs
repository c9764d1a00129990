//! The inventory API under `/api/v1` (JSON, bearer tokens).

use std::net::SocketAddr;

use super::request::Request;
use super::{App, Response};

impl App {
    pub(super) async fn api(&self, _req: &Request, _peer: SocketAddr) -> Response {
        let _ = &self.subnets;
        Response::error(404)
    }
}
