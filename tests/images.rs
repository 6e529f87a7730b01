//! Guest images end to end: recipes whose image bottle builds (a host
//! directory, Debian packages) and fixed-output fetches, built into a store
//! and booted in a real qemu guest (TCG here, a few seconds each), which
//! shows the image's own files. Plus: the same recipe gives the same erofs
//! bytes with another store and HOME, and a wrong fetch hash fails cleanly.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn bottle(runs: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bottle"));
    command.env("BOTTLE_RUNTIME_DIR", runs).stdin(Stdio::null());
    command
}

fn text(output: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A small root file system: the host's static busybox and an os-release.
fn busybox_tree(root: &Path, pretty_name: &str) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox-static is installed (scripts/setup)");
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "ls", "id", "echo", "stat", "touch"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        root.join("etc/os-release"),
        format!("PRETTY_NAME=\"{pretty_name}\"\nID=bottle-test\n"),
    )
    .unwrap();
}

/// An HTTP server on a loopback port answering every request with `body`,
/// for as long as the test process lives.
fn http_server(body: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    port
}

/// The SRI sha256 of `bytes`, computed by the host's python3 rather than by
/// bottle's own code.
fn sri_sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg("import base64, hashlib, sys; print(base64.b64encode(hashlib.sha256(open(sys.argv[1], 'rb').read()).digest()).decode())")
        .arg(&file)
        .output()
        .unwrap();
    format!("sha256-{}", String::from_utf8(out.stdout).unwrap().trim())
}

const PAYLOAD: &[u8] = b"fetched-by-bottle: the payload\n";

fn store_files(store: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(store)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// A `{ dir = ./rootfs; }` image boots: the guest's root is the directory's
/// content (its os-release), the bottle's `files` (text and a fetched file)
/// are in it, owned by the agent in its home, and the root is writable
/// through the overlay though the image is read-only.
#[test]
fn a_directory_image_boots_with_its_files_and_a_fetched_one() {
    let dir = tempfile::tempdir().unwrap();
    busybox_tree(&dir.path().join("rootfs"), "bottle dir image");
    let port = http_server(PAYLOAD);
    let hash = sri_sha256(PAYLOAD);
    let recipe = dir.path().join("dir.bottle");
    std::fs::write(
        &recipe,
        format!(
            r#"{{
  name = "dir-image";
  image = {{ dir = ./rootfs; }};
  agent.command = [ "sh" "-c" "cat /etc/os-release; id -un; cat /home/agent/note.txt; stat -c '%U %a' /home/agent/note.txt; cat /opt/payload.txt; touch /work/written && echo root-writable; exit 7" ];
  files."/home/agent/note.txt" = "a note from the recipe\n";
  files."/opt/payload.txt" = builtins.fetchurl {{ url = "http://127.0.0.1:{port}/payload.txt"; hash = "{hash}"; }};
  cpus = 1;
  memory = 256;
}}
"#
        ),
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let output = bottle(&runs)
        .arg("run")
        .arg(&recipe)
        .arg("--store")
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(7), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "PRETTY_NAME=\"bottle dir image\"",
        "agent",
        "a note from the recipe",
        "agent 644",
        "fetched-by-bottle: the payload",
        "root-writable",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{all}");
    }
    // The root image is in the store, read-only, and the bottle links it.
    let images = store_files(&dir.path().join("store"), "-root.erofs");
    assert_eq!(images.len(), 1, "{images:?}");
    let mode = std::fs::metadata(&images[0]).unwrap().permissions();
    assert!(mode.readonly());
}

/// The same recipe, built with another store directory and another HOME,
/// gives the same erofs image byte for byte.
#[test]
fn the_same_recipe_gives_the_same_erofs_bytes() {
    let dir = tempfile::tempdir().unwrap();
    busybox_tree(&dir.path().join("rootfs"), "deterministic");
    // Different modification times and creation order must not matter.
    std::fs::write(dir.path().join("rootfs/etc/b"), "b").unwrap();
    std::fs::write(dir.path().join("rootfs/etc/a"), "a").unwrap();
    let recipe = dir.path().join("same.bottle");
    std::fs::write(
        &recipe,
        r#"{
  name = "same";
  image = { dir = ./rootfs; };
  agent.command = [ "true" ];
  files."/etc/motd" = "hello\n";
}
"#,
    )
    .unwrap();
    let mut images = Vec::new();
    for i in 0..2 {
        let home = dir.path().join(format!("home{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let store = dir.path().join(format!("store{i}"));
        let output = bottle(&dir.path().join("runs"))
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .arg("build")
            .arg(&recipe)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let found = store_files(&store, "-root.erofs");
        assert_eq!(found.len(), 1, "{found:?}");
        images.push((
            found[0].file_name().unwrap().to_owned(),
            std::fs::read(&found[0]).unwrap(),
        ));
        // Touch the tree between builds: times are not content.
        std::fs::write(dir.path().join("rootfs/etc/a"), "a").unwrap();
    }
    assert_eq!(images[0].0, images[1].0, "same store name");
    assert!(images[0].1 == images[1].1, "same bytes");
    assert!(images[0].1.len() > 4096);
}

/// A fetch whose declared hash is not the content's fails with both hashes
/// (the one got, as Nix prints it) and leaves nothing in the store; the
/// right hash lands the file read-only.
#[test]
fn a_wrong_fetch_hash_fails_cleanly_and_the_right_one_lands() {
    let dir = tempfile::tempdir().unwrap();
    let port = http_server(PAYLOAD);
    let right = sri_sha256(PAYLOAD);
    let wrong = sri_sha256(b"something else");
    let recipe = |hash: &str| {
        let path = dir.path().join("fetch.bottle");
        std::fs::write(
            &path,
            format!(
                r#"{{
  name = "fetch";
  image = {{ busybox = true; }};
  agent.command = [ "true" ];
  files."/payload" = builtins.fetchurl {{ url = "http://127.0.0.1:{port}/p.txt"; hash = "{hash}"; }};
}}
"#
            ),
        )
        .unwrap();
        path
    };
    let store = dir.path().join("store");
    let output = bottle(&dir.path().join("runs"))
        .arg("build")
        .arg(recipe(&wrong))
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let all = text(&output);
    assert!(!output.status.success(), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("hash mismatch"), "{all}");
    assert!(stderr.contains(&wrong), "the specified hash: {all}");
    assert!(stderr.contains(&right), "the hash that was got: {all}");
    assert!(store_files(&store, "-p.txt").is_empty(), "nothing landed");
    let leftovers: Vec<_> = std::fs::read_dir(store.join(".tmp"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(leftovers.is_empty(), "no partial download: {leftovers:?}");

    let output = bottle(&dir.path().join("runs"))
        .arg("build")
        .arg(recipe(&right))
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let landed = store_files(&store, "-p.txt");
    assert_eq!(landed.len(), 1);
    assert_eq!(std::fs::read(&landed[0]).unwrap(), PAYLOAD);
}

/// The shared cache of fetched and Debian outputs (BOTTLE_CACHE) of these
/// tests, so the Debian packages are downloaded and bootstrapped once.
const CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/bottle-cache");

/// A Debian image with two packages: the first run resolves the packages
/// against the mirror's signed index and writes the closure (versions,
/// SHA256) to bottle.lock, then boots: the guest's os-release is Debian's
/// and both packages' programs run. With the lock and the cache a build in
/// a network namespace with no network gives the same bytes; a wrong hash
/// in the lock fails, showing the hash got. Needs the Debian mirror (the
/// host's apt one) for the index and the packages, once per cache.
#[test]
fn a_debian_image_is_locked_and_boots_with_its_packages() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("debian.bottle");
    std::fs::write(
        &recipe,
        r#"{
  name = "debian-image";
  image.debian = { suite = "bookworm"; packages = [ "git" "ca-certificates" ]; };
  agent.command = [ "sh" "-c" "cat /etc/os-release; git --version; ls /etc/ssl/certs/ca-certificates.crt; id -un" ];
  cpus = 1;
  memory = 512;
}
"#,
    )
    .unwrap();
    let output = bottle(&dir.path().join("runs"))
        .env("BOTTLE_CACHE", CACHE)
        .arg("run")
        .arg(&recipe)
        .arg("--store")
        .arg(dir.path().join("store1"))
        .output()
        .unwrap();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Debian GNU/Linux 12 (bookworm)"), "{all}");
    assert!(stdout.contains("git version 2."), "{all}");
    assert!(
        stdout.contains("/etc/ssl/certs/ca-certificates.crt"),
        "{all}"
    );
    assert!(stdout.contains("agent"), "{all}");
    let locked = lock(dir.path());
    let pin = &locked["debian"]["bookworm: ca-certificates git"];
    let closure = pin["closure"].as_object().expect("a closure");
    for name in ["git", "ca-certificates", "apt", "libc6"] {
        let deb = &closure[name];
        assert!(deb["version"].is_string(), "{name}: {deb}");
        assert_eq!(deb["sha256"].as_str().unwrap().len(), 64, "{name}: {deb}");
    }

    // Offline: no network at all (a new network namespace), a new store;
    // the lock and the cache give the same root.
    let output = Command::new("unshare")
        .arg("--net")
        .arg(env!("CARGO_BIN_EXE_bottle"))
        .env("BOTTLE_CACHE", CACHE)
        .arg("build")
        .arg(&recipe)
        .arg("--store")
        .arg(dir.path().join("store2"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        root_image(&dir.path().join("store2")),
        root_image(&dir.path().join("store1"))
    );

    // A wrong pin: the fetch fails, showing the hash it got; nothing lands.
    let real = closure["hostname"]["sha256"].as_str().unwrap().to_string();
    let wrong = "0".repeat(64);
    let text_lock = std::fs::read_to_string(dir.path().join("bottle.lock")).unwrap();
    std::fs::write(
        dir.path().join("bottle.lock"),
        text_lock.replace(&real, &wrong),
    )
    .unwrap();
    let output = bottle(&dir.path().join("runs"))
        .env("BOTTLE_CACHE", CACHE)
        .arg("build")
        .arg(&recipe)
        .arg("--store")
        .arg(dir.path().join("store3"))
        .output()
        .unwrap();
    let all = text(&output);
    assert!(!output.status.success(), "{all}");
    assert!(all.contains("hash mismatch"), "{all}");
    // (miette wraps long lines: the hash is whole, `got` may end a line.)
    assert!(all.contains(&real), "the hash got: {all}");
    assert!(store_files(&dir.path().join("store3"), ".deb")
        .iter()
        .all(|p| !p.to_string_lossy().contains("hostname_")));
}

fn sh(script: &str, dir: &Path) {
    let output = Command::new("sh")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{script}\n{}", text(&output));
}

/// Local OCI images: a two-layer image made here with umoci (the second
/// layer deletes a file — a whiteout — adds a hard link and changes
/// os-release), read as a layout directory and as an archive (skopeo). The
/// guest sees the top layer's files, not the deleted one, and the hard link
/// as one inode.
#[test]
fn oci_layouts_and_archives_boot_with_their_layers_applied() {
    let dir = tempfile::tempdir().unwrap();
    busybox_tree(&dir.path().join("tree"), "unused");
    sh(
        r#"
umoci init --layout layout
umoci new --image layout:img
umoci unpack --image layout:img bundle >/dev/null
cp -a tree/. bundle/rootfs/
mkdir bundle/rootfs/data
echo gone > bundle/rootfs/data/removed
echo kept > bundle/rootfs/data/kept
umoci repack --image layout:img bundle
rm -rf bundle
umoci unpack --image layout:img bundle >/dev/null
rm bundle/rootfs/data/removed
ln bundle/rootfs/data/kept bundle/rootfs/data/hardlink
echo 'PRETTY_NAME="oci top layer"' > bundle/rootfs/etc/os-release
umoci repack --image layout:img bundle
skopeo --insecure-policy copy --quiet oci:layout:img oci-archive:image.tar
"#,
        dir.path(),
    );
    for (name, image) in [
        ("oci-layout", r#"{ oci-layout = ./layout; tag = "img"; }"#),
        ("oci-archive", "{ oci-archive = ./image.tar; }"),
    ] {
        let recipe = dir.path().join(format!("{name}.bottle"));
        std::fs::write(
            &recipe,
            format!(
                r#"{{
  name = "{name}";
  image = {image};
  agent.command = [ "sh" "-c" "cat /etc/os-release; ls /data; stat -c '%i %h' /data/kept /data/hardlink" ];
  cpus = 1;
  memory = 256;
}}
"#
            ),
        )
        .unwrap();
        let output = bottle(&dir.path().join("runs"))
            .arg("run")
            .arg(&recipe)
            .arg("--store")
            .arg(dir.path().join("store"))
            .output()
            .unwrap();
        let all = text(&output);
        assert_eq!(output.status.code(), Some(0), "{name}: {all}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("PRETTY_NAME=\"oci top layer\""),
            "{name}: {all}"
        );
        assert!(stdout.contains("kept"), "{name}: {all}");
        assert!(
            !stdout.contains("removed"),
            "{name}: the whiteout applies: {all}"
        );
        let links: Vec<&str> = stdout.lines().filter(|l| l.ends_with(" 2")).collect();
        assert_eq!(links.len(), 2, "{name}: the hard link is kept: {all}");
        assert_eq!(links[0], links[1], "{name}: one inode: {all}");
    }
}

/// Debian's `docker-registry` (distribution v2) on a loopback port, with its
/// own storage and config; stopped when dropped.
struct Registry {
    child: std::process::Child,
    port: u16,
    storage: PathBuf,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        Registry::start_with(dir, None)
    }

    /// With `user` and `password`, the registry asks for basic auth
    /// (htpasswd with a bcrypt hash made by python3's crypt).
    fn start_with(dir: &Path, login: Option<(&str, &str)>) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.join(format!("registry-storage-{port}"));
        let config = dir.join(format!("registry-{port}.yml"));
        let mut auth = String::new();
        if let Some((user, password)) = login {
            let out = Command::new("python3")
                .args(["-W", "ignore", "-c"])
                .arg("import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))")
                .arg(password)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            let hash = String::from_utf8(out.stdout).unwrap();
            let htpasswd = dir.join(format!("htpasswd-{port}"));
            std::fs::write(&htpasswd, format!("{user}:{}\n", hash.trim())).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: bottle-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (scripts/setup)");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            port,
            storage,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Push a busybox tree whose os-release says `pretty` as `reference`
/// (`127.0.0.1:PORT/name:tag`); its manifest digest, as skopeo reports it.
fn push(dir: &Path, name: &str, pretty: &str, reference: &str) -> String {
    push_with(dir, name, pretty, reference, "")
}

/// [`push`] with extra skopeo options (`--dest-creds`, `--creds`).
fn push_with(dir: &Path, name: &str, pretty: &str, reference: &str, creds: &str) -> String {
    let (dest_creds, creds) = if creds.is_empty() {
        (String::new(), String::new())
    } else {
        (format!("--dest-creds {creds}"), format!("--creds {creds}"))
    };
    busybox_tree(&dir.join(name), pretty);
    sh(
        &format!(
            r#"
umoci init --layout {name}-layout
umoci new --image {name}-layout:img
umoci unpack --image {name}-layout:img {name}-bundle >/dev/null
cp -a {name}/. {name}-bundle/rootfs/
umoci repack --image {name}-layout:img {name}-bundle
skopeo --insecure-policy copy --quiet --dest-tls-verify=false {dest_creds} oci:{name}-layout:img docker://{reference}
skopeo inspect --tls-verify=false {creds} --format '{{{{.Digest}}}}' docker://{reference} > {name}.digest
"#
        ),
        dir,
    );
    let digest = std::fs::read_to_string(dir.join(format!("{name}.digest")))
        .unwrap()
        .trim()
        .to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    digest
}

/// The root image a store holds (one), its name and bytes.
fn root_image(store: &Path) -> (PathBuf, Vec<u8>) {
    let found = store_files(store, "-root.erofs");
    assert_eq!(found.len(), 1, "{found:?}");
    let bytes = std::fs::read(&found[0]).unwrap();
    (found[0].file_name().unwrap().into(), bytes)
}

/// The lock beside a recipe, parsed.
fn lock(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("bottle.lock")).expect("bottle.lock was written");
    serde_json::from_str(&text).unwrap()
}

/// An image pushed to a loopback registry and named by tag: the first run
/// pins the tag's digest in bottle.lock and boots it; a re-push of the tag
/// does not move the build until `bottle lock --update`; with the lock and
/// the cache, the registry gone, a build gives the same bytes. Pinned by
/// digest in the recipe it needs no lock; a blob changed in the registry's
/// storage is refused by its digest and nothing lands.
#[test]
fn a_registry_image_by_tag_is_locked_pulled_verified_and_boots() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let port = registry.port;
    let tag = format!("127.0.0.1:{port}/test/busybox:1");
    let first = push(dir.path(), "first", "the first push", &tag);
    let cache = dir.path().join("cache");
    let recipe = |reference: &str| {
        let recipe = dir.path().join("pulled.bottle");
        std::fs::write(
            &recipe,
            format!(
                r#"{{
  name = "pulled";
  image = "{reference}";
  agent.command = [ "cat" "/etc/os-release" ];
  cpus = 1;
  memory = 256;
}}
"#
            ),
        )
        .unwrap();
        recipe
    };
    let bottle_in = |command: &str, reference: &str, store: &str| {
        let mut c = bottle(&dir.path().join("runs"));
        c.env("BOTTLE_CACHE", &cache)
            .arg(command)
            .arg(recipe(reference))
            .arg("--store")
            .arg(dir.path().join(store));
        c
    };

    // The first run locks the tag and boots the image.
    let output = bottle_in("run", &tag, "store1").output().unwrap();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("the first push"),
        "{all}"
    );
    assert!(all.contains(&format!("locked {tag}: {first}")), "{all}");
    assert_eq!(lock(dir.path())["oci"][&tag]["digest"], first.as_str());

    // The tag moves in the registry; the lock keeps the build where it was.
    let second = push(dir.path(), "second", "the second push", &tag);
    assert_ne!(first, second);
    let output = bottle_in("build", &tag, "store2").output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        root_image(&dir.path().join("store2")),
        root_image(&dir.path().join("store1"))
    );
    assert_eq!(lock(dir.path())["oci"][&tag]["digest"], first.as_str());

    // `bottle lock --update` moves it.
    let output = bottle(&dir.path().join("runs"))
        .args(["lock", "--update"])
        .arg(recipe(&tag))
        .output()
        .unwrap();
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains(&format!("{first} → {second}")), "{all}");
    assert_eq!(lock(dir.path())["oci"][&tag]["digest"], second.as_str());
    let output = bottle_in("run", &tag, "store3").output().unwrap();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("the second push"),
        "{all}"
    );

    // A reference pinned in the recipe needs no lock entry; a tampered blob
    // is refused by its digest (no cache here: the pull must happen).
    let blobs = registry.storage.join("docker/registry/v2/blobs/sha256");
    let mut changed = 0;
    for prefix in std::fs::read_dir(&blobs).unwrap().flatten() {
        for blob in std::fs::read_dir(prefix.path()).unwrap().flatten() {
            let data = blob.path().join("data");
            let bytes = std::fs::read(&data).unwrap();
            // Layers are gzip; manifests and configs are JSON.
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut tampered = bytes.clone();
                let at = tampered.len() / 2;
                tampered[at] ^= 0xff;
                std::fs::write(&data, tampered).unwrap();
                changed += 1;
            }
        }
    }
    assert!(changed >= 1);
    let output = bottle(&dir.path().join("runs"))
        .arg("build")
        .arg(recipe(&format!("{tag}@{first}")))
        .arg("--store")
        .arg(dir.path().join("store-tampered"))
        .output()
        .unwrap();
    let all = text(&output);
    assert_ne!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("pulling docker://"), "{all}");
    assert!(store_files(&dir.path().join("store-tampered"), "-oci").is_empty());

    // The registry gone: the lock and the cache still build the same bytes.
    drop(registry);
    let output = bottle_in("build", &tag, "store4").output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        root_image(&dir.path().join("store4")),
        root_image(&dir.path().join("store3"))
    );
    // Without the lock it cannot: the tag must be looked up.
    std::fs::remove_file(dir.path().join("bottle.lock")).unwrap();
    let output = bottle_in("build", &tag, "store5").output().unwrap();
    let all = text(&output);
    assert_ne!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("cannot look up the digest"), "{all}");
}

/// The os-release of the one OCI root a store unpacked.
fn unpacked_os_release(store: &Path) -> String {
    let roots: Vec<PathBuf> = store_files(store, "-rootfs")
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(roots.len(), 1, "{roots:?}");
    std::fs::read_to_string(roots[0].join("etc/os-release")).unwrap()
}

/// Every file under `dir` whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

/// A registry that asks for basic auth: the image is locked and pulled with
/// the user name from the recipe and the password from a secret (an
/// environment variable), which lands in no store file, lock or output; a
/// wrong password, or none, is refused with a clear error.
#[test]
fn a_private_registry_is_pulled_with_credentials_from_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let password = "s3cret-registry-password";
    let registry = Registry::start_with(dir.path(), Some(("bottle", password)));
    let tag = format!("127.0.0.1:{}/test/private:1", registry.port);
    push_with(
        dir.path(),
        "private",
        "a private image",
        &tag,
        &format!("bottle:{password}"),
    );
    let recipe = |login: bool| {
        let path = dir.path().join("private.bottle");
        let access = if login {
            r#"username = "bottle"; credentials = builtins.secret { env = "REGISTRY_PASSWORD"; };"#
        } else {
            ""
        };
        std::fs::write(
            &path,
            format!(
                r#"{{
  name = "private";
  image = {{ oci = "{tag}"; {access} }};
  agent.command = [ "cat" "/etc/os-release" ];
}}
"#
            ),
        )
        .unwrap();
        path
    };
    let build = |login: bool, secret: &str, store: &str| {
        bottle(&dir.path().join("runs"))
            .env("REGISTRY_PASSWORD", secret)
            .arg("build")
            .arg(recipe(login))
            .arg("--store")
            .arg(dir.path().join(store))
            .output()
            .unwrap()
    };
    let output = build(true, password, "store");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(unpacked_os_release(&dir.path().join("store")).contains("a private image"));
    assert!(!all.contains(password), "{all}");
    assert_eq!(
        files_holding(dir.path().join("store").as_path(), password.as_bytes()),
        Vec::<PathBuf>::new()
    );
    let lock = std::fs::read_to_string(dir.path().join("bottle.lock")).unwrap();
    assert!(!lock.contains(password));

    // A wrong password: the tag cannot be looked up without a lock…
    std::fs::remove_file(dir.path().join("bottle.lock")).unwrap();
    let output = build(true, "not-the-password", "store-wrong");
    let all = text(&output);
    assert!(!output.status.success(), "{all}");
    assert!(all.contains("refused the credentials"), "{all}");
    // …nor pulled with one.
    std::fs::write(dir.path().join("bottle.lock"), &lock).unwrap();
    let output = build(true, "not-the-password", "store-wrong");
    let all = text(&output);
    assert!(!output.status.success(), "{all}");
    assert!(all.contains("refused the credentials"), "{all}");
    assert!(store_files(&dir.path().join("store-wrong"), "-oci").is_empty());
    // No credentials at all.
    let output = build(false, "", "store-anonymous");
    let all = text(&output);
    assert!(!output.status.success(), "{all}");
    assert!(all.contains("needs credentials"), "{all}");
}

/// A registry mirror: the reference names a registry that is not there,
/// and the image comes from the mirror instead, set by `--registry-mirror`
/// or by the recipe's `mirror`; the digest is the reference's all the same.
#[test]
fn a_registry_mirror_serves_the_references_image() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = Registry::start(dir.path());
    let mirror_host = format!("127.0.0.1:{}", mirror.port);
    // The origin: a port nothing listens on.
    let origin = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let digest = push(
        dir.path(),
        "mirrored",
        "from the mirror",
        &format!("{mirror_host}/test/mirrored:1"),
    );
    let reference = format!("127.0.0.1:{origin}/test/mirrored:1");
    for (image, flag) in [
        (format!(r#""{reference}""#), Some(mirror_host.as_str())),
        (
            format!(r#"{{ oci = "{reference}"; mirror = "{mirror_host}"; }}"#),
            None,
        ),
    ] {
        let sub = dir
            .path()
            .join(if flag.is_some() { "flag" } else { "field" });
        std::fs::create_dir_all(&sub).unwrap();
        let recipe = sub.join("mirrored.bottle");
        std::fs::write(
            &recipe,
            format!("{{ name = \"mirrored\"; image = {image}; agent.command = [ \"true\" ]; }}\n"),
        )
        .unwrap();
        let mut command = bottle(&dir.path().join("runs"));
        if let Some(host) = flag {
            command.args(["--registry-mirror", host]);
        }
        let output = command
            .arg("build")
            .arg(&recipe)
            .arg("--store")
            .arg(sub.join("store"))
            .output()
            .unwrap();
        let all = text(&output);
        assert!(output.status.success(), "{all}");
        assert!(unpacked_os_release(&sub.join("store")).contains("from the mirror"));
        assert_eq!(lock(&sub)["oci"][&reference]["digest"], digest.as_str());
    }
}

/// A manifest list (an OCI image index) with an arm64 image listed before
/// the linux/amd64 one: the lock pins the index's digest, and the pull
/// picks amd64.
#[test]
fn a_manifest_list_gives_its_amd64_image() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let tag = format!("127.0.0.1:{}/test/multi:1", registry.port);
    busybox_tree(&dir.path().join("amd"), "the amd64 image");
    busybox_tree(&dir.path().join("arm"), "the arm64 image");
    sh(
        &format!(
            r#"
umoci init --layout ml
for arch in amd arm; do
  umoci new --image ml:$arch
  umoci unpack --image ml:$arch b-$arch >/dev/null
  cp -a $arch/. b-$arch/rootfs/
  umoci repack --image ml:$arch b-$arch
done
umoci config --image ml:arm --architecture arm64
python3 - <<'PY'
import hashlib, json
index = json.load(open("ml/index.json"))
by_ref = {{m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}}
entries = []
for ref, arch in [("arm", "arm64"), ("amd", "amd64")]:
    m = dict(by_ref[ref])
    m.pop("annotations", None)
    m["platform"] = {{"architecture": arch, "os": "linux"}}
    entries.append(m)
blob = json.dumps({{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}}).encode()
digest = hashlib.sha256(blob).hexdigest()
open("ml/blobs/sha256/" + digest, "wb").write(blob)
index["manifests"].append({{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + digest, "size": len(blob), "annotations": {{"org.opencontainers.image.ref.name": "multi"}}}})
json.dump(index, open("ml/index.json", "w"))
open("index.digest", "w").write("sha256:" + digest)
PY
skopeo --insecure-policy copy --quiet --all --dest-tls-verify=false oci:ml:multi docker://{tag}
"#
        ),
        dir.path(),
    );
    let index_digest = std::fs::read_to_string(dir.path().join("index.digest")).unwrap();
    let recipe = dir.path().join("multi.bottle");
    std::fs::write(
        &recipe,
        format!("{{ name = \"multi\"; image = \"{tag}\"; agent.command = [ \"true\" ]; }}\n"),
    )
    .unwrap();
    let output = bottle(&dir.path().join("runs"))
        .arg("build")
        .arg(&recipe)
        .arg("--store")
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert_eq!(
        lock(dir.path())["oci"][&tag]["digest"],
        index_digest.as_str()
    );
    let release = unpacked_os_release(&dir.path().join("store"));
    assert!(release.contains("the amd64 image"), "{release}");
}

/// An npm package named by version (or dist-tag) without `integrity`: the
/// lock pins the exact version and the registry's integrity, and the
/// bottle is the one the same integrity written in the recipe gives. Asks
/// registry.npmjs.org for the metadata (nothing is downloaded here).
#[test]
fn an_npm_version_is_pinned_in_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let name = "@anthropic-ai/claude-code-linux-x64";
    let integrity = "sha512-f4JWhzwYutJIHScC7/dYOPX6s28tt7ZADhsOi8zwOHq5fFPEuUeChh2NMfinSg0GrUckYxaeebC4h0DqiKzLcw==";
    let dry_run = |sub: &str, args: &str| {
        let sub = dir.path().join(sub);
        std::fs::create_dir_all(&sub).unwrap();
        let recipe = sub.join("npm.bottle");
        std::fs::write(
            &recipe,
            format!(
                r#"let lib = import <bottle/lib.bottle>;
    pkg = lib.fetchers.npm {{ name = "{name}"; {args} }};
in {{
  name = "npm";
  image = {{ busybox = true; }};
  agent.command = [ "true" ];
  files."/opt/pkg" = pkg;
}}
"#
            ),
        )
        .unwrap();
        let output = bottle(&dir.path().join("runs"))
            .args(["build", "--dry-run"])
            .arg(&recipe)
            .arg("--store")
            .arg(dir.path().join("store"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (stdout, sub)
    };
    let (given, sub) = dry_run(
        "given",
        &format!(r#"version = "2.1.332"; integrity = "{integrity}";"#),
    );
    assert!(!sub.join("bottle.lock").exists(), "nothing to lock");
    let (locked, sub) = dry_run("locked", r#"version = "2.1.332";"#);
    assert_eq!(given, locked, "the lock gives the recipe's own pin");
    let pin = &lock(&sub)["npm"][&format!("{name}@2.1.332")];
    assert_eq!(pin["version"], "2.1.332");
    assert_eq!(pin["integrity"], integrity);
    // A dist-tag is pinned to the exact version it names now.
    let (_, sub) = dry_run("latest", r#"version = "latest";"#);
    let pin = &lock(&sub)["npm"][&format!("{name}@latest")];
    let version = pin["version"].as_str().unwrap();
    assert!(version.starts_with(|c: char| c.is_ascii_digit()), "{pin}");
    assert!(
        pin["integrity"].as_str().unwrap().starts_with("sha512-"),
        "{pin}"
    );
}

/// The flagship: `bottle run examples/claude-code.bottle -- claude --version`
/// prints Claude Code's version from inside the guest (a Debian root with
/// the npm platform package's binary), with this repository checked out in
/// its workdir through the git gate. The Debian tree and the package are
/// shared with the other tests through BOTTLE_CACHE.

#[test]
fn the_claude_code_example_runs_claude_in_its_guest() {
    let dir = tempfile::tempdir().unwrap();
    let output = bottle(&dir.path().join("runs"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BOTTLE_CACHE", CACHE)
        .env("ANTHROPIC_API_KEY", "sk-test-not-a-real-key")
        .args(["run", "examples/claude-code.bottle", "--store"])
        .arg(dir.path().join("store"))
        .args([
            "--",
            "sh",
            "-c",
            "claude --version && git log -1 --format=commit=%H && git remote get-url origin",
        ])
        .output()
        .unwrap();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(Claude Code)"), "{all}");
    // The project is checked out through the git gate, at the host's commit.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert!(stdout.contains(&format!("commit={head}")), "{all}");
    assert!(
        stdout.contains("http://proxy.internal:3129/origin.git"),
        "{all}"
    );
}
