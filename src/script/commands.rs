//! What the lint knows about iPXE's commands: every command name any build has, and
//! for the commands that fetch by URI, their options and which arguments are URIs.
//!
//! The names are every `COMMAND ( name, … )` in iPXE at commit 0ab2277c4 (FlexBoot
//! 3.4.812's commands are a subset). Which of them a given binary has depends on its
//! `config/general.h`, so the lint rejects only names that no build has.

/// Every command name in iPXE at the pinned commit, sorted.
pub const COMMANDS: &[&str] = &[
    "autoboot",
    "boot",
    "certfree",
    "certstat",
    "certstore",
    "chain",
    "choose",
    "clear",
    "colour",
    "config",
    "console",
    "cpair",
    "cpuid",
    "dhcp",
    "echo",
    "exit",
    "fcels",
    "fcstat",
    "fdt",
    "form",
    "gdbstub",
    "goto",
    "help",
    "ibstat",
    "ifclose",
    "ifconf",
    "iflinkwait",
    "ifopen",
    "ifstat",
    "imgargs",
    "imgdecrypt",
    "imgexec",
    "imgextract",
    "imgfetch",
    "imgfree",
    "imgload",
    "imgmem",
    "imgselect",
    "imgset",
    "imgstat",
    "imgtrust",
    "imgverify",
    "inc",
    "initrd",
    "ipstat",
    "iseq",
    "isset",
    "item",
    "iwlist",
    "iwstat",
    "kernel",
    "login",
    "lotest",
    "md4sum",
    "md5sum",
    "menu",
    "module",
    "nslookup",
    "nstat",
    "ntp",
    "param",
    "params",
    "pciscan",
    "ping",
    "poweroff",
    "present",
    "profstat",
    "prompt",
    "pxebs",
    "read",
    "reboot",
    "route",
    "sanboot",
    "sanhook",
    "sanunhook",
    "set",
    "sha1sum",
    "sha224sum",
    "sha256sum",
    "sha384sum",
    "sha512sum",
    "shell",
    "shim",
    "show",
    "sleep",
    "startpxe",
    "stoppxe",
    "sync",
    "time",
    "usbscan",
    "vcreate",
    "vdestroy",
];

/// Whether some iPXE build has this command.
pub fn is_command(name: &[u8]) -> bool {
    COMMANDS
        .binary_search_by(|command| command.as_bytes().cmp(name))
        .is_ok()
}

/// One option of a command: `--long`, `-s`, and whether it takes a value.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub long: &'static str,
    pub short: u8,
    pub takes_value: bool,
}

const fn opt(long: &'static str, short: u8, takes_value: bool) -> Opt {
    Opt {
        long,
        short,
        takes_value,
    }
}

/// Which positional arguments of a command iPXE hands to `parse_uri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriArgs {
    /// The first is a URI (or an image name); the rest become the image's command line.
    FirstThenCommandLine,
    /// Every positional argument is a URI (`sanhook` takes several for multipath).
    All,
}

/// A command that fetches by URI.
#[derive(Debug, Clone, Copy)]
pub struct UriCommand {
    pub names: &'static [&'static str],
    pub options: &'static [Opt],
    pub args: UriArgs,
}

const IMGSINGLE: &[Opt] = &[
    opt("name", b'n', true),
    opt("timeout", b't', true),
    opt("quiet", b'q', false),
    opt("autofree", b'a', false),
    opt("replace", b'r', false),
];
const SANBOOT: &[Opt] = &[
    opt("drive", b'd', true),
    opt("no-describe", b'n', false),
    opt("keep", b'k', false),
    opt("filename", b'f', true),
    opt("extra", b'e', true),
    opt("label", b'l', true),
    opt("uuid", b'u', true),
];
const IMGVERIFY: &[Opt] = &[
    opt("signer", b's', true),
    opt("keep", b'k', false),
    opt("timeout", b't', true),
    opt("quiet", b'q', false),
];
const IMGEXTRACT: &[Opt] = &[
    opt("name", b'n', true),
    opt("keep", b'k', false),
    opt("timeout", b't', true),
    opt("quiet", b'q', false),
];

/// The commands whose arguments iPXE parses as URIs (src/hci/commands/image_cmd.c,
/// sanboot_cmd.c, image_trust_cmd.c, image_archive_cmd.c, image_crypt_cmd.c). Only
/// `imgexec`/`chain`/`boot` take `--replace`; the lint does not report unknown options,
/// so one table serves the `imgsingle` family.
pub const URI_COMMANDS: &[UriCommand] = &[
    UriCommand {
        names: &[
            "imgfetch",
            "module",
            "initrd",
            "imgselect",
            "imgload",
            "kernel",
            "imgexec",
            "chain",
            "boot",
            "imgargs",
        ],
        options: IMGSINGLE,
        args: UriArgs::FirstThenCommandLine,
    },
    UriCommand {
        names: &["sanboot", "sanhook"],
        options: SANBOOT,
        args: UriArgs::All,
    },
    UriCommand {
        names: &["imgverify"],
        options: IMGVERIFY,
        args: UriArgs::All,
    },
    UriCommand {
        names: &["imgextract", "imgdecrypt"],
        options: IMGEXTRACT,
        args: UriArgs::All,
    },
];

/// The URI command called `name`, if it is one.
pub fn uri_command(name: &[u8]) -> Option<&'static UriCommand> {
    URI_COMMANDS
        .iter()
        .find(|command| command.names.iter().any(|n| n.as_bytes() == name))
}

/// The index of the first positional argument of `argv` (argv\[0\] is the command), as
/// iPXE's `getopt_long` (src/core/getopt.c) finds it: options come first, `--` ends
/// them, a value follows `=` or is the next argument (`-nNAME` or `-n NAME` for short
/// ones). `None` when an option is not in `options` (iPXE then fails the command).
pub fn first_positional<T: AsRef<[u8]>>(argv: &[T], options: &[Opt]) -> Option<usize> {
    let mut i = 1;
    while let Some(arg) = argv.get(i).map(AsRef::as_ref) {
        if arg.first() != Some(&b'-') {
            return Some(i);
        }
        if arg == b"--" {
            return Some(i + 1);
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, inline) = match memchr::memchr(b'=', long) {
                Some(eq) => (&long[..eq], true),
                None => (long, false),
            };
            let opt = options.iter().find(|o| o.long.as_bytes() == name)?;
            i += if opt.takes_value && !inline { 2 } else { 1 };
            continue;
        }
        // A run of short options: `-qa`, `-nNAME`, `-n NAME`.
        let mut j = 1;
        let mut step = 1;
        while let Some(&c) = arg.get(j) {
            let opt = options.iter().find(|o| o.short == c)?;
            if opt.takes_value {
                if j + 1 == arg.len() {
                    step = 2;
                }
                break;
            }
            j += 1;
        }
        i += step;
    }
    // An option whose value is missing: getopt fails the command.
    (i <= argv.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_list_is_sorted_and_has_the_common_ones() {
        assert!(COMMANDS.windows(2).all(|w| w[0] < w[1]));
        for name in [
            "chain", "kernel", "initrd", "goto", "prompt", "vcreate", "imgfetch",
        ] {
            assert!(is_command(name.as_bytes()), "{name}");
        }
        assert!(!is_command(b"kernal"));
        assert!(!is_command(b"Chain"));
    }

    #[test]
    fn options_are_skipped_as_ipxe_getopt_skips_them() {
        let options = IMGSINGLE;
        let first = |argv: &[&str]| first_positional(argv, options);
        assert_eq!(first(&["chain", "http://x/"]), Some(1));
        assert_eq!(first(&["chain", "--autofree", "http://x/"]), Some(2));
        assert_eq!(first(&["chain", "-a", "-n", "k", "http://x/"]), Some(4));
        assert_eq!(first(&["kernel", "-nk", "http://x/"]), Some(2));
        assert_eq!(
            first(&["kernel", "--name=k", "--timeout", "5", "u"]),
            Some(4)
        );
        assert_eq!(first(&["kernel", "-qan", "k", "u"]), Some(3));
        assert_eq!(first(&["kernel", "--", "-u"]), Some(2));
        assert_eq!(first(&["kernel", "--bogus", "u"]), None);
        assert_eq!(first(&["boot"]), Some(1));
        assert_eq!(first(&["kernel", "--name"]), None);
        assert_eq!(first(&["kernel", "-n"]), None);
    }
}
