//! TFTP counters: transfers by outcome, bytes sent, blocks sent again, transfers in
//! progress.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::tftp::transfer::Outcome;
use crate::tftp::wire::ErrorCode;

type Labels1 = [(&'static str, &'static str); 1];

/// The TFTP families.
#[derive(Debug)]
pub struct TftpMetrics {
    transfers: Family<Labels1, Counter>,
    bytes: Counter,
    retransmitted: Counter,
    /// Transfers running now.
    pub active: Gauge,
    /// `[monitor] metrics`: when false [`TftpMetrics::ended`] returns at once.
    on: bool,
}

impl TftpMetrics {
    /// Registers the families in `registry`; `on` false counts nothing.
    pub fn register(registry: &mut Registry, on: bool) -> TftpMetrics {
        let metrics = TftpMetrics {
            on,
            transfers: Family::default(),
            bytes: Counter::default(),
            retransmitted: Counter::default(),
            active: Gauge::default(),
        };
        registry.register(
            "sixboot_tftp_transfers",
            "TFTP transfers ended, by outcome (complete, size-probe, refused, client-error, timed-out, failed)",
            metrics.transfers.clone(),
        );
        registry.register(
            "sixboot_tftp_sent_bytes",
            "File bytes of completed TFTP transfers",
            metrics.bytes.clone(),
        );
        registry.register(
            "sixboot_tftp_retransmitted_blocks",
            "DATA blocks sent again (timer or reported gap)",
            metrics.retransmitted.clone(),
        );
        registry.register(
            "sixboot_tftp_active_transfers",
            "TFTP transfers in progress",
            metrics.active.clone(),
        );
        for outcome in [
            "complete",
            "size-probe",
            "refused",
            "client-error",
            "timed-out",
            "failed",
        ] {
            let _ = metrics.transfers.get_or_create(&[("outcome", outcome)]);
        }
        metrics
    }

    /// Counts a transfer that ended with `outcome` (`None`: an I/O error ended it).
    pub fn ended(&self, outcome: Option<&Outcome>) {
        if !self.on {
            return;
        }
        let label = match outcome {
            Some(Outcome::Complete {
                bytes,
                retransmitted_blocks,
            }) => {
                self.bytes.inc_by(*bytes);
                self.retransmitted.inc_by(*retransmitted_blocks);
                "complete"
            }
            // UEFI's PXE asks for tsize and ends the transfer after the OACK.
            Some(Outcome::ClientError {
                code: ErrorCode::OptionNegotiation,
                ..
            }) => "size-probe",
            Some(Outcome::Refused { .. }) => "refused",
            Some(Outcome::ClientError { .. }) => "client-error",
            Some(Outcome::TimedOut { .. }) => "timed-out",
            None => "failed",
        };
        self.transfers.get_or_create(&[("outcome", label)]).inc();
    }
}
