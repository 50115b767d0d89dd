//! `serve`: the web dashboard (the work is in `web/`).

use std::net::SocketAddr;

use super::Context;
use crate::cli::ServeArgs;
use crate::error::Error;
use crate::model::Exit;
use crate::web::{self, ServeOptions};

pub async fn run(ctx: &Context, a: &ServeArgs) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let listen_text = a.listen.clone().unwrap_or_else(|| c.web.listen.clone());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        Error::Usage(format!(
            "`--listen {listen_text}` is not an address with a port, e.g. `127.0.0.1:8080` or `[::1]:8080`"
        ))
    })?;
    let path = &c.web.token_file;
    // On loopback a missing token is created (and its place printed); on
    // any other address the server would be open to the network until
    // someone read the file, so it must exist beforehand.
    let loopback = listen.ip().is_loopback();
    if !loopback && !path.exists() {
        return Err(Error::Usage(format!(
            "refusing to listen on {listen} without an access token: `{}` does not exist; run `restic-manager setup` (it creates the token when the config has a `[web]` table), or listen on 127.0.0.1",
            path.display()
        )));
    }
    let (token, created) = web::auth::load_or_create_token(path, loopback).map_err(Error::Usage)?;
    if created {
        ctx.printer.info(format!(
            "generated a web access token in {} (mode 0600); log in with its content",
            path.display()
        ));
    } else {
        ctx.printer
            .info(format!("web access token: {}", path.display()));
    }
    let restic = ctx.restic(&c).await?;
    web::serve(c, restic, token, &ServeOptions { listen }, ctx.printer).await
}
