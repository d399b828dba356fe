//! The crate dependency rules of ARCHITECTURE.md, checked on every test run:
//! proto depends on no internal crate; store → proto, engine; net → none; control → proto at
//! most; engine → proto, control; the simulation → proto, store, engine (never sled, libp2p
//! or tokio); only the node, the benchmark harness and this tests package may depend on
//! everything.

use std::collections::BTreeSet;
use std::path::Path;

fn internal_dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).expect("manifest");
    let manifest: toml::Table = text.parse().expect("toml");
    ["dependencies", "dev-dependencies", "build-dependencies"]
        .iter()
        .filter_map(|section| manifest.get(*section).and_then(|deps| deps.as_table()))
        .flat_map(|deps| deps.keys().cloned())
        .filter(|name| name.starts_with("solidarity"))
        .collect()
}

#[test]
fn crates_depend_only_on_what_the_architecture_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let allowed: [(&str, &[&str]); 6] = [
        ("crates/solidarity-proto", &[]),
        (
            "crates/solidarity-store",
            &["solidarity-proto", "solidarity-engine"],
        ),
        (
            "crates/solidarity-engine",
            &["solidarity-proto", "solidarity-control"],
        ),
        ("crates/solidarity-net", &[]),
        ("crates/solidarity-control", &["solidarity-proto"]),
        (
            "crates/solidarity-sim",
            &["solidarity-proto", "solidarity-store", "solidarity-engine"],
        ),
    ];
    for (path, allowed) in allowed {
        let found = internal_dependencies(&root.join(path).join("Cargo.toml"));
        let extra: Vec<_> = found
            .iter()
            .filter(|name| !allowed.contains(&name.as_str()))
            .collect();
        assert!(extra.is_empty(), "{path} may not depend on {extra:?}");
    }
}

#[test]
fn only_the_store_names_sled_and_only_the_net_crate_and_node_name_libp2p() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (path, forbidden) in [
        ("crates/solidarity-proto", &["sled", "libp2p", "tokio"][..]),
        ("crates/solidarity-control", &["sled", "libp2p", "tokio"]),
        (
            "crates/solidarity-engine",
            &["sled", "libp2p", "tokio", "rand", "futures"],
        ),
        ("crates/solidarity-sim", &["sled", "libp2p", "tokio"]),
        ("crates/solidarity-net", &["sled"]),
        ("node", &["sled"]),
        ("crates/solidarity-bench", &["sled"]),
    ] {
        let text = std::fs::read_to_string(root.join(path).join("Cargo.toml")).expect("manifest");
        let manifest: toml::Table = text.parse().expect("toml");
        let deps = manifest
            .get("dependencies")
            .and_then(|deps| deps.as_table());
        for name in forbidden {
            assert!(
                deps.is_none_or(|deps| !deps.contains_key(*name)),
                "{path} must not depend on {name}"
            );
        }
    }
}
