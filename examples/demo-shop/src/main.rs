//! `demo-shop <service>`: runs one demo service on its own (the `sessiontrace demo` command starts all of
//! them). Telemetry goes where the `OTEL_*` variables say (default: a sessiontrace server on 127.0.0.1).

use clap::Parser;
use demo_shop::{Service, Topology};

#[derive(Parser)]
#[command(name = "demo-shop", about = "Run one service of the sessiontrace demo shop")]
struct Args {
    /// Which service to run.
    service: Service,
    #[command(flatten)]
    topology: Topology,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = demo_shop::telemetry::install(args.service.name());
    demo_shop::serve(args.service, args.topology).await
}
