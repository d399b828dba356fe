//! Where a node's files live, so that the systemd unit's daemon and the admin's CLI find
//! the same node without `--data`.
//!
//! Two layouts:
//! - a **user node**: everything in one data dir, `--data DIR`, `$SOLIDARITY_DATA`, else
//!   `$XDG_DATA_HOME/solidarity`, else `~/.local/share/solidarity`;
//! - a **system node** (Debian/FHS): state (key, members, store, control socket) in
//!   `/var/lib/solidarity`, the config in `/etc/solidarity/config.toml`.
//!
//! Without `--data`/`$SOLIDARITY_DATA`: a user node that exists wins; else a system node
//! that exists (`/var/lib/solidarity/node.key` or `/etc/solidarity/config.toml`); else a
//! new node is a system node when run as root or by systemd (`$STATE_DIRECTORY` set), a
//! user node otherwise. A data dir holding its own `config.toml` always uses it (older
//! system installs kept it in `/var/lib/solidarity` and keep working).
//!
//! `$SOLIDARITY_SYSTEM_ROOT` prefixes both system paths: for tests and packagers only.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::CONFIG_FILE;
use crate::identity::KEY_FILE;

/// Environment variable prefixing the system paths (tests, packagers).
pub const SYSTEM_ROOT_ENV: &str = "SOLIDARITY_SYSTEM_ROOT";
/// State directory of a system node, below the system root.
const SYSTEM_DATA_DIR: &str = "var/lib/solidarity";
/// Config directory of a system node, below the system root.
const SYSTEM_CONFIG_DIR: &str = "etc/solidarity";
/// Runtime directory of a system node (its control socket), below the system root.
const SYSTEM_RUNTIME_DIR: &str = "run/solidarity";
/// Set by systemd for a unit with `StateDirectory=`.
const SYSTEMD_STATE_ENV: &str = "STATE_DIRECTORY";

/// The `--data` given on the command line (or `$SOLIDARITY_DATA`), for hints.
static GIVEN_DATA_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Which layout a data dir follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Given with `--data` or `$SOLIDARITY_DATA`.
    Given,
    /// The user's own data dir.
    User,
    /// The system install.
    System,
}

/// The resolved data dir.
#[derive(Debug, Clone)]
pub struct Location {
    pub data_dir: PathBuf,
    pub kind: Kind,
}

fn system_root() -> PathBuf {
    std::env::var_os(SYSTEM_ROOT_ENV)
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// `/var/lib/solidarity` (below `$SOLIDARITY_SYSTEM_ROOT`).
pub fn system_data_dir() -> PathBuf {
    system_root().join(SYSTEM_DATA_DIR)
}

/// `/etc/solidarity` (below `$SOLIDARITY_SYSTEM_ROOT`).
pub fn system_config_dir() -> PathBuf {
    system_root().join(SYSTEM_CONFIG_DIR)
}

fn user_data_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME").filter(|value| !value.is_empty());
    match (
        xdg,
        std::env::var_os("HOME").filter(|value| !value.is_empty()),
    ) {
        (Some(xdg), _) => Some(PathBuf::from(xdg).join("solidarity")),
        (None, Some(home)) => Some(PathBuf::from(home).join(".local/share/solidarity")),
        (None, None) => None,
    }
}

/// Whether `dir` holds a node (a key or a config).
fn holds_node(dir: &Path) -> bool {
    dir.join(KEY_FILE).exists() || dir.join(CONFIG_FILE).exists()
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0)
}

/// Resolves the data dir from `--data` (or `$SOLIDARITY_DATA`) and what exists.
pub fn resolve(given: Option<&Path>) -> Location {
    let _ = GIVEN_DATA_DIR.set(given.map(Path::to_owned));
    if let Some(dir) = given {
        return Location {
            data_dir: dir.to_owned(),
            kind: Kind::Given,
        };
    }
    let user = user_data_dir();
    let system = system_data_dir();
    let user_location = |dir: PathBuf| Location {
        data_dir: dir,
        kind: Kind::User,
    };
    let system_location = Location {
        data_dir: system.clone(),
        kind: Kind::System,
    };
    if let Some(dir) = &user
        && holds_node(dir)
    {
        return user_location(dir.clone());
    }
    if holds_node(&system) || system_config_dir().join(CONFIG_FILE).exists() {
        return system_location;
    }
    let by_systemd = std::env::var_os(SYSTEMD_STATE_ENV).is_some_and(|value| !value.is_empty());
    match user {
        Some(dir) if !running_as_root() && !by_systemd => user_location(dir),
        _ => system_location,
    }
}

/// The config file of the node in `data_dir`: its own `config.toml` when it has one,
/// `/etc/solidarity/config.toml` for the system node otherwise.
pub fn config_path(data_dir: &Path) -> PathBuf {
    let own = data_dir.join(CONFIG_FILE);
    if !own.exists() && data_dir == system_data_dir() {
        return system_config_dir().join(CONFIG_FILE);
    }
    own
}

/// `/run/solidarity` (below `$SOLIDARITY_SYSTEM_ROOT`): the system node's control socket.
pub fn system_runtime_dir() -> PathBuf {
    system_root().join(SYSTEM_RUNTIME_DIR)
}

/// The control socket of the node in `data_dir`: a system node's is
/// `/run/solidarity/control.sock`, which the members of its group may use (the state
/// directory is the daemon's alone); any other node's is inside its data dir.
pub fn control_socket(data_dir: &Path) -> PathBuf {
    if is_system(data_dir) {
        return system_runtime_dir().join(solidarity_control::SOCKET_FILE);
    }
    solidarity_control::socket_path(data_dir)
}

/// A control client of the node in `data_dir`, on [`control_socket`].
pub fn client(data_dir: &Path) -> solidarity_control::Client {
    solidarity_control::Client::at_socket(data_dir, control_socket(data_dir))
}

/// Whether `data_dir` is the system node's.
pub fn is_system(data_dir: &Path) -> bool {
    data_dir == system_data_dir()
}

/// A command line to suggest, repeating the `--data` this run was given:
/// `hint("node")` is `solidarity --data /x node` after `solidarity --data /x …`.
pub fn hint(command: &str) -> String {
    match GIVEN_DATA_DIR.get().and_then(Option::as_ref) {
        Some(dir) => {
            let dir = dir.display().to_string();
            let safe = dir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
            if safe {
                format!("solidarity --data {dir} {command}")
            } else {
                format!(
                    "solidarity --data '{}' {command}",
                    dir.replace('\'', r"'\''")
                )
            }
        }
        None => format!("solidarity {command}"),
    }
}
