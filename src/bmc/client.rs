//! The Redfish client: one [`Bmc`] per host's BMC, blocking HTTPS requests with a
//! timeout each, and the steps sixboot takes (find the system, set a one-time boot
//! override, reset). Everything it decides comes from [`super::redfish`]; this module
//! owns the sockets, the password file and the CA file.
//!
//! The HTTP client is `ureq` 3 with rustls (ring, the provider the server already
//! uses): blocking, a dozen small dependencies, a timeout per phase (connect, send,
//! receive) that it reports by name. A BMC conversation is a handful of sequential
//! requests, so an async client (reqwest, hyper) would buy nothing but a bigger tree.
//!
//! Authentication is HTTP basic on every request (DSP0266 section 13.2.3), which every
//! Redfish service must accept; no session is left behind on the BMC.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use ureq::tls::{RootCerts, TlsConfig};

use super::redfish::{self, BootPath, Collection, ComputerSystem, PowerAction, ServiceRoot};
use super::{BmcError, BmcSpec, Problem, Step};

/// The system bundle Debian's `ca-certificates` keeps (roots when no `ca_file`).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The most of a BMC answer that is read (a `ComputerSystem` is a few KiB).
const MAX_BODY: u64 = 4 << 20;

/// A BMC to talk to: base URL, credentials and an HTTP agent with the timeouts.
pub struct Bmc {
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Bmc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the authorization header.
        f.debug_struct("Bmc").field("base", &self.base).finish()
    }
}

/// The system a step acts on: its path and what the BMC said about it.
#[derive(Debug, Clone)]
pub struct System {
    pub path: String,
    pub resource: ComputerSystem,
}

impl System {
    /// `node1 (/redfish/v1/Systems/…)`.
    pub fn label(&self) -> String {
        match &self.resource.name {
            Some(name) if name != &self.resource.id => format!("{name} ({})", self.path),
            _ => self.path.clone(),
        }
    }
}

/// What [`Bmc::reboot_to_network`] did, step by step, for the caller to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The system, its power state and its override before anything changed.
    Found {
        system: String,
        power: String,
        enabled: String,
        target: String,
    },
    /// The override was set; `enabled`/`target` as the BMC reports them afterwards.
    OverrideSet {
        requested: &'static str,
        enabled: String,
        target: String,
    },
    /// The reset was accepted.
    Reset { reset_type: &'static str },
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Found {
                system,
                power,
                enabled,
                target,
            } => write!(
                f,
                "system {system}: power {power}, boot override {enabled} {target}"
            ),
            Progress::OverrideSet {
                requested,
                enabled,
                target,
            } => {
                write!(
                    f,
                    "boot override set: Once {requested} (the BMC now reports {enabled} {target})"
                )?;
                if enabled != "Once" {
                    write!(
                        f,
                        "; it does not keep Once: later boots also try the network first and \
                         get 404 from sixboot once the install is done, then boot from disk"
                    )?;
                }
                Ok(())
            }
            Progress::Reset { reset_type } => {
                write!(f, "ComputerSystem.Reset {reset_type} accepted")
            }
        }
    }
}

impl Bmc {
    /// Prepares a client for `spec`: reads the password file and the CA file, builds
    /// the TLS settings. Sends nothing yet.
    pub fn connect(spec: &BmcSpec) -> Result<Bmc, BmcError> {
        let base = spec.url.trim_end_matches('/').to_owned();
        let local = |problem: String| BmcError {
            bmc: base.clone(),
            step: Step {
                what: "prepare the connection",
                request: "-".into(),
            },
            problem: Problem::Credentials(problem),
        };
        BmcSpec::check_url(&spec.url).map_err(local)?;
        let authorization = match (&spec.username, &spec.password_file) {
            (Some(user), Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|err| {
                    local(format!(
                        "cannot read password_file {}: {err}",
                        file.display()
                    ))
                })?;
                let password = text.lines().next().unwrap_or("");
                if password.is_empty() {
                    return Err(local(format!(
                        "password_file {} is empty; put the password on its first line",
                        file.display()
                    )));
                }
                use base64::Engine;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {token}"))
            }
            (Some(_), None) => {
                return Err(local(
                    "username is set but password_file is not; give both or neither".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(local(
                    "password_file is set but username is not; give both or neither".into(),
                ))
            }
            (None, None) => None,
        };
        let roots = if !spec.verify_tls {
            None
        } else {
            let (path, what) = match &spec.ca_file {
                Some(path) => (path.clone(), "ca_file"),
                None => (SYSTEM_ROOTS.into(), "the system's CA bundle"),
            };
            let pem = std::fs::read(&path)
                .map_err(|err| local(format!("cannot read {what} {}: {err}", path.display())))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
                    Ok(_) => {}
                    Err(err) => {
                        return Err(local(format!("{what} {}: {err}", path.display())));
                    }
                }
            }
            if certs.is_empty() {
                return Err(local(format!(
                    "{what} {} holds no PEM certificate",
                    path.display()
                )));
            }
            Some(RootCerts::Specific(Arc::new(certs)))
        };
        let tls = match roots {
            Some(roots) => TlsConfig::builder().root_certs(roots).build(),
            None => TlsConfig::builder().disable_verification(true).build(),
        };
        let timeout = spec.timeout();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Each phase gets the whole time, so that a timeout names the phase that
            // hung (connect, send, receive); the global bound is only a backstop.
            .timeout_connect(Some(timeout))
            .timeout_send_request(Some(timeout))
            .timeout_send_body(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .timeout_global(Some(timeout * 3))
            .max_redirects(3)
            .user_agent(concat!("sixboot/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Ok(Bmc {
            base,
            agent,
            authorization,
            timeout,
        })
    }

    /// The BMC's URL as given (for messages).
    pub fn url(&self) -> &str {
        &self.base
    }

    fn error(&self, step: Step, problem: Problem) -> BmcError {
        BmcError {
            bmc: self.base.clone(),
            step,
            problem,
        }
    }

    /// One request: `body` is sent as JSON when given. Returns the status and body of
    /// a 2xx answer; anything else is a [`BmcError`] for `step`.
    fn request(
        &self,
        what: &'static str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, BmcError> {
        let step = Step {
            what,
            request: format!("{method} {path}"),
        };
        let url = format!("{}{path}", self.base);
        let with_auth = |builder: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
            let builder = builder.header("Accept", "application/json");
            match &self.authorization {
                Some(value) => builder.header("Authorization", value),
                None => builder,
            }
        };
        let with_body_auth = |builder: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            let builder = builder.header("Accept", "application/json");
            match &self.authorization {
                Some(value) => builder.header("Authorization", value),
                None => builder,
            }
        };
        let json = body.map(|b| b.to_string()).unwrap_or_default();
        let result = match method {
            "GET" => with_auth(self.agent.get(&url)).call(),
            "PATCH" => with_body_auth(self.agent.patch(&url))
                .content_type("application/json")
                .send(&json),
            "POST" => with_body_auth(self.agent.post(&url))
                .content_type("application/json")
                .send(&json),
            other => unreachable!("sixboot sends no {other}"),
        };
        let mut response = result.map_err(|err| self.error(step.clone(), self.problem(err)))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|err| self.error(step.clone(), self.problem(err)))?;
        match status {
            200..=299 => Ok(bytes),
            401 => Err(self.error(
                step,
                Problem::Unauthorized {
                    message: redfish::error_message(&bytes),
                },
            )),
            _ => Err(self.error(
                step,
                Problem::Status {
                    status,
                    message: redfish::error_message(&bytes),
                },
            )),
        }
    }

    fn problem(&self, err: ureq::Error) -> Problem {
        match err {
            ureq::Error::Timeout(phase) => Problem::Timeout {
                phase: format!("{phase}"),
                seconds: match phase {
                    ureq::Timeout::Global => self.timeout.as_secs() * 3,
                    _ => self.timeout.as_secs(),
                },
            },
            ureq::Error::Tls(message) => Problem::Tls(message.to_owned()),
            ureq::Error::Io(err) if err.to_string().contains("certificate") => {
                Problem::Tls(err.to_string())
            }
            ureq::Error::Io(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                Problem::Timeout {
                    phase: "io".into(),
                    seconds: self.timeout.as_secs(),
                }
            }
            other => Problem::Unreachable(other.to_string()),
        }
    }

    fn get<T: DeserializeOwned>(&self, what: &'static str, path: &str) -> Result<T, BmcError> {
        let bytes = self.request(what, "GET", path, None)?;
        serde_json::from_slice(&bytes).map_err(|err| {
            self.error(
                Step {
                    what,
                    request: format!("GET {path}"),
                },
                Problem::BadResponse(err.to_string()),
            )
        })
    }

    /// Finds the `ComputerSystem`: `wanted` as a path (`/redfish/v1/…`) is read
    /// directly; as an `Id`, `Name` or `UUID` it is looked up among the members of the
    /// Systems collection; `None` takes the only member.
    pub fn find_system(&self, wanted: Option<&str>) -> Result<System, BmcError> {
        if let Some(path) = wanted.filter(|w| w.starts_with("/redfish/")) {
            let resource = self.get("read the system", path)?;
            return Ok(System {
                path: path.to_owned(),
                resource,
            });
        }
        let root: ServiceRoot = self.get("read the service root", "/redfish/v1/")?;
        let systems_path = root
            .systems
            .map_or_else(|| "/redfish/v1/Systems".to_owned(), |l| l.id);
        let collection: Collection = self.get("list the systems", &systems_path)?;
        let paths: Vec<String> = collection.members.into_iter().map(|l| l.id).collect();
        let mut seen = Vec::new();
        let pick_step = Step {
            what: "find the system",
            request: format!("GET {systems_path}"),
        };
        if wanted.is_none() && paths.len() > 1 {
            return Err(self.error(
                pick_step,
                Problem::WhichSystem {
                    available: paths.clone(),
                },
            ));
        }
        for path in &paths {
            let resource: ComputerSystem = self.get("read the system", path)?;
            let found = match wanted {
                None => true,
                Some(wanted) => redfish::system_matches(&resource, path, wanted),
            };
            if found {
                return Ok(System {
                    path: path.clone(),
                    resource,
                });
            }
            seen.push(match &resource.name {
                Some(name) => format!("{} ({name})", resource.id),
                None => resource.id.clone(),
            });
        }
        Err(self.error(
            pick_step,
            Problem::UnknownSystem {
                wanted: wanted.unwrap_or("").to_owned(),
                available: seen,
            },
        ))
    }

    /// Reads the system again (after a change).
    pub fn refresh(&self, system: &System) -> Result<System, BmcError> {
        Ok(System {
            path: system.path.clone(),
            resource: self.get("read the system", &system.path)?,
        })
    }

    /// PATCHes the one-time boot override: `Once` + `path`'s target (+ `HttpBootUri`
    /// when the BMC has it and `http_boot_uri` is given). Refuses a target the BMC does
    /// not list in `BootSourceOverrideTarget@Redfish.AllowableValues`.
    pub fn set_boot_once(
        &self,
        system: &System,
        path: BootPath,
        http_boot_uri: Option<&str>,
    ) -> Result<(), BmcError> {
        let boot = system.resource.boot.as_ref();
        let target = path.target();
        if let Err(supported) = redfish::check_target(boot, target) {
            return Err(self.error(
                Step {
                    what: "set the boot override",
                    request: format!("PATCH {}", system.path),
                },
                Problem::UnsupportedTarget {
                    wanted: target.to_owned(),
                    supported,
                },
            ));
        }
        let uri = redfish::http_boot_uri_to_send(path, boot, http_boot_uri);
        let body = redfish::boot_override_body(target, uri);
        self.request("set the boot override", "PATCH", &system.path, Some(&body))?;
        Ok(())
    }

    /// `ComputerSystem.Reset` for `action` (see [`redfish::reset_type`]); `Ok(None)`
    /// when there was nothing to do.
    pub fn power(
        &self,
        system: &System,
        action: PowerAction,
    ) -> Result<Option<&'static str>, BmcError> {
        let reset = system
            .resource
            .actions
            .as_ref()
            .and_then(|a| a.reset.as_ref());
        let target = reset.map_or_else(
            || format!("{}/Actions/ComputerSystem.Reset", system.path),
            |r| r.target.clone(),
        );
        let step = Step {
            what: "reset the system",
            request: format!("POST {target}"),
        };
        if reset.is_none() {
            return Err(self.error(step, Problem::NoResetAction));
        }
        let reset_type = match redfish::reset_type(action, &system.resource) {
            Ok(Some(reset_type)) => reset_type,
            Ok(None) => return Ok(None),
            Err(refused) => {
                return Err(self.error(
                    step,
                    Problem::UnsupportedReset {
                        wanted: refused.wanted.iter().map(|s| s.to_string()).collect(),
                        supported: refused.supported,
                    },
                ))
            }
        };
        self.request(
            "reset the system",
            "POST",
            &target,
            Some(&redfish::reset_body(reset_type)),
        )?;
        Ok(Some(reset_type))
    }

    /// The whole hands-off step: find the system, set the one-time override to
    /// `path`, read it back, then restart it (or power it on when it is off),
    /// reporting each step to `progress`. Stops at the first failure.
    pub fn reboot_to_network(
        &self,
        wanted_system: Option<&str>,
        path: BootPath,
        http_boot_uri: Option<&str>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<System, BmcError> {
        let system = self.find_system(wanted_system)?;
        let boot = system.resource.boot.clone().unwrap_or_default();
        let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        progress(Progress::Found {
            system: system.label(),
            power: text(&system.resource.power_state),
            enabled: text(&boot.enabled),
            target: text(&boot.target),
        });
        self.set_boot_once(&system, path, http_boot_uri)?;
        let after = self.refresh(&system)?;
        let boot = after.resource.boot.clone().unwrap_or_default();
        progress(Progress::OverrideSet {
            requested: path.target(),
            enabled: text(&boot.enabled),
            target: text(&boot.target),
        });
        if let Some(reset_type) = self.power(&after, PowerAction::Cycle)? {
            progress(Progress::Reset { reset_type });
        }
        Ok(after)
    }
}
