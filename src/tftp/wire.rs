//! TFTP packets on the wire: a checked view over bytes ([`Packet`]) and their meaning
//! ([`Repr`]), with `parse` / `buffer_len` / `emit` that mirror each other.
//!
//! Covers RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR), RFC 2347 (options and OACK, error
//! code 8), and the option values of RFC 2348 (blksize), RFC 2349 (timeout, tsize)
//! and RFC 7440 (windowsize). Every packet comes from the network, so parsing never
//! panics; opcodes, error codes and options we do not know are kept, not dropped.

use std::fmt;

/// Byte offsets of the fixed fields (RFC 1350 section 5, figures 5-1 to 5-4).
pub mod field {
    use std::ops::Range;

    /// Every packet starts with a 2-byte opcode.
    pub const OPCODE: Range<usize> = 0..2;
    /// RRQ/WRQ (figure 5-1) and OACK (RFC 2347): NUL-terminated strings from here.
    pub const STRINGS: usize = 2;
    /// DATA (figure 5-2) and ACK (figure 5-3): the block number.
    pub const BLOCK: Range<usize> = 2..4;
    /// DATA: the payload, 0 to blksize bytes.
    pub const DATA: usize = 4;
    /// ERROR (figure 5-4): the error code.
    pub const ERROR_CODE: Range<usize> = 2..4;
    /// ERROR: the NUL-terminated message.
    pub const ERROR_MESSAGE: usize = 4;
}

/// Opcodes (RFC 1350 section 5; OACK from RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    ReadRequest,
    WriteRequest,
    Data,
    Ack,
    Error,
    OptionAck,
    Unknown(u16),
}

impl From<u16> for Opcode {
    fn from(value: u16) -> Self {
        match value {
            1 => Opcode::ReadRequest,
            2 => Opcode::WriteRequest,
            3 => Opcode::Data,
            4 => Opcode::Ack,
            5 => Opcode::Error,
            6 => Opcode::OptionAck,
            other => Opcode::Unknown(other),
        }
    }
}

impl From<Opcode> for u16 {
    fn from(value: Opcode) -> Self {
        match value {
            Opcode::ReadRequest => 1,
            Opcode::WriteRequest => 2,
            Opcode::Data => 3,
            Opcode::Ack => 4,
            Opcode::Error => 5,
            Opcode::OptionAck => 6,
            Opcode::Unknown(other) => other,
        }
    }
}

/// Error codes (RFC 1350 appendix; 8 from RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotDefined,
    FileNotFound,
    AccessViolation,
    DiskFull,
    IllegalOperation,
    UnknownTransferId,
    FileExists,
    NoSuchUser,
    OptionNegotiation,
    Unknown(u16),
}

impl From<u16> for ErrorCode {
    fn from(value: u16) -> Self {
        match value {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransferId,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionNegotiation,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(value: ErrorCode) -> Self {
        match value {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionNegotiation => 8,
            ErrorCode::Unknown(other) => other,
        }
    }
}

/// Transfer modes (RFC 1350 section 1); compared without regard to case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Text with CR LF line ends (RFC 764's NVT ASCII).
    NetAscii,
    /// Raw bytes: what every boot firmware asks for.
    Octet,
    /// Obsolete mail delivery (WRQ only).
    Mail,
    Unknown(&'a [u8]),
}

impl<'a> Mode<'a> {
    fn parse(bytes: &'a [u8]) -> Self {
        if bytes.eq_ignore_ascii_case(b"netascii") {
            Mode::NetAscii
        } else if bytes.eq_ignore_ascii_case(b"octet") {
            Mode::Octet
        } else if bytes.eq_ignore_ascii_case(b"mail") {
            Mode::Mail
        } else {
            Mode::Unknown(bytes)
        }
    }

    fn as_bytes(&self) -> &'a [u8] {
        match self {
            Mode::NetAscii => b"netascii",
            Mode::Octet => b"octet",
            Mode::Mail => b"mail",
            Mode::Unknown(bytes) => bytes,
        }
    }
}

/// Smallest and largest blksize (RFC 2348).
pub const BLOCK_SIZE_RANGE: std::ops::RangeInclusive<u16> = 8..=65464;
/// Smallest and largest timeout in seconds (RFC 2349 section 3).
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u8> = 1..=255;
/// Smallest and largest windowsize (RFC 7440 section 3).
pub const WINDOW_SIZE_RANGE: std::ops::RangeInclusive<u16> = 1..=65535;
/// The block size when no blksize option was agreed (RFC 1350).
pub const DEFAULT_BLOCK_SIZE: u16 = 512;

/// One option of a request or an OACK (RFC 2347). Names are case-insensitive.
///
/// A known option whose value is malformed or out of its RFC's range is kept as
/// [`TftpOption::Unknown`]: RFC 2347 lets the server ignore what it cannot honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TftpOption<'a> {
    /// `blksize` (RFC 2348).
    BlockSize(u16),
    /// `tsize` (RFC 2349 section 4): 0 in a read request, the file size in the OACK.
    TransferSize(u64),
    /// `timeout` in seconds (RFC 2349 section 3).
    Timeout(u8),
    /// `windowsize` in blocks (RFC 7440).
    WindowSize(u16),
    Unknown {
        name: &'a [u8],
        value: &'a [u8],
    },
}

impl<'a> TftpOption<'a> {
    fn parse(name: &'a [u8], value: &'a [u8]) -> Self {
        let number = std::str::from_utf8(value)
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok());
        let known = match number {
            Some(n) if name.eq_ignore_ascii_case(b"blksize") => u16::try_from(n)
                .ok()
                .filter(|n| BLOCK_SIZE_RANGE.contains(n))
                .map(TftpOption::BlockSize),
            Some(n) if name.eq_ignore_ascii_case(b"tsize") => Some(TftpOption::TransferSize(n)),
            Some(n) if name.eq_ignore_ascii_case(b"timeout") => u8::try_from(n)
                .ok()
                .filter(|n| TIMEOUT_RANGE.contains(n))
                .map(TftpOption::Timeout),
            Some(n) if name.eq_ignore_ascii_case(b"windowsize") => u16::try_from(n)
                .ok()
                .filter(|n| WINDOW_SIZE_RANGE.contains(n))
                .map(TftpOption::WindowSize),
            _ => None,
        };
        known.unwrap_or(TftpOption::Unknown { name, value })
    }

    fn name(&self) -> &'a [u8] {
        match self {
            TftpOption::BlockSize(_) => b"blksize",
            TftpOption::TransferSize(_) => b"tsize",
            TftpOption::Timeout(_) => b"timeout",
            TftpOption::WindowSize(_) => b"windowsize",
            TftpOption::Unknown { name, .. } => name,
        }
    }

    fn value(&self) -> ValueText<'a> {
        match *self {
            TftpOption::BlockSize(n) | TftpOption::WindowSize(n) => ValueText::Number(n.into()),
            TftpOption::TransferSize(n) => ValueText::Number(n),
            TftpOption::Timeout(n) => ValueText::Number(n.into()),
            TftpOption::Unknown { value, .. } => ValueText::Bytes(value),
        }
    }
}

enum ValueText<'a> {
    Number(u64),
    Bytes(&'a [u8]),
}

impl ValueText<'_> {
    fn to_bytes(&self) -> Vec<u8> {
        match self {
            ValueText::Number(n) => n.to_string().into_bytes(),
            ValueText::Bytes(bytes) => bytes.to_vec(),
        }
    }
}

/// Why bytes are not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("packet of {0} bytes is too short for a TFTP {1}")]
    Truncated(usize, &'static str),
    #[error("a string in the {0} is not terminated by a NUL byte")]
    Unterminated(&'static str),
    #[error("the {0} has an option name without a value")]
    OptionWithoutValue(&'static str),
}

/// A checked view over the bytes of a TFTP packet (smoltcp style): the accessors can
/// be called without panicking once [`Packet::new_checked`] has succeeded.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps bytes without checking them.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps bytes after checking that the fixed fields of the opcode are there.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the accessors for this opcode stay inside the buffer.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < field::OPCODE.end {
            return Err(ParseError::Truncated(len, "packet"));
        }
        let need = match self.opcode() {
            Opcode::Data => (field::DATA, "DATA"),
            Opcode::Ack => (field::BLOCK.end, "ACK"),
            Opcode::Error => (field::ERROR_MESSAGE, "ERROR"),
            _ => (field::STRINGS, "packet"),
        };
        if len < need.0 {
            return Err(ParseError::Truncated(len, need.1));
        }
        Ok(())
    }

    /// The opcode, which decides how the rest of the packet reads.
    pub fn opcode(&self) -> Opcode {
        let bytes = &self.buffer.as_ref()[field::OPCODE];
        Opcode::from(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// The block number of a DATA or ACK packet.
    pub fn block(&self) -> u16 {
        let bytes = &self.buffer.as_ref()[field::BLOCK];
        u16::from_be_bytes([bytes[0], bytes[1]])
    }

    /// The payload of a DATA packet.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// The code of an ERROR packet.
    pub fn error_code(&self) -> ErrorCode {
        let bytes = &self.buffer.as_ref()[field::ERROR_CODE];
        ErrorCode::from(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// Everything after the opcode: the strings of an RRQ, WRQ or OACK.
    pub fn strings(&self) -> &[u8] {
        &self.buffer.as_ref()[field::STRINGS..]
    }

    /// The message of an ERROR packet, up to its NUL (or the end, if a sender forgot it).
    pub fn error_message(&self) -> &[u8] {
        let rest = &self.buffer.as_ref()[field::ERROR_MESSAGE..];
        rest.split(|&b| b == 0).next().unwrap_or(rest)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16(&mut self, range: std::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Writes the opcode (the shell builds DATA headers in place with these).
    pub fn set_opcode(&mut self, opcode: Opcode) {
        self.set_u16(field::OPCODE, opcode.into());
    }

    /// Writes the block number of a DATA or ACK packet.
    pub fn set_block(&mut self, block: u16) {
        self.set_u16(field::BLOCK, block);
    }

    /// Writes the code of an ERROR packet.
    pub fn set_error_code(&mut self, code: ErrorCode) {
        self.set_u16(field::ERROR_CODE, code.into());
    }
}

/// The meaning of a TFTP packet, borrowing strings and data from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr<'a> {
    /// RRQ: read `filename` (raw bytes; the path rules live in `tftp::path`).
    ReadRequest {
        filename: &'a [u8],
        mode: Mode<'a>,
        options: Vec<TftpOption<'a>>,
    },
    /// WRQ: a read-only server answers it with an access violation.
    WriteRequest {
        filename: &'a [u8],
        mode: Mode<'a>,
        options: Vec<TftpOption<'a>>,
    },
    Data {
        block: u16,
        data: &'a [u8],
    },
    Ack {
        block: u16,
    },
    Error {
        code: ErrorCode,
        message: &'a [u8],
    },
    /// OACK (RFC 2347): the options the server accepts, with its values.
    OptionAck {
        options: Vec<TftpOption<'a>>,
    },
    /// An opcode no RFC we implement defines; its bytes are kept.
    Unknown {
        opcode: u16,
        payload: &'a [u8],
    },
}

/// Splits NUL-terminated strings; fails if the last one lacks its NUL.
fn split_strings<'a>(bytes: &'a [u8], what: &'static str) -> Result<Vec<&'a [u8]>, ParseError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = bytes.strip_suffix(&[0]) else {
        return Err(ParseError::Unterminated(what));
    };
    Ok(body.split(|&b| b == 0).collect())
}

fn parse_options<'a>(
    strings: &[&'a [u8]],
    what: &'static str,
) -> Result<Vec<TftpOption<'a>>, ParseError> {
    if strings.len() % 2 != 0 {
        return Err(ParseError::OptionWithoutValue(what));
    }
    Ok(strings
        .chunks_exact(2)
        .map(|pair| TftpOption::parse(pair[0], pair[1]))
        .collect())
}

impl<'a> Repr<'a> {
    /// Reads the meaning out of a packet, checking its length first.
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self, ParseError> {
        packet.check_len()?;
        // Slice the underlying `&'a [u8]` so that the Repr borrows the buffer, not
        // the view.
        let bytes: &'a [u8] = packet.buffer;
        let strings: &'a [u8] = &bytes[field::STRINGS..];
        Ok(match packet.opcode() {
            opcode @ (Opcode::ReadRequest | Opcode::WriteRequest) => {
                let what = if opcode == Opcode::ReadRequest {
                    "RRQ"
                } else {
                    "WRQ"
                };
                let strings = split_strings(strings, what)?;
                if strings.len() < 2 {
                    return Err(ParseError::Unterminated(what));
                }
                let filename = strings[0];
                let mode = Mode::parse(strings[1]);
                let options = parse_options(&strings[2..], what)?;
                if opcode == Opcode::ReadRequest {
                    Repr::ReadRequest {
                        filename,
                        mode,
                        options,
                    }
                } else {
                    Repr::WriteRequest {
                        filename,
                        mode,
                        options,
                    }
                }
            }
            Opcode::Data => Repr::Data {
                block: packet.block(),
                data: &bytes[field::DATA..],
            },
            Opcode::Ack => Repr::Ack {
                block: packet.block(),
            },
            Opcode::Error => {
                let rest: &'a [u8] = &bytes[field::ERROR_MESSAGE..];
                Repr::Error {
                    code: packet.error_code(),
                    message: rest.split(|&b| b == 0).next().unwrap_or(rest),
                }
            }
            Opcode::OptionAck => {
                let strings = split_strings(strings, "OACK")?;
                Repr::OptionAck {
                    options: parse_options(&strings, "OACK")?,
                }
            }
            Opcode::Unknown(opcode) => Repr::Unknown {
                opcode,
                payload: strings,
            },
        })
    }

    /// Checks and parses raw bytes in one step.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, ParseError> {
        Repr::parse(&Packet::new_checked(bytes)?)
    }

    /// The opcode this packet carries.
    pub fn opcode(&self) -> Opcode {
        match self {
            Repr::ReadRequest { .. } => Opcode::ReadRequest,
            Repr::WriteRequest { .. } => Opcode::WriteRequest,
            Repr::Data { .. } => Opcode::Data,
            Repr::Ack { .. } => Opcode::Ack,
            Repr::Error { .. } => Opcode::Error,
            Repr::OptionAck { .. } => Opcode::OptionAck,
            Repr::Unknown { opcode, .. } => Opcode::Unknown(*opcode),
        }
    }

    /// How many bytes [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let options_len = |options: &[TftpOption]| -> usize {
            options
                .iter()
                .map(|o| o.name().len() + 1 + o.value().to_bytes().len() + 1)
                .sum()
        };
        field::OPCODE.end
            + match self {
                Repr::ReadRequest {
                    filename,
                    mode,
                    options,
                }
                | Repr::WriteRequest {
                    filename,
                    mode,
                    options,
                } => filename.len() + 1 + mode.as_bytes().len() + 1 + options_len(options),
                Repr::Data { data, .. } => 2 + data.len(),
                Repr::Ack { .. } => 2,
                Repr::Error { message, .. } => 2 + message.len() + 1,
                Repr::OptionAck { options } => options_len(options),
                Repr::Unknown { payload, .. } => payload.len(),
            }
    }

    /// Writes the packet into the first [`Repr::buffer_len`] bytes of `buffer`.
    ///
    /// # Panics
    /// If `buffer` is shorter than [`Repr::buffer_len`]; callers size it from that.
    pub fn emit(&self, buffer: &mut [u8]) {
        let mut packet = Packet::new_unchecked(&mut *buffer);
        packet.set_opcode(self.opcode());
        let mut at = field::STRINGS;
        let mut put = |buffer: &mut [u8], bytes: &[u8], nul: bool| {
            buffer[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
            if nul {
                buffer[at] = 0;
                at += 1;
            }
        };
        match self {
            Repr::ReadRequest {
                filename,
                mode,
                options,
            }
            | Repr::WriteRequest {
                filename,
                mode,
                options,
            } => {
                put(buffer, filename, true);
                put(buffer, mode.as_bytes(), true);
                for option in options {
                    put(buffer, option.name(), true);
                    put(buffer, &option.value().to_bytes(), true);
                }
            }
            Repr::Data { block, data } => {
                Packet::new_unchecked(&mut *buffer).set_block(*block);
                buffer[field::DATA..field::DATA + data.len()].copy_from_slice(data);
            }
            Repr::Ack { block } => Packet::new_unchecked(&mut *buffer).set_block(*block),
            Repr::Error { code, message } => {
                Packet::new_unchecked(&mut *buffer).set_error_code(*code);
                let end = field::ERROR_MESSAGE + message.len();
                buffer[field::ERROR_MESSAGE..end].copy_from_slice(message);
                buffer[end] = 0;
            }
            Repr::OptionAck { options } => {
                for option in options {
                    put(buffer, option.name(), true);
                    put(buffer, &option.value().to_bytes(), true);
                }
            }
            Repr::Unknown { payload, .. } => put(buffer, payload, false),
        }
    }

    /// Emits into a new vector of exactly [`Repr::buffer_len`] bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buffer = vec![0; self.buffer_len()];
        self.emit(&mut buffer);
        buffer
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorCode::NotDefined => "not defined",
            ErrorCode::FileNotFound => "file not found",
            ErrorCode::AccessViolation => "access violation",
            ErrorCode::DiskFull => "disk full",
            ErrorCode::IllegalOperation => "illegal TFTP operation",
            ErrorCode::UnknownTransferId => "unknown transfer ID",
            ErrorCode::FileExists => "file already exists",
            ErrorCode::NoSuchUser => "no such user",
            ErrorCode::OptionNegotiation => "option negotiation refused",
            ErrorCode::Unknown(code) => return write!(f, "error code {code}"),
        };
        f.write_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RRQs captured on loopback from real clients (curl 7.88, atftp 0.8, tftp-hpa 5.2).
    const CURL_RRQ: &[u8] =
        b"\x00\x01ipxe.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00timeout\x006\x00";
    const ATFTP_RRQ: &[u8] =
        b"\x00\x01ipxe.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00windowsize\x008\x00";
    const TFTP_HPA_RRQ: &[u8] = b"\x00\x01ipxe.efi\x00octet\x00";

    #[test]
    fn parses_curls_read_request_with_its_options() {
        let repr = Repr::parse_bytes(CURL_RRQ).unwrap();
        assert_eq!(
            repr,
            Repr::ReadRequest {
                filename: b"ipxe.efi",
                mode: Mode::Octet,
                options: vec![
                    TftpOption::TransferSize(0),
                    TftpOption::BlockSize(1468),
                    TftpOption::Timeout(6),
                ],
            }
        );
    }

    #[test]
    fn parses_atftps_windowsize_and_tftp_hpas_bare_request() {
        let Repr::ReadRequest { options, .. } = Repr::parse_bytes(ATFTP_RRQ).unwrap() else {
            panic!("not an RRQ");
        };
        assert_eq!(options[2], TftpOption::WindowSize(8));
        let Repr::ReadRequest { options, mode, .. } = Repr::parse_bytes(TFTP_HPA_RRQ).unwrap()
        else {
            panic!("not an RRQ");
        };
        assert!(options.is_empty());
        assert_eq!(mode, Mode::Octet);
    }

    #[test]
    fn captured_requests_round_trip_byte_for_byte() {
        for bytes in [CURL_RRQ, ATFTP_RRQ, TFTP_HPA_RRQ] {
            let repr = Repr::parse_bytes(bytes).unwrap();
            assert_eq!(repr.buffer_len(), bytes.len());
            assert_eq!(repr.to_bytes(), bytes);
        }
    }

    #[test]
    fn emit_writes_every_byte_of_a_junk_filled_buffer() {
        let reprs = [
            Repr::Data {
                block: 0x1234,
                data: b"hello",
            },
            Repr::Ack { block: 65535 },
            Repr::Error {
                code: ErrorCode::FileNotFound,
                message: b"file not found",
            },
            Repr::OptionAck {
                options: vec![
                    TftpOption::BlockSize(1468),
                    TftpOption::TransferSize(1 << 40),
                ],
            },
            Repr::Unknown {
                opcode: 99,
                payload: b"\x01\x02",
            },
        ];
        for repr in reprs {
            let mut buffer = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut buffer);
            assert_eq!(Repr::parse_bytes(&buffer).unwrap(), repr);
            let mut zeroed = vec![0; repr.buffer_len()];
            repr.emit(&mut zeroed);
            assert_eq!(buffer, zeroed, "emit left a junk byte in {repr:?}");
        }
    }

    #[test]
    fn emits_data_ack_and_error_in_rfc_1350_layout() {
        let data = Repr::Data {
            block: 258,
            data: b"ab",
        };
        assert_eq!(data.to_bytes(), b"\x00\x03\x01\x02ab");
        assert_eq!(Repr::Ack { block: 1 }.to_bytes(), b"\x00\x04\x00\x01");
        let error = Repr::Error {
            code: ErrorCode::AccessViolation,
            message: b"no",
        };
        assert_eq!(error.to_bytes(), b"\x00\x05\x00\x02no\x00");
    }

    #[test]
    fn option_names_are_case_insensitive_and_bad_values_are_kept_as_unknown() {
        let bytes = b"\x00\x01f\x00OCTET\x00BLKSIZE\x00512\x00blksize\x004\x00\
                      windowsize\x0070000\x00tsize\x00-1\x00x-vendor\x00y\x00";
        let Repr::ReadRequest { mode, options, .. } = Repr::parse_bytes(bytes).unwrap() else {
            panic!("not an RRQ");
        };
        assert_eq!(mode, Mode::Octet);
        assert_eq!(options[0], TftpOption::BlockSize(512));
        assert_eq!(
            options[1],
            TftpOption::Unknown {
                name: b"blksize",
                value: b"4"
            },
            "blksize below RFC 2348's minimum of 8"
        );
        assert!(matches!(options[2], TftpOption::Unknown { .. }));
        assert!(matches!(options[3], TftpOption::Unknown { .. }));
        assert_eq!(
            options[4],
            TftpOption::Unknown {
                name: b"x-vendor",
                value: b"y"
            }
        );
    }

    #[test]
    fn keeps_unknown_opcodes_and_error_codes() {
        assert_eq!(
            Repr::parse_bytes(b"\x00\x07abc").unwrap(),
            Repr::Unknown {
                opcode: 7,
                payload: b"abc"
            }
        );
        assert_eq!(
            Repr::parse_bytes(b"\x00\x05\x00\x2aoops\x00").unwrap(),
            Repr::Error {
                code: ErrorCode::Unknown(42),
                message: b"oops"
            }
        );
    }

    #[test]
    fn rejects_truncated_and_unterminated_packets() {
        assert_eq!(
            Repr::parse_bytes(b"\x00"),
            Err(ParseError::Truncated(1, "packet"))
        );
        assert_eq!(
            Repr::parse_bytes(b"\x00\x04\x00"),
            Err(ParseError::Truncated(3, "ACK"))
        );
        assert_eq!(
            Repr::parse_bytes(b"\x00\x03\x00"),
            Err(ParseError::Truncated(3, "DATA"))
        );
        assert_eq!(
            Repr::parse_bytes(b"\x00\x01file\x00octet"),
            Err(ParseError::Unterminated("RRQ"))
        );
        assert_eq!(
            Repr::parse_bytes(b"\x00\x01file\x00"),
            Err(ParseError::Unterminated("RRQ"))
        );
        assert_eq!(
            Repr::parse_bytes(b"\x00\x01f\x00octet\x00blksize\x00"),
            Err(ParseError::OptionWithoutValue("RRQ"))
        );
    }

    #[test]
    fn an_error_message_without_its_nul_is_still_read() {
        assert_eq!(
            Repr::parse_bytes(b"\x00\x05\x00\x01gone").unwrap(),
            Repr::Error {
                code: ErrorCode::FileNotFound,
                message: b"gone"
            }
        );
    }
}
