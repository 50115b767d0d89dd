//! The dashboard in a real browser: Debian's headless Chromium driven
//! through chromedriver (WebDriver, the fantoccini crate). Logs in with the
//! token, reads the overview of real backups, starts a backup and watches
//! the live page until it completes, opens a snapshot and downloads a file
//! whose content is checked. Screenshots of the overview and the service
//! page go to `target/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Map, Value, json};

use crate::harness::{Reaped, Scenario, free_port, require_component, runs};
use crate::web::{Server, backed_up};

/// chromedriver, stopped when dropped.
pub struct Driver {
    _child: Reaped,
    pub url: String,
}

/// Starts chromedriver, or explains why it cannot: a failure in CI, a
/// printed skip elsewhere.
pub fn driver() -> Option<Driver> {
    let install = "`apt-get install -y chromium chromium-driver`";
    let probe = runs("chromedriver", &["--version"], install)
        .and_then(|()| runs("chromium", &["--version"], install));
    if !require_component("chromium and chromium-driver", probe) {
        return None;
    }
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    let d = Driver {
        _child: Reaped(child),
        url: format!("http://127.0.0.1:{port}"),
    };
    let c = crate::web::client();
    let start = Instant::now();
    while !c
        .get(format!("{}/status", d.url))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(d)
}

/// A headless Chromium's capabilities: the usual switches, then `extra`,
/// a profile in `profile`, and `prefs` (none when null).
pub fn chromium(profile: &Path, extra: &[String], prefs: Value) -> Map<String, Value> {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(extra);
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
    if !prefs.is_null() {
        options["prefs"] = prefs;
    }
    let mut caps = Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    caps
}

/// Runs `f` in a WebDriver session of `driver` with `caps` (on a
/// current-thread runtime), and closes the session afterwards.
pub fn in_session<T, F, Fut>(driver: &Driver, caps: Map<String, Value>, f: F) -> Result<T, String>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .map_err(|e| format!("WebDriver session: {e}"))?;
        let r = f(c.clone()).await;
        let _ = c.close().await;
        r
    })
}

/// A WebDriver error as text that says what failed.
pub fn failed(what: &'static str) -> impl Fn(fantoccini::error::CmdError) -> String {
    move |err| format!("{what}: {err}")
}

/// Clicks the element `css` finds; `what` names it in an error.
pub async fn click(c: &Client, css: &str, what: &'static str) -> Result<(), String> {
    let found = c.find(Locator::Css(css)).await.map_err(failed(what))?;
    found.click().await.map_err(failed(what))?;
    Ok(())
}

/// Fills in the dashboard's login form (waiting up to 10 s for it) with
/// `token` and sends it.
pub async fn log_in(c: &Client, token: &str) -> Result<(), String> {
    let e = failed;
    let field = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input#token"))
        .await
        .map_err(e("login form"))?;
    field.send_keys(token).await.map_err(e("type token"))?;
    click(c, "form.login button", "log in").await
}

fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

/// Whether `name` is completely downloaded into `dir`.
fn done_downloading(dir: &Path, name: &str) -> bool {
    let partial = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
    dir.join(name).is_file() && !partial
}

/// The overview shows the real backup, healthy; screenshot it.
async fn overview_shows_the_backup(c: &Client, shots_dir: &Path) -> Result<(), String> {
    let e = failed;
    let wait = |t: u64| c.wait().at_most(Duration::from_secs(t));
    let table = wait(10)
        .for_element(Locator::Css("table.overview"))
        .await
        .map_err(e("overview"))?;
    let text = table.text().await.map_err(e("overview text"))?;
    if !text.contains("app") || !text.contains("local:") {
        return Err(format!("overview lacks the service: {text}"));
    }
    let health = c
        .find(Locator::Css(
            "table.overview tbody tr td:nth-child(2) .badge",
        ))
        .await
        .map_err(e("badge"))?;
    if health.text().await.map_err(e("badge text"))? != "ok" {
        return Err("service is not shown healthy".into());
    }
    let png = c.screenshot().await.map_err(e("screenshot"))?;
    std::fs::write(shots_dir.join("overview.png"), png).map_err(|x| x.to_string())?;
    Ok(())
}

/// Start a backup and watch it finish on the live page.
async fn run_and_watch_it_finish(c: &Client) -> Result<(), String> {
    let e = failed;
    let wait = |t: u64| c.wait().at_most(Duration::from_secs(t));
    let run = "table.overview form[action='/services/app/run'] button";
    click(c, run, "run button").await?;
    let state = wait(10)
        .for_element(Locator::Css("#job-state"))
        .await
        .map_err(e("live page"))?;
    let first = state.text().await.map_err(e("state"))?;
    if first != "running" {
        return Err(format!(
            "the live page did not show the run in progress: {first}"
        ));
    }
    // app.js reloads the page when the job is done.
    wait(90)
        .for_element(Locator::Css("#job-done"))
        .await
        .map_err(e("run to finish"))?;
    let outcome = c
        .find(Locator::Css("#job-outcome .badge"))
        .await
        .map_err(e("outcome"))?
        .text()
        .await
        .map_err(e("outcome text"))?;
    if outcome != "ok" {
        return Err(format!("the run ended {outcome}"));
    }
    Ok(())
}

/// The service page lists both runs; screenshot it.
async fn service_page_lists_both_runs(
    c: &Client,
    base: &str,
    shots_dir: &Path,
) -> Result<(), String> {
    let e = failed;
    c.find(Locator::Css("a#job-run"))
        .await
        .map_err(e("run link"))?;
    c.goto(&format!("{base}/services/app"))
        .await
        .map_err(e("service page"))?;
    let runs = c
        .find_all(Locator::Css("table.runs tbody tr"))
        .await
        .map_err(e("runs"))?;
    if runs.len() != 2 {
        return Err(format!("{} runs on the service page, want 2", runs.len()));
    }
    let png = c.screenshot().await.map_err(e("screenshot"))?;
    std::fs::write(shots_dir.join("service.png"), png).map_err(|x| x.to_string())?;
    Ok(())
}

/// Open the newest snapshot, go to the data folder (`data`), download
/// `hello.txt` into `downloads_dir`.
async fn download_from_the_snapshot(
    c: &Client,
    data: &str,
    downloads_dir: &Path,
) -> Result<(), String> {
    let e = failed;
    let wait = |t: u64| c.wait().at_most(Duration::from_secs(t));
    click(c, "table.snapshots tbody tr a", "open snapshot").await?;
    wait(20)
        .for_element(Locator::Css("table.files"))
        .await
        .map_err(e("browser"))?;
    let url = c.current_url().await.map_err(e("url"))?;
    let folder = format!(
        "{}&path={data}",
        url.as_str().split("&path=").next().unwrap_or(url.as_str())
    );
    c.goto(&folder).await.map_err(e("data folder"))?;
    let link = wait(20)
        .for_element(Locator::XPath(
            "//table[contains(@class,'files')]//a[text()='hello.txt']",
        ))
        .await
        .map_err(e("file link"))?;
    link.click().await.map_err(e("download"))?;
    // The session must stay open until Chromium has saved the file.
    let start = Instant::now();
    while !done_downloading(downloads_dir, "hello.txt") {
        if start.elapsed() > Duration::from_secs(30) {
            return Err("hello.txt was not downloaded".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[test]
fn a_browser_logs_in_runs_a_backup_and_downloads_a_file() {
    let Some(driver) = driver() else { return };
    // The pre hook keeps the run visible on the live page for a moment.
    let s: Scenario = backed_up(
        "[[services.app.config.pre_backup_hooks]]\nname = \"pause\"\ncommand = \"sleep 2\"\n",
    );
    let srv = Server::start(&s);
    let downloads = s.path("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let profile = s.path("chromium-profile");
    let data = s.path("data/app").display().to_string();
    let shots = screenshots_dir();

    let caps = chromium(
        &profile,
        &["--window-size=1280,900".to_string()],
        json!({
            "download.default_directory": downloads.display().to_string(),
            "download.prompt_for_download": false,
        }),
    );
    let base = srv.base.clone();
    let token = srv.token.clone();
    let downloads_dir = &downloads;
    let shots_dir = &shots;
    let result: Result<(), String> = in_session(&driver, caps, |c| async move {
        // Not logged in: the dashboard sends us to the login form.
        c.goto(&format!("{base}/")).await.map_err(failed("open"))?;
        log_in(&c, &token).await?;

        overview_shows_the_backup(&c, shots_dir).await?;
        run_and_watch_it_finish(&c).await?;
        service_page_lists_both_runs(&c, &base, shots_dir).await?;
        download_from_the_snapshot(&c, &data, downloads_dir).await?;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n--- serve log:\n{}", srv.log());
    }
    assert_eq!(
        std::fs::read_to_string(downloads.join("hello.txt")).unwrap_or_default(),
        "hello from the dashboard\n"
    );
    for shot in ["overview.png", "service.png"] {
        let len = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 1000, "{shot} is {len} bytes");
    }
    assert_eq!(
        s.history()
            .query("SELECT trigger, outcome FROM runs ORDER BY id"),
        ["cli|ok", "web|ok"]
    );
}
