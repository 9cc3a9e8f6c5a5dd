//! Which container a cgroup path belongs to: the one parser behind
//! `processes.container_id` and `net_namespaces.container_id`.
//!
//! Runtimes name the cgroup they make for a container after it; the shapes below are
//! what each writes under systemd (cgroup v2, or v1's per-controller trees) and with
//! the plain cgroupfs driver. The innermost component that matches wins, so a
//! containerd container inside a Kubernetes pod is the container, not the pod.

/// A container runtime and its id for the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub runtime: &'static str,
    pub id: String,
}

/// The container of a cgroup path, if it is one's.
pub fn of_cgroup(path: &str) -> Option<Container> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, component) in components.iter().enumerate().rev() {
        let parent = i.checked_sub(1).map(|p| components[p]);
        if let Some(found) = of_component(component, parent) {
            return Some(found);
        }
    }
    None
}

fn container(runtime: &'static str, id: &str) -> Option<Container> {
    (!id.is_empty()).then(|| Container {
        runtime,
        id: id.to_string(),
    })
}

/// A container id as runtimes write them: 64 hex digits.
fn is_hex_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn of_component(component: &str, parent: Option<&str>) -> Option<Container> {
    if let Some(unit) = component.strip_suffix(".scope") {
        // systemd units: <runtime>-<id>.scope; conmon's scopes are not the container.
        if unit.starts_with("libpod-conmon-") || unit.starts_with("crio-conmon-") {
            return None;
        }
        for (prefix, runtime) in [
            ("docker-", "docker"),
            ("cri-containerd-", "containerd"),
            ("crio-", "cri-o"),
            ("libpod-", "podman"),
        ] {
            // `docker-cleanup.scope` is some other unit.
            if let Some(id) = unit.strip_prefix(prefix).filter(|id| is_hex_id(id)) {
                return container(runtime, id);
            }
        }
        if let Some(name) = unit.strip_prefix("machine-") {
            // machined registers libvirt's machines too: qemu-N-NAME and kvm-N-NAME are
            // virtual machines (their sockets are in their own kernel), lxc-N-NAME
            // libvirt's containers.
            let name = unescape_unit(name);
            let vm = |kind: &str| {
                name.strip_prefix(kind)
                    .and_then(|rest| rest.split_once('-'))
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            };
            if vm("qemu-") || vm("kvm-") {
                return None;
            }
            if name.starts_with("lxc-") {
                return container("libvirt-lxc", &name);
            }
            return container("systemd-nspawn", &name);
        }
        return None;
    }
    match parent {
        // cgroupfs driver and cgroup v1: /docker/<id>, /lxc/<name>.
        Some("docker") if is_hex_id(component) => return container("docker", component),
        Some("lxc") => return container("lxc", component),
        _ => {}
    }
    if let Some(name) = component.strip_prefix("lxc.payload.") {
        return container("lxc", name);
    }
    // Kubernetes: kubepods-besteffort-pod<uid with _>.slice (systemd) or
    // /kubepods/besteffort/pod<uid> (cgroupfs).
    let uid = component
        .strip_prefix("pod")
        .or_else(|| component.rfind("-pod").map(|at| &component[at + 4..]))
        .map(|uid| uid.trim_end_matches(".slice"));
    let under_kubepods = component.starts_with("kubepods")
        || parent
            .is_some_and(|p| p.starts_with("kubepods") || p == "besteffort" || p == "burstable");
    if let Some(uid) = uid.filter(|uid| under_kubepods && is_pod_uid(uid)) {
        return container("kubernetes", &uid.replace('_', "-"));
    }
    None
}

/// A pod uid: a UUID, with `_` for `-` in systemd slice names.
fn is_pod_uid(text: &str) -> bool {
    text.len() == 36
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
}

/// systemd escapes a unit name's `-` and other bytes as `\xNN`.
fn unescape_unit(name: &str) -> String {
    let mut out = Vec::with_capacity(name.len());
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            if let Some(byte) = name
                .get(i + 2..i + 4)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

    fn found(path: &str) -> Option<(&'static str, String)> {
        of_cgroup(path).map(|c| (c.runtime, c.id))
    }

    #[test]
    fn docker_under_systemd_and_cgroupfs_v1_and_v2() {
        let want = Some(("docker", ID.to_string()));
        assert_eq!(found(&format!("/system.slice/docker-{ID}.scope")), want);
        assert_eq!(
            found(&format!("/docker/{ID}")),
            want,
            "cgroupfs driver / v1"
        );
        // A process in a nested cgroup of the container (v2 delegation).
        assert_eq!(
            found(&format!("/system.slice/docker-{ID}.scope/init")),
            want
        );
        assert_eq!(found("/docker/notanid"), None);
        // The docker daemon itself is no container.
        assert_eq!(found("/system.slice/docker.service"), None);
    }

    #[test]
    fn kubernetes_containers_and_pods() {
        let pod = "kubepods-besteffort-pod0b7d3a1e_8c2f_4a6b_9d3e_1f2a3b4c5d6e.slice";
        let path =
            format!("/kubepods.slice/kubepods-besteffort.slice/{pod}/cri-containerd-{ID}.scope");
        assert_eq!(found(&path), Some(("containerd", ID.to_string())));
        let crio = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b7d3a1e_8c2f_4a6b_9d3e_1f2a3b4c5d6e.slice/crio-{ID}.scope");
        assert_eq!(found(&crio), Some(("cri-o", ID.to_string())));
        let pod_only = format!("/kubepods.slice/kubepods-besteffort.slice/{pod}");
        assert_eq!(
            found(&pod_only),
            Some(("kubernetes", "0b7d3a1e-8c2f-4a6b-9d3e-1f2a3b4c5d6e".into()))
        );
        // cgroupfs driver, v1: /kubepods/besteffort/pod<uid>/<container id>.
        let v1 = "/kubepods/besteffort/pod0b7d3a1e-8c2f-4a6b-9d3e-1f2a3b4c5d6e";
        assert_eq!(
            found(v1),
            Some(("kubernetes", "0b7d3a1e-8c2f-4a6b-9d3e-1f2a3b4c5d6e".into()))
        );
        assert_eq!(
            found(&format!(
                "/kubepods.slice/kubepods-besteffort.slice/{pod}/crio-conmon-{ID}.scope"
            )),
            Some(("kubernetes", "0b7d3a1e-8c2f-4a6b-9d3e-1f2a3b4c5d6e".into()))
        );
    }

    #[test]
    fn podman_nspawn_and_lxc() {
        assert_eq!(
            found(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
            )),
            Some(("podman", ID.to_string()))
        );
        assert_eq!(
            found(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        assert_eq!(
            found("/machine.slice/machine-web\\x2d01.scope/payload"),
            Some(("systemd-nspawn", "web-01".into()))
        );
        assert_eq!(found("/lxc/web01"), Some(("lxc", "web01".into())));
        assert_eq!(
            found("/lxc.payload.web01/init.scope"),
            Some(("lxc", "web01".into()))
        );
    }

    #[test]
    fn hosts_own_cgroups_are_no_container() {
        for path in [
            "/",
            "/init.scope",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/sshd.service",
            "",
            "/kubepods.slice",
            // Units that only look like a runtime's (helper-45): not 64 hex digits.
            "/system.slice/docker-cleanup.scope",
            "/system.slice/cri-containerd-gc.scope",
            "/system.slice/crio-wipe.scope",
            "/user.slice/libpod-abc.scope",
            // libvirt's virtual machines, which machined registers too.
            "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope",
            "/machine.slice/machine-kvm\\x2d2\\x2dvm.scope/libvirt/emulator",
        ] {
            assert_eq!(found(path), None, "{path}");
        }
        assert_eq!(
            found("/machine.slice/machine-lxc\\x2d4242\\x2dweb.scope"),
            Some(("libvirt-lxc", "lxc-4242-web".into()))
        );
        // A machine its user named qemu-something is still a container.
        assert_eq!(
            found("/machine.slice/machine-qemu\\x2dbuilder.scope"),
            Some(("systemd-nspawn", "qemu-builder".into()))
        );
    }
}
