//! `[monitor]`: when a host needs the operator's attention (the stuck and loop rules
//! of [`crate::inventory::progress`]).

use toml::Spanned;

use super::raw::RawMonitor;
use super::validator::Validator;

/// `[monitor]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorConfig {
    /// An install that got an address, a TFTP file or its script this many minutes
    /// ago and reached no `/done` is stuck (default 60).
    pub stuck_after_mins: u32,
    /// Two script fetches this many minutes apart or closer, without `/done`
    /// between, are a possible boot loop (default 10).
    pub loop_window_mins: u32,
    /// Whether the servers count into `/metrics` (default true); false counts nothing
    /// and `/metrics` answers 404. Read at start: a reload cannot change it.
    pub metrics: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            stuck_after_mins: 60,
            loop_window_mins: 10,
            metrics: true,
        }
    }
}

impl MonitorConfig {
    /// The thresholds in the inventory's units (ms).
    pub fn watch(&self) -> crate::inventory::Watch {
        crate::inventory::Watch {
            stuck_after: u64::from(self.stuck_after_mins) * 60_000,
            loop_window: u64::from(self.loop_window_mins) * 60_000,
        }
    }
}

/// Validates `[monitor]`: each threshold 1 to 10,080 minutes (a week).
pub(super) fn validate(v: &mut Validator<'_>, raw: &RawMonitor) -> MonitorConfig {
    let defaults = MonitorConfig::default();
    let mut minutes = |value: &Option<Spanned<u32>>, name: &str, default: u32| {
        let Some(value) = value else {
            return default;
        };
        if (1..=10_080).contains(value.get_ref()) {
            *value.get_ref()
        } else {
            v.error(
                value.span(),
                &format!("monitor.{name}"),
                format!(
                    "{} minutes is out of range: use 1 to 10080 (a week)",
                    value.get_ref()
                ),
            );
            default
        }
    };
    MonitorConfig {
        stuck_after_mins: minutes(
            &raw.stuck_after_mins,
            "stuck_after_mins",
            defaults.stuck_after_mins,
        ),
        loop_window_mins: minutes(
            &raw.loop_window_mins,
            "loop_window_mins",
            defaults.loop_window_mins,
        ),
        metrics: raw.metrics.unwrap_or(defaults.metrics),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn thresholds_default_to_an_hour_and_ten_minutes_and_refuse_zero() {
        let config = Config::from_toml(Path::new("boot.toml"), "").unwrap();
        assert_eq!(config.monitor.watch(), crate::inventory::Watch::default());
        let config = Config::from_toml(
            Path::new("boot.toml"),
            "[monitor]\nstuck_after_mins = 90\nloop_window_mins = 3\n",
        )
        .unwrap();
        assert_eq!(config.monitor.watch().stuck_after, 90 * 60_000);
        assert_eq!(config.monitor.watch().loop_window, 3 * 60_000);
        let err = Config::from_toml(Path::new("boot.toml"), "[monitor]\nstuck_after_mins = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("boot.toml:2") && err.contains("monitor.stuck_after_mins"),
            "{err}"
        );
    }

    #[test]
    fn metrics_are_on_unless_turned_off() {
        let config = Config::from_toml(Path::new("boot.toml"), "").unwrap();
        assert!(config.monitor.metrics);
        let config = Config::from_toml(
            Path::new("boot.toml"),
            "[monitor]
metrics = false
",
        )
        .unwrap();
        assert!(!config.monitor.metrics);
        let err = Config::from_toml(
            Path::new("boot.toml"),
            "[monitor]
metrics = \"no\"
",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("boot.toml:2"), "{err}");
    }
}
