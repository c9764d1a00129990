//! One read transfer as a state machine: time and I/O come in as arguments, what to do
//! goes out as [`Action`]s. No sockets, no clock, no file system.
//!
//! The flow (RFC 1350 section 4, RFC 2347 section "Negotiation Protocol"):
//! RRQ → [`Action::Open`] → [`Event::Opened`] → either an OACK that waits for the
//! client's ACK 0, or DATA 1 straight away when no option was accepted → windows of
//! DATA blocks (RFC 7440), each window acknowledged by the ACK of its last block →
//! the ACK of the last block (shorter than blksize, possibly empty) ends the transfer.
//!
//! Invariants:
//! - A DATA block is sent again only when its timer runs out or when an ACK moves the
//!   window forward without covering it (RFC 7440's gap recovery). A duplicate ACK
//!   changes nothing, so the Sorcerer's Apprentice bug (RFC 1123 section 4.2.3.1)
//!   cannot happen.
//! - Block numbers are 16 bits on the wire and roll over from 65535 to 0, as tftp-hpa,
//!   dnsmasq and iPXE expect; internally blocks are counted in 64 bits.
//! - After [`Action::Finish`] the machine answers nothing more.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::path::{relative_path, PathError};
use super::wire::{ErrorCode, Mode, Repr, TftpOption, DEFAULT_BLOCK_SIZE};

/// Limits the server puts on what clients may negotiate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The largest blksize granted (RFC 2348); the client's wish is capped to it.
    pub max_block_size: u16,
    /// The largest windowsize granted (RFC 7440).
    pub max_window_size: u16,
    /// How long to wait for an ACK when the client did not ask for a timeout.
    pub timeout: Duration,
    /// How many times a window (or OACK) is sent again before the transfer gives up.
    pub retries: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_block_size: 65464,
            max_window_size: 64,
            timeout: Duration::from_secs(1),
            retries: 5,
        }
    }
}

/// Why the file behind a request could not be opened (found out by the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    NotFound,
    /// A symlink or mount point would lead outside the root.
    Escapes,
    PermissionDenied,
    /// A directory, device or socket.
    NotAFile,
    Other(String),
}

/// Something that happened to a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A datagram from the client arrived on the transfer's own port.
    Packet(&'a [u8]),
    /// The answer to [`Action::Open`]: the size of what will be sent, or why not.
    Opened(Result<u64, OpenError>),
    /// The instant from the last [`Action::WaitUntil`] has come.
    Timer,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open this root-relative path (already checked by [`relative_path`]) and report
    /// with [`Event::Opened`]. With `netascii`, the shell serves the file converted to
    /// CR LF line ends (RFC 764) and reports the converted size.
    Open { path: PathBuf, netascii: bool },
    /// Send this packet (an OACK or an ERROR) to the client.
    Send(Vec<u8>),
    /// Send DATA block `block` carrying the `len` bytes at `offset` of the opened file.
    SendData { block: u16, offset: u64, len: usize },
    /// Deliver [`Event::Timer`] at this instant unless a packet comes first; replaces
    /// any earlier deadline.
    WaitUntil(Instant),
    /// The transfer is over; close its socket.
    Finish(Outcome),
}

/// How a transfer ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The client acknowledged the last block.
    Complete {
        bytes: u64,
        retransmitted_blocks: u64,
    },
    /// We refused the request or stopped it and told the client why.
    Refused { code: ErrorCode, message: String },
    /// The client sent an ERROR (code 8 if it did not like our OACK).
    ClientError { code: ErrorCode, message: String },
    /// No ACK came after every retry.
    TimedOut { acked_blocks: u64 },
}

/// What the client asked for and what we granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Bytes per DATA block: 512 unless blksize was agreed (RFC 2348).
    pub block_size: u16,
    /// Blocks sent before waiting for an ACK: 1 unless windowsize was agreed (RFC 7440).
    pub window_size: u16,
    /// Retransmission interval: the client's timeout option, or the server's default.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
enum State {
    /// Waiting for [`Event::Opened`].
    Opening {
        block_size: Option<u16>,
        window_size: Option<u16>,
        timeout_secs: Option<u8>,
        transfer_size: bool,
    },
    /// OACK sent; waiting for the client's ACK 0.
    OptionAck {
        oack: Vec<u8>,
    },
    /// Sending windows of DATA.
    Sending,
    Finished,
}

/// One read transfer.
#[derive(Debug, Clone)]
pub struct Transfer {
    settings: Settings,
    state: State,
    negotiated: Negotiated,
    size: u64,
    /// Blocks in the file: `size / block_size + 1` (the last one is short or empty).
    n_blocks: u64,
    /// The highest block the client acknowledged (0 before any).
    acked: u64,
    /// The highest block sent so far.
    sent: u64,
    deadline: Instant,
    retries_left: u32,
    retransmitted_blocks: u64,
}

fn error_packet(code: ErrorCode, message: &str) -> Vec<u8> {
    Repr::Error {
        code,
        message: message.as_bytes(),
    }
    .to_bytes()
}

impl Transfer {
    /// Starts a transfer from the request that arrived on the server's listening port.
    pub fn start(now: Instant, request: &[u8], settings: Settings) -> (Transfer, Vec<Action>) {
        let mut transfer = Transfer {
            negotiated: Negotiated {
                block_size: DEFAULT_BLOCK_SIZE,
                window_size: 1,
                timeout: settings.timeout,
            },
            retries_left: settings.retries,
            settings,
            state: State::Finished,
            size: 0,
            n_blocks: 0,
            acked: 0,
            sent: 0,
            deadline: now,
            retransmitted_blocks: 0,
        };
        let actions = match Repr::parse_bytes(request) {
            Err(err) => transfer.refuse(ErrorCode::IllegalOperation, &err.to_string()),
            Ok(Repr::WriteRequest { .. }) => transfer.refuse(
                ErrorCode::AccessViolation,
                "this server is read-only: write requests are refused",
            ),
            Ok(Repr::ReadRequest {
                filename,
                mode,
                options,
            }) => transfer.read_request(filename, mode, &options),
            Ok(other) => transfer.refuse(
                ErrorCode::IllegalOperation,
                &format!("expected a read request, got {:?}", other.opcode()),
            ),
        };
        (transfer, actions)
    }

    /// What was agreed with the client (valid once the file is open).
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// Whether [`Action::Finish`] has been returned.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    fn refuse(&mut self, code: ErrorCode, message: &str) -> Vec<Action> {
        self.state = State::Finished;
        vec![
            Action::Send(error_packet(code, message)),
            Action::Finish(Outcome::Refused {
                code,
                message: message.to_owned(),
            }),
        ]
    }

    fn read_request(&mut self, filename: &[u8], mode: Mode, options: &[TftpOption]) -> Vec<Action> {
        let netascii = match mode {
            Mode::Octet => false,
            Mode::NetAscii => true,
            Mode::Mail | Mode::Unknown(_) => {
                return self.refuse(
                    ErrorCode::IllegalOperation,
                    "only the octet and netascii modes are served",
                )
            }
        };
        let path = match relative_path(filename) {
            Ok(path) => path,
            Err(err @ PathError::ParentComponent) => {
                return self.refuse(ErrorCode::AccessViolation, &err.to_string())
            }
            Err(err) => return self.refuse(ErrorCode::FileNotFound, &err.to_string()),
        };
        let (mut block_size, mut window_size, mut timeout_secs, mut transfer_size) =
            (None, None, None, false);
        for option in options {
            match *option {
                TftpOption::BlockSize(n) => block_size = Some(n),
                TftpOption::WindowSize(n) => window_size = Some(n),
                TftpOption::Timeout(n) => timeout_secs = Some(n),
                TftpOption::TransferSize(_) => transfer_size = true,
                // RFC 2347: options the server does not know are left out of the OACK.
                TftpOption::Unknown { .. } => {}
            }
        }
        self.state = State::Opening {
            block_size,
            window_size,
            timeout_secs,
            transfer_size,
        };
        vec![Action::Open { path, netascii }]
    }

    /// Feeds one event in; returns what to do, in order.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        match (&self.state, event) {
            (State::Finished, _) => Vec::new(),
            (State::Opening { .. }, Event::Opened(result)) => self.opened(now, result),
            (State::Opening { .. }, _) => Vec::new(),
            (_, Event::Opened(_)) => Vec::new(),
            (_, Event::Timer) => self.timer(now),
            (_, Event::Packet(bytes)) => self.packet(now, bytes),
        }
    }

    fn opened(&mut self, now: Instant, result: Result<u64, OpenError>) -> Vec<Action> {
        let State::Opening {
            block_size,
            window_size,
            timeout_secs,
            transfer_size,
        } = self.state
        else {
            return Vec::new();
        };
        let size = match result {
            Ok(size) => size,
            Err(OpenError::NotFound) => {
                return self.refuse(ErrorCode::FileNotFound, "file not found")
            }
            Err(OpenError::Escapes) => {
                return self.refuse(
                    ErrorCode::AccessViolation,
                    "the file name leads outside the TFTP root",
                )
            }
            Err(OpenError::PermissionDenied) => {
                return self.refuse(ErrorCode::AccessViolation, "permission denied")
            }
            Err(OpenError::NotAFile) => {
                return self.refuse(ErrorCode::FileNotFound, "not a regular file")
            }
            Err(OpenError::Other(message)) => return self.refuse(ErrorCode::NotDefined, &message),
        };
        let mut accepted = Vec::new();
        if let Some(wanted) = block_size {
            let granted = wanted.min(self.settings.max_block_size.max(8));
            self.negotiated.block_size = granted;
            accepted.push(TftpOption::BlockSize(granted));
        }
        if let Some(secs) = timeout_secs {
            self.negotiated.timeout = Duration::from_secs(secs.into());
            accepted.push(TftpOption::Timeout(secs));
        }
        if transfer_size {
            accepted.push(TftpOption::TransferSize(size));
        }
        if let Some(wanted) = window_size {
            let granted = wanted.min(self.settings.max_window_size.max(1));
            self.negotiated.window_size = granted;
            accepted.push(TftpOption::WindowSize(granted));
        }
        self.size = size;
        self.n_blocks = size / u64::from(self.negotiated.block_size) + 1;
        if accepted.is_empty() {
            self.state = State::Sending;
            return self.send_window(now);
        }
        let oack = Repr::OptionAck { options: accepted }.to_bytes();
        self.state = State::OptionAck { oack: oack.clone() };
        self.arm(now);
        vec![Action::Send(oack), Action::WaitUntil(self.deadline)]
    }

    fn arm(&mut self, now: Instant) {
        self.deadline = now + self.negotiated.timeout;
    }

    /// Sends the window that starts after the last acknowledged block.
    fn send_window(&mut self, now: Instant) -> Vec<Action> {
        let first = self.acked + 1;
        let last = (self.acked + u64::from(self.negotiated.window_size)).min(self.n_blocks);
        let block_size = u64::from(self.negotiated.block_size);
        let mut actions = Vec::new();
        for index in first..=last {
            let offset = (index - 1) * block_size;
            let len = self.size.saturating_sub(offset).min(block_size) as usize;
            if index <= self.sent {
                self.retransmitted_blocks += 1;
            }
            actions.push(Action::SendData {
                block: index as u16,
                offset,
                len,
            });
        }
        self.sent = self.sent.max(last);
        self.arm(now);
        actions.push(Action::WaitUntil(self.deadline));
        actions
    }

    fn timer(&mut self, now: Instant) -> Vec<Action> {
        if now < self.deadline {
            return vec![Action::WaitUntil(self.deadline)];
        }
        if self.retries_left == 0 {
            self.state = State::Finished;
            let message = "timed out waiting for an ACK";
            return vec![
                Action::Send(error_packet(ErrorCode::NotDefined, message)),
                Action::Finish(Outcome::TimedOut {
                    acked_blocks: self.acked,
                }),
            ];
        }
        self.retries_left -= 1;
        match &self.state {
            State::OptionAck { oack } => {
                let oack = oack.clone();
                self.arm(now);
                vec![Action::Send(oack), Action::WaitUntil(self.deadline)]
            }
            State::Sending => self.send_window(now),
            State::Opening { .. } | State::Finished => Vec::new(),
        }
    }

    fn packet(&mut self, now: Instant, bytes: &[u8]) -> Vec<Action> {
        // Noise that does not parse is dropped; the timer still runs.
        let Ok(repr) = Repr::parse_bytes(bytes) else {
            return Vec::new();
        };
        match repr {
            Repr::Ack { block } => self.ack(now, block),
            Repr::Error { code, message } => {
                self.state = State::Finished;
                vec![Action::Finish(Outcome::ClientError {
                    code,
                    message: String::from_utf8_lossy(message).into_owned(),
                })]
            }
            other => self.refuse(
                ErrorCode::IllegalOperation,
                &format!("expected an ACK, got {:?}", other.opcode()),
            ),
        }
    }

    fn ack(&mut self, now: Instant, block: u16) -> Vec<Action> {
        match self.state {
            State::OptionAck { .. } => {
                // RFC 2347: the client confirms the OACK with ACK 0; anything else is
                // stale or stray and waits for the timer.
                if block != 0 {
                    return Vec::new();
                }
                self.state = State::Sending;
                self.retries_left = self.settings.retries;
                self.send_window(now)
            }
            State::Sending => {
                // Which 64-bit block index this 16-bit number stands for, counting
                // forward from the last acknowledged block.
                let ahead = u64::from(block.wrapping_sub(self.acked as u16));
                let index = self.acked + ahead;
                if ahead == 0 || index > self.sent {
                    // A duplicate of the last ACK, or a number we never sent: ignore
                    // it and let the timer decide (no Sorcerer's Apprentice).
                    return Vec::new();
                }
                self.acked = index;
                self.retries_left = self.settings.retries;
                if self.acked == self.n_blocks {
                    self.state = State::Finished;
                    return vec![Action::Finish(Outcome::Complete {
                        bytes: self.size,
                        retransmitted_blocks: self.retransmitted_blocks,
                    })];
                }
                // The ACK of a window's last block opens the next window; an ACK
                // inside the window reports a gap after the client's own timeout
                // (RFC 7440 section 4), and the next window starts right after it.
                self.send_window(now)
            }
            State::Opening { .. } | State::Finished => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(filename: &str, options: &[(&str, &str)]) -> Vec<u8> {
        let mut bytes = vec![0, 1];
        for part in [filename, "octet"]
            .into_iter()
            .chain(options.iter().flat_map(|(n, v)| [*n, *v]))
        {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0);
        }
        bytes
    }

    fn ack(block: u16) -> Vec<u8> {
        Repr::Ack { block }.to_bytes()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Starts a transfer of `size` bytes and checks it asks to open `ipxe.efi`.
    fn opened(
        t0: Instant,
        options: &[(&str, &str)],
        size: u64,
        settings: Settings,
    ) -> (Transfer, Vec<Action>) {
        let (mut transfer, actions) = Transfer::start(t0, &rrq("/ipxe.efi", options), settings);
        assert_eq!(
            actions,
            vec![Action::Open {
                path: PathBuf::from("ipxe.efi"),
                netascii: false
            }]
        );
        let actions = transfer.handle(t0, Event::Opened(Ok(size)));
        (transfer, actions)
    }

    fn data(block: u16, offset: u64, len: usize) -> Action {
        Action::SendData { block, offset, len }
    }

    fn sent_error(actions: &[Action]) -> (ErrorCode, String) {
        for action in actions {
            if let Action::Send(bytes) = action {
                if let Ok(Repr::Error { code, message }) = Repr::parse_bytes(bytes) {
                    return (code, String::from_utf8_lossy(message).into_owned());
                }
            }
        }
        panic!("no ERROR packet in {actions:?}");
    }

    fn finished(actions: &[Action]) -> &Outcome {
        match actions.last() {
            Some(Action::Finish(outcome)) => outcome,
            _ => panic!("transfer did not finish: {actions:?}"),
        }
    }

    #[test]
    fn without_options_sends_data_1_at_once_and_ends_on_the_short_blocks_ack() {
        let t0 = Instant::now();
        let (mut t, actions) = opened(t0, &[], 1000, Settings::default());
        assert_eq!(
            actions,
            vec![data(1, 0, 512), Action::WaitUntil(t0 + secs(1))]
        );
        let actions = t.handle(t0, Event::Packet(&ack(1)));
        assert_eq!(
            actions,
            vec![data(2, 512, 488), Action::WaitUntil(t0 + secs(1))]
        );
        let actions = t.handle(t0, Event::Packet(&ack(2)));
        assert_eq!(
            finished(&actions),
            &Outcome::Complete {
                bytes: 1000,
                retransmitted_blocks: 0
            }
        );
        assert!(t.is_finished());
        assert!(t.handle(t0, Event::Packet(&ack(2))).is_empty());
        assert!(t.handle(t0 + secs(9), Event::Timer).is_empty());
    }

    #[test]
    fn a_file_of_whole_blocks_ends_with_an_empty_block() {
        let t0 = Instant::now();
        let (mut t, actions) = opened(t0, &[], 1024, Settings::default());
        assert_eq!(actions[0], data(1, 0, 512));
        assert_eq!(t.handle(t0, Event::Packet(&ack(1)))[0], data(2, 512, 512));
        assert_eq!(t.handle(t0, Event::Packet(&ack(2)))[0], data(3, 1024, 0));
        let actions = t.handle(t0, Event::Packet(&ack(3)));
        assert!(matches!(
            finished(&actions),
            Outcome::Complete { bytes: 1024, .. }
        ));
    }

    #[test]
    fn an_empty_file_is_one_empty_block() {
        let t0 = Instant::now();
        let (mut t, actions) = opened(t0, &[], 0, Settings::default());
        assert_eq!(actions[0], data(1, 0, 0));
        let actions = t.handle(t0, Event::Packet(&ack(1)));
        assert!(matches!(
            finished(&actions),
            Outcome::Complete { bytes: 0, .. }
        ));
    }

    #[test]
    fn negotiates_every_option_in_an_oack_and_starts_only_on_ack_0() {
        let t0 = Instant::now();
        let options = [
            ("tsize", "0"),
            ("blksize", "1468"),
            ("timeout", "3"),
            ("windowsize", "4"),
            ("x-unknown", "1"),
        ];
        let (mut t, actions) = opened(t0, &options, 10_000, Settings::default());
        let [Action::Send(oack), Action::WaitUntil(at)] = actions.as_slice() else {
            panic!("expected an OACK and a timer: {actions:?}");
        };
        assert_eq!(
            *at,
            t0 + secs(3),
            "the client's timeout governs retransmission"
        );
        assert_eq!(
            Repr::parse_bytes(oack).unwrap(),
            Repr::OptionAck {
                options: vec![
                    TftpOption::BlockSize(1468),
                    TftpOption::Timeout(3),
                    TftpOption::TransferSize(10_000),
                    TftpOption::WindowSize(4),
                ]
            },
            "unknown options are left out of the OACK"
        );
        assert_eq!(
            t.negotiated(),
            Negotiated {
                block_size: 1468,
                window_size: 4,
                timeout: secs(3)
            }
        );
        assert!(
            t.handle(t0, Event::Packet(&ack(1))).is_empty(),
            "only ACK 0 confirms an OACK"
        );
        let actions = t.handle(t0 + secs(1), Event::Packet(&ack(0)));
        assert_eq!(
            actions,
            vec![
                data(1, 0, 1468),
                data(2, 1468, 1468),
                data(3, 2936, 1468),
                data(4, 4404, 1468),
                Action::WaitUntil(t0 + secs(4)),
            ]
        );
        let actions = t.handle(t0 + secs(1), Event::Packet(&ack(4)));
        assert_eq!(
            actions,
            vec![
                data(5, 5872, 1468),
                data(6, 7340, 1468),
                data(7, 8808, 1192),
                Action::WaitUntil(t0 + secs(4)),
            ]
        );
        let actions = t.handle(t0 + secs(1), Event::Packet(&ack(7)));
        assert!(matches!(
            finished(&actions),
            Outcome::Complete { bytes: 10_000, .. }
        ));
    }

    #[test]
    fn caps_blksize_and_windowsize_at_the_server_limits() {
        let t0 = Instant::now();
        let settings = Settings {
            max_block_size: 1024,
            max_window_size: 2,
            ..Settings::default()
        };
        let options = [("blksize", "65464"), ("windowsize", "64")];
        let (_, actions) = opened(t0, &options, 10_000, settings);
        let Action::Send(oack) = &actions[0] else {
            panic!("no OACK: {actions:?}");
        };
        assert_eq!(
            Repr::parse_bytes(oack).unwrap(),
            Repr::OptionAck {
                options: vec![TftpOption::BlockSize(1024), TftpOption::WindowSize(2)]
            }
        );
    }

    #[test]
    fn only_unknown_or_invalid_options_mean_no_oack_but_data_1() {
        let t0 = Instant::now();
        let (_, actions) = opened(
            t0,
            &[("blksize", "4"), ("multicast", "")],
            100,
            Settings::default(),
        );
        assert_eq!(
            actions[0],
            data(1, 0, 100),
            "RFC 1350 behaviour: {actions:?}"
        );
    }

    #[test]
    fn resends_the_oack_when_ack_0_is_lost() {
        let t0 = Instant::now();
        let (mut t, actions) = opened(t0, &[("blksize", "1024")], 5000, Settings::default());
        let Action::Send(oack) = actions[0].clone() else {
            panic!("no OACK");
        };
        assert_eq!(
            t.handle(t0 + secs(1), Event::Timer),
            vec![Action::Send(oack), Action::WaitUntil(t0 + secs(2))]
        );
        assert_eq!(
            t.handle(t0 + secs(2), Event::Packet(&ack(0)))[0],
            data(1, 0, 1024)
        );
    }

    #[test]
    fn a_lost_ack_resends_the_block_when_the_timer_runs_out_not_before() {
        let t0 = Instant::now();
        let (mut t, _) = opened(t0, &[], 2000, Settings::default());
        // A timer that fires early (the shell's clock is coarse) only re-arms.
        assert_eq!(
            t.handle(t0 + Duration::from_millis(500), Event::Timer),
            vec![Action::WaitUntil(t0 + secs(1))]
        );
        assert_eq!(
            t.handle(t0 + secs(1), Event::Timer),
            vec![data(1, 0, 512), Action::WaitUntil(t0 + secs(2))]
        );
        assert_eq!(
            t.handle(t0 + secs(2), Event::Packet(&ack(1)))[0],
            data(2, 512, 512)
        );
    }

    #[test]
    fn a_duplicate_ack_sends_nothing_so_no_sorcerers_apprentice() {
        let t0 = Instant::now();
        let (mut t, _) = opened(t0, &[], 4000, Settings::default());
        assert_eq!(t.handle(t0, Event::Packet(&ack(1)))[0], data(2, 512, 512));
        // The client's ACK 1 is duplicated (it timed out and sent it again): the
        // block it asks for is already on its way, so nothing is sent twice.
        assert!(t.handle(t0, Event::Packet(&ack(1))).is_empty());
        assert!(t.handle(t0, Event::Packet(&ack(1))).is_empty());
        assert_eq!(
            t.handle(t0, Event::Packet(&ack(2))),
            vec![data(3, 1024, 512), Action::WaitUntil(t0 + secs(1))]
        );
        // An ACK for a block never sent is ignored too.
        assert!(t.handle(t0, Event::Packet(&ack(9))).is_empty());
    }

    #[test]
    fn an_ack_inside_the_window_restarts_the_window_after_it() {
        let t0 = Instant::now();
        let (mut t, _) = opened(t0, &[("windowsize", "4")], 512 * 10, Settings::default());
        let actions = t.handle(t0, Event::Packet(&ack(0)));
        assert_eq!(actions.len(), 5, "blocks 1-4 and a timer: {actions:?}");
        // Block 3 was lost: the client acknowledges 2 (RFC 7440 section 4).
        let actions = t.handle(t0, Event::Packet(&ack(2)));
        assert_eq!(
            actions,
            vec![
                data(3, 1024, 512),
                data(4, 1536, 512),
                data(5, 2048, 512),
                data(6, 2560, 512),
                Action::WaitUntil(t0 + secs(1)),
            ]
        );
        let actions = t.handle(t0, Event::Packet(&ack(6)));
        assert_eq!(actions[0], data(7, 3072, 512));
        assert_eq!(actions.len(), 5, "blocks 7-10 and a timer");
        let actions = t.handle(t0, Event::Packet(&ack(10)));
        assert_eq!(actions[0], data(11, 5120, 0));
        let actions = t.handle(t0, Event::Packet(&ack(11)));
        assert_eq!(
            finished(&actions),
            &Outcome::Complete {
                bytes: 5120,
                retransmitted_blocks: 2
            }
        );
    }

    #[test]
    fn block_numbers_roll_over_from_65535_to_0_and_offsets_keep_growing() {
        let t0 = Instant::now();
        let n_full_blocks: u64 = 70_000;
        let size = 512 * n_full_blocks + 100;
        let (mut t, mut actions) = opened(t0, &[], size, Settings::default());
        let mut index: u64 = 1;
        loop {
            let Action::SendData { block, offset, len } = actions[0] else {
                panic!("expected DATA for block {index}: {actions:?}");
            };
            assert_eq!(block, index as u16, "wire block of index {index}");
            assert_eq!(offset, (index - 1) * 512);
            if index == 65_536 {
                assert_eq!(block, 0, "65535 is followed by 0");
            }
            actions = t.handle(t0, Event::Packet(&ack(block)));
            if index == n_full_blocks + 1 {
                assert_eq!(len, 100);
                break;
            }
            assert_eq!(len, 512);
            index += 1;
        }
        assert_eq!(
            finished(&actions),
            &Outcome::Complete {
                bytes: size,
                retransmitted_blocks: 0
            }
        );
    }

    #[test]
    fn gives_up_after_the_last_retry_and_tells_the_client() {
        let t0 = Instant::now();
        let settings = Settings {
            retries: 2,
            ..Settings::default()
        };
        let (mut t, _) = opened(t0, &[], 100, settings);
        assert_eq!(t.handle(t0 + secs(1), Event::Timer)[0], data(1, 0, 100));
        assert_eq!(t.handle(t0 + secs(2), Event::Timer)[0], data(1, 0, 100));
        let actions = t.handle(t0 + secs(3), Event::Timer);
        assert_eq!(sent_error(&actions).0, ErrorCode::NotDefined);
        assert_eq!(finished(&actions), &Outcome::TimedOut { acked_blocks: 0 });
        assert!(t.handle(t0 + secs(4), Event::Timer).is_empty());
    }

    #[test]
    fn an_ack_resets_the_retry_budget() {
        let t0 = Instant::now();
        let settings = Settings {
            retries: 1,
            ..Settings::default()
        };
        let (mut t, _) = opened(t0, &[], 2000, settings);
        assert_eq!(t.handle(t0 + secs(1), Event::Timer)[0], data(1, 0, 512));
        t.handle(t0 + secs(1), Event::Packet(&ack(1)));
        assert_eq!(
            t.handle(t0 + secs(2), Event::Timer)[0],
            data(2, 512, 512),
            "one retry again for block 2"
        );
    }

    #[test]
    fn a_client_error_ends_the_transfer_without_an_answer() {
        let t0 = Instant::now();
        let (mut t, _) = opened(t0, &[("blksize", "1468")], 100, Settings::default());
        let refusal = Repr::Error {
            code: ErrorCode::OptionNegotiation,
            message: b"blksize too big",
        }
        .to_bytes();
        let actions = t.handle(t0, Event::Packet(&refusal));
        assert_eq!(
            actions,
            vec![Action::Finish(Outcome::ClientError {
                code: ErrorCode::OptionNegotiation,
                message: "blksize too big".into()
            })]
        );
    }

    #[test]
    fn a_data_packet_from_the_client_is_an_illegal_operation() {
        let t0 = Instant::now();
        let (mut t, _) = opened(t0, &[], 100, Settings::default());
        let bogus = Repr::Data {
            block: 1,
            data: b"x",
        }
        .to_bytes();
        let actions = t.handle(t0, Event::Packet(&bogus));
        assert_eq!(sent_error(&actions).0, ErrorCode::IllegalOperation);
        assert!(matches!(finished(&actions), Outcome::Refused { .. }));
    }

    #[test]
    fn garbage_from_the_client_is_ignored() {
        let t0 = Instant::now();
        let (mut t, _) = opened(t0, &[], 100, Settings::default());
        assert!(t.handle(t0, Event::Packet(b"\x00")).is_empty());
        assert!(!t.is_finished());
    }

    #[test]
    fn a_missing_file_is_error_1_file_not_found() {
        let t0 = Instant::now();
        let (mut t, _) = Transfer::start(t0, &rrq("nope.efi", &[]), Settings::default());
        let actions = t.handle(t0, Event::Opened(Err(OpenError::NotFound)));
        assert_eq!(
            sent_error(&actions),
            (ErrorCode::FileNotFound, "file not found".into())
        );
        assert!(matches!(finished(&actions), Outcome::Refused { .. }));
    }

    #[test]
    fn a_path_with_dot_dot_is_an_access_violation_and_nothing_is_opened() {
        let t0 = Instant::now();
        let (_, actions) = Transfer::start(t0, &rrq("../etc/passwd", &[]), Settings::default());
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Open { .. })),
            "{actions:?}"
        );
        assert_eq!(sent_error(&actions).0, ErrorCode::AccessViolation);
        assert!(matches!(finished(&actions), Outcome::Refused { .. }));
    }

    #[test]
    fn a_symlink_out_of_the_root_is_an_access_violation() {
        let t0 = Instant::now();
        let (mut t, _) = Transfer::start(t0, &rrq("link", &[]), Settings::default());
        let actions = t.handle(t0, Event::Opened(Err(OpenError::Escapes)));
        assert_eq!(sent_error(&actions).0, ErrorCode::AccessViolation);
    }

    #[test]
    fn a_write_request_is_refused_by_a_read_only_server() {
        let t0 = Instant::now();
        let mut wrq = rrq("upload.bin", &[]);
        wrq[1] = 2;
        let (t, actions) = Transfer::start(t0, &wrq, Settings::default());
        assert_eq!(sent_error(&actions).0, ErrorCode::AccessViolation);
        assert!(t.is_finished());
    }

    #[test]
    fn a_malformed_request_or_an_unknown_mode_is_an_illegal_operation() {
        let t0 = Instant::now();
        let (_, actions) = Transfer::start(t0, b"\x00\x01ipxe.efi", Settings::default());
        assert_eq!(sent_error(&actions).0, ErrorCode::IllegalOperation);
        let (_, actions) =
            Transfer::start(t0, b"\x00\x01ipxe.efi\x00mail\x00", Settings::default());
        assert_eq!(sent_error(&actions).0, ErrorCode::IllegalOperation);
    }

    #[test]
    fn netascii_requests_ask_the_shell_for_a_converted_file() {
        let t0 = Instant::now();
        let (_, actions) =
            Transfer::start(t0, b"\x00\x01motd.txt\x00NetASCII\x00", Settings::default());
        assert_eq!(
            actions,
            vec![Action::Open {
                path: PathBuf::from("motd.txt"),
                netascii: true
            }]
        );
    }
}
