//! The demo image and what runs inside it.
//!
//! No registry is reachable, so the image is built locally: the running
//! `rolldeck` binary plus the shared libraries it links (as `ldd` lists
//! them: glibc, libm, libgcc_s, the loader) at their own paths, in a
//! `FROM scratch` image. A fully static musl binary would need a second
//! build of rolldeck for another target (and the musl target installed on
//! every machine); copying the glibc binary and its libraries needs
//! neither. The image is tagged `rolldeck-demo:VERSION` (the crate
//! version) and labelled with the binary's fingerprint (size and mtime):
//! the next run with the same binary reuses it, a rebuilt binary rebuilds it.
//!
//! Inside the container the binary runs the hidden subcommand
//! `rolldeck __container MODE …` ([`container_main`]):
//!
//! * `service TRACK good|failing|slow PORT` — the demo HTTP service on
//!   `0.0.0.0:PORT` (`/`, `/health`, `/metrics`, see [`crate::demo::service`]);
//! * `probe URL` — one GET with a 2 s timeout, exit 0 on a 2xx answer (the
//!   container's health check);
//! * `lines N` — prints `N` numbered lines to stdout (every 10000th with a
//!   colour sequence), then exits 0 (log tests).

use super::short_error;
use bollard::Docker;
use bollard::query_parameters::BuildImageOptions;
use futures::StreamExt as _;
use std::path::{Path, PathBuf};

/// The hidden subcommand run inside demo containers.
pub const SUBCOMMAND: &str = "__container";

/// The demo image's repository name.
pub const REPO: &str = "rolldeck-demo";

/// The label carrying the binary's fingerprint.
pub const FINGERPRINT_LABEL: &str = "io.rolldeck.binary";

/// The demo image's tag: `rolldeck-demo:VERSION`.
pub fn tag() -> String {
    format!("{REPO}:{}", env!("CARGO_PKG_VERSION"))
}

/// The path of the binary inside the image.
pub const BINARY_IN_IMAGE: &str = "/rolldeck";

fn fingerprint(bin: &Path) -> Result<String, String> {
    let m = std::fs::metadata(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{}-{mtime}", m.len()))
}

/// The shared libraries `bin` needs, as absolute paths (from `ldd`).
fn libraries(bin: &Path) -> Result<Vec<PathBuf>, String> {
    let out = std::process::Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(|e| format!("cannot run ldd to list the libraries of the demo image: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // A static binary: `ldd` says "not a dynamic executable".
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x…)"
            let p = l.split("=>").last()?.split_whitespace().next()?;
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect())
}

/// The build context: Dockerfile, the binary and its libraries, as a tar.
fn context(bin: &Path) -> Result<Vec<u8>, String> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    // The engine refuses GNU sparse entries (tar header type S).
    tar.sparse(false);
    tar.mode(tar::HeaderMode::Deterministic);
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"{BINARY_IN_IMAGE}\", \"{SUBCOMMAND}\"]\n"
    );
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    let io = |e: std::io::Error| format!("building the demo image context: {e}");
    tar.append_data(&mut h, "Dockerfile", dockerfile.as_bytes())
        .map_err(io)?;
    tar.append_path_with_name(bin, format!("rootfs{BINARY_IN_IMAGE}"))
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    for lib in libraries(bin)? {
        tar.append_path_with_name(&lib, format!("rootfs{}", lib.display()))
            .map_err(|e| format!("{}: {e}", lib.display()))?;
    }
    tar.into_inner().map_err(io)
}

/// Makes sure the demo image for binary `bin` exists: reuses
/// `rolldeck-demo:VERSION` when its fingerprint label matches `bin`, else
/// builds it. Returns the tag. Errors carry the engine's build message.
pub async fn ensure(docker: &Docker, bin: &Path) -> Result<String, String> {
    ensure_as(docker, bin, &tag()).await
}

/// [`ensure`] under another tag (tests use one per run). An older image
/// that had this tag is removed after the build (unless a container still
/// uses it), so rebuilds leave no untagged images behind.
pub async fn ensure_as(docker: &Docker, bin: &Path, tag: &str) -> Result<String, String> {
    let tag = tag.to_string();
    let fp = fingerprint(bin)?;
    let old = docker.inspect_image(&tag).await.ok();
    if let Some(img) = &old
        && img
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(FINGERPRINT_LABEL))
            == Some(&fp)
    {
        return Ok(tag);
    }
    let ctx = context(bin)?;
    let opts = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(tag.clone()),
        rm: true,
        forcerm: true,
        labels: Some([(FINGERPRINT_LABEL.to_string(), fp)].into()),
        ..Default::default()
    };
    let mut s = Box::pin(docker.build_image(
        opts,
        None,
        Some(bollard::body_full(bytes::Bytes::from(ctx))),
    ));
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(format!("building {tag}: {}", super::cut(&e)));
                }
            }
            Err(e) => return Err(format!("building {tag}: {}", short_error(&e))),
        }
    }
    if let Some(id) = old.and_then(|i| i.id) {
        // Still used by a container, or the same image: it stays.
        let _ = docker
            .remove_image(
                &id,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
    Ok(tag)
}

/// Removes image `tag` (tests' cleanup); a missing image is fine.
pub async fn remove(docker: &Docker, tag: &str) -> Result<(), String> {
    match docker
        .remove_image(
            tag,
            Some(bollard::query_parameters::RemoveImageOptions {
                force: true,
                noprune: false,
                platforms: None,
            }),
            None,
        )
        .await
    {
        Ok(_)
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(format!("remove image {tag}: {}", short_error(&e))),
    }
}

/// `rolldeck __container MODE ARGS…` inside a demo container; returns the
/// exit code.
pub fn container_main(args: &[std::ffi::OsString]) -> i32 {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let usage = || {
        eprintln!(
            "usage: rolldeck {SUBCOMMAND} service TRACK good|failing|slow PORT | probe URL | lines N"
        );
        2
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["service", track, behaviour, port] => {
            let b = match behaviour {
                "good" => crate::demo::service::Behaviour::Healthy,
                "failing" => crate::demo::service::Behaviour::Failing,
                "slow" => crate::demo::service::Behaviour::Slow,
                _ => return usage(),
            };
            let Ok(port) = port.parse::<u16>() else {
                return usage();
            };
            rt.block_on(async {
                let addr = (std::net::Ipv4Addr::UNSPECIFIED, port).into();
                match crate::demo::service::spawn_at(track, b, addr).await {
                    Ok(h) => {
                        println!("demo service {track} ({behaviour}) listening on {}", h.addr);
                        let mut term = match tokio::signal::unix::signal(
                            tokio::signal::unix::SignalKind::terminate(),
                        ) {
                            Ok(s) => s,
                            Err(e) => {
                                eprintln!("cannot watch SIGTERM: {e}");
                                return 1;
                            }
                        };
                        tokio::select! {
                            _ = term.recv() => {}
                            _ = tokio::signal::ctrl_c() => {}
                        }
                        println!("demo service {track} stopping");
                        h.shutdown().await;
                        0
                    }
                    Err(e) => {
                        eprintln!("{e:#}");
                        1
                    }
                }
            })
        }
        ["probe", url] => rt.block_on(async {
            // A scratch image has no CA certificates: trust none (the
            // probe is plain HTTP on the container's own loopback).
            let http = match reqwest::Client::builder()
                .tls_certs_only([])
                .no_proxy()
                .build()
            {
                Ok(c) => c,
                Err(e) => {
                    println!("{}", short_error(&e));
                    return 1;
                }
            };
            match http
                .get(url)
                .timeout(std::time::Duration::from_secs(2))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => 0,
                Ok(r) => {
                    println!("HTTP {}", r.status().as_u16());
                    1
                }
                Err(e) => {
                    println!("{}", short_error(&e));
                    1
                }
            }
        }),
        ["lines", n] => {
            let Ok(n) = n.parse::<u64>() else {
                return usage();
            };
            use std::io::Write as _;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for i in 1..=n {
                // Every 10000th line carries a colour sequence (log tests
                // check it is stripped).
                let colour = if i % 10_000 == 0 {
                    " \x1b[31mred\x1b[0m"
                } else {
                    ""
                };
                if writeln!(out, "line {i} of {n}{colour}").is_err() {
                    return 1;
                }
            }
            i32::from(out.flush().is_err())
        }
        _ => usage(),
    }
}
