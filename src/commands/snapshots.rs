//! `snapshots`: what restic itself holds, per service and destination.

use super::{Context, select};
use crate::cli::ServiceFilter;
use crate::error::Error;
use crate::model::Exit;
use crate::output::table;
use crate::process::Shutdown;
use crate::restic::Repository;
use crate::restic::ops::SnapshotGroup;

pub async fn run(ctx: &Context, f: &ServiceFilter) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let services = select(&c, &f.services, false)?;
    let restic = ctx.restic(&c).await?;
    let p = &ctx.printer;
    let shutdown = Shutdown::never();
    let mut groups = Vec::new();
    let mut rows = Vec::new();
    let mut failed = 0usize;
    let mut read = 0usize;
    for s in &services {
        for t in &s.targets {
            let Some(d) = c.destinations.get(t) else {
                continue;
            };
            let repo =
                Repository::open(d, &s.name, &c.settings.password).map_err(|e| e.to_string());
            let g = SnapshotGroup::read(&restic, &s.name, &s.tag(), t, repo, &shutdown).await;
            match &g.error {
                None => {
                    read += 1;
                    for snap in &g.snapshots {
                        rows.push(vec![
                            s.name.clone(),
                            t.clone(),
                            snap.short().to_string(),
                            snap.time.get(..19).unwrap_or(&snap.time).replace('T', " "),
                            snap.hostname.clone(),
                            snap.paths.join(" "),
                            snap.tags.join(","),
                        ]);
                    }
                }
                Some(e) => {
                    failed += 1;
                    if !p.json {
                        let repo = if g.repository.is_empty() {
                            String::new()
                        } else {
                            format!(" (repository `{}`)", g.repository)
                        };
                        p.error(format!(
                            "cannot list the snapshots of service `{}` on `{t}`{repo}: {e}",
                            s.name
                        ));
                    }
                }
            }
            groups.push(g);
        }
    }
    if p.json {
        p.json(&groups);
    } else if rows.is_empty() && failed > 0 {
        // "no snapshots" would be a claim about repositories that could
        // not be read: say what is known instead.
        p.error(format!(
            "{failed} of {} repositories could not be read (see above); {}",
            failed + read,
            if read == 0 {
                "no snapshots could be listed".to_string()
            } else {
                format!("the other {read} hold no snapshots of these services")
            }
        ));
    } else if rows.is_empty() {
        p.line("no snapshots");
    } else {
        p.line(table(
            &[
                "SERVICE",
                "DESTINATION",
                "ID",
                "TIME",
                "HOST",
                "PATHS",
                "TAGS",
            ],
            &rows,
        ));
        if failed > 0 {
            p.error(format!(
                "{failed} of {} repositories could not be read (see above); the list is incomplete",
                failed + read
            ));
        }
    }
    Ok(Exit::failed_if(failed > 0))
}
