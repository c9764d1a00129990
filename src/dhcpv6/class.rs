//! Which boot client sent a message, and which boot options that client gets.
//!
//! Two tables decide everything a boot server exists for; nothing else in the engine
//! looks at options 15, 16 or 61:
//!
//! - [`RULES`]: the first row whose test matches a message names its [`ClientKind`].
//!   Each row cites the client code or specification it follows.
//! - [`ANSWERS`]: per kind, where the bootfile-url (option 59) comes from, whether
//!   boot-file parameters (option 60) may be sent, and whether the vendor class
//!   "HTTPClient" (option 16) goes with it.
//!
//! The architecture (option 61, RFC 5970 section 3.3, values from RFC 4578 section 2.1
//! and the IANA "Processor Architecture Types" registry) is read through
//! [`ARCHITECTURES`]; a code with no row is kept as is and gets no boot file.
//!
//! [`ClientKind`], [`ClientArch`] and [`Cpu`] are bounded sets meant to be counted
//! (metrics label values: [`ClientKind::label`], [`ClientArch::label`]).

use std::fmt;

use dhcproto::v6::{DhcpOption, DhcpOptions, OptionCode};

use crate::config::BootConfig;

/// IANA enterprise number of Intel, used by the PXE and UEFI vendor classes
/// (edk2 `PXEBC_DHCP6_ENTERPRISE_NUM`, `HTTP_BOOT_DHCP6_ENTERPRISE_NUM`; iPXE
/// `DHCPV6_VENDOR_CLASS_PXE`).
pub const ENTERPRISE_INTEL: u32 = 343;

/// The vendor-class data a UEFI HTTP Boot client must find at bytes 6-15 of option
/// 16 to take an offer as an HTTP offer (edk2 `HttpBootParseDhcp6Packet`).
pub const HTTP_CLIENT: &[u8] = b"HTTPClient";

/// What kind of network boot program sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKind {
    /// iPXE (any build, any `user-class` setting) or FlexBoot, its fork: gets the
    /// per-host script URL.
    Ipxe,
    /// UEFI firmware's own PXE over IPv6 (edk2 `UefiPxeBcDxe`): gets a
    /// `tftp://[literal]/file` for its architecture, never option 60.
    UefiPxe,
    /// UEFI HTTP Boot (edk2 `HttpBootDxe`): gets an `http(s)://` file for its
    /// architecture plus vendor class "HTTPClient".
    UefiHttp,
    /// A BIOS PXE client (architecture 0) that is not iPXE: gets `[boot.pxe] x86_bios`.
    LegacyPxe,
    /// Anything else (an OS, an installer, dhclient): gets the host's script URL
    /// only when it asks for option 59.
    Unknown,
}

impl ClientKind {
    /// Every kind, in a fixed order (for metrics that list all label values).
    pub const ALL: [ClientKind; 5] = [
        ClientKind::Ipxe,
        ClientKind::UefiPxe,
        ClientKind::UefiHttp,
        ClientKind::LegacyPxe,
        ClientKind::Unknown,
    ];

    /// A stable lower-case name: `ipxe`, `uefi-pxe`, `uefi-http`, `legacy-pxe`, `unknown`.
    pub fn label(self) -> &'static str {
        match self {
            ClientKind::Ipxe => "ipxe",
            ClientKind::UefiPxe => "uefi-pxe",
            ClientKind::UefiHttp => "uefi-http",
            ClientKind::LegacyPxe => "legacy-pxe",
            ClientKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The processor (and for x86, BIOS or UEFI) a boot file must be built for: the key
/// of `[boot.pxe]` and `[boot.http]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cpu {
    /// x86 with a PC BIOS (legacy PXE).
    X86Bios,
    /// 32-bit x86 UEFI.
    Ia32,
    /// x86-64 UEFI.
    X86_64,
    /// 32-bit Arm UEFI.
    Arm32,
    /// 64-bit Arm (AArch64) UEFI.
    Arm64,
    RiscV32,
    RiscV64,
    LoongArch64,
}

impl Cpu {
    /// Every CPU, in the order the config lists them.
    pub const ALL: [Cpu; 8] = [
        Cpu::X86Bios,
        Cpu::Ia32,
        Cpu::X86_64,
        Cpu::Arm32,
        Cpu::Arm64,
        Cpu::RiscV32,
        Cpu::RiscV64,
        Cpu::LoongArch64,
    ];

    /// The config key: `x86_bios`, `ia32`, `x86_64`, `arm32`, `arm64`, `riscv32`,
    /// `riscv64`, `loongarch64` (also the metrics label).
    pub fn key(self) -> &'static str {
        match self {
            Cpu::X86Bios => "x86_bios",
            Cpu::Ia32 => "ia32",
            Cpu::X86_64 => "x86_64",
            Cpu::Arm32 => "arm32",
            Cpu::Arm64 => "arm64",
            Cpu::RiscV32 => "riscv32",
            Cpu::RiscV64 => "riscv64",
            Cpu::LoongArch64 => "loongarch64",
        }
    }

    /// The key with `-http`, for HTTP Boot architecture labels.
    fn http_label(self) -> &'static str {
        match self {
            Cpu::X86Bios => "x86_bios-http",
            Cpu::Ia32 => "ia32-http",
            Cpu::X86_64 => "x86_64-http",
            Cpu::Arm32 => "arm32-http",
            Cpu::Arm64 => "arm64-http",
            Cpu::RiscV32 => "riscv32-http",
            Cpu::RiscV64 => "riscv64-http",
            Cpu::LoongArch64 => "loongarch64-http",
        }
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// How firmware fetches its boot file: the second half of an architecture type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BootMethod {
    /// PXE: TFTP, `tftp://` URLs (RFC 5970 section 3.1, UEFI 2.x "Netboot6").
    Pxe,
    /// HTTP Boot: `http://` or `https://` URLs (UEFI 2.5+ section 24.7).
    Http,
}

/// One client system architecture type (RFC 4578 section 2.1; IANA registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchRow {
    pub code: u16,
    pub cpu: Cpu,
    pub method: BootMethod,
    /// The registry's name.
    pub name: &'static str,
}

const fn arch(code: u16, cpu: Cpu, method: BootMethod, name: &'static str) -> ArchRow {
    ArchRow {
        code,
        cpu,
        method,
        name,
    }
}

/// The architecture types sixboot has boot files for. Codes from the IANA
/// "Processor Architecture Types" registry (RFC 4578 section 2.1 and its updates);
/// edk2 sends 6/7/10/11/27 for PXE (`EFI_PXE_CLIENT_SYSTEM_ARCHITECTURE`,
/// `MdePkg/Include/Protocol/PxeBaseCode.h`) and 15/16/18/19/28 for HTTP Boot
/// (`HTTP_CLIENT_ARCH_*`, `HttpBootDxe.h`); iPXE sends 0, 6, 7, 10, 11, 27 or 39 for
/// the build it is (`DHCP_ARCH_CLIENT_ARCHITECTURE`, `src/arch/*/include/ipxe/*/dhcparch.h`).
pub const ARCHITECTURES: &[ArchRow] = &[
    arch(0, Cpu::X86Bios, BootMethod::Pxe, "x86 BIOS"),
    arch(6, Cpu::Ia32, BootMethod::Pxe, "x86 UEFI"),
    arch(7, Cpu::X86_64, BootMethod::Pxe, "x64 UEFI"),
    // RFC 4578 named 9 "EFI x86-64"; the registry now calls 9 EBC, but firmware of
    // that era sends 9 for x86-64, and sixboot has always served it `efi_url`.
    arch(9, Cpu::X86_64, BootMethod::Pxe, "x64 UEFI (RFC 4578 code)"),
    arch(10, Cpu::Arm32, BootMethod::Pxe, "ARM 32-bit UEFI"),
    arch(11, Cpu::Arm64, BootMethod::Pxe, "ARM 64-bit UEFI"),
    arch(15, Cpu::Ia32, BootMethod::Http, "x86 UEFI boot from HTTP"),
    arch(16, Cpu::X86_64, BootMethod::Http, "x64 UEFI boot from HTTP"),
    arch(
        18,
        Cpu::Arm32,
        BootMethod::Http,
        "ARM 32-bit UEFI boot from HTTP",
    ),
    arch(
        19,
        Cpu::Arm64,
        BootMethod::Http,
        "ARM 64-bit UEFI boot from HTTP",
    ),
    arch(
        20,
        Cpu::X86Bios,
        BootMethod::Http,
        "x86 BIOS boot from HTTP",
    ),
    arch(25, Cpu::RiscV32, BootMethod::Pxe, "RISC-V 32-bit UEFI"),
    arch(
        26,
        Cpu::RiscV32,
        BootMethod::Http,
        "RISC-V 32-bit UEFI boot from HTTP",
    ),
    arch(27, Cpu::RiscV64, BootMethod::Pxe, "RISC-V 64-bit UEFI"),
    arch(
        28,
        Cpu::RiscV64,
        BootMethod::Http,
        "RISC-V 64-bit UEFI boot from HTTP",
    ),
    arch(
        39,
        Cpu::LoongArch64,
        BootMethod::Pxe,
        "LoongArch 64-bit UEFI",
    ),
    arch(
        40,
        Cpu::LoongArch64,
        BootMethod::Http,
        "LoongArch 64-bit UEFI boot from HTTP",
    ),
];

/// A client system architecture type as the client sent it in option 61 (RFC 5970
/// section 3.3). Codes without a row in [`ARCHITECTURES`] are kept, not dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientArch(pub u16);

impl ClientArch {
    /// The table row for this code, if sixboot knows it.
    pub fn row(self) -> Option<&'static ArchRow> {
        ARCHITECTURES.iter().find(|row| row.code == self.0)
    }

    pub fn cpu(self) -> Option<Cpu> {
        self.row().map(|row| row.cpu)
    }

    pub fn method(self) -> Option<BootMethod> {
        self.row().map(|row| row.method)
    }

    /// A bounded label for metrics: the CPU key (`x86_64`, `arm64`, …) with `-http`
    /// for HTTP Boot codes, or `other` for codes without a row.
    pub fn label(self) -> &'static str {
        match self.row() {
            None => "other",
            Some(row) => match row.method {
                BootMethod::Pxe => row.cpu.key(),
                BootMethod::Http => row.cpu.http_label(),
            },
        }
    }
}

impl fmt::Display for ClientArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row() {
            Some(row) => write!(f, "{} ({})", self.0, row.name),
            None => write!(f, "{} (unknown)", self.0),
        }
    }
}

/// The classification of one message: what kind of client, for which architecture,
/// and which row of [`RULES`] decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootClient {
    pub kind: ClientKind,
    /// The option-61 code the answer is for: the first one the client sent whose
    /// boot method fits `kind`, else the first one sent; `None` when it sent none.
    pub arch: Option<ClientArch>,
    /// The name of the [`RULES`] row that matched (`"unknown"` when none did).
    pub rule: &'static str,
}

/// The options of a message that classification reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    /// Option 15's class strings, `None` when the option is absent (present but
    /// empty is `Some(vec![])`).
    pub user_classes: Option<Vec<Vec<u8>>>,
    /// Option 16: (enterprise number, class strings), one entry per option.
    pub vendor_classes: Vec<(u32, Vec<Vec<u8>>)>,
    /// Option 61, in the client's order.
    pub arches: Vec<ClientArch>,
}

impl Signals {
    /// Reads options 15, 16 and 61 from a decoded client message. Option 15 and 16
    /// may arrive as dhcproto's typed values or, when they were too odd for it, as raw
    /// bytes; both are read.
    pub fn from_options(opts: &DhcpOptions) -> Signals {
        let mut signals = Signals::default();
        for option in opts.get_all(OptionCode::UserClass).unwrap_or_default() {
            let classes = signals.user_classes.get_or_insert_with(Vec::new);
            match option {
                DhcpOption::UserClass(class) => classes.extend(class.data.iter().cloned()),
                DhcpOption::Unknown(raw) => classes.extend(length_prefixed(raw.data())),
                _ => {}
            }
        }
        for option in opts.get_all(OptionCode::VendorClass).unwrap_or_default() {
            match option {
                DhcpOption::VendorClass(v) => signals.vendor_classes.push((v.num, v.data.clone())),
                DhcpOption::Unknown(raw) if raw.data().len() >= 4 => {
                    let data = raw.data();
                    let num = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    signals
                        .vendor_classes
                        .push((num, length_prefixed(&data[4..])));
                }
                _ => {}
            }
        }
        for option in opts.get_all(OptionCode::ClientArchType).unwrap_or_default() {
            if let DhcpOption::Unknown(raw) = option {
                signals.arches.extend(
                    raw.data()
                        .chunks_exact(2)
                        .map(|c| ClientArch(u16::from_be_bytes([c[0], c[1]]))),
                );
            }
        }
        signals
    }

    fn has_user_class_in(&self, listed: &[Vec<u8>]) -> bool {
        self.user_classes
            .as_ref()
            .is_some_and(|classes| classes.iter().any(|c| listed.contains(c)))
    }

    /// Class strings of option 16 with Intel's enterprise number.
    fn intel_vendor_classes(&self) -> impl Iterator<Item = &[u8]> {
        self.vendor_classes
            .iter()
            .filter(|(num, _)| *num == ENTERPRISE_INTEL)
            .flat_map(|(_, data)| data.iter().map(Vec::as_slice))
    }

    fn has_arch(&self, fits: fn(&ArchRow) -> bool) -> bool {
        self.arches.iter().any(|a| a.row().is_some_and(fits))
    }
}

/// Splits RFC 8415 section 21.15/21.16 class data (2-byte length, bytes, …); a
/// truncated last entry is dropped.
fn length_prefixed(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        let Some(item) = bytes.get(2..2 + len) else {
            break;
        };
        out.push(item.to_vec());
        bytes = &bytes[2 + len..];
    }
    out
}

/// `PXEClient:Arch:NNNNN:UNDI:003010`: iPXE's EFI builds (`DHCP_VENDOR_PXECLIENT`
/// with `DHCP_ARCH_CLIENT_NDI` 1, 3, 10 in `src/arch/*/include/ipxe/efi/dhcparch.h`).
/// edk2 formats the NII's UNDI version instead: 3.0 without an NII (OVMF's virtio)
/// or whatever the NIC's UNDI driver reports.
fn is_ipxe_vendor_class(class: &[u8]) -> bool {
    class.len() == 32
        && class.starts_with(b"PXEClient:Arch:")
        && class[15..20].iter().all(u8::is_ascii_digit)
        && &class[20..] == b":UNDI:003010"
}

/// One row of the classification table.
pub struct Rule {
    /// A short name for logs (`BootClient::rule`).
    pub name: &'static str,
    pub kind: ClientKind,
    /// The client code or specification the row follows.
    pub source: &'static str,
    /// Whether a message matches; `ipxe_user_classes` is `[boot] ipxe_user_classes`.
    pub matches: fn(signals: &Signals, ipxe_user_classes: &[Vec<u8>]) -> bool,
}

/// The classification, first match wins. The order matters: iPXE must be recognised
/// before any architecture row, or a chainloaded iPXE gets its own `ipxe.efi` again
/// and loops; HTTP Boot's vendor class before option 15, so a firmware that ever
/// added a user class would still get its HTTP file.
pub const RULES: &[Rule] = &[
    Rule {
        name: "ipxe-user-class",
        kind: ClientKind::Ipxe,
        source: "iPXE src/net/udp/dhcpv6.c dhcpv6_user_class: option 15 carries the \
                 `user-class` setting (default \"iPXE\"); matched against \
                 [boot] ipxe_user_classes",
        matches: |s, listed| s.has_user_class_in(listed),
    },
    Rule {
        name: "ipxe-vendor-class",
        kind: ClientKind::Ipxe,
        source: "iPXE src/net/udp/dhcpv6.c dhcpv6_request_options_data: vendor class \
                 343 \"PXEClient:Arch:NNNNN:UNDI:003010\" (EFI builds, NDI 1,3,10)",
        matches: |s, _| s.intel_vendor_classes().any(is_ipxe_vendor_class),
    },
    Rule {
        name: "http-client-vendor-class",
        kind: ClientKind::UefiHttp,
        source: "edk2 NetworkPkg/HttpBootDxe/HttpBootDhcp6.c HttpBootBuildDhcp6Options: \
                 vendor class 343 \"HTTPClient:Arch:NNNNN:UNDI:003000\"",
        matches: |s, _| s.intel_vendor_classes().any(|c| c.starts_with(HTTP_CLIENT)),
    },
    Rule {
        name: "any-user-class",
        kind: ClientKind::Ipxe,
        source: "iPXE dhcpv6_tx always sends option 15 (whatever `user-class` says); \
                 edk2 PxeBcBuildDhcp6Options and HttpBootBuildDhcp6Options never do",
        matches: |s, _| s.user_classes.is_some(),
    },
    Rule {
        name: "http-arch",
        kind: ClientKind::UefiHttp,
        source: "RFC 4578 2.1 / IANA processor architecture types 15-20, 26, 28, 40 \
                 (\"boot from HTTP\"); edk2 EFI_HTTP_BOOT_CLIENT_SYSTEM_ARCHITECTURE",
        matches: |s, _| s.has_arch(|row| row.method == BootMethod::Http),
    },
    Rule {
        name: "uefi-pxe-arch",
        kind: ClientKind::UefiPxe,
        source: "edk2 NetworkPkg/UefiPxeBcDxe/PxeBcDhcp6.c PxeBcBuildDhcp6Options: \
                 option 61 = EFI_PXE_CLIENT_SYSTEM_ARCHITECTURE (6, 7, 10, 11, 27; \
                 9 from RFC 4578-era x64 firmware)",
        matches: |s, _| s.has_arch(|row| row.method == BootMethod::Pxe && row.cpu != Cpu::X86Bios),
    },
    Rule {
        name: "bios-arch",
        kind: ClientKind::LegacyPxe,
        source: "RFC 4578 2.1: architecture 0 is x86 BIOS (PXE 2.1 clients)",
        matches: |s, _| s.has_arch(|row| row.method == BootMethod::Pxe && row.cpu == Cpu::X86Bios),
    },
];

/// Classifies a message by [`RULES`]; `ipxe_user_classes` from `[boot]`.
pub fn classify(signals: &Signals, ipxe_user_classes: &[Vec<u8>]) -> BootClient {
    let (kind, rule) = RULES
        .iter()
        .find(|rule| (rule.matches)(signals, ipxe_user_classes))
        .map_or((ClientKind::Unknown, "unknown"), |rule| {
            (rule.kind, rule.name)
        });
    let method = match kind {
        ClientKind::UefiHttp => Some(BootMethod::Http),
        ClientKind::UefiPxe | ClientKind::LegacyPxe => Some(BootMethod::Pxe),
        ClientKind::Ipxe | ClientKind::Unknown => None,
    };
    let arch = signals
        .arches
        .iter()
        .find(|a| method.is_some() && a.method() == method)
        .or(signals.arches.first())
        .copied();
    BootClient { kind, arch, rule }
}

/// Where a kind's bootfile-url comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootFile {
    /// The host's iPXE script URL (`[boot] ipxe_script_url`), always.
    Script,
    /// The host's script URL, only if the client lists option 59 in its ORO.
    ScriptIfAsked,
    /// The firmware file for the client's architecture (`[boot.pxe]` or
    /// `[boot.http]`); none when that architecture has no file.
    Firmware(BootMethod),
}

/// Whether boot-file parameters (option 60) may go with the bootfile-url.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    Send,
    /// Only if the client lists option 60 in its ORO.
    IfAsked,
    Never,
}

/// One row of the answer table.
pub struct Answer {
    pub kind: ClientKind,
    pub bootfile: BootFile,
    pub params: Params,
    /// Send vendor class 343 "HTTPClient" (option 16) with the bootfile-url.
    pub http_client_vendor_class: bool,
    pub source: &'static str,
}

/// What each kind gets. One row per [`ClientKind`].
pub const ANSWERS: &[Answer] = &[
    Answer {
        kind: ClientKind::Ipxe,
        bootfile: BootFile::Script,
        params: Params::Send,
        http_client_vendor_class: false,
        source: "iPXE asks for 59 and 60 (dhcpv6_request_options_data) and chains \
                 ${filename}; option 60 is readable in its settings",
    },
    Answer {
        kind: ClientKind::UefiPxe,
        bootfile: BootFile::Firmware(BootMethod::Pxe),
        params: Params::Never,
        http_client_vendor_class: false,
        source: "edk2 PxeBcExtractBootFileParam reads option 60 as a 1-5 digit NBP size \
                 and fails the boot otherwise (PXE-E53, seen with OVMF); \
                 PxeBcExtractBootFileUrl takes only tftp://",
    },
    Answer {
        kind: ClientKind::UefiHttp,
        bootfile: BootFile::Firmware(BootMethod::Http),
        params: Params::Never,
        http_client_vendor_class: true,
        source: "edk2 HttpBootParseDhcp6Packet: an offer is an HTTP offer only with \
                 vendor class \"HTTPClient\" at bytes 6-15 and a boot URI; HttpBootDxe \
                 has no use for option 60",
    },
    Answer {
        kind: ClientKind::LegacyPxe,
        bootfile: BootFile::Firmware(BootMethod::Pxe),
        params: Params::Never,
        http_client_vendor_class: false,
        source: "PXE 2.1 clients load a TFTP NBP; option 60 has no meaning to them",
    },
    Answer {
        kind: ClientKind::Unknown,
        bootfile: BootFile::ScriptIfAsked,
        params: Params::IfAsked,
        http_client_vendor_class: false,
        source: "RFC 5970 3.1/3.2: a client that asks for 59 (an installer, dhclient) \
                 gets the one URL the config names for its host",
    },
];

/// The answer row for a kind.
pub fn answer(kind: ClientKind) -> &'static Answer {
    ANSWERS
        .iter()
        .find(|row| row.kind == kind)
        .unwrap_or(&ANSWERS[ANSWERS.len() - 1])
}

/// The boot options for one reply, as option bodies ready to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// Option 59 (RFC 5970 section 3.1): the URL.
    pub bootfile_url: Option<String>,
    /// Option 60 (RFC 5970 section 3.2): length-prefixed parameters.
    pub bootfile_params: Option<Vec<u8>>,
    /// Option 16 (RFC 8415 section 21.17): enterprise number, one class "HTTPClient".
    pub vendor_class: Option<Vec<u8>>,
}

/// Applies [`ANSWERS`] for `client`. `asked` is the client's ORO; `script_url` the
/// host's script URL (already with its MAC), if any.
pub fn boot_options(
    client: &BootClient,
    asked: &[OptionCode],
    script_url: Option<String>,
    boot: &BootConfig,
) -> BootOptions {
    let row = answer(client.kind);
    let bootfile_url = match row.bootfile {
        BootFile::Script => script_url,
        BootFile::ScriptIfAsked if asked.contains(&OptionCode::OptBootfileUrl) => script_url,
        BootFile::ScriptIfAsked => None,
        BootFile::Firmware(method) => client
            .arch
            .filter(|a| a.method() == Some(method))
            .and_then(ClientArch::cpu)
            .and_then(|cpu| boot.file(method, cpu))
            .map(str::to_owned),
    };
    let Some(url) = bootfile_url else {
        // No boot file, nothing that goes with one: the client moves on.
        return BootOptions::default();
    };
    let params_allowed = match row.params {
        Params::Send => true,
        Params::IfAsked => asked.contains(&OptionCode::OptBootfileParam),
        Params::Never => false,
    };
    let bootfile_params = (params_allowed && !boot.bootfile_params.is_empty()).then(|| {
        let mut body = Vec::new();
        for param in &boot.bootfile_params {
            // Validation keeps every parameter under 64 KiB.
            body.extend_from_slice(&(param.len() as u16).to_be_bytes());
            body.extend_from_slice(param.as_bytes());
        }
        body
    });
    let vendor_class = row.http_client_vendor_class.then(|| {
        let mut body = ENTERPRISE_INTEL.to_be_bytes().to_vec();
        body.extend_from_slice(&(HTTP_CLIENT.len() as u16).to_be_bytes());
        body.extend_from_slice(HTTP_CLIENT);
        body
    });
    BootOptions {
        bootfile_url: Some(url),
        bootfile_params,
        vendor_class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(user: Option<&[&[u8]]>, vendor: &[&[u8]], arches: &[u16]) -> Signals {
        Signals {
            user_classes: user.map(|u| u.iter().map(|c| c.to_vec()).collect()),
            vendor_classes: vendor
                .iter()
                .map(|c| (ENTERPRISE_INTEL, vec![c.to_vec()]))
                .collect(),
            arches: arches.iter().map(|&a| ClientArch(a)).collect(),
        }
    }

    fn kind(s: &Signals) -> ClientKind {
        classify(s, &[b"iPXE".to_vec()]).kind
    }

    #[test]
    fn every_kind_has_exactly_one_answer_row() {
        for kind in ClientKind::ALL {
            assert_eq!(ANSWERS.iter().filter(|row| row.kind == kind).count(), 1);
        }
    }

    #[test]
    fn every_architecture_code_appears_once_and_every_cpu_has_a_label() {
        for row in ARCHITECTURES {
            assert_eq!(
                ARCHITECTURES.iter().filter(|r| r.code == row.code).count(),
                1
            );
            assert_ne!(ClientArch(row.code).label(), "other");
        }
        assert_eq!(ClientArch(11).label(), "arm64");
        assert_eq!(ClientArch(19).label(), "arm64-http");
        assert_eq!(ClientArch(4000).label(), "other");
    }

    #[test]
    fn ipxe_is_recognised_whatever_user_class_it_sets() {
        let ipxe_efi = b"PXEClient:Arch:00007:UNDI:003010";
        assert_eq!(
            kind(&signals(Some(&[b"my-ipxe"]), &[ipxe_efi], &[7])),
            ClientKind::Ipxe
        );
        // A BIOS iPXE (arch 0, UNDI 002001) with its own class: option 15 decides.
        assert_eq!(
            kind(&signals(
                Some(&[b"my-ipxe"]),
                &[b"PXEClient:Arch:00000:UNDI:002001"],
                &[0]
            )),
            ClientKind::Ipxe
        );
        // Present but empty option 15 (iPXE with `set user-class ""`).
        assert_eq!(kind(&signals(Some(&[]), &[], &[7])), ClientKind::Ipxe);
        // The vendor class alone is enough.
        assert_eq!(kind(&signals(None, &[ipxe_efi], &[7])), ClientKind::Ipxe);
    }

    #[test]
    fn firmware_is_told_apart_by_vendor_class_and_architecture() {
        let ovmf_pxe = b"PXEClient:Arch:00007:UNDI:003000";
        let ovmf_http = b"HTTPClient:Arch:00016:UNDI:003000";
        assert_eq!(kind(&signals(None, &[ovmf_pxe], &[7])), ClientKind::UefiPxe);
        assert_eq!(
            kind(&signals(None, &[ovmf_http], &[16])),
            ClientKind::UefiHttp
        );
        assert_eq!(kind(&signals(None, &[], &[19])), ClientKind::UefiHttp);
        assert_eq!(kind(&signals(None, &[], &[11])), ClientKind::UefiPxe);
        assert_eq!(kind(&signals(None, &[], &[0])), ClientKind::LegacyPxe);
        assert_eq!(kind(&signals(None, &[], &[])), ClientKind::Unknown);
        assert_eq!(kind(&signals(None, &[], &[4000])), ClientKind::Unknown);
        // The vendor class wins over a user class a firmware might add.
        assert_eq!(
            kind(&signals(Some(&[b"vendor"]), &[ovmf_http], &[16])),
            ClientKind::UefiHttp
        );
    }

    #[test]
    fn the_arch_is_the_first_one_that_fits_the_kind() {
        let c = classify(&signals(None, &[], &[4000, 11, 7]), &[]);
        assert_eq!(
            (c.kind, c.arch),
            (ClientKind::UefiPxe, Some(ClientArch(11)))
        );
        assert_eq!(c.rule, "uefi-pxe-arch");
    }

    #[test]
    fn vendor_and_user_classes_are_read_from_raw_option_bytes_too() {
        let mut opts = DhcpOptions::new();
        opts.insert(DhcpOption::Unknown(dhcproto::v6::UnknownOption::new(
            OptionCode::UserClass,
            b"\x00\x07my-ipxe\x00".to_vec(),
        )));
        let s = Signals::from_options(&opts);
        assert_eq!(s.user_classes, Some(vec![b"my-ipxe".to_vec()]));
    }
}
