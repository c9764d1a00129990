//! The flavour tables: everything in which upstream iPXE and Mellanox FlexBoot differ.
//!
//! A flavour is data for the one pipeline in [`super`]: its pin and patch directory, the
//! images each target builds (with their trees, drivers and extra ELF proofs), its make
//! variables and the text BURN.md adds. Adding a NIC is a row in [`ipxe_outputs`] or
//! [`flexboot_outputs`] (and [`super::targets::NICS`]); adding a flavour is one more
//! [`FlavorSpec`].

use clap::ValueEnum;

use super::lock::Pin;
use super::targets::{
    file_stem, mellanox, BinDir, Driver, Kind, Nic, Output, PciId, Proof, Target, TreeSpec,
    BIN_ARM64_EFI, BIN_BIOS, BIN_X86_64_EFI,
};

/// Which firmware to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Flavor {
    /// Upstream iPXE at the pinned commit.
    Ipxe,
    /// Mellanox FlexBoot 3.4.812 with IPv6 as its default boot protocol.
    Flexboot,
}

impl Flavor {
    /// The flavour's table.
    pub fn spec(self) -> &'static FlavorSpec {
        match self {
            Flavor::Ipxe => &IPXE,
            Flavor::Flexboot => &FLEXBOOT,
        }
    }
}

/// What the make variables of one make call are computed from.
#[derive(Debug, Clone)]
pub struct MakeInputs<'a> {
    /// The pin (epoch, short commit).
    pub pin: &'a Pin,
    /// The tree's flags (`EXTRA_CFLAGS`).
    pub flags: &'a str,
    /// The script's path as make sees it (relative to `src/`).
    pub embed: &'a str,
    /// The CA's path relative to `src/`, with `--trust`.
    pub trust: Option<&'a str>,
    /// Whether the source is a git repository (a plain tree has no proven version).
    pub from_git: bool,
    /// The tree's key and the script: FlexBoot's build id follows from them.
    pub build_id: &'a str,
    /// The build directory.
    pub bin_dir: BinDir,
}

/// One flavour.
#[derive(Debug)]
pub struct FlavorSpec {
    /// `ipxe` or `flexboot`: the manifest's flavour, part of cache and tree keys.
    pub name: &'static str,
    /// How people write it (`iPXE`).
    pub title: &'static str,
    /// The lock-file table of its pin.
    pub lock_table: &'static str,
    /// Its `--…-src` option and environment variable, for messages.
    pub src_option: &'static str,
    /// The environment variable behind `src_option`.
    pub src_env: &'static str,
    /// A file every tree of it has besides `src/Makefile` (tells a plain tree apart).
    pub tree_marker: &'static str,
    /// Patches for it, applied in name order.
    pub patch_dir: &'static str,
    /// Whether it builds at all without patches.
    pub needs_patches: bool,
    /// Whether `ipxe-config/local/*.h` go into the tree's `config/local/`.
    pub config_headers: bool,
    /// Where the script goes, relative to the tree's root, and what make is told.
    pub embed: (&'static str, &'static str),
    /// Default package directory.
    pub default_out: &'static str,
    /// Default work directory (trees, cache, logs).
    pub default_work_dir: &'static str,
    /// Its targets, in build order; all are built when `--target` is not given.
    pub targets: &'static [Target],
    /// Whether it takes `--trust`, `--dual-stack` and `--no-patch`.
    pub takes_trust_and_patch_choice: bool,
    /// The images of a target.
    pub outputs: fn(Target, &Pin) -> Vec<Output>,
    /// The make variables of one make call.
    pub make_variables: fn(&MakeInputs<'_>) -> Vec<String>,
    /// BURN.md's text.
    pub burn: BurnText,
}

/// What a flavour's BURN.md says besides the per-device commands.
#[derive(Debug)]
pub struct BurnText {
    /// The first heading.
    pub title: &'static str,
    /// Paragraphs after the header (a FlexBoot default is only a default).
    pub notes: &'static [&'static str],
    /// Whether its images include UEFI ones (`.efirom`, combined).
    pub has_uefi: bool,
    /// The last lines of "Before you start" (what `qrom` shows for these images).
    pub before_you_start: &'static str,
}

impl FlavorSpec {
    /// The images `targets` build, in target order.
    pub fn outputs(&self, targets: &[Target], pin: &Pin) -> Vec<Output> {
        targets
            .iter()
            .flat_map(|&target| (self.outputs)(target, pin))
            .collect()
    }
}

/// Upstream iPXE.
pub static IPXE: FlavorSpec = FlavorSpec {
    name: "ipxe",
    title: "iPXE",
    lock_table: "ipxe",
    src_option: "--ipxe-src",
    src_env: "IPXE_SRC",
    tree_marker: "src/config/general.h",
    patch_dir: "patches",
    needs_patches: false,
    config_headers: true,
    embed: ("src/sixboot/embed.ipxe", "sixboot/embed.ipxe"),
    default_out: "dist",
    default_work_dir: "target/build-rom",
    targets: &[
        Target::Cx3,
        Target::Cx4,
        Target::Cx5,
        Target::Cx6,
        Target::Cx7,
        Target::Qemu,
        Target::Snponly,
        Target::Arm64,
    ],
    takes_trust_and_patch_choice: true,
    outputs: ipxe_outputs,
    make_variables: ipxe_make_variables,
    burn: BurnText {
        title: "# Burning these ROMs",
        notes: &[],
        has_uefi: true,
        before_you_start: "\
- `mstflint qrom` reads Mellanox's `mlxsign:` version records. The combined images carry
  one per image (the version in `manifest.json`, `rom_version`); the plain `.mrom` and
  `.efirom` have none, so flint reports \"Signature not found\" for them: expected.
",
    },
};

/// iPXE's one tree: debug info and the build ID name no build directory, so the same
/// inputs built in two directories give the same ROM (make expands `$(CURDIR)`).
fn ipxe_tree() -> TreeSpec {
    TreeSpec {
        name: "ipxe".into(),
        flags: "-ffile-prefix-map=$(CURDIR)=.".into(),
    }
}

/// The iPXE table.
pub fn ipxe_outputs(target: Target, _pin: &Pin) -> Vec<Output> {
    let image = |bin_dir: BinDir, file: String, kind, pci_id, driver| Output {
        target,
        tree: ipxe_tree(),
        bin_dir,
        package_file: format!("{}/{file}", target.name()),
        file,
        kind,
        pci_id,
        driver,
        proofs: Vec::new(),
        smoke_boot: false,
        experimental: matches!(target, Target::Cx5 | Target::Cx6 | Target::Cx7),
    };
    // A NIC's legacy ROM (`.mrom` for Mellanox, whose ROM BAR is small) and its EFI ROM.
    let roms = |id: PciId, (extension, kind): (&str, Kind), driver| {
        let stem = file_stem(id);
        [
            image(
                BIN_BIOS,
                format!("{stem}.{extension}"),
                kind,
                Some(id),
                driver,
            ),
            image(
                BIN_X86_64_EFI,
                format!("{stem}.efirom"),
                Kind::EfiRom,
                Some(id),
                driver,
            ),
        ]
    };
    let connectx = |nics: &[&Nic], driver: &'static str| -> Vec<Output> {
        nics.iter()
            .flat_map(|nic| roms(nic.pci_id, ("mrom", Kind::LegacyMrom), Driver::Nic(driver)))
            .collect()
    };
    let golan = "golan_driver";
    match target {
        Target::Cx3 => connectx(&[mellanox(0x1003), mellanox(0x1007)], "hermon_driver"),
        Target::Cx4 => connectx(&[mellanox(0x1013), mellanox(0x1015)], golan),
        Target::Cx5 => connectx(&[mellanox(0x1017), mellanox(0x1019)], golan),
        Target::Cx6 => connectx(
            &[mellanox(0x101b), mellanox(0x101d), mellanox(0x101f)],
            golan,
        ),
        Target::Cx7 => connectx(&[mellanox(0x1021)], golan),
        Target::Qemu => {
            let virtio = Driver::Nic("virtio_net_driver");
            let id = PciId::new(0x1af4, 0x1000);
            let mut outputs = roms(id, ("rom", Kind::LegacyRom), virtio).to_vec();
            outputs.push(image(
                BIN_BIOS,
                "ipxe.lkrn".into(),
                Kind::Lkrn,
                None,
                virtio,
            ));
            outputs.push(image(
                BIN_X86_64_EFI,
                "ipxe.efi".into(),
                Kind::EfiApp,
                None,
                virtio,
            ));
            outputs
        }
        Target::Snponly => vec![image(
            BIN_X86_64_EFI,
            "snponly.efi".into(),
            Kind::EfiApp,
            None,
            Driver::SnpOnly,
        )],
        Target::Arm64 => vec![
            // ipxe.efi carries every driver iPXE has for ARM64 (virtio-net for QEMU's
            // virt machine among them); snponly.efi uses the firmware's.
            image(
                BIN_ARM64_EFI,
                "ipxe.efi".into(),
                Kind::EfiApp,
                None,
                Driver::Nic("virtio_net_driver"),
            ),
            image(
                BIN_ARM64_EFI,
                "snponly.efi".into(),
                Kind::EfiApp,
                None,
                Driver::SnpOnly,
            ),
        ],
        Target::Virtio => Vec::new(),
    }
}

fn ipxe_make_variables(inputs: &MakeInputs<'_>) -> Vec<String> {
    let mut variables = vec![format!("EMBED={}", inputs.embed)];
    if let Some(trust) = inputs.trust {
        variables.push(format!("TRUST={trust}"));
    }
    if inputs.from_git {
        variables.push(format!("GITVERSION={}", inputs.pin.short()));
    }
    variables.push(format!("SOURCE_DATE_EPOCH={}", inputs.pin.epoch));
    variables.push(format!("EXTRA_CFLAGS={}", inputs.flags));
    if let Some(cross) = inputs.bin_dir.cross {
        variables.push(format!("CROSS={cross}"));
    }
    variables
}

/// Mellanox FlexBoot.
pub static FLEXBOOT: FlavorSpec = FlavorSpec {
    name: "flexboot",
    title: "FlexBoot",
    lock_table: "flexboot",
    src_option: "--flexboot-src",
    src_env: "FLEXBOOT_SRC",
    tree_marker: "src/drivers/infiniband/hermon.c",
    patch_dir: "patches/flexboot",
    needs_patches: true,
    config_headers: false,
    embed: ("sixboot-embed.ipxe", "../sixboot-embed.ipxe"),
    default_out: "dist-flexboot",
    default_work_dir: "target/flexboot",
    targets: &[Target::Cx3, Target::Cx4, Target::Qemu, Target::Virtio],
    takes_trust_and_patch_choice: false,
    outputs: flexboot_outputs,
    make_variables: flexboot_make_variables,
    burn: BurnText {
        title: "# Burning these FlexBoot ROMs",
        notes: &[FLASH_SETTING_WINS],
        has_uefi: false,
        before_you_start: "\
- These are legacy BIOS images only: FlexBoot 3.4.812 has no UEFI build. For UEFI
  machines use the default flavour's `.efirom` (`cargo xtask build-rom`).
- Self-built ROMs carry no `mlxsign:` record, so `mstflint qrom` says \"Signature not
  found\": expected.
",
    },
};

/// FlexBoot's value for IPv6 in `ip_ver` (`VAL_IPV6` in `driver_settings.h`).
pub const IP_VER_IPV6: u8 = 1;

/// IPv6 symbols every FlexBoot image must carry.
pub const FLEXBOOT_IPV6_SYMBOLS: &[&str] = &[
    "ipv6_protocol",
    "ndp_discovery",
    "dhcpv6_request",
    "ipv6_configurator",
];

/// The FlexBoot driver families: their device define and the function that stores the
/// port's default boot IP version (after inlining at the pinned commit with gcc 12:
/// `hermon_port_get_defaults` lives inside `hermon_get_ini_and_defaults`,
/// `flexboot_nodnic_port_get_defaults` inside `flexboot_nodnic_probe`).
fn flexboot_family(nic: &Nic) -> (&'static str, &'static str, &'static str, &'static str) {
    if nic.per_port_settings {
        (
            "cx3",
            "-DDEVICE_CX3",
            "hermon_driver",
            "hermon_get_ini_and_defaults",
        )
    } else {
        (
            "cx4",
            "-DDEVICE_CX4",
            "golan_driver",
            "flexboot_nodnic_probe",
        )
    }
}

/// The FlexBoot table. FlexBoot 3.4.812 has no EFI build (its `src/` lacks the
/// `Makefile.efi` that `arch/x86/Makefile.efi` includes): legacy images only.
pub fn flexboot_outputs(target: Target, pin: &Pin) -> Vec<Output> {
    let release = pin.release.as_deref().unwrap_or("");
    let banner = Proof::Banner(format!("FlexBoot v{release}"));
    let ipv6 = Proof::Symbols(FLEXBOOT_IPV6_SYMBOLS.to_vec());
    let image = |nic: &Nic, flash: bool| {
        let (family, define, driver, reader) = flexboot_family(nic);
        let (extension, kind) = if flash {
            ("mrom", Kind::LegacyMrom)
        } else {
            ("rom", Kind::LegacyRom)
        };
        Output {
            target,
            tree: TreeSpec {
                name: format!("{family}-{}", if flash { "flash" } else { "noflash" }),
                flags: flexboot_cflags(define, flash, release),
            },
            bin_dir: BIN_BIOS,
            file: format!("{}.{extension}", nic.rom_name),
            package_file: format!(
                "{}/flexboot-{}-{}.{extension}",
                target.name(),
                nic.rom_name,
                file_stem(nic.pci_id)
            ),
            kind,
            pci_id: Some(nic.pci_id),
            driver: Driver::Nic(driver),
            proofs: vec![
                ipv6.clone(),
                Proof::DefaultIpVer {
                    reader,
                    value: IP_VER_IPV6,
                },
                banner.clone(),
            ],
            smoke_boot: !flash,
            experimental: false,
        }
    };
    match target {
        Target::Cx3 => vec![image(mellanox(0x1003), true), image(mellanox(0x1007), true)],
        Target::Cx4 => vec![image(mellanox(0x1013), true), image(mellanox(0x1015), true)],
        // A ConnectX-3 `.rom` without flash configuration runs from `-option-rom`.
        Target::Qemu => vec![image(mellanox(0x1003), false)],
        Target::Virtio => {
            let id = PciId::new(0x1af4, 0x1000);
            vec![Output {
                target,
                // The QEMU smoke image's tree: the family define only concerns the
                // Mellanox drivers, so virtio-net shares the tree (one link, no compile).
                tree: TreeSpec {
                    name: "cx3-noflash".into(),
                    flags: flexboot_cflags("-DDEVICE_CX3", false, release),
                },
                bin_dir: BIN_BIOS,
                file: format!("{}.rom", file_stem(id)),
                package_file: format!("virtio/flexboot-virtio-net-{}.rom", file_stem(id)),
                kind: Kind::LegacyRom,
                pci_id: Some(id),
                // FlexBoot 3.4.812's drivers/net/virtio-net.c names it `virtnet_driver`
                // (upstream iPXE: `virtio_net_driver`).
                driver: Driver::Nic("virtnet_driver"),
                proofs: vec![ipv6, banner],
                smoke_boot: false,
                experimental: false,
            }]
        }
        Target::Cx5 | Target::Cx6 | Target::Cx7 | Target::Snponly | Target::Arm64 => Vec::new(),
    }
}

/// The vendor build line from FlexBoot's `src/README`, for one family with or without
/// flash configuration, plus `-fno-PIE`: gcc 12 builds
/// position-independent code by default, iPXE's `-nopie` probe fails silently with it,
/// and the link then fails.
///
/// The README's `-D__MLX_DEV_ID_00ff=…` is left out: nothing in the tree reads it (nor
/// `__MLX_0001_MAJOR_VER_`/`__MLX_MIN_SUB_MIN_VER_`, kept for fidelity), and without it
/// both devices of a family share one tree. `__BUILD_VERSION__` is the banner's version.
pub fn flexboot_cflags(device_define: &str, flash_configuration: bool, release: &str) -> String {
    let minor = release
        .rsplit('.')
        .next()
        .and_then(|minor| minor.parse::<u32>().ok())
        .unwrap_or(0);
    let mut flags = vec![
        "-fno-PIE".to_string(),
        "-DMLX_BUILD".to_string(),
        "-D__MLX_0001_MAJOR_VER_=0x00100003".to_string(),
        format!("-D__MLX_MIN_SUB_MIN_VER_=0x0004{minor:04x}"),
        format!("-D__BUILD_VERSION__=\\\"{release}\\\""),
    ];
    if flash_configuration {
        flags.push("-DFLASH_CONFIGURATION".to_string());
    }
    for dir in [
        "mlx_utils_flexboot/include/",
        "mlx_utils/include/",
        "mlx_utils/include/public/",
        "mlx_utils/include/private/",
        "mlx_nodnic/include/",
        "mlx_nodnic/include/public/",
        "mlx_nodnic/include/private/",
        "mlx_utils_flexboot/tests/include/",
        "mlx_utils/mlx_lib/mlx_reg_access/",
        "mlx_utils/mlx_lib/mlx_nvconfig/",
        "mlx_utils/mlx_lib/mlx_vmac/",
    ] {
        flags.push(format!("-Idrivers/infiniband/{dir}"));
    }
    flags.push(device_define.to_string());
    flags.join(" ")
}

fn flexboot_make_variables(inputs: &MakeInputs<'_>) -> Vec<String> {
    vec![
        "NO_WERROR=1".to_string(),
        format!("EMBED={}", inputs.embed),
        format!("EXTRA_CFLAGS={}", inputs.flags),
        // Same inputs, same bytes: no wall-clock timestamp, no random build id.
        format!("BUILD_TIMESTAMP={}", inputs.pin.epoch),
        format!("BUILD_ID_CMD=echo 0x{}", inputs.build_id),
    ]
}

/// FlexBoot's BURN.md note: its default is only a default.
pub const FLASH_SETTING_WINS: &str = "\
## A boot IP version saved in the NIC's flash still wins

These images boot over IPv6 when the NIC's flash holds no boot IP version: that is the
one change to Mellanox's behaviour (stock FlexBoot defaults to IPv4). FlexBoot reads the
flash first, so a value saved there, from FlexBoot's Ctrl-B menu (NIC Configuration,
\"IPv4/IPv6 support\") or with `mlxconfig ... set IP_VER...`, is used instead. A card that
was ever set to IPv4 keeps booting IPv4, and then FlexBoot also turns DHCPv6 off, so the
embedded script's `ifconf -c ipv6` finds no address.

- See what is saved: `mlxconfig -d <pci> query | grep IP_VER` (`mstconfig` in Debian's
  mstflint package takes the same arguments; mstflint releases after 2023 dropped the
  ConnectX-3 parameters, so use Mellanox MFT's `mlxconfig` for that card).
- Make it IPv6 whatever is saved:
  - ConnectX-4 / 4 Lx: `mlxconfig -d <pci> set IP_VER=IPv6`
  - ConnectX-3 / 3 Pro: `mlxconfig -d <pci> set IP_VER_P1=IPv6 IP_VER_P2=IPv6`
  - or in the Ctrl-B menu: NIC Configuration, \"IPv4/IPv6 support\" = IPv6, then save.
- Or clear what is saved so the images' IPv6 default applies:
  `mlxconfig -d <pci> reset`. This resets every setting of the card to its default, not
  only IP_VER: note what `query` shows first and set again what you need (for example
  the boot settings below).
- Settings take effect at the next cold boot (or `mlxfwreset -d <pci> reset`).";

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(release: Option<&str>) -> Pin {
        Pin {
            url: "u".into(),
            commit: "a188cf47f524dce18a8f5d5413e3fe97993e6737".into(),
            date: "2016-07-05T14:39:15+03:00".into(),
            epoch: 1_467_718_755,
            branch: release.map(|_| "flexboot".into()),
            release: release.map(str::to_string),
        }
    }

    fn make_targets(spec: &FlavorSpec, target: Target) -> Vec<String> {
        (spec.outputs)(target, &pin(Some("3.4.812")))
            .iter()
            .map(Output::make_target)
            .collect()
    }

    #[test]
    fn every_flavour_target_has_images_and_every_other_target_none() {
        for spec in [&IPXE, &FLEXBOOT] {
            for target in Target::value_variants() {
                let outputs = (spec.outputs)(*target, &pin(Some("3.4.812")));
                assert_eq!(
                    !outputs.is_empty(),
                    spec.targets.contains(target),
                    "{} {target}",
                    spec.name
                );
                for output in &outputs {
                    assert_eq!(output.target, *target);
                    assert!(output.package_file.starts_with(&format!("{target}/")));
                }
            }
        }
    }

    #[test]
    fn cx3_builds_legacy_and_efi_roms_for_both_device_ids() {
        assert_eq!(
            make_targets(&IPXE, Target::Cx3),
            [
                "bin/15b31003.mrom",
                "bin-x86_64-efi/15b31003.efirom",
                "bin/15b31007.mrom",
                "bin-x86_64-efi/15b31007.efirom"
            ]
        );
    }

    #[test]
    fn cx5_cx6_cx7_build_every_golan_id_and_are_experimental() {
        let mut ids = Vec::new();
        for target in [Target::Cx5, Target::Cx6, Target::Cx7] {
            for output in ipxe_outputs(target, &pin(None)) {
                assert_eq!(output.driver, Driver::Nic("golan_driver"));
                assert!(output.experimental);
                ids.push(output.pci_id.unwrap().to_string());
            }
        }
        ids.dedup();
        assert_eq!(
            ids,
            [
                "15b3:1017",
                "15b3:1019",
                "15b3:101b",
                "15b3:101d",
                "15b3:101f",
                "15b3:1021"
            ]
        );
        assert!(ipxe_outputs(Target::Cx4, &pin(None))
            .iter()
            .all(|o| !o.experimental));
    }

    #[test]
    fn qemu_builds_the_virtio_roms_and_both_loaders() {
        let outputs = ipxe_outputs(Target::Qemu, &pin(None));
        let files: Vec<&str> = outputs.iter().map(|o| o.file.as_str()).collect();
        assert_eq!(
            files,
            ["1af41000.rom", "1af41000.efirom", "ipxe.lkrn", "ipxe.efi"]
        );
        assert!(outputs
            .iter()
            .all(|o| o.driver == Driver::Nic("virtio_net_driver")));
    }

    #[test]
    fn snponly_and_arm64_are_efi_applications_with_their_machine() {
        let snp = ipxe_outputs(Target::Snponly, &pin(None));
        assert_eq!(snp[0].make_target(), "bin-x86_64-efi/snponly.efi");
        assert_eq!(snp[0].driver, Driver::SnpOnly);
        let arm: Vec<String> = make_targets(&IPXE, Target::Arm64);
        assert_eq!(arm, ["bin-arm64-efi/ipxe.efi", "bin-arm64-efi/snponly.efi"]);
        let arm = ipxe_outputs(Target::Arm64, &pin(None));
        assert_eq!(arm[0].bin_dir.cross, Some("aarch64-linux-gnu-"));
        assert_eq!(arm[1].elf_intermediate(), "bin-arm64-efi/snponly.efi.tmp");
        assert_eq!(arm[1].package_file, "arm64/snponly.efi");
    }

    #[test]
    fn elf_intermediates_follow_ipxe_naming() {
        let outputs = ipxe_outputs(Target::Cx4, &pin(None));
        assert_eq!(outputs[0].elf_intermediate(), "bin/15b31013.mrom.tmp");
        assert_eq!(
            outputs[1].elf_intermediate(),
            "bin-x86_64-efi/15b31013.efidrv.tmp"
        );
    }

    #[test]
    fn ipxe_make_gets_embed_trust_version_a_fixed_timestamp_and_a_path_free_build() {
        let pin = Pin {
            commit: "0ab2277c40f1de56c736b9e7db7ee23d52509ec5".into(),
            epoch: 7,
            ..pin(None)
        };
        let inputs = MakeInputs {
            pin: &pin,
            flags: &ipxe_tree().flags,
            embed: "sixboot/embed.ipxe",
            trust: Some("sixboot/trust.pem"),
            from_git: true,
            build_id: "",
            bin_dir: BIN_BIOS,
        };
        assert_eq!(
            ipxe_make_variables(&inputs),
            [
                "EMBED=sixboot/embed.ipxe",
                "TRUST=sixboot/trust.pem",
                "GITVERSION=0ab2277c4",
                "SOURCE_DATE_EPOCH=7",
                "EXTRA_CFLAGS=-ffile-prefix-map=$(CURDIR)=."
            ]
        );
        let arm = MakeInputs {
            trust: None,
            from_git: false,
            bin_dir: BIN_ARM64_EFI,
            ..inputs
        };
        let variables = ipxe_make_variables(&arm);
        assert_eq!(
            variables[..2],
            ["EMBED=sixboot/embed.ipxe", "SOURCE_DATE_EPOCH=7"]
        );
        assert_eq!(variables.last().unwrap(), "CROSS=aarch64-linux-gnu-");
    }

    #[test]
    fn flexboot_targets_map_to_its_make_targets_trees_and_pci_ids() {
        assert_eq!(
            make_targets(&FLEXBOOT, Target::Cx3),
            ["bin/ConnectX-3.mrom", "bin/ConnectX-3Pro.mrom"]
        );
        let pin = pin(Some("3.4.812"));
        let cx4 = flexboot_outputs(Target::Cx4, &pin);
        assert_eq!(cx4[1].make_target(), "bin/ConnectX-4Lx.mrom");
        assert_eq!(cx4[1].pci_id.unwrap().to_string(), "15b3:1015");
        assert_eq!(
            cx4[0].tree, cx4[1].tree,
            "both devices of a family share a tree"
        );
        assert_eq!(cx4[0].tree.name, "cx4-flash");
        let qemu = flexboot_outputs(Target::Qemu, &pin);
        assert_eq!(qemu[0].make_target(), "bin/ConnectX-3.rom");
        assert_eq!(qemu[0].elf_intermediate(), "bin/ConnectX-3.rom.tmp");
        assert!(qemu[0].smoke_boot);
        assert_eq!(qemu[0].tree.name, "cx3-noflash");
        assert_eq!(
            qemu[0].package_file,
            "qemu/flexboot-ConnectX-3-15b31003.rom"
        );
        assert_eq!(
            flexboot_outputs(Target::Cx3, &pin)[1].package_file,
            "cx3/flexboot-ConnectX-3Pro-15b31007.mrom"
        );
        let virtio = flexboot_outputs(Target::Virtio, &pin);
        assert_eq!(virtio[0].make_target(), "bin/1af41000.rom");
        assert_eq!(virtio[0].driver, Driver::Nic("virtnet_driver"));
        assert_eq!(
            virtio[0].tree, qemu[0].tree,
            "virtio-net links in the QEMU tree"
        );
        assert!(virtio[0]
            .proofs
            .contains(&Proof::Banner("FlexBoot v3.4.812".into())));
    }

    #[test]
    fn flexboot_flags_follow_the_vendor_build_line() {
        let cx3 = flexboot_cflags("-DDEVICE_CX3", true, "3.4.812");
        for flag in [
            "-fno-PIE",
            "-DMLX_BUILD",
            "-D__BUILD_VERSION__=\\\"3.4.812\\\"",
            "-D__MLX_MIN_SUB_MIN_VER_=0x0004032c",
            "-DFLASH_CONFIGURATION",
            "-Idrivers/infiniband/mlx_utils/mlx_lib/mlx_nvconfig/",
            "-DDEVICE_CX3",
        ] {
            assert!(
                cx3.split(' ').any(|f| f == flag),
                "{flag} missing from {cx3}"
            );
        }
        let qemu = flexboot_cflags("-DDEVICE_CX3", false, "3.4.812");
        assert!(!qemu.contains("FLASH_CONFIGURATION"));
        let cx4 = flexboot_cflags("-DDEVICE_CX4", true, "3.4.812");
        assert!(cx4.ends_with("-DDEVICE_CX4"));
        // The README's per-device id would split a family into two trees.
        assert!(!cx4.contains("__MLX_DEV_ID_00ff"));
    }

    #[test]
    fn flexboot_make_gets_a_fixed_timestamp_and_build_id() {
        let pin = pin(Some("3.4.812"));
        let inputs = MakeInputs {
            pin: &pin,
            flags: "-fno-PIE -DDEVICE_CX3",
            embed: "../sixboot-embed.ipxe",
            trust: None,
            from_git: true,
            build_id: "0123abcd",
            bin_dir: BIN_BIOS,
        };
        assert_eq!(
            flexboot_make_variables(&inputs),
            [
                "NO_WERROR=1",
                "EMBED=../sixboot-embed.ipxe",
                "EXTRA_CFLAGS=-fno-PIE -DDEVICE_CX3",
                "BUILD_TIMESTAMP=1467718755",
                "BUILD_ID_CMD=echo 0x0123abcd"
            ]
        );
    }
}
