//! `restore`: files from `latest` or an id, into the default folder, a
//! `--target` or in place; one path; the refusals (not empty, unknown
//! snapshot, a path that is not in it, no terminal and a missing flag); the
//! preview; a dump into a file and a command; no disk space; and the
//! interactive flow driven through a pseudo-terminal. Every restore is
//! checked against the files on disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use expectrl::session::OsSession;

use crate::harness::{Done, PASSWORD, Scenario, read, require_component};

/// Service `docs` backing up `{root}/data/docs` (a.txt, sub/b.txt) to
/// `local`, plus `extra` after its config (keys or whole services); the
/// repository exists.
fn docs(s: Scenario, extra: &str) -> Scenario {
    s.file("data/docs/a.txt", "hello")
        .file("data/docs/sub/b.txt", "world")
        .service("docs", |d| d.path("{root}/data/docs").config(extra))
        .repos(&["repo/docs"])
}

/// `--json restore -s docs ARGS`.
fn json_restore(s: &Scenario, args: &[&str]) -> Done {
    let mut all = vec!["--json", "restore", "-s", "docs"];
    all.extend_from_slice(args);
    s.run(&all)
}

/// Backs up `docs` and returns the new snapshot's short id.
fn backup(s: &Scenario) -> String {
    let before = s.snapshots("repo/docs").len();
    s.run(&["run", "-s", "docs"]).succeeds();
    let snaps = s.snapshots("repo/docs");
    assert_eq!(snaps.len(), before + 1, "one new snapshot");
    snaps
        .last()
        .and_then(|v| v["short_id"].as_str())
        .unwrap_or_else(|| panic!("short_id in {snaps:?}"))
        .to_string()
}

/// Where `{root}/rel` lands below a restore folder.
fn inside(s: &Scenario, folder: &Path, rel: &str) -> PathBuf {
    let full = s.path(rel);
    folder.join(full.strip_prefix("/").unwrap_or(&full))
}

#[test]
fn latest_goes_to_a_new_folder_named_after_service_and_snapshot() {
    let s = docs(Scenario::new(), "");
    let id = backup(&s);
    let d = s.restore_latest("docs", &[]);
    d.succeeds()
        .stderr_has("reading from destination `local`")
        .stdout_has("restored 2 files");
    let folder = s.path(&format!("restore-docs-{id}"));
    d.stdout_has(&folder.display().to_string());
    assert_eq!(read(&inside(&s, &folder, "data/docs/a.txt")), "hello");
    assert_eq!(read(&inside(&s, &folder, "data/docs/sub/b.txt")), "world");
}

#[test]
fn a_given_id_restores_that_version_into_target() {
    let s = docs(Scenario::new(), "");
    let first = backup(&s);
    s.write("data/docs/a.txt", "changed later");
    let second = backup(&s);
    assert_ne!(first, second);
    let target = s.path("out");
    let d = json_restore(&s, &["--snapshot", &first[..6], "--target", "out"]);
    d.succeeds();
    assert_eq!(read(&inside(&s, &target, "data/docs/a.txt")), "hello");
    let j = d.json();
    assert_eq!(j["snapshot"]["short_id"], first.as_str());
    assert_eq!(j["target"], target.display().to_string());
    assert_eq!(
        (j["files"].as_u64(), j["bytes"].as_u64()),
        (Some(2), Some(10))
    );
    assert_eq!(j["preview"], false);
    assert!(!d.stdout.contains(PASSWORD));
}

#[test]
fn include_restores_just_that_file() {
    let s = docs(Scenario::new(), "");
    backup(&s);
    let d = s.restore_latest("docs", &["-t", "one", "--include", "sub/b.txt"]);
    d.succeeds().stdout_has("restored 1 file,");
    let folder = s.path("one");
    assert_eq!(read(&inside(&s, &folder, "data/docs/sub/b.txt")), "world");
    assert!(!inside(&s, &folder, "data/docs/a.txt").exists());
}

#[test]
fn in_place_with_yes_brings_back_modified_and_deleted_files() {
    let s = docs(Scenario::new(), "");
    backup(&s);
    s.write("data/docs/a.txt", "broken");
    std::fs::remove_file(s.path("data/docs/sub/b.txt")).expect("rm");
    s.write("data/docs/new.txt", "kept");

    // No terminal to ask on: refused without --yes, nothing touched.
    s.restore_latest("docs", &["--in-place"])
        .code(2)
        .stderr_has("add `--yes` to confirm");
    assert_eq!(read(&s.path("data/docs/a.txt")), "broken");

    s.restore_latest("docs", &["--in-place", "--yes"])
        .succeeds()
        .stdout_has("to the original paths");
    assert_eq!(read(&s.path("data/docs/a.txt")), "hello");
    assert_eq!(read(&s.path("data/docs/sub/b.txt")), "world");
    assert_eq!(read(&s.path("data/docs/new.txt")), "kept");
}

#[test]
fn a_target_that_is_not_empty_needs_overwrite() {
    let s = docs(Scenario::new(), "");
    backup(&s);
    s.write("busy/mine.txt", "mine");
    s.restore_latest("docs", &["-t", "busy"])
        .code(2)
        .stderr_has("target `")
        .stderr_has("busy` is not empty")
        .stderr_has("`--overwrite`");
    assert!(!inside(&s, &s.path("busy"), "data/docs/a.txt").exists());
    s.restore_latest("docs", &["-t", "busy", "--overwrite"])
        .succeeds();
    assert_eq!(
        read(&inside(&s, &s.path("busy"), "data/docs/a.txt")),
        "hello"
    );
    assert_eq!(read(&s.path("busy/mine.txt")), "mine");
}

#[test]
fn an_unknown_snapshot_lists_the_nearest_ids() {
    let s = docs(Scenario::new(), "");
    let id = backup(&s);
    // Same first seven characters, a different last one.
    let last = if id.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &id[..7]);
    s.run(&["restore", "-s", "docs", "--snapshot", &wrong])
        .code(2)
        .stderr_has(&format!(
            "no snapshot `{wrong}` of service `docs` on `local`; the nearest are:\n  {id}"
        ));
    assert!(!s.path(&format!("restore-docs-{id}")).exists());
}

#[test]
fn a_path_that_is_not_in_the_snapshot_is_refused_with_suggestions() {
    let s = docs(Scenario::new(), "");
    let id = backup(&s);
    s.restore_latest("docs", &["--include", "sub/a.txt"])
        .code(2)
        .stderr_has(&format!("`sub/a.txt` is not in snapshot `{id}`"))
        .stderr_has(&format!(
            "did you mean `{}`",
            s.path("data/docs/a.txt").display()
        ));
    assert!(!s.path(&format!("restore-docs-{id}")).exists());
}

#[test]
fn without_a_terminal_a_missing_choice_names_the_flag_and_the_choices() {
    let s = docs(Scenario::new(), "").service("wiki", |w| w.path("{root}/data/docs"));
    let id = backup(&s);
    s.run(&["restore"])
        .code(2)
        .stderr_has("missing `--service NAME` (no terminal to ask on); services: `docs`, `wiki`");
    s.run(&["restore", "-s", "docs"])
        .code(2)
        .stderr_has("missing `--snapshot ID|latest`")
        .stderr_has(&format!("\n  {id}  "));
    s.restore_latest("nope", &[])
        .code(2)
        .stderr_has("unknown service `nope`");
}

#[test]
fn preview_shows_counts_and_entries_and_writes_nothing() {
    let s = docs(Scenario::new(), "");
    let id = backup(&s);
    let d = s.restore_latest("docs", &["--preview"]);
    d.succeeds()
        .stdout_has("would restore 2 files, 2 folders, 10 B into")
        .stdout_has(&format!("{}/", s.path("data/docs").display()))
        .stdout_has(&s.path("data/docs/sub/b.txt").display().to_string());
    assert!(!s.path(&format!("restore-docs-{id}")).exists());
    let j = s
        .run(&[
            "--json",
            "restore",
            "-s",
            "docs",
            "--snapshot",
            "latest",
            "--preview",
            "--in-place",
        ])
        .json();
    assert_eq!(j["preview"], true);
    assert_eq!(j["in_place"], true);
    assert_eq!(j["files"], 2);
    assert_eq!(
        j["first_entries"][1]["path"],
        s.path("data/docs/a.txt").display().to_string()
    );
}

/// A dump snapshot as `sources::dump` writes one: stdin, tag `dump:NAME`.
fn dump_snapshot(s: &Scenario, name: &str, filename: &str, content: &str) {
    let mut child = s
        .restic_command("repo/docs")
        .args([
            "backup",
            "--quiet",
            "--stdin",
            "--stdin-filename",
            filename,
            "--tag",
            "service:docs",
            "--tag",
        ])
        .arg(format!("dump:{name}"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("restic");
    if let Some(mut w) = child.stdin.take() {
        use std::io::Write;
        w.write_all(content.as_bytes()).expect("write");
    }
    let st = child.wait().expect("wait");
    assert!(st.success(), "restic backup --stdin");
}

#[test]
fn a_dump_streams_into_a_file_or_a_command() {
    let s = docs(Scenario::new(), "");
    backup(&s);
    dump_snapshot(&s, "notes", "db/notes.sql", "CREATE TABLE t;\nINSERT 1;\n");

    let d = json_restore(
        &s,
        &[
            "--snapshot",
            "latest",
            "--dump",
            "notes",
            "--to-file",
            "notes.sql",
        ],
    );
    d.succeeds();
    assert_eq!(read(&s.path("notes.sql")), "CREATE TABLE t;\nINSERT 1;\n");
    assert_eq!(d.json()["bytes"], 26);
    assert_eq!(d.json()["kind"], "dump");
    // An existing file is not replaced without --overwrite.
    s.restore_latest("docs", &["--dump", "notes", "--to-file", "notes.sql"])
        .code(2)
        .stderr_has("already exists");

    s.restore_latest(
        "docs",
        &["--dump", "notes", "--to-command", "wc -l > lines.txt"],
    )
    .succeeds()
    .stdout_has("restored dump `notes`");
    assert_eq!(read(&s.path("lines.txt")).trim(), "2");

    // The command fails: exit 1 with its stderr.
    s.restore_latest(
        "docs",
        &[
            "--dump",
            "notes",
            "--to-command",
            "cat >/dev/null; echo 'psql: role missing' >&2; exit 3",
        ],
    )
    .code(1)
    .stderr_has("failed (exit code 3)")
    .stderr_has("psql: role missing");

    // `latest` for files skips the dump snapshot; a dump that was never
    // made is named.
    s.restore_latest("docs", &["--preview"])
        .succeeds()
        .stdout_has("would restore 2 files");
    s.restore_latest("docs", &["--dump", "other", "--to-file", "x"])
        .code(2)
        .stderr_has("service `docs` has no dump `other`");
}

/// A 1 MiB tmpfs, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf) -> Option<SmallDisk> {
        std::fs::create_dir_all(&at).expect("mkdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|st| st.success());
        ok.then_some(SmallDisk(at))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn not_enough_disk_space_is_reported_as_such() {
    let s = docs(Scenario::new(), "");
    // 3 MiB that do not compress.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(s.path("data/docs/big.bin"), big).expect("write");
    backup(&s);
    let Some(disk) = SmallDisk::mount(s.path("small")) else {
        let why = "cannot mount a tmpfs here (needs root)".to_string();
        require_component("a small tmpfs", Err(why));
        return;
    };
    s.restore_latest("docs", &["-t", "small"])
        .code(1)
        .stderr_has("not enough disk space in `")
        .stderr_has("no space left on device");
    drop(disk);
}

/// The interactive flow in a pseudo-terminal: pick the second service,
/// the newest snapshot, one path, the default folder, confirm.
#[test]
fn interactive_restore_through_a_terminal() {
    use expectrl::{Eof, Expect};
    let s = docs(Scenario::new(), "").service("aaa", |w| w.path("{root}/data/docs"));
    let first = backup(&s);
    s.write("data/docs/sub/b.txt", "newer");
    let id = backup(&s);
    assert_ne!(first, id);

    let mut p = restore_in_a_pty(&s, &[]);
    const DOWN: &str = "\x1b[B";
    const ENTER: &str = "\r";
    // Services in file order: docs, aaa.
    step(&mut p, "Service to restore from", ENTER);
    sees(&mut p, "Snapshot (newest first)");
    p.expect(id.as_str()).expect("newest snapshot in the table");
    // Its size, from the run history (restic 0.14 keeps none).
    step(&mut p, "10 B", ENTER);
    step(&mut p, "What to restore", &format!("{DOWN}{ENTER}"));
    step(&mut p, "Path (absolute", &format!("sub/b.txt{ENTER}"));
    step(&mut p, "Another path", ENTER);
    step(&mut p, "Restore to", ENTER);
    sees(&mut p, "would restore 1 file,");
    step(&mut p, "Restore?", "y");
    sees(&mut p, "restored 1 file,");
    p.expect(Eof).expect("end");

    let folder = s.path(&format!("restore-docs-{id}"));
    assert_eq!(read(&inside(&s, &folder, "data/docs/sub/b.txt")), "newer");
    assert!(!inside(&s, &folder, "data/docs/a.txt").exists());
}

/// A configured `command` dump, backed up by `run`, comes back through its
/// `restore_command`, `--to-command` and `--to-file`.
#[test]
fn a_configured_dump_restores_through_its_restore_command_or_a_file() {
    let s = Scenario::new();
    s.write("notes.sql", "one\ntwo\nthree\n");
    let s = docs(
        s,
        "\n[[services.docs.config.dumps]]\nname = \"notes\"\ncommand = \"cat {root}/notes.sql\"\nfilename = \"db/notes.sql\"\nrestore_command = \"cat > {root}/from-preset.sql\"\n",
    );
    s.run(&["run", "-s", "docs"]).succeeds();
    let dumps: Vec<_> = s
        .snapshots("repo/docs")
        .into_iter()
        .filter(|v| {
            v["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "dump:notes"))
        })
        .collect();
    assert_eq!(dumps.len(), 1, "one dump snapshot");

    s.restore_latest("docs", &["--dump", "notes", "--yes"])
        .succeeds()
        .stdout_has("restored dump `notes`");
    assert_eq!(read(&s.path("from-preset.sql")), "one\ntwo\nthree\n");

    s.restore_latest("docs", &["--dump", "notes", "--to-file", "copy.sql"])
        .succeeds();
    assert_eq!(read(&s.path("copy.sql")), "one\ntwo\nthree\n");
    s.restore_latest(
        "docs",
        &["--dump", "notes", "--to-file", "copy.sql", "--overwrite"],
    )
    .succeeds();

    s.restore_latest(
        "docs",
        &[
            "--dump",
            "notes",
            "--to-command",
            "grep -c o > {root}/count.txt"
                .replace("{root}", &s.root().display().to_string())
                .as_str(),
        ],
    )
    .succeeds();
    assert_eq!(read(&s.path("count.txt")).trim(), "2");

    s.restore_latest("docs", &["--dump", "nope"])
        .code(2)
        .stderr_has("service `docs` has no dump `nope`")
        .stderr_has("its dumps: `notes`");
}

/// The first target cannot be read: the next one is used and named;
/// `--destination` picks one, and an unknown one lists the targets.
#[test]
fn the_first_readable_destination_is_used_and_named() {
    let s = docs(Scenario::new(), "");
    let id = backup(&s);
    s.config(&format!(
        "{}\n[destinations.gone]\ntype = \"local\"\npath = \"{{root}}/nowhere\"\n",
        read(&s.config_path()).replace("targets = [\"local\"]", "targets = [\"gone\", \"local\"]")
    ));
    s.restore_latest("docs", &["--preview"])
        .succeeds()
        .stderr_has("destination `gone` cannot be read: repository `")
        .stderr_has("reading from destination `local` (the first target that could be read")
        .stdout_has(&format!("snapshot {id} of `docs` on `local`"));
    s.restore_latest("docs", &["-d", "gone", "--preview"])
        .code(1)
        .stderr_has("does not exist");
    s.restore_latest("docs", &["-d", "other"])
        .code(2)
        .stderr_has("service `docs` does not back up to `other`; its targets: `gone`, `local`");
}

/// Picking a dump's snapshot from the table restores that dump: here into
/// a file typed at the prompt.
#[test]
fn interactive_dump_restore_into_a_file() {
    use expectrl::{Eof, Expect};
    let s = docs(Scenario::new(), "");
    backup(&s);
    dump_snapshot(&s, "notes", "notes.sql", "CREATE TABLE t;\n");

    let mut p = restore_in_a_pty(&s, &[]);
    sees(&mut p, "service: docs (the only one)");
    // Newest first: the dump.
    step(&mut p, "dump:notes", "\r");
    step(&mut p, "Restore dump `notes`", "\r");
    step(&mut p, "File", "out.sql\r");
    sees(&mut p, "would restore dump `notes` into `");
    step(&mut p, "Restore?", "y");
    sees(&mut p, "restored dump `notes`");
    p.expect(Eof).expect("end");
    assert_eq!(read(&s.path("out.sql")), "CREATE TABLE t;\n");
}

/// `restore ARGS` in a pseudo-terminal, each answer awaited a minute.
fn restore_in_a_pty(s: &Scenario, args: &[&str]) -> OsSession {
    let mut cmd = s.command();
    cmd.env("TERM", "xterm").arg("restore").args(args);
    let mut p = expectrl::Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(60)));
    p
}

/// Waits for `want` on the terminal.
fn sees(p: &mut OsSession, want: &str) {
    use expectrl::Expect;
    p.expect(want)
        .unwrap_or_else(|e| panic!("waiting for {want:?}: {e}"));
}

/// Waits for `want` on the terminal, then types `keys`.
fn step(p: &mut OsSession, want: &str, keys: &str) {
    use expectrl::Expect;
    p.expect(want)
        .unwrap_or_else(|e| panic!("waiting for {want:?}: {e}"));
    p.send(keys).expect("send");
}

/// A volume `vol` filled by `script` and a running container `app` that
/// uses it (plus `fresh`, an empty name for a restore target), all removed
/// when the guard drops.
fn app_on_a_volume(script: &str) -> (DockerObjects, String, String, String) {
    let tag = format!(
        "{}-{}",
        std::process::id(),
        TAGS.fetch_add(1, Ordering::Relaxed)
    );
    let vol = format!("rmt-restore-vol-{tag}");
    let app = format!("rmt-restore-app-{tag}");
    let fresh = format!("rmt-restore-fresh-{tag}");
    let objects = DockerObjects(vec![
        ("volume", vol.clone()),
        ("volume", fresh.clone()),
        ("container", app.clone()),
    ]);
    docker(&["volume", "create", &vol]);
    in_volume(&vol, script);
    let mount = format!("{vol}:/data");
    crate::docker::detached(&app, &["-v", &mount], crate::docker::IDLE).succeeds();
    (objects, vol, app, fresh)
}

static TAGS: AtomicUsize = AtomicUsize::new(0);

/// Docker objects of one test, removed when it ends (also on failure).
struct DockerObjects(Vec<(&'static str, String)>);

impl Drop for DockerObjects {
    fn drop(&mut self) {
        for (kind, name) in self.0.iter().rev() {
            let args: &[&str] = if *kind == "container" {
                &["rm", "-f"]
            } else {
                &["volume", "rm", "-f"]
            };
            let _ = Command::new("docker").args(args).arg(name).output();
        }
    }
}

/// `docker ARGS`, which must succeed; its output, trimmed.
fn docker(args: &[&str]) -> String {
    let d = crate::docker::docker(args);
    d.succeeds();
    d.stdout.trim().to_string()
}

/// `sh -c SCRIPT` in a throw-away container with `volume` at `/data`; its
/// output, trimmed.
fn in_volume(volume: &str, script: &str) -> String {
    crate::docker::sh_in(volume, script).trim().to_string()
}

/// A volume restored in place (its running container stopped and started
/// again, its content replaced: a changed file back, a deleted one back, a
/// new one gone), and, from a streamed snapshot, into a fresh volume.
#[test]
fn a_volume_is_restored_with_its_container_stopped_and_started_again() {
    if !crate::docker::engine() {
        return;
    }
    let (_objects, vol, app, fresh) =
        app_on_a_volume("echo one > /data/a.txt; mkdir /data/sub; echo two > /data/sub/b.txt");
    let started = || {
        docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.StartedAt}}",
            &app,
        ])
    };
    let before = started();

    let s = Scenario::new();
    s.write("pw", PASSWORD);
    let service = |mode: &str| {
        format!(
            "[services.app]\ntargets = [\"local\"]\n[services.app.config]\nvolumes = [\"{vol}\"]\nvolume_mode = \"{mode}\"\ndocker_helper_image = \"{}\"\n",
            crate::docker::IMAGE
        )
    };
    s.simple(&service("direct"));
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
    in_volume(
        &vol,
        "echo changed > /data/a.txt; rm /data/sub/b.txt; echo new > /data/new.txt",
    );

    s.restore_latest("app", &["--volume", &vol])
        .code(2)
        .stderr_has("add `--yes` to confirm");
    let d = s.run(&[
        "--json",
        "restore",
        "-s",
        "app",
        "--snapshot",
        "latest",
        "--volume",
        &vol,
        "--yes",
    ]);
    d.succeeds();
    let j = d.json();
    assert_eq!(j["volume"]["mode"], "direct");
    assert_eq!(
        j["volume"]["containers_restarted"],
        serde_json::json!([app])
    );
    assert_eq!(
        in_volume(&vol, "cat /data/a.txt /data/sub/b.txt; ls /data"),
        "one\ntwo\na.txt\nsub"
    );
    let after = started();
    assert!(after.starts_with("true "), "the app runs again: {after}");
    assert_ne!(after, before, "the app was stopped and started");

    // Stream mode, into a fresh volume.
    s.simple(&service("stream"));
    s.run(&["run"]).succeeds();
    s.restore_latest("app", &["--volume", &vol, "--to-volume", &fresh, "--yes"])
        .succeeds()
        .stdout_has(&format!("of volume `{vol}` into Docker volume `{fresh}`"));
    assert_eq!(
        in_volume(&fresh, "cat /data/a.txt /data/sub/b.txt; ls /data"),
        "one\ntwo\na.txt\nsub"
    );
}

/// On a terminal, a file snapshot that holds a volume offers the volume;
/// picking it stops the container, replaces the content, starts it again.
#[test]
fn interactive_volume_restore() {
    use expectrl::{Eof, Expect};
    if !crate::docker::engine() {
        return;
    }
    let (_objects, vol, app, _) = app_on_a_volume("echo one > /data/a.txt");
    let s = Scenario::new();
    s.write("pw", PASSWORD);
    s.simple(&format!(
        "[services.app]\ntargets = [\"local\"]\n[services.app.config]\nvolumes = [\"{vol}\"]\nvolume_mode = \"direct\"\n"
    ));
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
    in_volume(&vol, "echo changed > /data/a.txt");

    let mut p = restore_in_a_pty(&s, &[]);
    step(&mut p, "Snapshot (newest first)", "\r");
    step(&mut p, "Files or a Docker volume", "\x1b[B\r");
    step(&mut p, &format!("stopping `{app}` meanwhile"), "y");
    p.expect(format!("started `{app}` again").as_str())
        .expect("result");
    p.expect(Eof).expect("end");
    assert_eq!(in_volume(&vol, "cat /data/a.txt"), "one");
    let running = docker(&["inspect", "-f", "{{.State.Running}}", &app]);
    assert_eq!(running, "true");
}

/// Snapshots made without our tag (by the original tool, or by hand) in the
/// service's own repository are still found.
#[test]
fn snapshots_without_the_service_tag_are_used_when_there_are_no_others() {
    let s = docs(Scenario::new(), "");
    let data = s.path("data/docs");
    s.restic("repo/docs", &["backup", "--quiet", &data.to_string_lossy()])
        .succeeds();
    s.restore_latest("docs", &["-t", "out"])
        .succeeds()
        .stderr_has("is tagged `service:docs`; using all its 1 snapshots");
    assert_eq!(
        read(&inside(&s, &s.path("out"), "data/docs/a.txt")),
        "hello"
    );
}

/// Esc at a prompt ends the restore with nothing written (exit 1); so
/// does "no" at the confirmation.
#[test]
fn cancelling_on_the_terminal_restores_nothing() {
    use expectrl::process::unix::WaitStatus;
    use expectrl::{Eof, Expect};
    let s = docs(Scenario::new(), "");
    let id = backup(&s);
    let spawn = |args: &[&str]| restore_in_a_pty(&s, args);
    let exit = |p: &mut expectrl::session::OsSession| match p.get_process().wait() {
        Ok(WaitStatus::Exited(_, code)) => code,
        other => panic!("restore did not exit normally: {other:?}"),
    };

    let mut p = spawn(&[]);
    step(&mut p, "Snapshot (newest first)", "\x1b");
    sees(&mut p, "cancelled; nothing was restored");
    p.expect(Eof).expect("end");
    assert_eq!(exit(&mut p), 1);

    // All flags given but `--in-place`: the terminal is asked, "n" stops it.
    s.write("data/docs/a.txt", "mine");
    let mut p = spawn(&["-s", "docs", "--snapshot", "latest", "--in-place"]);
    sees(&mut p, "would restore 2 files");
    step(&mut p, "replacing what is there now?", "n");
    sees(&mut p, "nothing was restored");
    p.expect(Eof).expect("end");
    assert_eq!(exit(&mut p), 1);
    assert_eq!(read(&s.path("data/docs/a.txt")), "mine");
    assert!(!s.path(&format!("restore-docs-{id}")).exists());
}
