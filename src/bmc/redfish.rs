//! The few Redfish resources sixboot reads and the request bodies it sends, as plain
//! data: serde types for the service root, a collection, a `ComputerSystem` (its
//! `Boot` object and `#ComputerSystem.Reset` action), the error body, and pure
//! functions that decide what to ask for. No I/O: [`super::client`] sends what these
//! functions build and hands back the bytes it got.
//!
//! References: DMTF DSP0266 (Redfish Specification 1.x) section 9.6 "Error responses"
//! (`error`, `@Message.ExtendedInfo`), section 9.3 "Allowable values" (the
//! `@Redfish.AllowableValues` annotation); DSP8010 schema `ComputerSystem.v1_x`
//! (`Boot.BootSourceOverrideEnabled` = `Disabled | Once | Continuous`,
//! `Boot.BootSourceOverrideTarget` = `None | Pxe | Hdd | Cd | UefiHttp | …`,
//! `Boot.HttpBootUri` since v1_9, `PowerState`, `Actions.#ComputerSystem.Reset` with
//! `ResetType` = `On | ForceOff | ForceRestart | GracefulRestart | PowerCycle | …`).
//!
//! Unknown values are kept as text (a `PowerState` of `PoweringOn`, a target sixboot
//! has no name for), never dropped: they are shown and compared as the BMC spelled them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `{"@odata.id": "/redfish/v1/…"}`, a link to another resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    #[serde(rename = "@odata.id")]
    pub id: String,
}

/// `GET /redfish/v1/` (DSP0266 section 8.1): where the systems collection is.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceRoot {
    #[serde(rename = "RedfishVersion")]
    pub redfish_version: Option<String>,
    #[serde(rename = "Systems")]
    pub systems: Option<Link>,
}

/// A resource collection (`Members` with links), e.g. `/redfish/v1/Systems`.
#[derive(Debug, Clone, Deserialize)]
pub struct Collection {
    #[serde(rename = "Members", default)]
    pub members: Vec<Link>,
}

/// The parts of a `ComputerSystem` sixboot reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ComputerSystem {
    #[serde(rename = "@odata.id")]
    pub odata_id: Option<String>,
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: Option<String>,
    #[serde(rename = "UUID")]
    pub uuid: Option<String>,
    /// `On`, `Off`, `PoweringOn`, `PoweringOff`, `Paused` (as the BMC spells it).
    #[serde(rename = "PowerState")]
    pub power_state: Option<String>,
    #[serde(rename = "Boot")]
    pub boot: Option<Boot>,
    #[serde(rename = "Actions")]
    pub actions: Option<SystemActions>,
}

/// `ComputerSystem.Boot`: the boot source override.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Boot {
    /// `Disabled`, `Once` or `Continuous`.
    #[serde(rename = "BootSourceOverrideEnabled")]
    pub enabled: Option<String>,
    #[serde(rename = "BootSourceOverrideTarget")]
    pub target: Option<String>,
    /// The targets this BMC accepts; `None` when it does not say.
    #[serde(rename = "BootSourceOverrideTarget@Redfish.AllowableValues")]
    pub allowable_targets: Option<Vec<String>>,
    /// `Legacy` or `UEFI`.
    #[serde(rename = "BootSourceOverrideMode")]
    pub mode: Option<String>,
    /// Present (even as `null`) when the BMC supports `HttpBootUri` (schema v1_9).
    #[serde(rename = "HttpBootUri", default, deserialize_with = "present")]
    pub http_boot_uri: Option<Option<String>>,
}

/// `ComputerSystem.Actions`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SystemActions {
    #[serde(rename = "#ComputerSystem.Reset")]
    pub reset: Option<ResetAction>,
}

/// `#ComputerSystem.Reset`: where to POST and which reset types the BMC takes.
#[derive(Debug, Clone, Deserialize)]
pub struct ResetAction {
    pub target: String,
    #[serde(rename = "ResetType@Redfish.AllowableValues")]
    pub allowable: Option<Vec<String>>,
}

/// Keeps "the field is there" apart from "the field is missing" for a nullable field.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

/// The boot path sixboot asks a BMC for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootPath {
    /// Network boot through the NIC's PXE/iPXE ROM: `BootSourceOverrideTarget = Pxe`.
    #[default]
    Pxe,
    /// UEFI HTTP Boot: `BootSourceOverrideTarget = UefiHttp` (with `HttpBootUri` when
    /// the BMC has that property and a URL is known).
    UefiHttp,
}

impl BootPath {
    /// The `BootSourceOverrideTarget` value (DSP8010 `ComputerSystem.BootSource`).
    pub fn target(self) -> &'static str {
        match self {
            BootPath::Pxe => "Pxe",
            BootPath::UefiHttp => "UefiHttp",
        }
    }

    /// The config spelling (`pxe`, `uefi-http`).
    pub fn as_str(self) -> &'static str {
        match self {
            BootPath::Pxe => "pxe",
            BootPath::UefiHttp => "uefi-http",
        }
    }

    /// The path named by [`BootPath::as_str`].
    pub fn parse(text: &str) -> Option<BootPath> {
        [BootPath::Pxe, BootPath::UefiHttp]
            .into_iter()
            .find(|p| p.as_str() == text)
    }

    pub fn is_default(&self) -> bool {
        *self == BootPath::Pxe
    }
}

/// What `sixboot bmc power` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    On,
    Off,
    Cycle,
}

/// The body of the one-time boot override PATCH to the system:
/// `{"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": T}}`,
/// plus `HttpBootUri` when given.
pub fn boot_override_body(target: &str, http_boot_uri: Option<&str>) -> Value {
    let mut boot = json!({
        "BootSourceOverrideEnabled": "Once",
        "BootSourceOverrideTarget": target,
    });
    if let Some(uri) = http_boot_uri {
        boot["HttpBootUri"] = Value::String(uri.to_owned());
    }
    json!({ "Boot": boot })
}

/// The body of `POST …/Actions/ComputerSystem.Reset`: `{"ResetType": R}`.
pub fn reset_body(reset_type: &str) -> Value {
    json!({ "ResetType": reset_type })
}

/// Whether the BMC takes `target` as a boot override: `Err` with the targets it lists
/// when it lists them and `target` is not among them. A BMC that lists none is given
/// the benefit of the doubt (its PATCH answer decides).
pub fn check_target(boot: Option<&Boot>, target: &str) -> Result<(), Vec<String>> {
    match boot.and_then(|b| b.allowable_targets.as_ref()) {
        Some(allowed) if !allowed.iter().any(|a| a == target) => Err(allowed.clone()),
        _ => Ok(()),
    }
}

/// Whether the PATCH should carry `HttpBootUri`: only for UEFI HTTP Boot, only when
/// a URL is known and the BMC's `Boot` has the property.
pub fn http_boot_uri_to_send<'a>(
    path: BootPath,
    boot: Option<&Boot>,
    uri: Option<&'a str>,
) -> Option<&'a str> {
    let supported = boot.is_some_and(|b| b.http_boot_uri.is_some());
    (path == BootPath::UefiHttp && supported)
        .then_some(uri)
        .flatten()
}

/// A reset type the BMC does not list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedReset {
    /// What sixboot would have sent, in order of preference.
    pub wanted: Vec<&'static str>,
    pub supported: Vec<String>,
}

/// The `ResetType` for `action` given the system's power state, checked against the
/// action's `ResetType@Redfish.AllowableValues` when the BMC lists them. `Ok(None)`:
/// nothing to do (on when it is on, off when it is off).
///
/// A restart is `ForceRestart` (or `PowerCycle`, `GracefulRestart` when that is all the
/// BMC takes), and `On` (or `ForceOn`) when the system is off: a powered-off machine
/// ignores a restart on many BMCs.
pub fn reset_type(
    action: PowerAction,
    system: &ComputerSystem,
) -> Result<Option<&'static str>, UnsupportedReset> {
    let off = system.power_state.as_deref() == Some("Off");
    let wanted: &[&'static str] = match (action, off) {
        (PowerAction::On, false) | (PowerAction::Off, true) => return Ok(None),
        (PowerAction::On | PowerAction::Cycle, true) => &["On", "ForceOn"],
        (PowerAction::Off, false) => &["ForceOff", "GracefulShutdown"],
        (PowerAction::Cycle, false) => &["ForceRestart", "PowerCycle", "GracefulRestart"],
    };
    let allowed = system
        .actions
        .as_ref()
        .and_then(|a| a.reset.as_ref())
        .and_then(|r| r.allowable.as_ref());
    match allowed {
        None => Ok(Some(wanted[0])),
        Some(allowed) => wanted
            .iter()
            .copied()
            .find(|w| allowed.iter().any(|a| a == w))
            .map(Some)
            .ok_or_else(|| UnsupportedReset {
                wanted: wanted.to_vec(),
                supported: allowed.clone(),
            }),
    }
}

/// Whether `system` is the one the operator named: by `Id`, `Name` or `UUID`
/// (case-insensitive for the UUID), or by the last segment of its path.
pub fn system_matches(system: &ComputerSystem, path: &str, wanted: &str) -> bool {
    system.id == wanted
        || system.name.as_deref() == Some(wanted)
        || system
            .uuid
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(wanted))
        || path.trim_end_matches('/').rsplit('/').next() == Some(wanted)
}

/// The readable message of a Redfish error response (DSP0266 section 9.6):
/// `error.message` and each `@Message.ExtendedInfo` entry's `Message` (or its
/// `MessageId` when it has no text), joined with "; ". A body that is not a Redfish
/// error is shown as text (at most 300 characters); an empty one as `None`.
pub fn error_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Some(shorten(text));
    };
    let Some(error) = value.get("error") else {
        // A bare `@Message.ExtendedInfo` (some BMCs put it at the top) or a JSON string.
        if let Some(messages) = extended_info(&value) {
            return Some(messages.join("; "));
        }
        return Some(shorten(value.as_str().unwrap_or(text)));
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(message) = error.get("message").and_then(Value::as_str) {
        parts.push(message.to_owned());
    }
    let code = error.get("code").and_then(Value::as_str);
    for message in extended_info(error).unwrap_or_default() {
        if !parts.contains(&message) && Some(message.as_str()) != code {
            parts.push(message);
        }
    }
    if parts.is_empty() {
        parts.extend(code.map(str::to_owned));
    }
    Some(shorten(&parts.join("; ")))
}

/// `@Message.ExtendedInfo[*].Message` (or `MessageId` when there is no `Message`).
fn extended_info(value: &Value) -> Option<Vec<String>> {
    let infos = value.get("@Message.ExtendedInfo")?.as_array()?;
    Some(
        infos
            .iter()
            .filter_map(|info| {
                info.get("Message")
                    .or_else(|| info.get("MessageId"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect(),
    )
}

fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests;
