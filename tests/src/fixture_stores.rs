//! The data dirs of every shipped store layout (`tests/fixtures/stores/`), made by the old
//! binaries at their commits: unpacked into a temp dir and moved to free loopback ports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::free_port;

/// The fixture directory of store layout `layout`.
pub fn fixture(layout: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/stores/layout{layout}"))
}

/// Unpacks the data dir of node `node` (`a` or `b`) of `layout` into `into`.
pub fn unpack(layout: u8, node: &str, into: &Path) -> PathBuf {
    let archive = fixture(layout).join(format!("{node}.tar.gz"));
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar");
    assert!(status.success(), "cannot unpack {}", archive.display());
    into.join(node)
}

/// Rewrites each line of `path` with `rewrite`.
pub fn rewrite_lines(path: &Path, rewrite: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).expect("read");
    let lines: Vec<String> = text.lines().map(rewrite).collect();
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

/// Points the config's listeners at free ports and each member's address at `peer_port`.
pub fn relocate(dir: &Path, p2p_port: u16, peer_port: u16) {
    rewrite_lines(&dir.join("config.toml"), |line| {
        if line.starts_with("listen =") {
            format!("listen = [\"/ip4/127.0.0.1/tcp/{p2p_port}\"]")
        } else if line.starts_with("announce =") {
            format!("announce = [\"/ip4/127.0.0.1/tcp/{p2p_port}\"]")
        } else if line.starts_with("status_addr =") {
            format!("status_addr = \"127.0.0.1:{}\"", free_port())
        } else if line.starts_with("admin_addr =") {
            format!("admin_addr = \"127.0.0.1:{}\"", free_port())
        } else {
            line.to_owned()
        }
    });
    rewrite_lines(&dir.join("members.toml"), |line| {
        if line.starts_with("addresses =") {
            format!("addresses = [\"/ip4/127.0.0.1/tcp/{peer_port}\"]")
        } else {
            line.to_owned()
        }
    });
}

/// The `id`s of a listing the CLI printed with `--json` (`alert list`, `mirror list`).
pub fn ids(list: &serde_json::Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}
