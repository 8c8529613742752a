//! `scim-server`: a local SCIM 2.0 service provider for trying the SCIM connector
//! without an identity-provider account (see docs/writing-a-connector.md).
//!
//! Prints its base URL and token, then serves until Ctrl-C.

use std::net::SocketAddr;

use clap::Parser;
use tests::scim_server::{ScimServer, ScimServerConfig};

/// A local SCIM 2.0 server: deterministic users and groups, paging, Bearer auth.
#[derive(Parser, Debug)]
#[command(name = "scim-server", version)]
struct Args {
    /// Users served by /Users.
    #[arg(long, default_value_t = ScimServerConfig::small().users)]
    users: usize,
    /// Groups served by /Groups.
    #[arg(long, default_value_t = ScimServerConfig::small().groups)]
    groups: usize,
    /// Largest page the server returns, whatever `count` asks for.
    #[arg(long, default_value_t = ScimServerConfig::small().max_page_size)]
    max_page_size: usize,
    /// The Bearer token the server accepts.
    #[arg(long, default_value_t = ScimServerConfig::small().token)]
    token: String,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = ScimServerConfig {
        users: args.users,
        groups: args.groups,
        max_page_size: args.max_page_size,
        token: args.token,
    };
    let server = ScimServer::start_on(config, SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    println!("base_url = \"{}\"", server.base_url());
    println!("token    = \"{}\"", server.token());
    println!("Serving until Ctrl-C.");
    tokio::signal::ctrl_c().await
}
