//! `[boot]`: which boot file (RFC 5970 option 59) and parameters (option 60) each
//! kind of client gets.

use super::raw::RawBoot;
use super::validator::Validator;
use crate::mac::Mac;

/// Which boot file each kind of client gets (RFC 5970 options 59 and 60).
#[derive(Debug, Clone, Default)]
pub struct BootConfig {
    /// For iPXE (user class "iPXE"); `{mac}` becomes the host's MAC.
    pub ipxe_script_url: Option<String>,
    /// For UEFI PXE (client architecture 7 or 9).
    pub efi_url: Option<String>,
    /// For UEFI HTTP Boot (client architecture 16).
    pub http_boot_url: Option<String>,
    pub bootfile_params: Vec<String>,
}

impl BootConfig {
    /// The iPXE script URL for one host.
    pub fn script_url_for(&self, mac: &Mac) -> Option<String> {
        self.ipxe_script_url
            .as_ref()
            .map(|url| url.replace("{mac}", &mac.to_string()))
    }
}

/// Validates `[boot]`: every URL absolute, with IPv6 literals in brackets.
pub(super) fn validate(v: &mut Validator<'_>, b: &RawBoot) -> BootConfig {
    BootConfig {
        ipxe_script_url: b
            .ipxe_script_url
            .as_ref()
            .and_then(|u| v.url(u, "boot.ipxe_script_url")),
        efi_url: b.efi_url.as_ref().and_then(|u| v.url(u, "boot.efi_url")),
        http_boot_url: b
            .http_boot_url
            .as_ref()
            .and_then(|u| v.url(u, "boot.http_boot_url")),
        bootfile_params: b.bootfile_params.clone(),
    }
}
